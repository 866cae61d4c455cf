"""Chapter 05's settings (one field per parameter of the notebook) and what they plan: the clustering
of the teacher's users, then one student per width in ``STUDENT_HIDDEN`` with every loss term and
the loss ablation at ``ABLATION_HIDDEN``. The notebook and ``python -m mtrec_helpers.distill`` run the
same :func:`cluster_users` and iterate the same :func:`plan`."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from mtrec_helpers.core.engine import EngineConfig
from mtrec_helpers.core.evaluation import validation_users
from mtrec_helpers.core.settings import Settings
from mtrec_helpers.distill.clusters import user_representations
from mtrec_helpers.distill.experiments import StudentRun, chosen_k
from mtrec_helpers.distill.kmeans import KMeansResult, kmeans, sweep_k
from mtrec_helpers.distill.student import StudentSize
from mtrec_helpers.distill.train import DistillConfig
from mtrec_helpers.multitask.model import MultiTaskModel
from mtrec_helpers.multitask.tasks import TaskData


@dataclass(frozen=True)
class DistillSettings(Settings):
    """Notebook 05's parameters; ``engine`` takes EPOCHS, LR, PATIENCE, MAX_STEPS and SEED."""

    dataset: str
    artifacts_dir: str
    device: str
    k_range: list[int]
    n_clusters: int
    kmeans_init: int
    student_hidden: list[int]
    student_layers: int
    ablation_hidden: int
    student_dropout: float
    batch_size: int
    soft_temperature: float
    ce_weight: float
    soft_weight: float
    cluster_weight: float
    min_compression: float
    throughput_repeats: int
    valid_users: int
    n_boot: int
    engine: EngineConfig

    def distill_config(self) -> DistillConfig:
        """How the students train (each planned run sets its own soft and cluster weights)."""
        return DistillConfig(
            self.engine, self.batch_size, self.valid_users, self.ce_weight, self.soft_weight,
            self.cluster_weight, self.soft_temperature,
        )  # fmt: skip


@dataclass
class Clustering:
    """The teacher's users in k clusters: their representations, the sweep over ``K_RANGE`` and the fit."""

    representations: torch.Tensor
    sweep: pd.DataFrame
    k: int
    fitted: KMeansResult


def cluster_users(
    settings: DistillSettings, teacher: MultiTaskModel, task_data: TaskData, device: torch.device
) -> Clustering:
    """The teacher's next-item states of every user, k-means for every k in ``K_RANGE`` (inertia, and
    silhouette over the ``VALID_USERS`` users — every user up to ML-1M — each against every user: it
    chooses k, as validation chooses), and the fit at ``N_CLUSTERS`` (0: the best silhouette)."""
    seed = settings.engine.seed
    representations = user_representations(teacher, task_data, "valid")
    low, high = settings.k_range
    rows = torch.from_numpy(validation_users(len(representations), settings.valid_users, seed))
    sweep = sweep_k(representations, range(low, high + 1), n_init=settings.kmeans_init, seed=seed, rows=rows)
    k = chosen_k(sweep, settings.n_clusters)
    fitted = kmeans(representations.to(device), k, n_init=settings.kmeans_init, seed=seed)
    return Clustering(representations, sweep, k, fitted)


def plan(settings: DistillSettings) -> list[StudentRun]:
    """The chapter's students: one per width in ``STUDENT_HIDDEN`` with every loss term, then the loss
    ablation at ``ABLATION_HIDDEN`` (cross-entropy alone, + soft targets, alone from a random start)."""

    def size(hidden: int) -> StudentSize:
        return StudentSize(hidden, settings.student_layers, dropout=settings.student_dropout)

    soft, cluster, h = settings.soft_weight, settings.cluster_weight, settings.ablation_hidden
    return [
        *(
            StudentRun(f"student_h{hidden}", size(hidden), soft, cluster)
            for hidden in settings.student_hidden
        ),
        StudentRun(f"h{h}_alone", size(h), 0.0, 0.0),
        StudentRun(f"h{h}_soft", size(h), soft, 0.0),
        StudentRun(f"h{h}_alone_random_start", size(h), 0.0, 0.0, from_teacher=False),
    ]
