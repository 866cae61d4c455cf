"""`make bench-scale`: every stage at three sizes, wall time and peak memory, and how they grow.

Runs the main line's six chapters and 02b (:data:`SCALED_STAGES`) on ML-100k (real), ``synthetic-1m``
and ``synthetic-20m`` with one fixed, small training budget (:data:`BUDGET`: one epoch of at most
``MAX_STEPS`` batches per run, one grid value per baseline, few RL updates, 04's planning sweep at
the default strength only, which reuses the learners trained before it), so the figures measure
data, evaluation, fusion and the cost of a step rather than how many epochs a dataset needs. Each
notebook runs in its own process, so its peak memory is its kernel's own (its VmHWM after the last
cell, from the per-cell record of :mod:`mtrec_helpers.core.profiling`; ``ru_maxrss`` of the finished
kernel where there is none; CUDA's peak is in each stage's metrics on a GPU; each stage's timings
file is removed before it runs, so nothing an earlier run left in its folder counts — the runner keeps
the largest peak of a run continued in parts, and a stale 21.0 GB once stood for 04's 7.0 GB), with
one training at a time (``MTREC_TRAIN_WORKERS=1``: a run's memory, not two runs' side by side). A
synthetic release is generated before its first stage (``generate_s``: finding or generating the raw
files, seconds), so ``data_prep`` measures reading the official file format and preprocessing. The
results file is rewritten after every stage, so a run cut short keeps what it measured; ``--only``
re-runs some stages of a size on its existing artifacts.

Also measured: reading a ratings file of ML-25M's shape (25,000,095 rows of the ``ratings.csv``
format) through the real reader, in a fresh process.

Writes ``benchmarks/scale-<device>.json`` (:func:`results_name`: another name for a run of some sizes
or a profiled one; hardware, command, date, ``sizes`` → size → ``stages`` →
stage → ``wall_s``, ``peak_rss_mb``; ``exponents`` → stage → ``memory``/``time``: the log-log
slope between synthetic-1m and synthetic-20m against the number of interactions), a markdown
table and a plot of cost against size.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mtrec_helpers.core import profiling
from mtrec_helpers.core.atomic import atomic_write_text
from mtrec_helpers.core.profiling import MEMORY_ENV, PROFILE_ENV
from mtrec_helpers.core.results import metrics_path, read_metrics
from mtrec_helpers.core.stages import STAGES
from mtrec_helpers.core.workers import ENV as WORKERS_ENV
from mtrec_helpers.course.benchmark import machine
from mtrec_helpers.course.parameters import declared_parameters
from mtrec_helpers.course.runner import TIMINGS, numbered_notebooks

SIZES = ("ml-100k", "synthetic-1m", "synthetic-20m")
SCALED_STAGES = ("data_prep", "pretraining", "text", "multitask", "rl", "distillation", "ensemble")
"""The six stages of the main line and 02b's text chapter (06 fuses its model); 03b's scenarios are
measured by `make bench` only."""
BUDGET = (
    "EPOCHS=1", "MAX_STEPS=20", "PATIENCE=1", "HEAD_EPOCHS=1", "REFIT_EPOCHS=1",
    "KNN_NEIGHBOURS=[100]", "EASE_L2=[500]", "AUX_LAMBDAS=[0.3]", 'ADAPTIVE=["uncertainty"]',
    "MMOE_EXPERTS=0", "LORA_RANK=0", "STUDENT_HIDDEN=[16]", "ABLATION_HIDDEN=16", "K_RANGE=[3,4]",
    "MAPPER_EPOCHS=1", "ITERATIONS=10", "SLATEQ_ITERATIONS=5", "OFFPOLICY_EPOCHS=1", "LOG_REPEATS=1",
    "EVAL_REPEATS=1", "HORIZON_STRENGTHS=[0.0]", "SWEEP_SEEDS=1",
    "N_BOOT=200", "LEAVE_ONE_OUT=False",
)  # fmt: skip
READ_SHAPE = ("ml-25m-shape", 162_541, 59_047, 25_000_095)


def _run(command: Sequence[str], env: dict[str, str] | None = None) -> None:
    """Run a command, its output passed through; a failure stops the benchmark naming the command."""
    if subprocess.run(command, check=False, env=env).returncode != 0:
        raise SystemExit(f"✗ failed: {' '.join(command)}")


def run_size(
    size: str,
    root: Path,
    budget: Sequence[str],
    device: str,
    only: Sequence[str] = (),
    save: Callable[[dict[str, Any]], None] = lambda record: None,
    collect: bool = False,
    profile: bool = False,
) -> dict[str, Any]:
    """Every notebook (or those numbered in ``only``) on ``size`` in its own process: each stage's
    wall time, kernel peak RSS, slowest cells and the cells that raised the peak most; ``save`` is
    called with the record after every stage, so a run cut short keeps what it measured.
    ``collect``: run nothing, read the timings an earlier run of this harness left in its runs folders
    (e.g. after the process was stopped before writing). ``profile``: each kernel runs under
    cProfile (:mod:`mtrec_helpers.core.profiling`) and each stage's record gains its slowest
    functions."""
    artifacts, runs = root / "artifacts" / size, root / "runs" / size
    if not only and not collect:
        shutil.rmtree(artifacts, ignore_errors=True)
    start = time.perf_counter()
    if not collect:
        _run(
            [
                sys.executable,
                "-c",
                f"from mtrec_helpers.data.store import locate_sources; locate_sources({size!r})",
            ]
        )
    record: dict[str, Any] = (
        {"stages": {}} if collect else {"generate_s": round(time.perf_counter() - start, 1), "stages": {}}
    )
    for notebook, stage in zip(numbered_notebooks(), STAGES, strict=True):
        if stage.name not in SCALED_STAGES or (only and stage.number not in only):
            continue
        declared = declared_parameters(notebook)
        overrides = [item for item in budget if item.split("=", 1)[0] in declared]
        folder = runs / notebook.stem
        if collect and not (folder / TIMINGS).is_file():
            continue
        stats, memory = folder / f"{stage.name}.prof", folder / f"{stage.name}.memory.json"
        if not collect:
            for stale in (stats, memory, folder / TIMINGS):
                stale.unlink(missing_ok=True)
            _run(
                [
                    sys.executable, "-m", "mtrec_helpers.course.runner", "--dataset", size,
                    "--device", device, "--artifacts-dir", str(artifacts), "--runs-dir", str(folder),
                    *overrides, "--only", stage.number,
                ],
                {**os.environ, WORKERS_ENV: "1", MEMORY_ENV: str(memory.resolve()),
                 **({PROFILE_ENV: str(stats.resolve())} if profile else {})},
            )  # fmt: skip
        timings = json.loads((folder / TIMINGS).read_text(encoding="utf-8"))
        finished = datetime.datetime.fromtimestamp((folder / TIMINGS).stat().st_mtime, datetime.UTC)
        record["stages"][stage.name] = {
            "wall_s": round(timings["notebooks"][notebook.stem], 1),
            "peak_rss_mb": round(profiling.recorded_peak(memory) or timings["peak_kernel_rss_mb"], 1),
            "finished": finished.isoformat(timespec="seconds"),  # when this measurement was taken
            **profiling.summary(folder / notebook.name, stats if profile else None, memory_file=memory),
        }
        if metrics_path(artifacts, stage.name).is_file():
            cuda = read_metrics(artifacts, stage.name).get("cuda_peak_mb")
            if cuda is not None:
                record["stages"][stage.name]["cuda_peak_mb"] = cuda
        manifest = artifacts / "processed" / "manifest.json"
        if manifest.is_file():
            record["shape"] = json.loads(manifest.read_text(encoding="utf-8"))["counts"]
        save(record)
    return record


def read_benchmark(folder: Path) -> dict[str, Any]:
    """Write a ratings.csv of ML-25M's shape, then read it through the real reader in a fresh process."""
    name, users, items, ratings = READ_SHAPE
    write = (
        "from pathlib import Path; "
        "from mtrec_helpers.data.scale import ScalePreset, generate_scale, write_release; "
        f"p = ScalePreset({name!r}, {users}, {items}, {ratings}, 'csv', ('1995-01-09', '2019-11-21')); "
        f"write_release(generate_scale(p), Path({str(folder)!r}), 'csv')"
    )
    _run([sys.executable, "-c", write])
    read = (
        "import json, resource, time; from pathlib import Path; "
        "from mtrec_helpers.data.movielens import _csv_reader; "
        f"t = time.perf_counter(); raw = _csv_reader('ml-25m')(Path({str(folder)!r})); "
        "print(json.dumps({'rows': len(raw.interactions), 'read_s': round(time.perf_counter() - t, 1), "
        "'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))"
    )
    out = subprocess.run([sys.executable, "-c", read], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def exponents(
    sizes: dict[str, Any], small: str = "synthetic-1m", large: str = "synthetic-20m"
) -> dict[str, Any]:
    """Per stage, the log-log slope of memory and time against the number of interactions."""
    if any(size not in sizes or "shape" not in sizes[size] for size in (small, large)):
        return {}
    growth = math.log(sizes[large]["shape"]["n_interactions"] / sizes[small]["shape"]["n_interactions"])
    return {
        stage: {
            key: round(
                math.log(sizes[large]["stages"][stage][field] / sizes[small]["stages"][stage][field])
                / growth,
                2,
            )
            for key, field in (("memory", "peak_rss_mb"), ("time", "wall_s"))
        }
        for stage in sizes[small]["stages"]
        if stage in sizes[large]["stages"]
    }


def ordered(record: dict[str, Any]) -> list[str]:
    """The measured sizes, smallest first."""
    return sorted(record["sizes"], key=lambda s: SIZES.index(s) if s in SIZES else len(SIZES))


def markdown(record: dict[str, Any]) -> str:
    """A table of stage × size (time, peak memory) and the exponents."""
    sizes = ordered(record)
    header = " | ".join(f"{s} time (s) | {s} peak RSS (MB)" for s in sizes)
    profiled = any("functions" in run for size in record["sizes"].values() for run in size["stages"].values())
    lines = [
        f"# Scale benchmark: {', '.join(sizes)} on {record['device']}{', profiled' if profiled else ''} "
        f"({record['date'][:10]})", "",
        "Commands: " + "; ".join(f"`{c}`" for c in record["commands"]), "",
        f"| stage | {header} | memory exp. | time exp. |", "|---|" + "---:|" * (2 * len(sizes) + 2),
    ]  # fmt: skip
    for stage in record["sizes"][sizes[0]]["stages"]:
        runs = [record["sizes"][s]["stages"].get(stage) for s in sizes]
        cells = [f"{r['wall_s']:,.1f} | {r['peak_rss_mb']:,.0f}" if r else "not run | –" for r in runs]
        exp = record["exponents"].get(stage, {})
        lines.append(
            f"| {stage} | " + " | ".join(cells) + f" | {exp.get('memory', '–')} | {exp.get('time', '–')} |"
        )
    lines += ["", f"Budget (every size): `{' '.join(record['budget'])}`", ""]
    for size in sizes:
        stages = record["sizes"][size]["stages"]
        shape = record["sizes"][size].get("shape", {})
        counts = ", ".join(
            f"{shape[k]:,} {k.removeprefix('n_')}"
            for k in ("n_users", "n_items", "n_interactions")
            if k in shape
        )
        total = sum(v["wall_s"] for v in stages.values())
        lines.append(f"- {size} ({counts}): {total:,.1f} s over {len(stages)} of {len(SCALED_STAGES)} stages")
    if "read_25m" in record:
        read = record["read_25m"]
        rss = f"{read['peak_rss_mb']:,.0f}"
        lines.append(f"Reading {read['rows']:,} ratings.csv rows: {read['read_s']} s, peak RSS {rss} MB")
    return "\n".join(lines) + "\n"


def profile_markdown(record: dict[str, Any], functions: int = 8) -> str:
    """Per size and stage: the slowest cells and, in a profiled run, the slowest functions."""
    lines = ["", "## Where the time goes", ""]
    for size in ordered(record):
        for stage, measured in record["sizes"][size]["stages"].items():
            if "cells" not in measured:
                continue
            cells = "; ".join(f"cell {c['cell']} {c['seconds']:,.1f} s (`{c['first_line']}`)"
                              for c in measured["cells"][:3])  # fmt: skip
            lines.append(f"- **{size} · {stage}** ({measured['wall_s']:,.1f} s): {cells}")
            if measured.get("memory_cells"):
                top = measured["memory_cells"][0]
                peak, rise = f"{measured['peak_rss_mb']:,.0f}", f"{top['rise_mb']:,.0f}"
                lines.append(f"  - peak RSS {peak} MB; raised most by cell {top['cell']} (+{rise} MB, "
                             f"`{top['first_line']}`)")  # fmt: skip
            for row in measured.get("functions", {}).get("package_by_cumulative_time", [])[:functions]:
                lines.append(f"  - `{row['function']}` {row['cumulative_s']:,.1f} s ({row['calls']:,} calls)")
    return "\n".join(lines) + "\n" if len(lines) > 3 else ""


def plot(record: dict[str, Any], path: Path) -> None:
    """Wall time and peak memory per stage against the number of interactions (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [s for s in ordered(record) if "shape" in record["sizes"][s]]
    x = [record["sizes"][s]["shape"]["n_interactions"] for s in sizes]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for stage in record["sizes"][sizes[0]]["stages"]:
        measured = [(n, record["sizes"][s]["stages"][stage]) for n, s in zip(x, sizes, strict=True)
                    if stage in record["sizes"][s]["stages"]]  # fmt: skip
        for axis, field in zip(axes, ("wall_s", "peak_rss_mb"), strict=True):
            axis.plot([n for n, _ in measured], [r[field] for _, r in measured], marker="o", label=stage)
    for axis, label in zip(axes, ("wall time (s)", "peak RSS (MB)"), strict=True):
        axis.set(xscale="log", yscale="log", xlabel="interactions", ylabel=label)
    axes[0].legend(fontsize=8)
    figure.suptitle(f"Cost against size ({record['device']}; budget: one capped epoch per run)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def results_name(device: str, sizes: Sequence[str], merge: bool, profile: bool) -> str:
    """``scale-<device>`` for a run of every size (or one merged into that file); a run of some sizes
    only gets them in its name, a profiled run ``-profile`` (its times are cProfile's), so neither
    overwrites the measured file nor mixes code versions into its exponents."""
    partial = "" if merge or sorted(sizes) == sorted(SIZES) else "-" + "-".join(sizes)
    return f"scale-{device}{partial}{'-profile' if profile else ''}"


def invocation(argv: Sequence[str]) -> str:
    """The command line that ran (what the results file records unless ``--command`` says otherwise)."""
    return " ".join(["python -m mtrec_helpers.course.scale_benchmark", *argv])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", default=list(SIZES))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--work-dir", default="data/artifacts/scale")
    parser.add_argument("--out-dir", default="benchmarks")
    parser.add_argument("--skip-read", action="store_true", help="skip the 25M-row read measurement")
    parser.add_argument("--command", default=None, help="what ran, for the results file (default: this one)")
    parser.add_argument(
        "--only", nargs="*", default=[], help="notebook numbers (default: every stage of SCALED_STAGES)"
    )
    parser.add_argument("--merge", action="store_true", help="add these sizes to an existing results file")
    parser.add_argument(
        "--collect", action="store_true", help="read the timings of an earlier, interrupted run"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run each kernel under cProfile → scale-<device>[-<sizes>]-profile.json (profiled times)",
    )
    args = parser.parse_args(argv)
    if args.command is None:
        args.command = invocation(sys.argv[1:] if argv is None else argv)
    hardware = machine()
    device = "cuda" if hardware["gpu"] and args.device != "cpu" else "cpu"
    record: dict[str, Any] = {
        "hardware": hardware, "device": device, "command": args.command, "budget": list(BUDGET), "sizes": {},
    }  # fmt: skip
    out = Path(args.out_dir)
    name = results_name(device, args.sizes, args.merge, args.profile)
    existing = out / f"{name}.json"
    if args.merge and existing.is_file():
        previous = json.loads(existing.read_text(encoding="utf-8"))
        record["sizes"], record["commands"] = (
            previous["sizes"],
            [*previous.get("commands", [previous["command"]])],
        )
        record.update({k: previous[k] for k in ("read_25m",) if k in previous})
    record.setdefault("commands", []).append(args.command)

    def save() -> None:
        record["exponents"] = exponents(record["sizes"])
        record["date"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / f"{name}.json", json.dumps(record, indent=2) + "\n")
        atomic_write_text(out / f"{name}.md", markdown(record) + profile_markdown(record))
        if not args.profile:
            plot(record, out / f"{name}.png")

    for size in args.sizes:
        print(f"■ {size}", flush=True)
        previous = record["sizes"].get(size, {}) if args.only else {}

        def keep(measured: dict[str, Any], size: str = size, previous: dict[str, Any] = previous) -> None:
            record["sizes"][size] = {
                **previous,
                **measured,
                "stages": {**previous.get("stages", {}), **measured["stages"]},
            }
            save()

        run_size(size, Path(args.work_dir), BUDGET, args.device, args.only, keep, args.collect, args.profile)
    if not args.skip_read:
        with tempfile.TemporaryDirectory(dir=args.work_dir) as folder:
            record["read_25m"] = read_benchmark(Path(folder))
    save()
    print(markdown(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
