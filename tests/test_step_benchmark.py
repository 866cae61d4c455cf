"""`make bench-step`: the chapter's own training step, timed in both dropout modes, broken down by
operator group, and run in one process and in two side by side."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mtrec_helpers.core import dropout
from mtrec_helpers.core.dropout import MaskDropout
from mtrec_helpers.core.paths import project_root
from mtrec_helpers.course import step_benchmark
from mtrec_helpers.data import prepare_dataset


def test_each_mode_steps_the_chapters_model_with_its_own_dropout(tmp_path: Path) -> None:
    """The uniform mode swaps in the course's dropout, the torch mode keeps torch's, and neither
    leaves ``MTREC_DROPOUT`` changed; a step trains (the weights move)."""
    data = prepare_dataset("synthetic", tmp_path)
    settings = step_benchmark.chapter_settings("synthetic")
    before = os.environ.get(dropout.ENV)
    uniform = step_benchmark.Stepper(settings, data, "uniform")
    torch_own = step_benchmark.Stepper(settings, data, "torch")
    assert any(isinstance(m, MaskDropout) for m in uniform.model.modules())
    assert not any(isinstance(m, MaskDropout) for m in torch_own.model.modules())
    assert os.environ.get(dropout.ENV) == before
    assert uniform.model.config.hidden_size == settings.hidden
    assert uniform.objective.config.batch_size == settings.batch_size
    weight = uniform.model.seen_weight.detach().clone()
    uniform.step()
    assert not bool((uniform.model.seen_weight.detach() == weight).all())


def test_the_results_file_says_what_a_step_costs_and_where_it_goes(tmp_path: Path) -> None:
    step_benchmark.main(
        ["--dataset", "synthetic", "--work-dir", str(tmp_path / "work"), "--out-dir", str(tmp_path),
         "--steps", "2", "--command", "test"]
    )  # fmt: skip
    record = json.loads((tmp_path / "step-cpu.json").read_text(encoding="utf-8"))
    assert set(record["seconds_per_step"]) == set(dropout.MODES)
    assert all(seconds > 0 for seconds in record["seconds_per_step"].values())
    where = record["where"]
    assert set(where) == {*step_benchmark.GROUPS, "everything else"}
    assert sum(group["share"] for group in where.values()) == pytest.approx(1.0)
    assert where["matrix products"]["ms_per_step"] > 0 and where["dropout draws"]["ms_per_step"] > 0
    both = record["side_by_side"]
    assert both["gain"] == pytest.approx(both["two_processes_steps_per_s"] / both["one_process_steps_per_s"])
    assert "| two side by side |" in (tmp_path / "step-cpu.md").read_text(encoding="utf-8")


def test_the_committed_page_is_written_from_the_committed_results_file() -> None:
    """benchmarks/step-cpu.md is `make bench-step`'s page of the .json beside it, on ML-100k."""
    folder = project_root() / "benchmarks"
    record = json.loads((folder / "step-cpu.json").read_text(encoding="utf-8"))
    assert step_benchmark.markdown(record) == (folder / "step-cpu.md").read_text(encoding="utf-8")
    assert record["dataset"] == "ml-100k" and record["steps"] == step_benchmark.STEPS
