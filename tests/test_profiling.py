"""Profiling a notebook's kernel: cProfile started by the package's import, written after every cell,
read back with the notebook's cell durations (what `make bench-scale PROFILE=1` records)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mtrec_helpers.core import profiling
from mtrec_helpers.course.runner import run_notebook
from mtrec_helpers.course.scale_benchmark import profile_markdown

SLOW = """
from mtrec_helpers.core.formatting import with_interval
import time
def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        with_interval({"x": 1.0, "x_ci": [0.0, 2.0]}, "x")
spin(1.5)
"""


def test_a_profiled_kernel_names_the_package_function_its_time_went_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("X = 1")
    parameters.metadata["tags"] = ["parameters"]
    cells = [nbformat.v4.new_code_cell(source) for source in ("import mtrec_helpers", SLOW)]
    notebook.cells = [parameters, *cells]
    notebook.metadata["kernelspec"] = {"name": "mtrec", "display_name": "mtrec", "language": "python"}
    path, stats = tmp_path / "99_slow.ipynb", tmp_path / "p.prof"
    executed = tmp_path / "runs" / path.name
    nbformat.write(notebook, path)
    monkeypatch.setenv(profiling.PROFILE_ENV, str(stats))
    run_notebook(path, executed, {"X": 2})
    record = profiling.summary(executed, stats)
    slowest = record["cells"][0]
    assert (
        slowest["seconds"] >= 1.4
        and slowest["first_line"] == "from mtrec_helpers.core.formatting import with_interval"
    )
    ours = record["functions"]["package_by_cumulative_time"]
    assert ours[0]["function"].startswith("mtrec_helpers/core/formatting.py:")
    assert ours[0]["function"].endswith("(with_interval)")
    assert ours[0]["calls"] > 100 and 0.3 < ours[0]["cumulative_s"] < 3.0
    assert not list(tmp_path.glob("*.partial"))
    size = {"stages": {"rl": {"wall_s": 9.0, **record}}}
    text = profile_markdown({"sizes": {"ml-100k": size}})
    assert "**ml-100k · rl** (9.0 s)" in text and "with_interval" in text


def test_without_the_variable_nothing_is_profiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(profiling.PROFILE_ENV, raising=False)
    assert profiling.start_from_environment() is False
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("x = 1")]
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    assert "functions" not in profiling.summary(path, tmp_path / "absent.prof")


def test_each_cells_peak_memory_names_the_cell_that_allocated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = nbformat.v4.new_notebook()
    big = "import numpy as np\nbig = np.ones(100_000_000)  # 800 MB\ndel big"
    sources = ("import mtrec_helpers", "x = 1", big, "y = 2")
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    notebook.cells[1].metadata["tags"] = ["parameters"]
    notebook.metadata["kernelspec"] = {"name": "mtrec", "display_name": "mtrec", "language": "python"}
    path, memory = tmp_path / "98_memory.ipynb", tmp_path / "m.json"
    executed = tmp_path / "runs" / path.name
    nbformat.write(notebook, path)
    monkeypatch.delenv(profiling.PROFILE_ENV, raising=False)
    monkeypatch.setenv(profiling.MEMORY_ENV, str(memory))
    run_notebook(path, executed, {"x": 3})  # papermill adds the injected parameters as cell 2
    record = profiling.summary(executed, None, memory_file=memory)
    top = record["memory_cells"][0]
    assert top["cell"] == 3 and top["first_line"] == "import numpy as np" and 700 < top["rise_mb"] < 900
    assert all(row["rise_mb"] < 50 for row in record["memory_cells"][1:])
    size = {"stages": {"rl": {"wall_s": 9.0, "peak_rss_mb": top["peak_rss_mb"], **record}}}
    assert "raised most by cell 3" in profile_markdown({"sizes": {"ml-100k": size}})
