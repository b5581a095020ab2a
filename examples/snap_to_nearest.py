"""Snap points to the nearest polygon within a cap, and list what is near each one.

Parcels as polygons, GPS fixes as points. `predicate="dwithin"` makes every parcel whose
outline is closer than `max_dist` a candidate (0 inside it; a fix exactly at `max_dist`
is not one), decided exactly; `rank_by="distance"` picks the nearest, `k=2` the two
nearest, and `max_dist=inf` the nearest with no cap.
"""

import math

import pyarrow as pa
import shapely

import polymatch as pm

parcels = pa.table(
    {
        "geometry": pa.array(
            shapely.to_wkb(
                [
                    shapely.box(0, 0, 10, 10),  # a field
                    shapely.box(12, 0, 20, 6),  # a yard next to it
                    shapely.Polygon([(0, 20), (30, 20), (30, 24), (0, 24)]),  # a road
                ]
            ),
            pa.binary(),
        ),
        "parcel": ["field", "yard", "road"],
    }
)
fixes = pa.table({"fix": [1, 2, 3, 4], "x": [5.0, 11.0, 15.0, 50.0], "y": [5.0, 3.0, 17.0, 50.0]})

index = pm.PolygonIndex.from_arrow(parcels)
opts = dict(keep=["fix"], keep_polygons=["parcel"])
# the nearest parcel within 5 units: fix 1 is inside the field (distance 0), fix 2 lies
# between the field and the yard (1 from each: the lower row wins), fix 3 is 3 from the
# road, fix 4 is too far
snapped = index.match(
    fixes, predicate="dwithin", max_dist=5.0, rank_by="distance", how="left", **opts
)
print(snapped.select(["fix", "parcel", "distance"]).to_pandas().to_string(index=False))

# the two nearest parcels of each fix, with no cap
two = index.match(fixes, predicate="dwithin", max_dist=math.inf, rank_by="distance", k=2, **opts)
print(two.select(["fix", "rank", "parcel", "distance"]).to_pandas().to_string(index=False))
