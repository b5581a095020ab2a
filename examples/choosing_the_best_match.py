"""The rank rules of README's "Choosing the best match", run on the sample data
(geopandas and pandas in, pandas out). Run from the repository root:
`python examples/choosing_the_best_match.py`."""

import geopandas as gpd
import pandas as pd

import polymatch as pm

polygons = gpd.read_parquet("sample_data/synthetic/polygons.parquet")
polygons["height"] = (polygons["polygon_id"] % 7).astype(float)  # any numeric column
points = pd.read_parquet("sample_data/synthetic/points.parquet")
index = pm.PolygonIndex.from_arrow(polygons)  # every column kept: rank by any of them

# one best polygon per point, by each rule (ties: the lowest polygon row)
smallest = index.match(points, max_dist=2.0)  # rank_by="area", the default
nearest = index.match(points, max_dist=2.0, rank_by="distance")
tallest = index.match(points, max_dist=2.0, rank_by="height", descending=True)
# the three nearest, one row each, with a rank column 1..3
three = index.match(points, max_dist=2.0, rank_by="distance", k=3).to_pandas()
print(three.join(polygons["height"], on="polygon_index").head())

assert len(smallest) == len(nearest) == len(tallest)
assert three.groupby("point_index")["rank"].max().max() == 3
