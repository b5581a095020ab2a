"""The examples run, and draw."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import polymatch as pm

ROOT = Path(__file__).resolve().parents[2]


def test_notebook_demo_runs(tmp_path):
    pytest.importorskip("geopandas")
    pytest.importorskip("matplotlib")
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "notebook_demo.py"), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "revenue by district" in r.stdout
    png = (tmp_path / "matches.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_plot_draws_one_line_per_match(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    x = np.array([0.0, 2.0, 2.0, 0.0, 10.0, 12.0, 12.0])
    y = np.array([0.0, 0.0, 2.0, 2.0, 10.0, 10.0, 12.0])
    index = pm.PolygonIndex.from_coords(x, y, np.array([0, 4, 7]))
    pts = np.array([[1.0, 1.0], [11.0, 11.0], [50.0, 50.0]])
    ax = pm.plot(index, pts, index.match(pts, max_dist=3.0), path=tmp_path / "p.png")
    lines = ax.collections[1]
    assert len(lines.get_segments()) == 2
    assert (tmp_path / "p.png").exists()
