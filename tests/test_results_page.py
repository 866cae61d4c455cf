"""RESULTS.md is generated from the committed benchmark summaries, and the committed page is current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtrec_helpers.core.paths import project_root
from mtrec_helpers.course.results_page import (
    TIMED_PAGES,
    TIMES_END,
    TIMES_START,
    chapter_times,
    results_page,
    with_chapter_times,
)


def test_the_page_gathers_every_summary_full_runs_first(tmp_path: Path) -> None:
    (tmp_path / "scale-cpu.md").write_text("# Scale benchmark (cpu)\n\n## Sizes\n\n| a |\n")
    (tmp_path / "cpu-ml-100k.md").write_text("# Benchmark: ml-100k on cpu\n\n2026 · `make bench`\n")
    page = results_page(tmp_path)
    assert page.startswith("# Results\n")
    assert page.index("## Benchmark: ml-100k on cpu") < page.index("## Scale benchmark (cpu)")
    assert "### Sizes" in page and "(From [`" + tmp_path.name + "/scale-cpu.md`]" in page
    with pytest.raises(FileNotFoundError, match="run `make bench` first"):
        results_page(tmp_path / "empty")


def test_the_committed_results_page_is_generated_from_the_committed_benchmarks() -> None:
    committed = (project_root() / "RESULTS.md").read_text(encoding="utf-8")
    assert committed == results_page(project_root() / "benchmarks"), (
        "RESULTS.md is stale or edited by hand: run `python -m mtrec_helpers.course.results_page`"
    )


def test_the_readme_is_short_and_its_chapter_times_are_generated() -> None:
    readme = (project_root() / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    for name in TIMED_PAGES:  # the README and the book's home page
        page = (project_root() / name).read_text(encoding="utf-8")
        assert page == with_chapter_times(page, project_root() / "benchmarks"), (
            f"{name}: the chapter times are stale: run `python -m mtrec_helpers.course.results_page`"
        )
        block = page[page.index(TIMES_START) : page.index(TIMES_END)]
        assert "| default |" in block and " min** |" in block
    with pytest.raises(ValueError, match="no <!-- chapter-times:start -->"):
        with_chapter_times("# no block\n", project_root() / "benchmarks")


def test_chapter_times_mark_a_chapter_one_preset_has_not_benchmarked(tmp_path: Path) -> None:
    machine = {"cpu_count": 2, "cuda": None}
    for name, notebooks in (
        ("cpu-ml-100k.json", ["01_data", "03b_scenarios"]),
        ("cpu-ml-100k-class.json", ["01_data"]),
    ):
        times = {n: {"wall_s": 10.0} for n in notebooks}
        record = {"notebooks": times, "total_wall_s": 60.0, "machine": machine, "date": "2026-12-04T00:00:00"}
        (tmp_path / name).write_text(json.dumps(record))
    table = chapter_times(tmp_path)
    seconds = "10\u00a0s"  # a time never breaks between the number and its unit
    assert "| 01 | 03b |" in table and f"| class | {seconds} | – |" in table
    assert f"| default | {seconds} | {seconds} |" in table


def test_the_committed_summaries_are_written_from_the_committed_results_files() -> None:
    """Each chapter's section of a summary comes from its own bench module; together they write exactly
    the committed page of each results file."""
    from mtrec_helpers.course.benchmark import summary

    files = [p for p in (project_root() / "benchmarks").glob("*.json")
             if not p.name.startswith("scale-") and not p.stem.endswith("-exercises")]  # fmt: skip
    assert files
    for path in files:
        record = json.loads(path.read_text(encoding="utf-8"))
        assert summary(record, path.stem) == path.with_suffix(".md").read_text(encoding="utf-8"), path.name


def test_every_section_of_the_committed_results_page_has_its_own_heading() -> None:
    """Two runs of one dataset (presets, a scenario run) never share a heading in RESULTS.md."""
    headings = [line for line in (project_root() / "RESULTS.md").read_text(encoding="utf-8").splitlines()
                if line.startswith("## ")]  # fmt: skip
    assert len(headings) > 1 and len(headings) == len(set(headings)), headings


def test_every_figure_a_doc_quotes_is_in_the_results_files_it_names(tmp_path: Path) -> None:
    """docs/findings.md, methods.md and engine.md name their results files; each measured number they
    quote is in one of them (as written, as a percentage, seconds as minutes). A drifted one fails."""
    from mtrec_helpers.course.figures import named_sources, quoted_numbers, stale_figures

    pages = [project_root() / "docs" / name for name in ("findings.md", "methods.md", "engine.md")]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert named_sources(text) and len(quoted_numbers(text)) >= 10, page.name
        assert stale_figures(page) == [], page.name
    (tmp_path / "r.json").write_text(json.dumps({"a": {"ndcg": 0.11009, "wall_s": 315.24, "share": 0.052}}))
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- figures: r.json -->\nNDCG 0.1101 and 5.20% in 315.2 s (5.25 min); `0.1234` in code; "
        "but 322 s and 0.1102 drifted; 943 users is a count.\n"
    )
    assert stale_figures(page, root=tmp_path) == ["322", "0.1102"]
