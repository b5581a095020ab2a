"""The examples run as written, from the repository root, and the README shows them
verbatim: every ```python block of README.md longer than three lines is the text of a
file in examples/, or a part of one."""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import polymatch as pm

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

# what each example must print (a fragment of its stdout), and its command-line arguments
EXPECT = {
    "quickstart.py": "'polygon_index': 0, 'distance': 0.0, 'area': 16.0, 'id': 1, 'name': 'square'",
    "from_the_article.py": "100 matches",
    "dask_cluster.py": ("partitioned, same answer: True", "part.3.parquet 5000 matches"),
    "notebook_demo.py": "revenue by district",
    "choosing_the_best_match.py": "rank  height",
    "most_specific_region.py": ("   1 city", "   3     2    east"),
    "snap_to_nearest.py": ("  2  field       1.0", "  3     1   road  3.000000"),
    "gps_zones.py": (
        "  2       Louvre     175.6",
        "  3      Taveuni      53.2",
        "  1 Gare du Nord       0.0",
        "  2       Louvre     102.4",
        "  3      Taveuni",
    ),
}
ARGS = {"notebook_demo.py": lambda tmp: [str(tmp)]}
TIMEOUT = 300  # seconds per example; each takes a few on a loaded 2-core machine


def third_party_imports(script: Path) -> list[str]:
    """The top-level names of the modules `script` imports, other than the standard
    library and polymatch."""
    names = set()
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return sorted(n for n in names if n not in sys.stdlib_module_names and n != "polymatch")


def readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def test_every_example_has_an_expectation():
    assert sorted(EXPECT) == sorted(p.name for p in EXAMPLES)


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    for name in third_party_imports(script):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{script.name} needs {name}")
    args = ARGS.get(script.name, lambda tmp: [])(tmp_path)
    r = subprocess.run(
        [sys.executable, str(script.relative_to(ROOT)), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert r.returncode == 0, r.stderr
    expect = EXPECT[script.name]
    for fragment in (expect,) if isinstance(expect, str) else expect:
        assert fragment in r.stdout, r.stdout
    if script.name == "notebook_demo.py":
        png = (tmp_path / "matches.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_readme_examples_are_files():
    blocks = [b for b in readme_python_blocks() if len(b.splitlines()) > 3]
    assert len(blocks) >= 3  # the first example, Dask, the article's program
    texts = [p.read_text() for p in EXAMPLES]
    for block in blocks:
        assert any(block in t for t in texts), f"README block not in examples/:\n{block}"


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


def test_readme_lists_the_ci_steps():
    """README's Develop section lists exactly the commands of `.ci/test`, in order."""
    ci = (ROOT / ".ci" / "test").read_text().splitlines()
    steps = [line for line in ci if line.strip() and not line.startswith(("#", "set ", "cd "))]
    steps = [s for s in steps if not s.startswith("export ")]
    readme = (ROOT / "README.md").read_text()
    develop = readme[readme.index("## Develop") :]
    listed = re.search(r"^```text\n(.*?)^```$", develop, flags=re.DOTALL | re.MULTILINE)
    assert listed is not None
    assert listed.group(1).splitlines() == steps


def test_sample_data_command_reproduces_the_synthetic_files(tmp_path):
    """The `polymatch generate` command in sample_data/README.md runs as written and
    writes sample_data/synthetic/ byte for byte (here into a temporary directory)."""
    text = (ROOT / "sample_data" / "README.md").read_text()
    commands = set(re.findall(r"`(polymatch generate [^`]*)`", text))
    assert len(commands) == 1, commands
    args = commands.pop().split()[1:]
    out_dir = Path(args[args.index("--out-dir") + 1])
    args[args.index("--out-dir") + 1] = str(tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "polymatch", *args], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    for name in ("polygons.parquet", "points.parquet"):
        assert (tmp_path / name).read_bytes() == (ROOT / out_dir / name).read_bytes(), name


def test_readme_cli_usage_lists_every_flag():
    """README's usage block names exactly the flags each subcommand's --help has."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Command line") :]
    block = re.search(r"^```text\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)
    assert block is not None
    usage: dict[str, set[str]] = {}
    command = None
    for line in block.group(1).splitlines():
        if line.startswith("polymatch "):
            command = line.split()[1]
            usage[command] = set()
        usage[command].update(re.findall(r"--[a-z][a-z-]*", line))
    assert sorted(usage) == ["generate", "info", "match"]
    for command, flags in usage.items():
        r = subprocess.run(
            [sys.executable, "-m", "polymatch", command, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        documented = set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z-]*)", r.stdout, re.MULTILINE))
        assert flags == documented - {"--help", "--version"}, command
