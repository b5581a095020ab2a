import pyarrow as pa

import polymatch as pm

xs = [[0.0, 4.0, 4.0, 0.0], [10.0, 12.0, 12.0]]  # one ring per polygon: its x coordinates
ys = [[0.0, 0.0, 4.0, 4.0], [10.0, 10.0, 12.0]]  # and its y coordinates
polygons = pa.table({"x": xs, "y": ys, "name": ["square", "triangle"]})
points = pa.table({"id": [1, 2, 3], "x": [2.0, 11.0, 50.0], "y": [2.0, 11.0, 50.0]})

index = pm.PolygonIndex.from_arrow(polygons)  # exact centers and areas, k-d index
result = index.match(points, max_dist=10.0, how="left", keep=["id"], keep_polygons=["name"])
print(result.to_pylist())  # a pyarrow.Table; also .to_pandas(), polars.from_arrow(result)
