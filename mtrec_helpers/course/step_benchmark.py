"""`make bench-step`: one training step of notebook 02's causal model on this CPU — what it costs, where
the time goes, and what the course's two choices for a CPU buy.

The model, windows and batches are the chapter's own: notebook 02's default parameters (its causal
model, 128 windows a batch grouped by length) on DATASET's processed data, each step its objective's
loss (:class:`~mtrec_helpers.pretraining.train.SequenceObjective`), backward and an AdamW step, with
the notebook's thread count and no engine around it (no validation, no checkpoints). Recorded in
``benchmarks/step-cpu.json`` and ``.md``:

- ``seconds_per_step``: the mean of :data:`STEPS` steps after :data:`WARMUP`, with the course's
  dropout (masks from uniform draws, ``core/dropout.py``) and with torch's own (``MTREC_DROPOUT=torch``);
- ``where``: torch.profiler's self CPU time over :data:`PROFILED` steps, per operator group
  (:data:`GROUPS`), in ms per step and as a share of the step;
- ``side_by_side``: steps per second summed over one training process and over two at once in worker
  processes (``core/workers.py``) — what the chapters' two training workers buy on this machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from functools import partial
from itertools import cycle
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from mtrec_helpers.core import dropout
from mtrec_helpers.core.atomic import atomic_write_text
from mtrec_helpers.core.engine import Forward
from mtrec_helpers.core.environment import environment_variable
from mtrec_helpers.core.workers import side_by_side
from mtrec_helpers.course.benchmark import machine
from mtrec_helpers.course.parameters import declared_parameters
from mtrec_helpers.course.runner import numbered_notebooks
from mtrec_helpers.data.store import ProcessedData, prepare_dataset
from mtrec_helpers.pretraining.settings import PretrainingSettings, plan
from mtrec_helpers.pretraining.train import SequenceObjective, new_model

RESULTS = "step-cpu"
WARMUP, STEPS, PROFILED = 3, 40, 10
GROUPS = {
    "matrix products": ("aten::mm", "aten::addmm", "aten::bmm"),
    "softmax and cross-entropy": (
        "aten::_log_softmax", "aten::_log_softmax_backward_data", "aten::_softmax",
        "aten::_softmax_backward_data", "aten::nll_loss_forward", "aten::nll_loss_backward",
    ),
    "copies and fills": ("aten::copy_", "aten::fill_"),
    "dropout draws": ("aten::uniform_", "aten::bernoulli_"),
}  # fmt: skip
"""Operators by what they do; every other operator's self time is ``everything else``."""


def chapter_settings(dataset: str) -> PretrainingSettings:
    """Notebook 02's default parameters for ``dataset``."""
    notebook = next(nb for nb in numbered_notebooks() if nb.name.startswith("02_"))
    return PretrainingSettings.of({**declared_parameters(notebook), "DATASET": dataset})


class Stepper:
    """The causal model of ``settings`` on ``data`` and one training step of its objective."""

    def __init__(self, settings: PretrainingSettings, data: ProcessedData, mode: str) -> None:
        model_config, config = plan(settings, data)["causal"]
        torch.manual_seed(settings.engine.seed)
        self.model = new_model(model_config, data).train()
        self.call = Forward(self.model)  # the engine's: calls a named method of the model
        with environment_variable(dropout.ENV, mode):
            dropout.use_mask_dropout(self.model)
        self.objective = SequenceObjective(model_config, config, data, torch.device("cpu"))
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=settings.engine.lr)
        self.generator = torch.Generator().manual_seed(settings.engine.seed)
        self.batches = cycle(self.objective.batches(self.generator))

    def step(self) -> None:
        """The objective's loss on the next batch, backward, an optimizer step."""
        loss, _ = self.objective.loss(self.call, next(self.batches), self.generator)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def seconds_per_step(self, steps: int = STEPS, warmup: int = WARMUP) -> float:
        """The mean wall time of ``steps`` steps after ``warmup``."""
        for _ in range(warmup):
            self.step()
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return (time.perf_counter() - start) / steps


