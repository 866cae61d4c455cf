"""`python -m mtrec_helpers.multitask`: notebook 03's finetuning runs as a command, for several processes.

    accelerate launch --num_processes 4 -m mtrec_helpers.multitask --artifacts-dir DIR [KEY=VALUE ...]
    torchrun --nproc_per_node 4 -m mtrec_helpers.multitask --artifacts-dir DIR [KEY=VALUE ...]

It trains the plan of notebook 03 (:func:`mtrec_helpers.multitask.settings.plan`) with the
notebook's parameters into ``DIR/multitask/runs/<name>/``: the single-task runs, the fixed-weight
sweep, the adaptive strategies, MMoE and LoRA at the λ chosen on validation, and (``USER_TEXT``) the
configuration chosen on validation again with the user-text features. Notebook 03 run afterwards
with the same parameters finds every run finished and goes on to the tables and plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mtrec_helpers.course.launch import stage_command
from mtrec_helpers.data import load_processed
from mtrec_helpers.multitask.experiments import Experiment, Outcome
from mtrec_helpers.multitask.settings import MultitaskSettings, run_plan, train_experiment
from mtrec_helpers.multitask.tasks import TaskData


def train_plan(params: dict[str, Any], artifacts: Path, device: torch.device, main: bool) -> None:
    """Train notebook 03's plan; print each experiment's validation NDCG@10."""
    settings = MultitaskSettings.of(params)
    task_data = TaskData(load_processed(artifacts / "processed"), seed=settings.engine.seed)
    tasks, _ = task_data.available_tasks(settings.tasks)

    def train(experiment: Experiment) -> Outcome:
        outcome = train_experiment(experiment, settings, task_data, artifacts, device, progress=main)
        if main:
            print(f"{experiment.name}: validation {outcome.test['valid_selection']}")
        return outcome

    run_plan(settings, tasks, train, {})


if __name__ == "__main__":
    raise SystemExit(stage_command("multitask", train_plan, __doc__ or ""))
