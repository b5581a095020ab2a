"""Nested regions: for each GPS fix, the most specific region that contains it.

A country, its two states and a city: `predicate="covers"` makes every region that
covers a point a candidate (decided exactly on the outlines), and the default rank rule,
the smallest area, picks the most specific one. `k=3` lists them from the most specific
out; `predicate="contains"` leaves out points on a boundary.
"""

import pyarrow as pa
import shapely

import polymatch as pm

regions = pa.table(
    {
        "geometry": pa.array(
            shapely.to_wkb(
                [
                    shapely.box(0, 0, 100, 100),  # the country
                    shapely.box(0, 0, 50, 100),  # the west state
                    shapely.box(50, 0, 100, 100),  # the east state
                    shapely.Point(15, 15).buffer(5),  # a city in the west
                ]
            ),
            pa.binary(),
        ),
        "name": ["country", "west", "east", "city"],
    }
)
fixes = pa.table(
    {"fix": [1, 2, 3, 4], "x": [14.0, 30.0, 50.0, 120.0], "y": [16.0, 60.0, 40.0, 5.0]}
)

index = pm.PolygonIndex.from_arrow(regions)  # outlines kept; edge indexes built on first use
best = index.match(fixes, predicate="covers", how="left", keep=["fix"], keep_polygons=["name"])
print(best.select(["fix", "name"]).to_pandas().to_string(index=False))
# fix 3 lies on the border of the two states: both cover it, the lower row wins

nested = index.match(fixes, predicate="covers", k=3, keep=["fix"], keep_polygons=["name"])
print(nested.select(["fix", "rank", "name"]).to_pandas().to_string(index=False))
