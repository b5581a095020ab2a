"""The partitioned Dask join against the broadcast join and the single-process CLI.

    .venv/bin/python benches/scale_out.py                       # 2M polygons x 10M points
    .venv/bin/python benches/scale_out.py --polygons 200000 --points 1000000   # quick

Data: `polymatch generate` (uniform), the points split into `--files` Parquet files and
the polygons into `--polygon-files`. On a `LocalCluster(n_workers=2,
threads_per_worker=1)`, each run from an empty output directory, medians of `--repeat`:

- CLI: `polymatch match` on the one points file, one process (2 rayon threads);
- broadcast: `polymatch.dask.match_parquet(files, "polygons.parquet", out)`: the index is
  built on the client and shipped to both workers;
- partitioned: `polymatch.dask.match_parquet(files, polygon_files, out)`: tiles of
  `--polygons-per-tile`, no process holds every polygon.

Peak memory: each worker's and the client's peak RSS during one run on a fresh cluster
(Linux `clear_refs` resets the peak; `VmHWM` is read after), against a fresh process that reads
every polygon file and indexes them all (`PolygonIndex.from_arrow`). The partitioned
outputs are checked to equal the broadcast ones, file by file.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def status(key: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(key + r":\s+(\d+)", f.read()).group(1))


def reset_peak() -> int:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return status("VmRSS")


def peak() -> int:
    return status("VmHWM")


ONE_PROCESS = """
import re, sys, pyarrow as pa, pyarrow.parquet as pq, polymatch as pm
def rss(key):
    with open("/proc/self/status") as f:
        return int(re.search(key + r":\\s+(\\d+)", f.read()).group(1))
base = rss("VmRSS")
index = pm.PolygonIndex.from_arrow(pa.concat_tables([pq.read_table(f) for f in sys.argv[1:]]))
print(base, rss("VmHWM"))
"""


def prepare(d: Path, polygons: int, points: int, files: int, polygon_files: int) -> None:
    import pyarrow.parquet as pq

    if (d / "done").exists():
        return
    d.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "polymatch",
            "generate",
            "--polygons",
            str(polygons),
            "--points",
            str(points),
            "--out-dir",
            str(d),
        ],
        check=True,
    )
    for name, n, sub in (("points", files, "in"), ("polygons", polygon_files, "poly")):
        t = pq.read_table(d / f"{name}.parquet")
        (d / sub).mkdir(exist_ok=True)
        size = -(-t.num_rows // n)
        for i in range(n):
            pq.write_table(t.slice(i * size, size), d / sub / f"{name}-{i}.parquet")
    (d / "done").touch()


def timed(fn, repeat: int, out: Path) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--polygons", type=int, default=2_000_000)
    ap.add_argument("--points", type=int, default=10_000_000)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--polygon-files", type=int, default=8)
    ap.add_argument("--polygons-per-tile", type=int, default=250_000)
    ap.add_argument("--max-dist", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/polymatch_scale_out"))
    args = ap.parse_args()

    import distributed
    import pyarrow.parquet as pq

    import polymatch.dask as pmd

    d = args.dir / f"{args.polygons}x{args.points}"
    prepare(d, args.polygons, args.points, args.files, args.polygon_files)
    files = sorted((d / "in").glob("*.parquet"))
    polygon_files = sorted((d / "poly").glob("*.parquet"))
    rows = {}

    cli_out = d / "out_cli"
    cli = [
        sys.executable,
        "-m",
        "polymatch",
        "match",
        "--polygons",
        str(d / "polygons.parquet"),
        "--points",
        str(d / "points.parquet"),
        "--out",
        str(cli_out / "m.parquet"),
        "--max-dist",
        str(args.max_dist),
        "--quiet",
    ]

    def run_cli():
        cli_out.mkdir(parents=True, exist_ok=True)
        subprocess.run(cli, check=True)

    rows["CLI, one process, one points file"] = timed(run_cli, args.repeat, cli_out)
    one = subprocess.run(
        [sys.executable, "-c", ONE_PROCESS, *map(str, polygon_files)],
        capture_output=True,
        text=True,
        check=True,
    )
    one_base, one_peak = map(int, one.stdout.split())

    kw = {"max_dist": args.max_dist}
    bout, pout = d / "out_broadcast", d / "out_partitioned"

    def partitioned():
        pmd.match_parquet(
            files, polygon_files, pout, polygons_per_tile=args.polygons_per_tile, **kw
        )

    def broadcast():
        pmd.match_parquet(files, d / "polygons.parquet", bout, **kw)

    def cluster():
        return distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0")

    with cluster() as cl, distributed.Client(cl):
        rows["Dask broadcast (index built on the client)"] = timed(broadcast, args.repeat, bout)
        rows["Dask partitioned (tiles built on the workers)"] = timed(
            partitioned, args.repeat, pout
        )
    for a, b in zip(sorted(bout.glob("*.parquet")), sorted(pout.glob("*.parquet"))):
        assert pq.read_table(a).equals(pq.read_table(b)), f"{a} != {b}"

    def fresh_peaks(fn, out):
        """Each worker's and the client's peak RSS during one run on a fresh cluster."""
        shutil.rmtree(out, ignore_errors=True)
        with cluster() as cl, distributed.Client(cl) as client:
            bases = client.run(reset_peak)
            base = reset_peak()
            fn()
            return bases, client.run(peak), base, peak()

    bases, worker_peaks, base, client_peak = fresh_peaks(partitioned, pout)
    bases_b, worker_peaks_b, _, _ = fresh_peaks(broadcast, bout)

    mib = 1024
    cli_t = rows["CLI, one process, one points file"][0]
    bro_t = rows["Dask broadcast (index built on the client)"][0]
    print(
        f"\n{args.polygons:,} polygons x {args.points:,} points, max_dist={args.max_dist}, "
        f"{len(files)} points files, {len(polygon_files)} polygon files, 2 workers x 1 thread\n"
    )
    print("| run | median | runs | vs broadcast | vs CLI |\n|---|---|---|---|---|")
    for name, (med, times) in rows.items():
        print(
            f"| {name} | {med:.2f} s | {', '.join(f'{t:.2f}' for t in times)} | "
            f"{med / bro_t:.2f}x | {med / cli_t:.2f}x |"
        )
    print("\n| process | peak RSS | growth during the run |\n|---|---|---|")
    print(
        f"| one process indexing every polygon | {one_peak / mib:.0f} MiB | "
        f"{(one_peak - one_base) / mib:.0f} MiB |"
    )
    for addr in sorted(worker_peaks):
        print(
            f"| worker {addr.rsplit(':', 1)[-1]}, partitioned | {worker_peaks[addr] / mib:.0f} MiB | "
            f"{(worker_peaks[addr] - bases[addr]) / mib:.0f} MiB |"
        )
    for addr in sorted(worker_peaks_b):
        print(
            f"| worker {addr.rsplit(':', 1)[-1]}, broadcast | {worker_peaks_b[addr] / mib:.0f} MiB | "
            f"{(worker_peaks_b[addr] - bases_b[addr]) / mib:.0f} MiB |"
        )
    print(
        f"| client, partitioned | {client_peak / mib:.0f} MiB | {(client_peak - base) / mib:.0f} MiB |"
    )
    print(json.dumps({k: v[1] for k, v in rows.items()}))


if __name__ == "__main__":
    main()
