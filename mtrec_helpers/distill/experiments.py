"""The runs of notebook 05: one call trains, saves and measures one student (or the teacher)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from accelerate.utils import set_seed

from mtrec_helpers.core.evaluation import RankingResult, evaluate, validation_users
from mtrec_helpers.distill.benchmark import scoring_throughput, size_on_disk
from mtrec_helpers.distill.clusters import per_cluster_mean
from mtrec_helpers.distill.student import StudentSize, build_student, init_from_teacher, scoring_parameters
from mtrec_helpers.distill.train import Clusters, DistillConfig, DistillResult, distill
from mtrec_helpers.multitask.experiments import ranking_record
from mtrec_helpers.multitask.metrics import multitask_scorer
from mtrec_helpers.multitask.model import MultiTaskModel
from mtrec_helpers.multitask.tasks import TaskData
from mtrec_helpers.pretraining.artifacts import save_recommender


@dataclass(frozen=True)
class StudentRun:
    """One student: its size, which loss terms it trains with, and how it starts."""

    name: str
    size: StudentSize
    soft_weight: float = 1.0
    cluster_weight: float = 0.1
    from_teacher: bool = True  # embeddings started in the teacher's principal subspace

    def config(self, base: DistillConfig) -> DistillConfig:
        """``base`` with this run's loss weights."""
        return replace(base, soft_weight=self.soft_weight, cluster_weight=self.cluster_weight)


def chosen_k(sweep: pd.DataFrame, n_clusters: int) -> int:
    """``n_clusters``, or (when 0) the k of the sweep with the best silhouette."""
    return n_clusters or int(sweep.loc[sweep["silhouette"].idxmax(), "k"])


def train_student(
    run: StudentRun,
    teacher: MultiTaskModel,
    task_data: TaskData,
    base: DistillConfig,
    clusters: Clusters,
    runs_dir: Path,
    device: torch.device,
    progress: bool = True,
) -> DistillResult:
    """Build ``run``'s student (seeded, so it starts alike whatever ran before) and train it with
    ``base`` and this run's loss weights; checkpoints in ``runs_dir/<name>``, a re-run resumes."""
    set_seed(base.engine.seed)
    student = build_student(teacher, task_data, run.size)
    if run.from_teacher:
        init_from_teacher(student, teacher)
    return distill(
        student,
        teacher,
        task_data,
        run.config(base),
        device,
        clusters,
        progress,
        run.name,
        runs_dir / run.name,
    )


def measure(
    model: MultiTaskModel,
    folder: Path,
    task_data: TaskData,
    labels: np.ndarray,
    n_boot: int,
    throughput_repeats: int = 3,
    valid_users: np.ndarray | None = None,
) -> tuple[dict[str, Any], RankingResult]:
    """Serving cost (parameters, bytes on disk, CPU users/s, timed on the ``valid_users``) and test
    quality of a saved model, with its NDCG@10 in every teacher cluster (and on the validation
    ``valid_users``, default all)."""
    ranking = evaluate(
        multitask_scorer(model, task_data, "test"), task_data.data, "test", device=model.device
    )
    valid = evaluate(
        multitask_scorer(model, task_data, "valid"),
        task_data.data,
        "valid",
        device=model.device,
        users=valid_users,
    )
    record = {
        "params": scoring_parameters(model),
        "size_bytes": size_on_disk(folder),
        "throughput_users_per_s": scoring_throughput(
            model, task_data, repeats=throughput_repeats, users=valid_users
        ),
        **ranking_record(ranking, n_boot),
        "valid_ndcg@10": float(valid.ndcg(10).mean()),
        "per_cluster_ndcg@10": per_cluster_mean(ranking.ndcg(10), labels),
    }
    return record, ranking


def run_student(
    run: StudentRun,
    teacher: MultiTaskModel,
    task_data: TaskData,
    base: DistillConfig,
    clusters: Clusters,
    folder: Path,
    device: torch.device,
    n_boot: int,
    progress: bool = True,
) -> tuple[dict[str, Any], DistillResult, RankingResult]:
    """Train (:func:`train_student`), save to ``folder`` and measure a student; its checkpoints go to
    ``<ARTIFACTS_DIR>/distillation/runs/<name>`` (``folder`` is ``…/distillation/students/<name>``)."""
    result = train_student(
        run, teacher, task_data, base, clusters, folder.parent.parent / "runs", device, progress
    )
    params = {
        "size": run.size.__dict__,
        "from_teacher": run.from_teacher,
        "distill": asdict(run.config(base)),
    }
    save_recommender(result.model, folder, task_data.data, params)
    sample = validation_users(task_data.data.n_users, base.valid_users, base.engine.seed)
    labels = clusters.labels.cpu().numpy()
    record, ranking = measure(result.model, folder, task_data, labels, n_boot, valid_users=sample)
    record.update(
        best_epoch=result.best_epoch,
        train_seconds=result.train_seconds,
        soft_weight=run.soft_weight,
        cluster_weight=run.cluster_weight,
        hidden=run.size.hidden,
        layers=run.size.layers,
        from_teacher=run.from_teacher,
    )
    return record, result, ranking


def choose_student(results: dict[str, dict[str, Any]], teacher_params: int, compression: float) -> str:
    """The student with the best validation NDCG@10 among those at least ``compression``× smaller
    than the teacher (all students when none is)."""
    small = {
        n: r for n, r in results.items() if n != "teacher" and teacher_params / r["params"] >= compression
    }
    pool = small or {n: r for n, r in results.items() if n != "teacher"}
    return max(pool, key=lambda name: pool[name]["valid_ndcg@10"])
