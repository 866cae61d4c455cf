"""RESULTS.md is generated from the committed benchmark summaries, and the committed page is current."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mtrec_helpers.core.paths import project_root
from mtrec_helpers.course.results_page import (
    FIGURE,
    GENERATED_PAGES,
    TIMED_PAGES,
    TIMES_END,
    TIMES_START,
    chapter_times,
    regenerated,
    results_page,
    with_chapter_times,
    with_figures,
    with_results_blocks,
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


def test_every_generated_block_of_the_docs_is_current() -> None:
    """docs/findings.md quotes its tables from the results files through generated blocks, never typed."""
    for name in GENERATED_PAGES:
        page = (project_root() / name).read_text(encoding="utf-8")
        assert page == regenerated(page, project_root() / "benchmarks"), (
            f"{name}: a generated block is stale: run `python -m mtrec_helpers.course.results_page`"
        )
    findings = (project_root() / "docs" / "findings.md").read_text(encoding="utf-8")
    parts = re.findall(r"<!-- results: cpu-ml-100k (\S+) -->", findings)
    assert parts == ["times", "ensemble", "text", "multitask", "rl", "distillation"]
    outside = re.sub(r"<!-- results: .*?<!-- results:end -->", "", findings, flags=re.S)
    assert not [line for line in outside.splitlines() if line.startswith("|")], "a table typed by hand"


def test_a_results_block_is_rebuilt_from_its_file_and_a_wrong_one_is_named(tmp_path: Path) -> None:
    times = {"01_data_prep": {"wall_s": 7.94}, "02_transformer_pretraining": {"wall_s": 498.26}}
    record = {"notebooks": times, "total_wall_s": 506.2, "peak_kernel_rss_mb": 3023.4}
    (tmp_path / "cpu-x.json").write_text(json.dumps(record))
    page = "Intro.\n\n<!-- results: cpu-x times -->\nold | 1.0\n<!-- results:end -->\n\nAfter.\n"
    rebuilt = with_results_blocks(page, tmp_path)
    assert "| 02_transformer_pretraining | 498.3 |" in rebuilt and "old | 1.0" not in rebuilt
    assert rebuilt.startswith("Intro.\n\n<!-- results: cpu-x times -->\n\n| notebook |")
    assert rebuilt.endswith("Peak memory of a notebook kernel: 3023 MB.\n\n<!-- results:end -->\n\nAfter.\n")
    assert with_results_blocks(rebuilt, tmp_path) == rebuilt  # rebuilding is idempotent
    with pytest.raises(ValueError, match="no part 'nonsense'; the parts are times, data_prep"):
        with_results_blocks("<!-- results: cpu-x nonsense -->\n<!-- results:end -->", tmp_path)
    with pytest.raises(ValueError, match="cpu-x.json holds no section for rl"):
        with_results_blocks("<!-- results: cpu-x rl -->\n<!-- results:end -->", tmp_path)
    with pytest.raises(FileNotFoundError, match="no .*cpu-y.json; run `make bench` first"):
        with_results_blocks("<!-- results: cpu-y times -->\n<!-- results:end -->", tmp_path)
    with pytest.raises(ValueError, match="no <!-- chapter-times:start --> … <!-- chapter-times:end -->, "):
        regenerated("# nothing generated\n", tmp_path)


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

    other = ("scale-", "heap-", "step-")  # the scale and micro benchmarks have pages of their own
    files = [p for p in (project_root() / "benchmarks").glob("*.json")
             if not p.name.startswith(other) and not p.stem.endswith("-exercises")]  # fmt: skip
    assert files
    for path in files:
        record = json.loads(path.read_text(encoding="utf-8"))
        assert summary(record, path.stem) == path.with_suffix(".md").read_text(encoding="utf-8"), path.name


def test_the_committed_heap_table_is_written_from_its_results_file() -> None:
    """`make bench-heap`'s page is its own results file as a table."""
    from mtrec_helpers.course.heap_benchmark import RESULTS, markdown

    path = project_root() / "benchmarks" / f"{RESULTS}.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    assert markdown(record) == path.with_suffix(".md").read_text(encoding="utf-8")
    assert set(record["workloads"]) == {"training_step", "fusion_batch"}


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
    for page in pages:  # every measured figure of these pages is generated (<!--= … -->), none typed
        text = page.read_text(encoding="utf-8")
        assert named_sources(text) and len(FIGURE.findall(text)) >= 10, page.name
        assert quoted_numbers(text) == [] and stale_figures(page) == [], page.name
    (tmp_path / "r.json").write_text(json.dumps({"a": {"ndcg": 0.11009, "wall_s": 315.24, "share": 0.052}}))
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- figures: r.json -->\nNDCG 0.1101 and 5.20% in 315.2 s (5.25 min); `0.1234` in code; "
        "but 322 s and 0.1102 drifted; 943 users is a count.\n"
        "<!-- results: r times -->\n| generated | 0.9999 |\n<!-- results:end -->\n"
        "A sign is part of a figure: −0.1101 is not 0.11009; minutes only where a page writes min: 5.254.\n"
    )
    assert stale_figures(page, root=tmp_path) == ["322", "0.1102", "−0.1101", "5.254"]


def test_a_figure_in_prose_is_rebuilt_from_its_path_as_it_is_written(tmp_path: Path) -> None:
    record = {"gain": {"ci": [-0.00003, 0.0301]}, "wall_s": 2656.14, "share": 0.0521,
              "rows": [{"x": -0.0124}]}  # fmt: skip
    (tmp_path / "run.json").write_text(json.dumps(record))

    def marked(path: str, text: str) -> str:
        return f"<!--= run {path} -->{text}<!--/=-->"

    page = (f"gain [{marked('gain|ci|0', '+0.1')}, {marked('gain|ci|1', '+0.0200')}] in "
            f"{marked('wall_s', '1,000.0')} s ({marked('wall_s /60', '9.9')} min), share "
            f"{marked('share ×100', '5.0')}%, {marked('rows|0|x', '−0.0100')} and "
            f"{marked('rows|0|x', '0.01')}")  # fmt: skip
    rebuilt = with_figures(page, tmp_path)
    shown = re.sub(r"<!--.*?-->", "", rebuilt)
    assert shown == "gain [−0.0, +0.0301] in 2,656.1 s (44.3 min), share 5.2%, −0.0124 and -0.01"
    assert with_figures(rebuilt, tmp_path) == rebuilt  # idempotent: the markers stay, only the text moves
    with pytest.raises(ValueError, match="run.json has no 'nope' there"):
        with_figures(marked("gain|nope", "1.0"), tmp_path)
    with pytest.raises(ValueError, match="not a number in run.json"):
        with_figures(marked("gain|ci", "1.0"), tmp_path)
    with pytest.raises(FileNotFoundError, match="no other.json"):
        with_figures("<!--= other wall_s -->1.0<!--/=-->", tmp_path)