def where_time_goes(stepper: Stepper, steps: int = PROFILED) -> dict[str, dict[str, float]]:
    """Self CPU time per operator group over ``steps`` profiled steps: ms per step and share."""
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            stepper.step()
    totals = dict.fromkeys([*GROUPS, "everything else"], 0.0)
    for event in profiler.key_averages():
        group = next((name for name, ops in GROUPS.items() if event.key in ops), "everything else")
        totals[group] += event.self_cpu_time_total / 1000  # µs → ms
    whole = sum(totals.values())
    return {name: {"ms_per_step": ms / steps, "share": ms / whole} for name, ms in totals.items()}


def steps_per_second(_: int, settings: PretrainingSettings, data: ProcessedData, steps: int) -> float:
    """One training process's rate with the course's dropout (a worker's job: its index is unused)."""
    return 1.0 / Stepper(settings, data, dropout.MODES[0]).seconds_per_step(steps)


def measure(dataset: str, work_dir: Path, steps: int, command: str) -> dict[str, Any]:
    """Every figure of the results file (see the module docstring)."""
    data = prepare_dataset(dataset, work_dir)
    settings = chapter_settings(dataset)
    per_step = {mode: Stepper(settings, data, mode).seconds_per_step(steps) for mode in dropout.MODES}
    where = where_time_goes(Stepper(settings, data, dropout.MODES[0]))
    rate = partial(steps_per_second, settings=settings, data=data, steps=steps)
    one, two = rate(0), sum(side_by_side(rate, [0, 1], workers=2))
    model_config, config = plan(settings, data)["causal"]
    return {
        "machine": machine(),
        "command": command,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "dataset": dataset,
        "threads": torch.get_num_threads(),
        "model": {
            "n_items": data.n_items, "hidden": model_config.hidden_size,
            "layers": model_config.num_hidden_layers, "max_len": settings.max_len,
            "dropout": settings.dropout["causal"], "batch_size": config.batch_size,
        },
        "steps": steps,
        "seconds_per_step": per_step,
        "dropout_saving": 1 - per_step["uniform"] / per_step["torch"],
        "where": where,
        "side_by_side": {"one_process_steps_per_s": one, "two_processes_steps_per_s": two, "gain": two / one},
    }  # fmt: skip


def markdown(record: dict[str, Any]) -> str:
    """The results as two tables."""
    model, per_step, both = record["model"], record["seconds_per_step"], record["side_by_side"]
    lines = [
        f"# One training step of 02's causal model on {record['dataset']} ({record['date'][:10]})", "",
        f"`{record['command']}` · {record['machine'].get('cpu_count', '?')} CPU cores, "
        f"{record['threads']} threads · {model['n_items']:,} items, hidden {model['hidden']}, "
        f"{model['layers']} layers, {model['batch_size']} windows of up to {model['max_len']} items", "",
        f"Seconds per step (mean of {record['steps']}): {per_step['uniform']:.4f} with the course's "
        f"dropout, {per_step['torch']:.4f} with torch's ({record['dropout_saving']:.0%} less).", "",
        "| where | ms per step | share |", "|---|---:|---:|",
        *[f"| {name} | {g['ms_per_step']:.1f} | {g['share']:.0%} |" for name, g in record["where"].items()],
        "", "| training processes | steps per second (all) |", "|---|---:|",
        f"| one | {both['one_process_steps_per_s']:.2f} |",
        f"| two side by side | {both['two_processes_steps_per_s']:.2f} ({both['gain']:.2f}×) |",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--work-dir", default="data/artifacts/step", help="where the processed data goes")
    parser.add_argument("--out-dir", default="benchmarks")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--command", default="make bench-step")
    args = parser.parse_args(argv)
    record = measure(args.dataset, Path(args.work_dir), args.steps, args.command)
    out = Path(args.out_dir)
    atomic_write_text(out / f"{RESULTS}.json", json.dumps(record, indent=1) + "\n")
    atomic_write_text(out / f"{RESULTS}.md", markdown(record))
    print(markdown(record) + f"\nwrote {out / RESULTS}.json and .md")


if __name__ == "__main__":
    main()
