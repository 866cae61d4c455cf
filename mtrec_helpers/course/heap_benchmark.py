"""`make bench-heap`: what :func:`~mtrec_helpers.core.memory.reusing_heap` buys on a large catalogue.

Two loops of synthetic-20m's shape (26,744 items), each run in a fresh process (glibc's settings
last for a process) once with the bounded heap alone — every block from 1 MB a fresh mapping — and
once inside ``reusing_heap``:

- ``training_step``: a two-layer Transformer (hidden 64) on 64 sequences of 50 items, a full
  softmax over the catalogue, AdamW; the engine's trim interval (:data:`TRIM_STEPS`).
- ``fusion_batch``: notebook 06's work on one batch of 256 users, nine members' random scores:
  z-scores, eleven weighted sums and each one's ranking, and rank fusion's top 1,000 per member, in
  blocks of 64 users (:mod:`mtrec_helpers.ensemble`).

Each records seconds per iteration, system seconds, minor page faults and the process's peak RSS
(VmHWM) into ``benchmarks/heap-cpu.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from mtrec_helpers.core import memory
from mtrec_helpers.core.atomic import atomic_write_text
from mtrec_helpers.core.engine import TRIM_STEPS
from mtrec_helpers.core.evaluation import rank_targets
from mtrec_helpers.core.profiling import peak_rss_mb
from mtrec_helpers.course.benchmark import machine
from mtrec_helpers.ensemble.fusion import top_ranks, weighted_sum
from mtrec_helpers.ensemble.scores import BATCH_USERS, FUSION_ROWS, zscore

N_ITEMS = 26_744  # synthetic-20m's catalogue
MODES = ("mapped", "reused")
ITERATIONS = {"training_step": 40, "fusion_batch": 10}
RESULTS = "heap-cpu"  # glibc's heap: a CPU matter


def training_step() -> tuple[Callable[[], None], int]:
    """One step of a small Transformer with a full softmax over the catalogue; its trim interval."""
    torch.manual_seed(0)
    columns, hidden, batch, length = N_ITEMS + 2, 64, 64, 50
    embedding = torch.nn.Embedding(columns, hidden)
    layer = torch.nn.TransformerEncoderLayer(hidden, 2, 4 * hidden, batch_first=True)
    encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    optimiser = torch.optim.AdamW([*embedding.parameters(), *encoder.parameters()])
    inputs, targets = torch.randint(1, columns, (batch, length)), torch.randint(1, columns, (batch, length))

    def step() -> None:
        logits = encoder(embedding(inputs)) @ embedding.weight.T
        torch.nn.functional.cross_entropy(logits.view(-1, columns), targets.view(-1)).backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)

    return step, TRIM_STEPS


def fusion_batch() -> tuple[Callable[[], None], int]:
    """06's fusion and ranking of one batch of users, nine members; trimmed every batch."""
    generator = torch.Generator().manual_seed(0)
    members = [torch.randn(BATCH_USERS, N_ITEMS + 2, generator=generator) for _ in range(9)]
    eligible = torch.rand(BATCH_USERS, N_ITEMS + 2, generator=generator) > 0.01
    targets = torch.randint(1, N_ITEMS + 1, (BATCH_USERS,), generator=generator)
    weightings = [{m: 1.0 + w * m for m in range(9)} for w in range(11)]

    def batch() -> None:
        for start in range(0, BATCH_USERS, FUSION_ROWS):
            rows = slice(start, start + FUSION_ROWS)
            weight = eligible[rows].float()
            z = {m: zscore(scores[rows], weight) for m, scores in enumerate(members)}
            for alphas in weightings:
                rank_targets(weighted_sum(z, alphas), targets[rows], None, 20)
            for scores in members:
                top_ranks(scores[rows], eligible[rows], 1000)

    return batch, 1


WORKLOADS = {"training_step": training_step, "fusion_batch": fusion_batch}


def measure(workload: str, mode: str) -> dict[str, float]:
    """Run ``workload`` in this process with the bounded heap, inside ``reusing_heap`` if ``mode`` is
    "reused"; seconds per iteration, system seconds, minor faults and peak RSS."""
    if not memory.bound_heap(N_ITEMS):
        raise SystemExit("glibc's mmap threshold could not be set: this benchmark needs glibc")
    run, trim_every = WORKLOADS[workload]()
    run()  # warm-up: first-touch costs of every kind, outside the measurement
    loop: Callable[[Iterable[int]], Iterator[int]] = (
        (lambda items: memory.reusing_heap(items, trim_every)) if mode == "reused" else iter
    )
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in loop(range(ITERATIONS[workload])):
        run()
    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    return {
        "s_per_iteration": seconds / ITERATIONS[workload],
        "system_s": after.ru_stime - before.ru_stime,
        "minor_faults": after.ru_minflt - before.ru_minflt,
        "peak_rss_mb": peak_rss_mb(),
        "iterations": ITERATIONS[workload],
    }


def run_all(command: str) -> dict[str, Any]:
    """Every workload in both modes, each in a fresh process."""
    results: dict[str, Any] = {}
    for workload in WORKLOADS:
        for mode in MODES:
            out = subprocess.run(
                [sys.executable, "-m", "mtrec_helpers.course.heap_benchmark", "--worker", workload, mode],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            results.setdefault(workload, {})[mode] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{workload} {mode}: {results[workload][mode]}")
        mapped, reused = (results[workload][m]["s_per_iteration"] for m in MODES)
        results[workload]["speedup"] = mapped / reused
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return {"machine": machine(), "command": command, "date": now, "n_items": N_ITEMS, "workloads": results}


def markdown(record: dict[str, Any]) -> str:
    """The results as a table."""
    lines = [
        f"# Heap reuse on a {record['n_items']:,}-item catalogue ({record['date'][:10]})", "",
        f"`{record['command']}` · {record['machine'].get('cpu_count', '?')} CPU cores", "",
        "| loop | heap | s per iteration | system s | minor page faults | peak RSS (MB) |",
        "|---|---|---:|---:|---:|---:|",
    ]  # fmt: skip
    for workload, modes in record["workloads"].items():
        for mode in MODES:
            m = modes[mode]
            lines.append(f"| {workload} | {mode} | {m['s_per_iteration']:.3f} | {m['system_s']:.1f} | "
                         f"{m['minor_faults']:,} | {m['peak_rss_mb']:,.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("WORKLOAD", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", default="benchmarks")
    parser.add_argument("--command", default="make bench-heap")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(*args.worker)))
        return
    record = run_all(args.command)
    out = Path(args.out_dir)
    atomic_write_text(out / f"{RESULTS}.json", json.dumps(record, indent=1) + "\n")
    atomic_write_text(out / f"{RESULTS}.md", markdown(record))
    print(f"wrote {out / RESULTS}.json and .md")


if __name__ == "__main__":
    main()
