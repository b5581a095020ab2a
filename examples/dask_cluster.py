"""polymatch on a local Dask cluster (pip install "./python[dask]"); from the repo root:
python examples/dask_cluster.py"""

import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from distributed import Client, LocalCluster

import polymatch as pm
import polymatch.dask as pmd


def main() -> None:
    index = pm.read_polygons("sample_data/synthetic/polygons.parquet")
    points = pmd.read_parquet("sample_data/synthetic/points.parquet")  # Arrow types, CRS
    matches = pmd.match(index, points, max_dist=10.0, keep=["point_id"])  # lazy
    print(matches.compute().head())

    # Polygons too many for one process: pass them partitioned (a Dask DataFrame or a
    # list of files); they are cut into tiles with halos, the answer is the same.
    polygons = pmd.read_parquet("sample_data/synthetic/polygons.parquet")
    tiled = pmd.match(polygons, points, max_dist=10.0, keep=["point_id"]).compute()
    print("partitioned, same answer:", tiled.equals(matches.compute()))

    with tempfile.TemporaryDirectory() as tmp:  # files in, files out: one task per file
        inputs, out_dir = Path(tmp, "points"), Path(tmp, "matches")
        points.repartition(npartitions=4).to_parquet(inputs)  # four files
        outs = pmd.match_parquet(inputs, index, out_dir, max_dist=10.0, keep=["point_id"])
        for out in outs:  # point_index restarts in each file: keep an id to join on
            print(Path(out).name, pq.ParquetFile(out).metadata.num_rows, "matches")


if __name__ == "__main__":  # required: the workers are new processes that import this file
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        with Client(cluster):
            main()
