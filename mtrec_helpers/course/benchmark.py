"""`make bench`'s results file: a run's timings and final table with the machine and the command.

Writes ``benchmarks/<device>-<dataset>.json`` (hardware, software versions, command, date, every
notebook's wall time as `make run` measured it, each stage's time inside its notebook, the peak
memory of the notebook kernels, the epochs each chapter trained after its runs' best ones
(:mod:`~mtrec_helpers.course.early_stopping`), notebook 02's and notebook 06's test tables) and a short
markdown summary beside it; RESULTS.md and the README's chapter times are generated from these files
(results_page).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from mtrec_helpers.core.atomic import atomic_write_text
from mtrec_helpers.core.errors import DataError
from mtrec_helpers.core.results import metrics_path, plain, read_metrics
from mtrec_helpers.core.stages import STAGES, Stage
from mtrec_helpers.core.workers import train_workers
from mtrec_helpers.course import early_stopping
from mtrec_helpers.course.runner import TIMINGS, numbered_notebooks


def machine() -> dict[str, Any]:
    """The hardware and software a benchmark ran on."""
    memory = next(
        (int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
         if line.startswith("MemTotal")), None,
    ) if Path("/proc/meminfo").is_file() else None  # fmt: skip
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_mb": memory,
        "gpu": gpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if gpu else None,
    }


def results_name(device: str, dataset: str, preset: str = "default") -> str:
    """The results files' stem: ``<cpu|gpu>-<dataset>``, with ``-<preset>`` unless the preset is the
    default (e.g. cpu-ml-100k, cpu-ml-100k-class, gpu-ml-100k for a run on ``cuda:0``)."""
    kind = "gpu" if device.startswith("cuda") else device.split(":")[0]
    return f"{kind}-{dataset}" + ("" if preset == "default" else f"-{preset}")


def run_date(timings: Path) -> str:
    """When the run finished (its timings file is written last), so a results file re-read from the
    same run keeps the run's date."""
    finished = datetime.datetime.fromtimestamp(timings.stat().st_mtime, datetime.UTC)
    return finished.isoformat(timespec="seconds")


def benchmark_record(
    artifacts: Path, runs: Path, command: str, only: Sequence[str] | None = None
) -> dict[str, Any]:
    """Everything the results file holds, read from the run's metrics.json files and timings (of the
    stages ``only``, if given: a run of one chapter on a copy of another run's artifacts)."""
    timings = json.loads((runs / TIMINGS).read_text(encoding="utf-8"))
    missing = [nb.stem for nb in numbered_notebooks() if nb.stem not in timings["notebooks"]]
    if only is None and missing:  # a run stopped part-way (or continued with --only) is not a full run
        numbers = " ".join(name.split("_")[0] for name in missing)
        raise DataError(
            f"{runs / TIMINGS}: no wall time for {', '.join(missing)}: finish the run first "
            f"(`python -m mtrec_helpers.course.runner … --only {numbers}` with the same folders)"
        )
    stages = {
        s.name: read_metrics(artifacts, s.name)
        for s in STAGES
        if metrics_path(artifacts, s.name).is_file() and (only is None or s.name in only)
    }
    first = next(iter(stages.values()))
    record: dict[str, Any] = {
        "dataset": first["dataset"],
        "device": stages.get("pretraining", first)["device"],
        "machine": machine(),
        "command": command,
        "date": run_date(runs / TIMINGS),
        "notebooks": {name: {"wall_s": round(s, 1)} for name, s in timings["notebooks"].items()},
        "total_wall_s": round(sum(timings["notebooks"].values()), 1),
        "peak_kernel_rss_mb": timings["peak_kernel_rss_mb"],
        "train_workers": train_workers(stages.get("pretraining", first)["device"]),
        "stage_wall_s": {name: metrics["wall_time_s"] for name, metrics in stages.items()},
        "early_stopping": early_stopping.early_stopping(artifacts),
    }
    for stage in STAGES:  # each chapter's own section of the file (its bench module), for the stages that ran
        if stage.name in stages and (section := chapter_bench(stage)) is not None:
            record.update(section.record(stages))
    return plain(record)


def summary(record: dict[str, Any], name: str) -> str:
    """A short markdown page of the results file ``name`` (its stem, which titles the page)."""
    lines = [
        f"# Benchmark `{name}`: {record['dataset']} on {record['device']}, "
        f"{record.get('preset', 'default')} preset",
        "",
        f"{record['date']} · `{record['command']}` · {record['machine']['cpu_count']} CPU cores, "
        f"{record['machine']['memory_mb']} MB, GPU: {record['machine']['gpu'] or 'none'} · torch "
        f"{record['machine']['torch']}",
        "",
        *wall_times(record),
        *early_stopping.markdown(record),
    ]
    final, *chapters = reversed(STAGES)  # the final table first: the run's headline
    for stage in (final, *reversed(chapters)):
        section = chapter_bench(stage)
        if section is not None and has_section(record, stage):
            lines += section.markdown(record)
    return "\n".join(lines) + "\n"


def wall_times(record: dict[str, Any]) -> list[str]:
    """The summary's table of each notebook's wall time and the kernels' peak memory."""
    return [
        "| notebook | wall time (s) |",
        "|---|---|",
        *[f"| {name} | {value['wall_s']:.1f} |" for name, value in record["notebooks"].items()],
        f"| **all** | **{record['total_wall_s']:.1f}** |",
        "",
        f"Peak memory of a notebook kernel: {record['peak_kernel_rss_mb']:.0f} MB.",
        *(
            [
                f"Trainings that do not depend on each other ran {record['train_workers']} at a time "
                "(`TRAIN_WORKERS`; the peak above is one process's)."
            ]
            if record.get("train_workers", 1) > 1
            else []
        ),
    ]


def chapter_bench(stage: Stage) -> ModuleType | None:
    """The chapter's ``bench`` module (its ``record`` and ``markdown``), or None for a chapter without one."""
    name = f"mtrec_helpers.{stage.package}.bench"
    return importlib.import_module(name) if importlib.util.find_spec(name) is not None else None


def has_section(record: dict[str, Any], stage: Stage) -> bool:
    """Whether the results file holds the stage's section (a run may stop before some chapters)."""
    return ("final_table" if stage.name == "ensemble" else stage.name) in record


def main(argv: Sequence[str] | None = None) -> int:
    """Write benchmarks/<device>-<dataset>[-<preset>].json and .md for one run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--artifacts-dir", required=True)
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--out", default="benchmarks")
    parser.add_argument("--command", default="make bench")
    parser.add_argument("--preset", default="default", help="the preset the run used (named in the file)")
    parser.add_argument("--stages", nargs="*", help="only these stages' sections (default: every one)")
    parser.add_argument("--suffix", default="", help="appended to the file name, e.g. user_group")
    args = parser.parse_args(argv)
    try:
        run = benchmark_record(Path(args.artifacts_dir), Path(args.runs_dir), args.command, args.stages)
    except DataError as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    record = {**run, "preset": args.preset}
    name = results_name(record["device"], record["dataset"], args.preset) + (
        f"-{args.suffix}" if args.suffix else ""
    )
    stem = Path(args.out) / name
    atomic_write_text(stem.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    atomic_write_text(stem.with_suffix(".md"), summary(record, name))
    print(f"wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
