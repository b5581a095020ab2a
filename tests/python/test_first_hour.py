"""What a new user meets first: a missing optional dependency names the extra to install,
at the first call, and `pm.plot` stays a function however often it is called."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import polymatch as pm
import polymatch.dask as pmd


def small_job():
    x = np.array([0.0, 2.0, 2.0, 0.0, 10.0, 12.0, 12.0])
    y = np.array([0.0, 0.0, 2.0, 2.0, 10.0, 10.0, 12.0])
    index = pm.PolygonIndex.from_coords(x, y, np.array([0, 4, 7]))
    pts = np.array([[1.0, 1.0], [11.0, 11.0], [50.0, 50.0]])
    return index, pts, index.match(pts, max_dist=3.0)


DASK_HINT = 'polymatch.dask needs Dask: pip install "polymatch[dask]"'


@pytest.mark.parametrize("missing", ["dask", "dask.dataframe"])
def test_dask_functions_name_the_extra(monkeypatch, tmp_path, missing):
    """Without Dask (simulated: the module cannot be imported), both entry points raise
    an ImportError naming the extra, chained to the original error, before looking at
    their arguments. `import polymatch.dask` itself needs no Dask."""
    index, _, _ = small_job()
    monkeypatch.setitem(sys.modules, missing, None)
    with pytest.raises(ImportError) as info:
        pmd.match(index, object())
    assert str(info.value) == DASK_HINT
    assert isinstance(info.value.__cause__, ImportError)
    if missing == "dask":  # match_parquet does not need dask.dataframe
        with pytest.raises(ImportError, match=r'pip install "polymatch\[dask\]"'):
            pmd.match_parquet([tmp_path / "a.parquet"], index, tmp_path / "out")
        assert not (tmp_path / "out").exists()
    # the module's Dask-free helpers still work
    assert pmd.cache_info()["entries"] >= 0


def test_plot_names_the_extra(monkeypatch):
    index, pts, matches = small_job()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError) as info:
        pm.plot(index, pts, matches)
    assert str(info.value) == 'polymatch.plot needs matplotlib: pip install "polymatch[plot]"'
    assert isinstance(info.value.__cause__, ImportError)
    assert isinstance(pm.plot, types.FunctionType)


def test_plot_can_be_called_twice(tmp_path):
    """`pm.plot` used to import a submodule `polymatch.plot`, which replaced the function
    with the module after the first call ("'module' object is not callable")."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    index, pts, matches = small_job()
    try:
        for i in range(2):
            assert isinstance(pm.plot, types.FunctionType)
            ax = pm.plot(index, pts, matches, path=tmp_path / f"p{i}.png")
            assert len(ax.collections[1].get_segments()) == 2
            assert (tmp_path / f"p{i}.png").stat().st_size > 0
    finally:
        plt.close("all")
    assert isinstance(pm.plot, types.FunctionType)
