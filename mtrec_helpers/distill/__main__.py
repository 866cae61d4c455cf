"""`python -m mtrec_helpers.distill`: notebook 05's student training as a command, for several processes.

    accelerate launch --num_processes 4 -m mtrec_helpers.distill --artifacts-dir DIR [KEY=VALUE ...]
    torchrun --nproc_per_node 4 -m mtrec_helpers.distill --artifacts-dir DIR [KEY=VALUE ...]

It clusters the teacher's users as notebook 05 does (k by silhouette unless ``N_CLUSTERS``) and trains
every student of the notebook's plan (:func:`mtrec_helpers.distill.settings.plan`) into
``DIR/distillation/runs/<name>/``. Notebook 05 run afterwards with the same parameters finds every run
finished and goes on to saving, measuring and plotting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mtrec_helpers.course.launch import stage_command
from mtrec_helpers.data import load_processed
from mtrec_helpers.distill.experiments import train_student
from mtrec_helpers.distill.settings import DistillSettings, cluster_users, plan
from mtrec_helpers.distill.train import Clusters
from mtrec_helpers.multitask.model import MultiTaskModel
from mtrec_helpers.multitask.tasks import TaskData
from mtrec_helpers.pretraining.artifacts import load_recommender


def train_students(params: dict[str, Any], artifacts: Path, device: torch.device, main: bool) -> None:
    """Cluster the teacher's users, then train notebook 05's planned students; print each one's best epoch."""
    settings = DistillSettings.of(params)
    task_data = TaskData(load_processed(artifacts / "processed"), seed=settings.engine.seed)
    teacher = load_recommender(artifacts / "multitask" / "model", MultiTaskModel)[0].to(device)
    fitted = cluster_users(settings, teacher, task_data, device).fitted
    clusters = Clusters(fitted.labels.cpu(), fitted.centroids.cpu())
    runs_dir = artifacts / "distillation" / "runs"
    for run in plan(settings):
        result = train_student(
            run, teacher, task_data, settings.distill_config(), clusters, runs_dir, device, main
        )
        if main:
            best = result.history[result.best_epoch - 1]["valid_ndcg@10"]
            epochs = len(result.history)
            print(f"{run.name}: best epoch {result.best_epoch} of {epochs}, validation NDCG@10 {best:.4f}")


if __name__ == "__main__":
    raise SystemExit(stage_command("distillation", train_students, __doc__ or ""))
