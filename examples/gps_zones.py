"""GPS fixes to the zones within 200 m, in metres (metric="sphere").

Longitude/latitude read as planar coordinates would make max_dist=200 mean 200 degrees;
with metric="sphere" it is 200 great-circle metres, areas are square metres, and a zone
that straddles the antimeridian (Taveuni, Fiji, at 180 degrees) has its center there.
predicate="dwithin" measures to the zones' outlines instead of their centers.
"""

import pyarrow as pa
import shapely

import polymatch as pm


def square(lon: float, lat: float, half: float = 0.001) -> shapely.Polygon:
    """A small square of 2 * half degrees around (lon, lat), in -180..180."""
    west, east = lon - half, lon + half
    east = east - 360 if east > 180 else east  # across the antimeridian
    return shapely.Polygon([(west, lat - half), (east, lat - half), (east, lat + half),
                            (west, lat + half)])  # fmt: skip


zones = pa.table(
    {
        "geometry": pa.array(
            shapely.to_wkb(
                [square(2.3553, 48.8809), square(2.3376, 48.8606), square(180, -16.795)]
            ),
            pa.binary(),
        ),
        "zone": ["Gare du Nord", "Louvre", "Taveuni"],
    }
)
fixes = pa.table(
    {
        "fix": [1, 2, 3, 4],
        "x": [2.3556, 2.3400, -179.9995, 2.3],  # longitude
        "y": [48.8811, 48.8606, -16.795, 48.9],  # latitude
    }
)

index = pm.PolygonIndex.from_arrow(zones, metric="sphere")
print(index.to_arrow().select(["center_x", "center_y", "area"]).to_pandas().round(4))

# the nearest zone within 200 m of each fix (fix 4 has none)
near = index.match(fixes, max_dist=200.0, rank_by="distance", how="left", keep=["fix"],
                   keep_polygons=["zone"])  # fmt: skip
print(near.select(["fix", "zone", "distance"]).to_pandas().round(1).to_string(index=False))

# within 200 m of a zone's outline (0 inside it), the nearest first: fix 1 is inside Gare
# du Nord; fix 2 is 175.6 m from the Louvre zone's center but 102.4 m from its edge
paris = fixes.slice(0, 2)
edge = index.match(paris, max_dist=200.0, predicate="dwithin", rank_by="distance",
                   keep=["fix"], keep_polygons=["zone"])  # fmt: skip
print(edge.select(["fix", "zone", "distance"]).to_pandas().round(1).to_string(index=False))

# the same zones with great-circle edges (GeoArrow "edges": "spherical"): Taveuni's square,
# written across the antimeridian, is then the small square it is, and fix 3 is inside it
arcs = zones.set_column(
    0,
    pa.field(
        "geometry",
        pa.binary(),
        metadata={
            b"ARROW:extension:name": b"geoarrow.wkb",
            b"ARROW:extension:metadata": b'{"edges": "spherical"}',
        },
    ),
    zones["geometry"],
)
great = pm.PolygonIndex.from_arrow(arcs, metric="sphere")
inside = great.match(fixes, predicate="covers", keep=["fix"], keep_polygons=["zone"])
print(inside.select(["fix", "zone"]).to_pandas().to_string(index=False))
