"""The worked solutions of every chapter's exercises run on the end-to-end run's artifacts, and every
chapter ends with a summary and exercises that point at its solutions."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from mtrec_helpers.core.evaluation import RankingResult
from mtrec_helpers.core.paths import notebooks_dir, project_root
from mtrec_helpers.core.results import read_metrics
from mtrec_helpers.core.stages import STAGE_NAMES
from mtrec_helpers.course.exercises import (
    EXERCISES,
    Exercise,
    exercise_frame,
    exercises_file,
    recorded,
    run_exercise,
    stage_of,
)
from mtrec_helpers.course.parameters import check_parameters
from mtrec_helpers.course.runner import notebook_number_of, numbered_notebooks
from mtrec_helpers.course.source import show_source, source_text
from mtrec_helpers.rl.offpolicy import top_k_multiplier

SOLUTIONS = project_root() / "solutions"


def test_show_source_displays_the_code_that_runs() -> None:
    shown = show_source(top_k_multiplier, RankingResult.ndcg)
    assert shown.data == source_text(top_k_multiplier, RankingResult.ndcg)
    assert shown.data.startswith("def top_k_multiplier(") and "\n\ndef ndcg(self, k: int)" in shown.data
    assert "return k * (1.0 - pi) ** (k - 1)" in shown.data and "<pre" in shown._repr_html_()


def test_every_chapter_ends_with_a_summary_and_exercises_with_solutions() -> None:
    for notebook in numbered_notebooks():
        cells = nbformat.read(notebook, as_version=4).cells
        headings = [c.source.splitlines()[0] for c in cells if c.cell_type == "markdown" and c.source]
        assert any(h.startswith(("## Summary", "## 6. What to take away")) for h in headings), notebook
        markdown = [c.source for c in cells if c.cell_type == "markdown"]
        exercises = [text for text in markdown if text.startswith("## Exercises")]
        assert exercises and "*(code)*" in exercises[-1], f"{notebook.name}: no exercise asks for code"
        solution = f"solutions/{notebook_number_of(notebook)}_solutions.ipynb"
        assert solution in exercises[-1] and (project_root() / solution).is_file(), notebook.name
    assert sorted(p.name for p in SOLUTIONS.glob("*.ipynb")) == sorted(
        f"{notebook_number_of(nb)}_solutions.ipynb" for nb in numbered_notebooks()
    )


@pytest.mark.notebook
@pytest.mark.parametrize("number", [notebook_number_of(nb) for nb in numbered_notebooks()])
def test_solutions_run_on_the_chapters_artifacts(book: Path, number: str) -> None:
    """`make book` ran every chapter's solutions on the pipeline's artifacts, without an error."""
    executed = nbformat.read(book / "solutions" / f"{number}_solutions.ipynb", as_version=4)
    assert not any(o.output_type == "error" for c in executed.cells for o in c.get("outputs", []))
    assert any(c.get("outputs") for c in executed.cells if c.cell_type == "code")  # it shows an answer


def test_every_parameter_exercise_is_a_valid_run_of_its_chapter() -> None:
    keys = [exercise.key for exercise in EXERCISES]
    assert len(keys) == len(set(keys)) and {e.chapter for e in EXERCISES} >= {"01", "02", "03", "04", "06"}
    for exercise in EXERCISES:
        check_parameters(notebooks_dir() / stage_of(exercise.chapter).notebook, exercise.overrides)
        assert exercise.key.startswith(f"{exercise.chapter}.{exercise.number} ")


@pytest.mark.notebook
def test_an_exercise_reruns_its_chapter_on_a_copy_of_the_run(pipeline: Path) -> None:
    """`make bench-exercises` on the tiny run: 06 with two members, the run's own artifacts untouched."""
    artifacts = pipeline / "artifacts"
    exercise = Exercise("06", 1, {"SCORE_MEMBERS": ["ease", "multitask"]})
    run = run_exercise(exercise, artifacts, {"DATASET": "ml-100k", "DEVICE": "cpu"}, "tiny")
    assert run["chapter"] == "06" and run["overrides"] == exercise.overrides and run["wall_s"] > 0
    results, own = run["figures"]["results"], read_metrics(artifacts, "ensemble")
    assert {"ease", "multitask", "ensemble_softmax"} <= set(results)  # 06 still ranks every model
    assert all(0 <= r["ndcg@10_ci"][0] <= r["ndcg@10"] <= r["ndcg@10_ci"][1] for r in results.values())
    assert results["ensemble_softmax"]["ndcg@10"] != own["results"]["ensemble_softmax"]["ndcg@10"]
    assert len(own["alpha_shares"]) > 2  # the run itself is as it was: every member fused
    assert not list(pipeline.glob(".exercise-*"))  # the scratch copy is gone


def test_the_recorded_exercises_are_every_exercise_with_its_figures() -> None:
    """benchmarks/cpu-ml-100k-class-exercises.json (`make bench-exercises PRESET=class`) holds a run of
    every exercise of EXERCISES and the figures of the run it changed, for every stage."""
    record = json.loads(exercises_file("cpu", "ml-100k", "class").read_text(encoding="utf-8"))
    assert set(record["exercises"]) == {exercise.key for exercise in EXERCISES}
    assert set(record["base"]) == set(STAGE_NAMES) and record["preset"] == "class"
    assert record["machine"]["cpu_count"] > 0 and record["command"].startswith("make bench-exercises")
    for run in record["exercises"].values():
        assert run["wall_s"] > 0 and run["figures"], run
    found = recorded("03")
    assert {run["number"] for run in found["runs"].values()} == {1, 2} and "fixed_sweep" in found["base"]
    frame = exercise_frame("06", 1, lambda figures: {"best": figures["best_single"]})
    assert list(frame.index) == ["the class run", 'SCORE_MEMBERS=["ease", "multitask"]']
