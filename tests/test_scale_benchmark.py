"""The scale benchmark's arithmetic and report: exponents, partial runs, ordering."""

from __future__ import annotations

import math

import pytest

from mtrec_helpers.course.scale_benchmark import exponents, invocation, markdown, ordered, results_name


def _size(interactions: int, wall: float, rss: float, stages: tuple[str, ...] = ("data_prep", "ensemble")):
    return {"shape": {"n_interactions": interactions},
            "stages": {s: {"wall_s": wall, "peak_rss_mb": rss} for s in stages}}  # fmt: skip


def test_exponents_are_log_log_slopes_against_interactions() -> None:
    sizes = {"synthetic-1m": _size(1_000_000, 10.0, 100.0), "synthetic-20m": _size(20_000_000, 200.0, 400.0)}
    result = exponents(sizes)
    assert result["ensemble"]["time"] == pytest.approx(1.0)
    assert result["ensemble"]["memory"] == pytest.approx(round(math.log(4) / math.log(20), 2))
    assert exponents({"synthetic-1m": sizes["synthetic-1m"]}) == {}


def test_a_partial_run_is_reported_as_not_run_and_sizes_are_ordered() -> None:
    record = {
        "device": "cpu", "date": "d", "commands": ["c"], "budget": ["EPOCHS=1"], "exponents": {},
        "sizes": {"synthetic-20m": _size(20, 1.0, 2.0, ("data_prep",)), "ml-100k": _size(1, 1.0, 1.0)},
    }  # fmt: skip
    assert ordered(record) == ["ml-100k", "synthetic-20m"]
    table = markdown(record)
    assert "| ensemble | 1.0 | 1 | not run | – |" in table
    assert table.index("ml-100k time") < table.index("synthetic-20m time")


def test_the_results_file_records_the_command_that_really_ran() -> None:
    assert invocation(["--sizes", "synthetic-20m", "--only", "04", "--merge"]) == (
        "python -m mtrec_helpers.course.scale_benchmark --sizes synthetic-20m --only 04 --merge"
    )


def test_a_partial_or_profiled_run_never_overwrites_the_full_results_file() -> None:
    assert results_name("cpu", ["ml-100k", "synthetic-1m", "synthetic-20m"], False, False) == "scale-cpu"
    assert results_name("cpu", ["synthetic-1m"], False, False) == "scale-cpu-synthetic-1m"
    assert results_name("cpu", ["synthetic-1m"], True, False) == "scale-cpu"  # --merge adds to the full file
    assert (
        results_name("cuda", ["ml-100k", "synthetic-1m"], False, True)
        == "scale-cuda-ml-100k-synthetic-1m-profile"
    )


def test_a_stages_peak_is_its_kernels_own_record_not_a_stale_timings_file(tmp_path) -> None:
    import json
    import shutil

    from mtrec_helpers.core.profiling import code_cells
    from mtrec_helpers.course.runner import TIMINGS
    from mtrec_helpers.course.scale_benchmark import run_size

    folder = tmp_path / "runs" / "synthetic-1m" / "04_rl_ranking"
    folder.mkdir(parents=True)
    executed = folder / "04_rl_ranking.ipynb"
    shutil.copy("notebooks/04_rl_ranking.ipynb", executed)
    timings = {"notebooks": {"04_rl_ranking": 12.5}, "peak_kernel_rss_mb": 21020.8}  # an earlier run's peak
    (folder / TIMINGS).write_text(json.dumps(timings), encoding="utf-8")
    lines = [cell["first_line"] for cell in code_cells(executed)]
    entries = [
        {"first_line": line, "peak_rss_mb": peak}
        for line, peak in zip(lines[:3], (500.0, 4300.0, 7009.7), strict=True)
    ]
    (folder / "rl.memory.json").write_text(json.dumps(entries), encoding="utf-8")
    record = run_size("synthetic-1m", tmp_path, [], "cpu", only=["04"], collect=True)
    stage = record["stages"]["rl"]
    assert stage["wall_s"] == 12.5 and stage["peak_rss_mb"] == 7009.7
    assert (
        stage["memory_cells"][0]["rise_mb"] == 3800.0 and stage["memory_cells"][0]["first_line"] == lines[1]
    )
