"""The results files' names and the command a `make bench` records in them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from mtrec_helpers.core.paths import project_root
from mtrec_helpers.course.benchmark import results_name


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
