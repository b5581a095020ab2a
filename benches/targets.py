"""The performance targets of the issues, each measured as a median in one run.

    .venv/bin/python benches/targets.py            # everything (a few minutes)
    .venv/bin/python benches/targets.py --skip-cli # without the 1M x 10M Parquet job

Figures (this machine has 2 cores and is noisy: compare ratios within one run):
- article workload: prepared `index.match(points)` end to end (pyarrow Table in and out;
  also a numpy (N, 2) array, threads=1, 0 and 1 points),
  and `compat.main(polygons, points)`;
- building an index from Arrow columns for 1,000,000 polygons of 10 vertices, and its
  serialised size and save/load time (`to_bytes`/`from_bytes`, what Dask ships);
- 100,000 polygons x 1,000,000 points: uniform (~30 candidates; also the first call at
  that radius, which builds the index's cell lists, and threads=1), max_dist = inf,
  clustered;
- the CLI on 1,000,000 polygons x 10,000,000 points, Parquet to Parquet: wall time and
  peak RSS, and peak RSS with 1,000,000 points for the streaming ratio.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

# numpy's OpenBLAS threads spin for a while after numpy work, and on a 2-core machine
# they took 3-6% of the samples of the timed calls (perf); no BLAS is timed here.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pyarrow as pa

import polymatch as pm
from polymatch import compat


def median_us(fn, number, repeat=7):
    return statistics.median(timeit.timeit(fn, number=number) / number for _ in range(repeat)) * 1e6


def median_ms(fn, repeat=7):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def rings(centers, vertices=10):
    ang = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    x = (centers[:, :1] + np.cos(ang)[None, :]).ravel()
    y = (centers[:, 1:] + np.sin(ang)[None, :]).ravel()
    offsets = np.arange(0, len(centers) * vertices + 1, vertices, dtype=np.int64)
    return x, y, offsets


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-cli", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)

    polygons, points = compat.generate_example()
    idx = pm.PolygonIndex.from_coords(
        np.concatenate([p.x for p in polygons]),
        np.concatenate([p.y for p in polygons]),
        np.arange(0, 10 * len(polygons) + 1, 10, dtype=np.int64),
    )
    table = pa.table({"x": np.array(points)[:, 0], "y": np.array(points)[:, 1]})
    print(
        f"article: index.match(pyarrow table)   {median_us(lambda: idx.match(table), 2000):8.1f} µs"
    )
    arr = np.array(points)
    print(
        f"article: index.match(numpy (N, 2))    {median_us(lambda: idx.match(arr), 2000):8.1f} µs"
    )
    print(
        f"article: ... threads=1                {median_us(lambda: idx.match(table, threads=1), 2000):8.1f} µs"
    )
    print(
        f"article: 0 points / 1 point           {median_us(lambda: idx.match(table.slice(0, 0)), 2000):8.1f} / "
        f"{median_us(lambda: idx.match(table.slice(0, 1)), 2000):.1f} µs"
    )
    print(
        f"article: compat.main                  {median_us(lambda: compat.main(polygons, points), 500):8.1f} µs"
    )

    x, y, off = rings(rng.uniform(0, 3000, (1_000_000, 2)))
    build = median_ms(lambda: pm.PolygonIndex.from_coords(x, y, off), repeat=5)
    print(f"build: 1,000,000 polygons x 10 vertices {build:8.1f} ms")
    big = pm.PolygonIndex.from_coords(x, y, off)
    data = big.to_bytes()
    save = median_ms(big.to_bytes, repeat=5)
    load = median_ms(lambda: pm.PolygonIndex.from_bytes(data), repeat=5)
    print(
        f"index bytes: {len(data) / len(big):.1f} B/polygon, to_bytes {save:.1f} ms, "
        f"from_bytes {load:.1f} ms (1,000,000 polygons; the tree is rebuilt on load)"
    )

    p, n = 100_000, 1_000_000
    side = 10.0 * math.sqrt(p * math.pi / 30)
    uniform = pm.PolygonIndex.from_coords(*rings(rng.uniform(0, side, (p, 2))))
    pts = rng.uniform(0, side, (n, 2))
    t = pa.table({"x": pts[:, 0], "y": pts[:, 1]})
    fresh = pm.PolygonIndex.from_bytes(uniform.to_bytes())  # no cell lists cached yet
    t0 = time.perf_counter()
    fresh.match(t, max_dist=10.0)
    first = (time.perf_counter() - t0) * 1e3
    u = median_ms(lambda: uniform.match(t, max_dist=10.0))
    print(f"100k x 1M uniform, ~30 candidates     {u:8.1f} ms")
    print(f"... first call at this radius         {first:8.1f} ms  (builds the cell lists)")
    u1 = median_ms(lambda: uniform.match(t, max_dist=10.0, threads=1))
    print(f"... threads=1                         {u1:8.1f} ms  (default is {u1 / u:.2f}x faster)")
    print(
        f"100k x 1M uniform, max_dist = inf     {median_ms(lambda: uniform.match(t, max_dist=math.inf)):8.1f} ms"
    )
    k = 100
    cc = rng.uniform(0, side, (k, 2))
    sigma = side / (4 * math.sqrt(k))
    clustered = pm.PolygonIndex.from_coords(
        *rings(cc[rng.integers(0, k, p)] + rng.normal(0, sigma, (p, 2)))
    )
    cp = cc[rng.integers(0, k, n)] + rng.normal(0, sigma, (n, 2))
    ct = pa.table({"x": cp[:, 0], "y": cp[:, 1]})
    c = median_ms(lambda: clustered.match(ct, max_dist=10.0))
    print(f"100k x 1M clustered, d=10             {c:8.1f} ms  ({c / u:.2f}x uniform)")

    if args.skip_cli:
        return
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        cli = [sys.executable, "-m", "polymatch"]
        subprocess.run([*cli, "generate", "--polygons", "1000000", "--points", "10000000",
                        "--out-dir", str(d)], check=True, capture_output=True)  # fmt: skip
        small = d / "points_1m.parquet"
        subprocess.run([*cli, "generate", "--polygons", "1000000", "--points", "1000000",
                        "--out-dir", str(d / "small")], check=True, capture_output=True)  # fmt: skip
        (d / "small" / "points.parquet").rename(small)
        # Each match runs under its own small parent, whose RUSAGE_CHILDREN is that match only.
        probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
                 "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")  # fmt: skip
        for label, points_file, runs in (("10M", d / "points.parquet", 3), ("1M", small, 3)):
            walls, peaks = [], []
            for _ in range(runs):
                t0 = time.perf_counter()
                r = subprocess.run([sys.executable, "-c", probe, *cli, "match", "--polygons",
                                    str(d / "polygons.parquet"), "--points", str(points_file),
                                    "--out", str(d / "out.parquet"), "--quiet"],
                                   check=True, capture_output=True, text=True)  # fmt: skip
                walls.append(time.perf_counter() - t0)
                peaks.append(int(r.stdout.strip()))
            print(f"CLI 1M polygons x {label} points: {statistics.median(walls):6.2f} s wall, "
                  f"peak RSS {statistics.median(peaks) / 1024:6.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
