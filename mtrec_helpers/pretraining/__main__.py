"""`python -m mtrec_helpers.pretraining`: notebook 02's training as a command, for several processes.

    accelerate launch --num_processes 4 -m mtrec_helpers.pretraining --artifacts-dir DIR [KEY=VALUE ...]
    torchrun --nproc_per_node 4 -m mtrec_helpers.pretraining --artifacts-dir DIR [KEY=VALUE ...]

It trains every objective of notebook 02 with the notebook's parameters (its defaults, overridden
as in `make run`) into ``DIR/pretrained/runs/<objective>/``. Notebook 02 run afterwards with the same
parameters finds those runs finished and continues with evaluation, plots and saving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mtrec_helpers.course.launch import stage_command
from mtrec_helpers.data import load_processed
from mtrec_helpers.pretraining import MODEL_NAMES
from mtrec_helpers.pretraining.settings import PretrainingSettings, train_planned


def train_objectives(params: dict[str, Any], artifacts: Path, device: torch.device, main: bool) -> None:
    """Train notebook 02's objectives; print each run's best epoch and validation NDCG@10."""
    data, settings = load_processed(artifacts / "processed"), PretrainingSettings.of(params)
    for objective in settings.objectives:
        run = train_planned(objective, settings, data, artifacts, device, main)
        if main:
            print(
                f"{MODEL_NAMES[objective]}: best epoch {run.best_epoch} of {len(run.history)}, "
                f"validation NDCG@10 {run.best_valid_ndcg:.4f}"
            )


if __name__ == "__main__":
    raise SystemExit(stage_command("pretraining", train_objectives, __doc__ or ""))
