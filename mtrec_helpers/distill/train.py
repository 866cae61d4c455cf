"""Train a student: next-item cross-entropy + soft targets from the teacher + the cluster loss.

Every training window is one batch row; the teacher (frozen, eval mode) scores every window once
before training (:func:`teacher_scores`) and those scores are the soft targets of every epoch —
when they fit in ``soft_cache_mb`` (positions × catalogue × 2 bytes: 330 MB on ML-100k, 1 TB on
ML-20M); beyond that the teacher scores each batch as it comes, the same targets at the cost of a
teacher forward pass per step. The
cluster term uses each row's last position — the student's user representation after the window —
projected to the teacher's width by a linear probe (trained with the student, not part of it), and
the user's teacher cluster as the label. Early stopping keeps the epoch with the best validation
NDCG@10, as every other stage does.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn

from mtrec_helpers.core.chunked import chunked_mean
from mtrec_helpers.core.device import autocast
from mtrec_helpers.core.engine import EngineConfig, Objective, accelerator_for, fit, run_key
from mtrec_helpers.core.evaluation import validation_users
from mtrec_helpers.distill.losses import centroid_logits, cluster_balanced_loss, soft_target_loss
from mtrec_helpers.multitask.finetune import validation_metrics
from mtrec_helpers.multitask.model import MultiTaskModel
from mtrec_helpers.multitask.tasks import IGNORE, TaskData
from mtrec_helpers.pretraining.sequences import length_grouped_batches


@dataclass(frozen=True)
class DistillConfig:
    """One student's training, beyond the model: the engine's settings, the batches and the loss
    weights (chapter 05's settings build it; each planned student sets its own soft and cluster weights)."""

    engine: EngineConfig
    batch_size: int
    valid_users: int  # validation sample size (0: every user; VALID_USERS)
    ce_weight: float
    soft_weight: float  # 0: no soft targets
    cluster_weight: float  # 0: no cluster loss
    temperature: float
    soft_cache_mb: int = 2048  # teacher scores cached (fp16) up to this size; beyond, computed per batch

    def __post_init__(self) -> None:
        for name in ("ce_weight", "soft_weight", "cluster_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"DistillConfig.{name} must be ≥ 0, got {getattr(self, name)}")
        if self.ce_weight == self.soft_weight == self.cluster_weight == 0:
            raise ValueError("DistillConfig: every loss weight is 0; give ce_weight or soft_weight > 0")
        if self.temperature <= 0:
            raise ValueError(f"DistillConfig.temperature must be > 0, got {self.temperature}")


@dataclass
class Clusters:
    """The teacher's K-means clusters: every user's label (U,) and the centroids (K, H_teacher)."""

    labels: torch.Tensor
    centroids: torch.Tensor


@dataclass
class DistillResult:
    """The best student, its per-epoch log, best epoch and training time."""

    model: MultiTaskModel
    probe: nn.Module  # student representation → teacher width (used by the cluster loss)
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    train_seconds: float = 0.0


def teacher_scores(
    teacher: MultiTaskModel, task_data: TaskData, examples: list[np.ndarray], device: torch.device
) -> list[torch.Tensor]:
    """The frozen teacher's catalogue scores at every position of every training window (the first
    one predicting from an empty history), computed once; kept in fp16 on the CPU."""
    teacher.to(device).eval()
    profiles = task_data.profile_users("train")
    cache: list[torch.Tensor] = []
    with torch.no_grad(), autocast(device):
        for start in range(0, len(examples), 256):
            chunk = [  # a padding row (0) in front of every window that a batch can pad
                w if len(w) > teacher.config.max_len else np.concatenate([[0], w])
                for w in examples[start : start + 256]
            ]
            batch = task_data.batch(chunk, False, profiles).to(device)
            scores = teacher.next_item_outputs(batch)
            cache.extend(scores.half().cpu().split((batch.next_item != IGNORE).sum(1).tolist()))
    return cache


SoftTargets = Callable[[slice], torch.Tensor]
"""The teacher's scores (rows, V) at a slice of a batch's labelled positions."""


def student_losses(
    student: MultiTaskModel,
    teacher: SoftTargets | None,
    probe: nn.Module | None,
    batch,
    users: torch.Tensor,
    clusters: Clusters | None,
    config: DistillConfig,
) -> dict[str, torch.Tensor]:
    """The weighted-sum terms for one batch (only those with a weight > 0). Cross-entropy and the
    soft-target loss are computed over the catalogue in chunks of labelled positions
    (:func:`~mtrec_helpers.core.chunked.chunked_mean`), so no (positions × catalogue) matrix is held."""
    states, rows, positions = student.labelled_states(batch)
    targets = batch.next_item[rows, positions]

    def terms(part: slice) -> torch.Tensor:
        scores = student.next_scores(batch, states["next"], rows[part], positions[part])
        values = [F.cross_entropy(scores.float(), targets[part])]
        if config.soft_weight > 0:
            assert teacher is not None
            values.append(soft_target_loss(scores, teacher(part).float(), config.temperature))
        return torch.stack(values)

    values = chunked_mean(terms, len(targets), student.config.vocab_size)
    losses = {"ce": values[0]}
    if config.soft_weight > 0:
        losses["soft"] = values[1]
    if config.cluster_weight > 0:
        assert probe is not None and clusters is not None
        logits = centroid_logits(probe(states["next"][:, -1].float()), clusters.centroids)
        losses["cluster"] = cluster_balanced_loss(logits, clusters.labels[users], len(clusters.centroids))
    return losses


class StudentWithProbe(nn.Module):
    """The student and its linear probe, trained (and checkpointed) as one module."""

    def __init__(self, student: MultiTaskModel, probe: nn.Module) -> None:
        super().__init__()
        self.student, self.probe = student, probe

    def losses(self, batch, soft, users, clusters, config) -> dict[str, torch.Tensor]:
        return student_losses(self.student, soft, self.probe, batch, users, clusters, config)


@dataclass
class DistillObjective(Objective):
    """Stage 05's objective: Σ_term weight · loss over the student's training windows."""

    task_data: TaskData
    config: DistillConfig
    examples: list[np.ndarray]
    cached: list[torch.Tensor] | None  # the teacher's scores per window (soft targets)
    clusters: Clusters | None
    device: torch.device
    teacher: MultiTaskModel | None = None  # soft targets computed per batch (when not cached)
    cache_from: Callable[[], list[torch.Tensor]] | None = None  # fills ``cached`` at the first batch

    def __post_init__(self) -> None:
        self.lengths = np.array([len(w) for w in self.examples])
        self.users = self.task_data.user[torch.tensor([int(w[-1]) for w in self.examples])]
        self.profiles = self.task_data.profile_users("train")
        self.weights = {
            "ce": self.config.ce_weight,
            "soft": self.config.soft_weight,
            "cluster": self.config.cluster_weight,
        }

    def batches(self, generator: torch.Generator) -> list[np.ndarray]:
        return length_grouped_batches(self.lengths, self.config.batch_size, generator)

    def loss(self, call: Callable[..., Any], indices: np.ndarray, generator: torch.Generator):
        rows = [self.examples[i] for i in indices]
        batch = self.task_data.batch(rows, False, self.profiles).to(self.device)
        soft = self.soft_targets(batch, indices)
        users = self.users[torch.as_tensor(indices)].to(self.device)
        losses = call("losses", batch, soft, users, self.clusters, self.config)
        total = sum(self.weights[name] * value for name, value in losses.items())
        return total, {f"loss_{name}": value.item() for name, value in losses.items()}

    def soft_targets(self, batch, indices: np.ndarray) -> SoftTargets | None:
        """This batch's soft targets: rows of the cache, or the teacher scoring a slice of the
        labelled positions when asked (the same scores, never the whole batch at once)."""
        if self.cached is None and self.cache_from is not None:
            self.cached = self.cache_from()  # only a run that trains: one read back finished never does
        if self.cached:  # a row's first position is labelled only when the batch pads it
            counts = (batch.next_item != IGNORE).sum(1).tolist()
            rows = torch.cat([self.cached[i][-n:] for i, n in zip(indices, counts, strict=True)])
            rows = rows.to(self.device)
            return lambda part: rows[part]
        if self.teacher is None:
            return None
        teacher = self.teacher
        with torch.no_grad():
            states, labelled, positions = teacher.labelled_states(batch)

        def scores(part: slice) -> torch.Tensor:
            with torch.no_grad():
                return teacher.next_scores(batch, states["next"], labelled[part], positions[part]).half()

        return scores

    def validate(self, model: StudentWithProbe, accelerator: Accelerator) -> dict[str, float]:
        sample = validation_users(
            self.task_data.data.n_users, self.config.valid_users, self.config.engine.seed
        )
        ndcg = validation_metrics(model.student, self.task_data, sample)["ndcg@10"]
        return {"valid_ndcg@10": ndcg, "score": ndcg}


def distill(
    student: MultiTaskModel,
    teacher: MultiTaskModel,
    task_data: TaskData,
    config: DistillConfig,
    device: torch.device,
    clusters: Clusters | None = None,
    progress: bool = True,
    label: str = "distilling",
    run_dir: Path | None = None,
) -> DistillResult:
    """Train ``student`` against ``teacher`` (see the module docstring) on the shared engine,
    resuming from ``run_dir``; returns the best epoch."""
    if config.cluster_weight > 0 and clusters is None:
        raise ValueError("DistillConfig.cluster_weight > 0 needs the teacher's clusters (clusters=...)")
    settings = [dataclasses.asdict(config), task_data.data.manifest["fingerprint"]]
    key = run_key(settings, student, teacher, *([clusters.labels, clusters.centroids] if clusters else []))
    accelerator = accelerator_for(str(device))
    device = accelerator.device  # the device the engine trains on: batches go where the model is
    set_seed(config.engine.seed)
    examples = task_data.train_windows(student.config.max_len)
    cache_mb = sum(len(w) for w in examples) * teacher.config.vocab_size * 2 / 2**20
    cache = config.soft_weight > 0 and cache_mb <= config.soft_cache_mb
    cache_from = functools.partial(teacher_scores, teacher, task_data, examples, device) if cache else None
    per_batch = teacher.to(device).eval() if config.soft_weight > 0 and not cache else None
    clusters = Clusters(clusters.labels.to(device), clusters.centroids.to(device)) if clusters else None
    probe = nn.Linear(student.config.hidden_size, teacher.config.hidden_size)
    module = StudentWithProbe(student, probe)
    trained = list(student.parameters()) + (list(probe.parameters()) if config.cluster_weight > 0 else [])
    objective = DistillObjective(task_data, config, examples, None, clusters, device, per_batch, cache_from)
    fitted = fit(
        module, [{"params": trained}], objective, config.engine, accelerator,
        run_dir, key, label, progress,
    )  # fmt: skip
    return DistillResult(student, probe, fitted.history, fitted.best_epoch, fitted.train_seconds)
