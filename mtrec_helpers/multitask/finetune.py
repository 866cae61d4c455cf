"""Finetune a multi-task model with one loss-weighting strategy; keep the best epoch on validation.

First the new parameters (heads, input features, experts) train alone for ``head_epochs`` with
the encoder frozen (linear probing before finetuning, as in LP-FT: the heads start useful and
their first random gradients never reach the encoder); then everything trains together under the
weighting strategy. Every epoch goes
once over the training windows (all positions of every window are examples for the
interaction-level tasks; the last position for the profile task), then measures every head on the
validation split. The model kept is the epoch with the best *selection metric*: validation NDCG@10
when the next-item task is trained (it is the primary task), otherwise the single task's own
metric. Early stopping on the primary task stops before the auxiliary heads have converged, so
the chosen model's auxiliary heads then train alone for ``refit_epochs`` on the frozen model —
the next-item scores do not move. Task losses and weights are logged per epoch for the plots.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup, set_seed

from mtrec_helpers.device import autocast
from mtrec_helpers.evaluation import evaluate
from mtrec_helpers.multitask.metrics import best_threshold, multitask_scorer, predict, task_metrics
from mtrec_helpers.multitask.model import MultiTaskModel
from mtrec_helpers.multitask.tasks import TaskData
from mtrec_helpers.multitask.weighting import LossWeighting
from mtrec_helpers.sequences import length_grouped_batches

SELECTION = {  # task → (validation metric, +1 when higher is better)
    "next": ("ndcg@10", 1.0),
    "rating": ("rating_rmse", -1.0),
    "like": ("like_auc", 1.0),
    "genre": ("genre_auc", 1.0),
    "profile": ("profile_accuracy", 1.0),
}


@dataclass(frozen=True)
class FinetuneConfig:
    """Optimisation settings for finetuning (short: the encoder is already trained)."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 5e-4
    head_lr: float = 5e-3  # new parameters: features, heads, experts
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    clip_norm: float = 1.0
    patience: int = 3
    head_epochs: int = 1  # epochs training only the new parameters before finetuning everything
    refit_epochs: int = 4  # epochs training only the auxiliary heads on the chosen model
    seed: int = 0


@dataclass
class FinetuneResult:
    """The best model, its epoch, the per-epoch log and the training time."""

    model: MultiTaskModel
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    train_seconds: float = 0.0
    genre_threshold: float = 0.5
    refit: dict[str, float] = field(default_factory=dict)  # validation metrics after the head refit


def validation_metrics(model: MultiTaskModel, task_data: TaskData) -> dict[str, float]:
    """Every head of ``model`` on the validation split (genre F1 at its best threshold)."""
    model.eval()
    record: dict[str, float] = {}
    if "next" in model.config.tasks:
        ranking = evaluate(
            multitask_scorer(model, task_data, "valid"), task_data.data, "valid", device=model.device
        )
        record.update(
            {"ndcg@10": float(ranking.ndcg(10).mean()), "hr@10": float(ranking.hit_rate(10).mean())}
        )
    predictions = predict(model, task_data, "valid")
    targets = task_data.targets("valid")
    threshold = best_threshold(predictions["genre"], targets["genres"]) if "genre" in predictions else 0.5
    record.update(task_metrics(predictions, targets, threshold))
    record["genre_threshold"] = threshold
    model.train()
    return record


def selection_score(record: dict[str, float], tasks: list[str]) -> float:
    """The number early stopping maximises: the primary task's metric, or the single task's."""
    metric, sign = SELECTION["next" if "next" in tasks else tasks[0]]
    return sign * record[metric]


@dataclass
class _Epoch:
    """What one pass over the training windows needs."""

    model: MultiTaskModel
    task_data: TaskData
    examples: list[np.ndarray]
    lengths: np.ndarray
    batch_size: int
    generator: torch.Generator
    device: torch.device


