"""The worked solutions of every chapter's exercises run on the end-to-end run's artifacts, and every
chapter ends with a summary and exercises that point at its solutions."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mtrec_helpers.core.evaluation import RankingResult
from mtrec_helpers.core.paths import project_root
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
