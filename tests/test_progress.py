"""Training progress: a bar in JupyterLab; under the runner, a progress file and one summary line."""

from __future__ import annotations

import os
import time

import pytest

from mtrec_helpers.core import progress as progress_module
from mtrec_helpers.core.progress import PROGRESS_ENV, LoopProgress, progress_file


def test_under_the_runner_a_loop_reports_each_step_and_prints_one_line(capsys: pytest.CaptureFixture) -> None:
    with progress_file() as path:
        assert os.environ[PROGRESS_ENV] == str(path)
        loop = LoopProgress("causal training", done=3, total=10)
        assert loop.bar is None  # no widget in an executed copy
        loop.step("valid 0.1000")
        assert path.read_text() == "causal training: epoch 4/10, valid 0.1000\n"
        loop.step()
        assert path.read_text() == "causal training: epoch 5/10\n"
        loop.close()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("causal training: 2 epochs in ")
    assert lines[0].endswith(" s (5/10)")
    assert PROGRESS_ENV not in os.environ and not path.exists()


def test_the_runner_prints_what_the_kernel_reports(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress_module, "PRINT_EVERY", 0.05)
    with progress_file("    02 · ") as path:
        path.write_text("masked training: epoch 7/100\n")
        for _ in range(100):
            if "epoch 7/100" in capsys.readouterr().out:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the runner never printed the kernel's progress")


def test_outside_the_runner_a_loop_is_a_live_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    loop = LoopProgress("x", done=0, total=3)
    assert loop.bar is not None
    loop.step()
    assert loop.bar.n == 1
    loop.close()
    quiet = LoopProgress("x", done=0, total=3, enabled=False)
    assert quiet.bar is None
    quiet.step()
    quiet.close()
