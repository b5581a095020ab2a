"""One index, many threads; and an index used in a forked child process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

import polymatch as pm


def test_many_threads_one_index_identical_results():
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 500, 30_000)
    index = pm.PolygonIndex.from_coords(x, rng.uniform(0, 500, 30_000), np.arange(0, 30_001, 3))
    tables = [
        pa.table({"x": rng.uniform(0, 500, 20_000), "y": rng.uniform(0, 500, 20_000)})
        for _ in range(4)
    ]
    want = [index.match(t, max_dist=8.0, how="left") for t in tables]
    with ThreadPoolExecutor(max_workers=8) as pool:
        jobs = [pool.submit(index.match, tables[i % 4], 8.0, "left") for i in range(32)]
        got = [j.result() for j in jobs]
    assert all(g.equals(want[i % 4]) for i, g in enumerate(got))


def test_forked_child_uses_parent_index():
    """rayon's global pool does not survive fork(); polymatch must not hang in the child."""
    code = textwrap.dedent(
        """
        import multiprocessing as mp, numpy as np, polymatch as pm
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 100, 3000)
        idx = pm.PolygonIndex.from_coords(x, x[::-1].copy(), np.arange(0, 3001, 3))
        pts = rng.uniform(0, 100, (200_000, 2))
        want = idx.match(pts, max_dist=5.0, how="left")   # the parent's pool is running now

        def child(q):
            same = idx.match(pts, max_dist=5.0, how="left").equals(want)
            other = pm.PolygonIndex.from_coords(x, x[::-1].copy(), np.arange(0, 3001, 3))
            q.put(same and other.match(pts, max_dist=5.0, how="left").equals(want))

        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=child, args=(q,))
        p.start()
        p.join(60)
        if p.is_alive():
            p.kill()
            raise SystemExit("child hung")
        print(q.get())
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"
