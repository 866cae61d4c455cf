"""Train a student: next-item cross-entropy + soft targets from the teacher + the cluster loss.

Every training window is one batch row; the teacher (frozen, eval mode) scores every window once
before training (:func:`teacher_scores`) and those scores are the soft targets of every epoch. The
cluster term uses each row's last position — the student's user representation after the window —
projected to the teacher's width by a linear probe (trained with the student, not part of it), and
the user's teacher cluster as the label. Early stopping keeps the epoch with the best validation
NDCG@10, as every other stage does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup, set_seed

from mtrec_helpers.device import autocast
from mtrec_helpers.distill.losses import centroid_logits, cluster_balanced_loss, soft_target_loss
from mtrec_helpers.multitask.finetune import validation_metrics
from mtrec_helpers.multitask.model import MultiTaskModel
from mtrec_helpers.multitask.tasks import IGNORE, TaskData
from mtrec_helpers.sequences import length_grouped_batches


@dataclass(frozen=True)
class DistillConfig:
    """Loss weights and optimisation settings."""

    ce_weight: float = 1.0
    soft_weight: float = 1.0  # 0: no soft targets
    cluster_weight: float = 0.0  # 0: no cluster loss
    temperature: float = 2.0
    epochs: int = 30
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    clip_norm: float = 1.0
    patience: int = 3
    seed: int = 0

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


def student_losses(
    student: MultiTaskModel,
    teacher: torch.Tensor | None,
    probe: nn.Module | None,
    batch,
    users: torch.Tensor,
    clusters: Clusters | None,
    config: DistillConfig,
) -> dict[str, torch.Tensor]:
    """The weighted-sum terms for one batch (only those with a weight > 0); ``teacher``: the
    teacher's scores (N, V) at the batch's labelled positions, row by row."""
    states, rows, positions = student.labelled_states(batch)
    scores = student.next_scores(batch, states["next"], rows, positions)
    losses = {"ce": F.cross_entropy(scores.float(), batch.next_item[rows, positions])}
    if config.soft_weight > 0:
        assert teacher is not None
        losses["soft"] = soft_target_loss(scores, teacher.float(), config.temperature)
    if config.cluster_weight > 0:
        assert probe is not None and clusters is not None
        logits = centroid_logits(probe(states["next"][:, -1].float()), clusters.centroids)
        losses["cluster"] = cluster_balanced_loss(logits, clusters.labels[users], len(clusters.centroids))
    return losses


def distill(
    student: MultiTaskModel,
    teacher: MultiTaskModel,
    task_data: TaskData,
    config: DistillConfig,
    device: torch.device,
    clusters: Clusters | None = None,
    progress: bool = True,
    label: str = "distilling",
) -> DistillResult:
    """Train ``student`` against ``teacher`` (see the module docstring); returns the best epoch."""
    if config.cluster_weight > 0 and clusters is None:
        raise ValueError("DistillConfig.cluster_weight > 0 needs the teacher's clusters (clusters=...)")
    set_seed(config.seed)
    examples = task_data.train_windows(student.config.max_len)
    cached = teacher_scores(teacher, task_data, examples, device) if config.soft_weight > 0 else None
    student.to(device).train()
    clusters = Clusters(clusters.labels.to(device), clusters.centroids.to(device)) if clusters else None
    probe = nn.Linear(student.config.hidden_size, teacher.config.hidden_size).to(device)
    weights = {"ce": config.ce_weight, "soft": config.soft_weight, "cluster": config.cluster_weight}
    lengths = np.array([len(w) for w in examples])
    window_users = task_data.user[torch.tensor([int(w[-1]) for w in examples])]
    parameters = list(student.parameters()) + (list(probe.parameters()) if config.cluster_weight > 0 else [])
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    total = -(-len(examples) // config.batch_size) * config.epochs
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(config.warmup_ratio * total), total)
    generator = torch.Generator().manual_seed(config.seed)
    profiles = task_data.profile_users("train")
    result = DistillResult(model=student, probe=probe)
    best_score, best_state, best_probe, bad_epochs = -np.inf, None, None, 0
    for epoch in tqdm(range(config.epochs), desc=label, disable=not progress):
        start = time.perf_counter()
        sums: dict[str, float] = {}
        batches = length_grouped_batches(lengths, config.batch_size, generator)
        for indices in batches:
            batch = task_data.batch([examples[i] for i in indices], False, profiles).to(device)
            users = window_users[torch.as_tensor(indices)].to(device)
            with autocast(device):
                soft = None
                if cached:  # a row's first position is labelled only when the batch pads it
                    counts = (batch.next_item != IGNORE).sum(1).tolist()
                    soft = torch.cat([cached[i][-n:] for i, n in zip(indices, counts, strict=True)]).to(
                        device
                    )
                losses = student_losses(student, soft, probe, batch, users, clusters, config)
            loss = sum(weights[name] * value for name, value in losses.items())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, config.clip_norm)
            optimizer.step()
            scheduler.step()
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + value.item() / len(batches)
        result.train_seconds += time.perf_counter() - start
        valid = validation_metrics(student, task_data)
        result.history.append(
            {
                "epoch": epoch + 1,
                **{f"loss_{k}": v for k, v in sums.items()},
                "valid_ndcg@10": valid["ndcg@10"],
            }
        )
        if valid["ndcg@10"] > best_score:
            best_score, bad_epochs, result.best_epoch = valid["ndcg@10"], 0, epoch + 1
            best_state = {k: v.detach().clone() for k, v in student.state_dict().items()}
            best_probe = {k: v.detach().clone() for k, v in probe.state_dict().items()}
        else:
            bad_epochs += 1
            if bad_epochs >= config.patience:
                break
    student.load_state_dict(best_state)
    probe.load_state_dict(best_probe)
    student.eval()
    return result
