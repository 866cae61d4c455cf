"""`python -m mtrec_helpers.text`: notebook 02b's trainings as a command, for several processes.

    accelerate launch --num_processes 4 -m mtrec_helpers.text --artifacts-dir DIR [KEY=VALUE ...]
    torchrun --nproc_per_node 4 -m mtrec_helpers.text --artifacts-dir DIR [KEY=VALUE ...]

It trains every run of notebook 02b's plan (:func:`mtrec_helpers.text.settings.plan`: one id model
per cold-start fold) with the notebook's parameters into ``DIR/text/runs/<name>/``. Notebook 02b run
afterwards with the same parameters finds those runs finished and goes on to the mappers (seconds),
the tables, plots and saving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mtrec_helpers.course.launch import stage_command
from mtrec_helpers.data import load_processed
from mtrec_helpers.text.coldstart import fold_splits
from mtrec_helpers.text.settings import TextSettings, plan, train_run


def train_plan(params: dict[str, Any], artifacts: Path, device: torch.device, main: bool) -> None:
    """Train notebook 02b's runs; print each one's best epoch and validation NDCG@10."""
    settings = TextSettings.of(params)
    folds = fold_splits(load_processed(artifacts / "processed"), settings.cold_folds, settings.engine.seed)
    for run in plan(settings):
        result = train_run(run, settings, folds, artifacts, device, main)
        if main:
            print(f"{run.name}: best epoch {result.best_epoch} of {len(result.history)}, "
                  f"validation NDCG@10 {result.best_valid_ndcg:.4f}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(stage_command("text", train_plan, __doc__ or ""))
