"""From a pandas DataFrame and a geopandas GeoDataFrame to matches joined back to their
attributes, and a picture. Runs as a script (`python examples/notebook_demo.py OUT_DIR`)
or cell by cell in a notebook; tests/python/test_examples.py executes it.
"""

# %% Polygons: a GeoDataFrame (here read from the sample GeoParquet file)
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

import polymatch as pm

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
OUT.mkdir(parents=True, exist_ok=True)

districts = gpd.read_parquet(ROOT / "sample_data" / "synthetic" / "polygons.parquet")
districts["district"] = [f"D{i:04d}" for i in range(len(districts))]

# %% Points: a plain pandas DataFrame with attributes
rng = np.random.default_rng(0)
shops = pd.DataFrame(
    {
        "shop": [f"shop-{i}" for i in range(300)],
        "revenue": rng.gamma(2.0, 1000.0, 300).round(2),
        "x": rng.uniform(0, 230, 300),
        "y": rng.uniform(0, 230, 300),
    }
)

# %% Match: the smallest district whose center is within 10 units of each shop
index = pm.PolygonIndex.from_arrow(districts.to_arrow(index=False))
matches = index.match(shops, max_dist=10.0, how="left").to_pandas()

# %% Join back to attributes (point_index / polygon_index are row positions)
joined = shops.join(matches.set_index("point_index")).merge(
    districts[["district"]].reset_index(names="polygon_index"),
    on="polygon_index",
    how="left",
)
print(joined[["shop", "revenue", "district", "distance", "area"]].head())
print("revenue by district:", joined.groupby("district")["revenue"].sum().nlargest(3).to_dict())

# %% Picture: polygons, shops, and a line from each shop to its district's center
pm.plot(index, shops[["x", "y"]], index.match(shops, max_dist=10.0), path=OUT / "matches.png")
print("wrote", OUT / "matches.png")