def _train_epoch(
    run: _Epoch,
    combine: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    clip_norm: float,
) -> dict[str, float]:
    """One epoch; returns each task's mean loss."""
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    train_profiles = run.task_data.profile_users("train")
    batches = length_grouped_batches(run.lengths, run.batch_size, run.generator)
    sums = dict.fromkeys(run.model.config.tasks, 0.0)
    for indices in batches:
        batch = run.task_data.batch([run.examples[i] for i in indices], False, train_profiles).to(run.device)
        with autocast(run.device):
            losses = run.model.task_losses(batch)
        total = combine(losses)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(parameters, clip_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        for task, loss in losses.items():
            sums[task] += loss.item() / len(batches)
    return sums


def train_only(
    run: _Epoch, parameters: list[torch.nn.Parameter], epochs: int, config: FinetuneConfig
) -> None:
    """Train ``parameters`` alone (everything else frozen) on the plain sum of the task losses."""
    if not parameters or not epochs:
        return
    chosen = {id(p) for p in parameters}
    frozen = [p for p in run.model.parameters() if p.requires_grad and id(p) not in chosen]
    for parameter in frozen:
        parameter.requires_grad_(False)
    optimizer = torch.optim.AdamW(parameters, lr=config.head_lr, weight_decay=config.weight_decay)
    try:
        for _ in range(epochs):
            _train_epoch(run, _plain_sum, optimizer, None, config.clip_norm)
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)


def _plain_sum(losses: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.stack(list(losses.values())).sum()


def finetune(
    model: MultiTaskModel,
    weighting: LossWeighting,
    task_data: TaskData,
    config: FinetuneConfig,
    device: torch.device,
    progress: bool = True,
    label: str = "finetuning",
) -> FinetuneResult:
    """Warm up the new heads, then train ``model`` (on ``device``) with ``weighting``; returns the
    best epoch's model."""
    set_seed(config.seed)
    weighting.to(device)
    tasks = model.config.tasks
    examples = task_data.train_windows(model.config.max_len)
    run = _Epoch(
        model, task_data, examples, np.array([len(w) for w in examples]), config.batch_size,
        torch.Generator().manual_seed(config.seed), device,
    )  # fmt: skip
    result = FinetuneResult(model=model)
    model.train()
    start = time.perf_counter()
    train_only(run, model.new_parameters(), config.head_epochs, config)  # warm-up, as in LP-FT
    result.train_seconds += time.perf_counter() - start
    trainable = [p for p in model.parameters() if p.requires_grad]
    new = {id(p) for p in model.new_parameters()}
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in trainable if id(p) not in new]},
            {"params": [p for p in trainable if id(p) in new], "lr": config.head_lr},
            {"params": weighting.trainable_parameters(), "weight_decay": 0.0, "lr": config.head_lr},
        ],
        lr=config.lr,
        weight_decay=config.weight_decay,
    )
    total_steps = -(-len(examples) // config.batch_size) * config.epochs
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * total_steps), total_steps
    )
    best_score, best_state, bad_epochs = -np.inf, None, 0
    for epoch in tqdm(range(config.epochs), desc=label, disable=not progress):
        start = time.perf_counter()
        sums = _train_epoch(
            run, lambda losses: weighting.combine(losses, model.shared_parameters()), optimizer, scheduler,
            config.clip_norm,
        )  # fmt: skip
        weighting.end_epoch(sums)
        result.train_seconds += time.perf_counter() - start
        record = {
            "epoch": epoch + 1,
            **{f"loss_{t}": v for t, v in sums.items()},
            **{f"weight_{t}": w for t, w in weighting.weights().items()},
            **{f"valid_{k}": v for k, v in validation_metrics(model, task_data).items()},
        }
        result.history.append(record)
        score = selection_score({k.removeprefix("valid_"): v for k, v in record.items()}, tasks)
        if score > best_score:
            best_score, bad_epochs, result.best_epoch = score, 0, epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            result.genre_threshold = record["valid_genre_threshold"]
        else:
            bad_epochs += 1
            if bad_epochs >= config.patience:
                break
    model.load_state_dict(best_state)
    if config.refit_epochs and model.aux_head_parameters():
        start = time.perf_counter()
        model.train()
        train_only(run, model.aux_head_parameters(), config.refit_epochs, config)
        result.train_seconds += time.perf_counter() - start
        result.refit = validation_metrics(model, task_data)
        result.genre_threshold = result.refit["genre_threshold"]
    model.eval()
    return result
