"""The results files: their names, the command a `make bench` records, and the timings they read."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mtrec_helpers.core.errors import DataError
from mtrec_helpers.core.paths import project_root
from mtrec_helpers.course.benchmark import main as benchmark_main
from mtrec_helpers.course.benchmark import results_name
from mtrec_helpers.course.runner import TIMINGS, numbered_notebooks, record_timing


def test_results_name_says_cpu_or_gpu_and_the_preset() -> None:
    assert results_name("cpu", "ml-100k") == "cpu-ml-100k"
    assert results_name("cpu", "ml-100k", "class") == "cpu-ml-100k-class"
    assert results_name("cuda", "ml-100k") == "gpu-ml-100k"  # `make bench DEVICE=cuda` → gpu-ml-100k.json
    assert results_name("cuda:1", "ml-1m", "class") == "gpu-ml-1m-class"


def recorded_command(*variables: str) -> str:
    """The --command that `make bench` would pass to the results file (a dry run: nothing executes)."""
    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    outer = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DEVICE", "PRESET", "PARAMS", "DATASET")  # `make test`'s own
    environ = {k: v for k, v in os.environ.items() if k not in outer}
    dry = subprocess.run(
        ["make", "-n", "bench", *variables],
        cwd=project_root(),
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r'--command "([^"]*)"', dry)
    assert found is not None, dry
    return found.group(1)


def test_the_recorded_command_is_the_one_typed() -> None:
    assert recorded_command() == "make bench DATASET=ml-100k"
    assert recorded_command("PRESET=class") == "make bench DATASET=ml-100k PRESET=class"
    # DEVICE=cuda implies the Makefile's GPU_PARAMS: the record names the device, not the implied settings
    assert recorded_command("DEVICE=cuda") == "make bench DEVICE=cuda DATASET=ml-100k"
    assert recorded_command("DEVICE=cuda", "PARAMS=HIDDEN=128") == (
        "make bench DEVICE=cuda DATASET=ml-100k PARAMS='HIDDEN=128'"
    )
    assert (
        recorded_command("DEVICE=cpu", "PARAMS=EPOCHS=3")
        == "make bench DEVICE=cpu DATASET=ml-100k PARAMS='EPOCHS=3'"
    )


def test_timings_are_written_after_every_notebook_and_continued_with_only(tmp_path: Path) -> None:
    """A run stopped part-way keeps what it ran; `--only` adds to it; a whole run starts anew."""
    record_timing(tmp_path, "01_data_prep", 8.0, 300.0, fresh=True)
    record_timing(tmp_path, "02_transformer_pretraining", 490.0, 2000.0)
    first = json.loads((tmp_path / TIMINGS).read_text())
    assert first == {"notebooks": {"01_data_prep": 8.0, "02_transformer_pretraining": 490.0},
                     "peak_kernel_rss_mb": 2000.0}  # fmt: skip
    record_timing(tmp_path, "04_rl_ranking", 300.0, 900.0)  # `--only 04` later, e.g. on a machine lent again
    continued = json.loads((tmp_path / TIMINGS).read_text())
    assert list(continued["notebooks"]) == ["01_data_prep", "02_transformer_pretraining", "04_rl_ranking"]
    assert continued["peak_kernel_rss_mb"] == 2000.0
    record_timing(tmp_path, "01_data_prep", 9.0, 250.0, fresh=True)  # a whole run again
    assert json.loads((tmp_path / TIMINGS).read_text())["notebooks"] == {"01_data_prep": 9.0}
    (tmp_path / TIMINGS).write_text("{not json")
    with pytest.raises(DataError, match="not a timings file"):
        record_timing(tmp_path, "02_transformer_pretraining", 1.0, 1.0)


def test_a_results_file_needs_every_notebook(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seconds = {nb.stem: 10.0 for nb in numbered_notebooks() if not nb.stem.startswith(("05", "06"))}
    (tmp_path / TIMINGS).write_text(json.dumps({"notebooks": seconds, "peak_kernel_rss_mb": 900.0}))
    folders = ["--artifacts-dir", str(tmp_path), "--runs-dir", str(tmp_path)]
    assert benchmark_main([*folders, "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert "no wall time for 05_kmeans_distillation, 06_ensemble_evaluation" in error
    assert "--only 05 06" in error
    assert not (tmp_path / "out").exists()
