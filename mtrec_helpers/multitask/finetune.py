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

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn

from mtrec_helpers.core.engine import EngineConfig, Objective, accelerator_for, fit, run_key
from mtrec_helpers.multitask.metrics import best_threshold, predict, task_metrics
from mtrec_helpers.multitask.model import MultiTaskModel
from mtrec_helpers.multitask.tasks import Batch, TaskData
from mtrec_helpers.multitask.weighting import FixedWeights, LossWeighting
from mtrec_helpers.pretraining.sequences import length_grouped_batches

SELECTION = {  # task → (validation metric, +1 when higher is better)
    "next": ("ndcg@10", 1.0),
    "rating": ("rating_rmse", -1.0),
    "like": ("like_auc", 1.0),
    "genre": ("genre_auc", 1.0),
    "profile": ("profile_accuracy", 1.0),
}


@dataclass(frozen=True)
class FinetuneConfig:
    """One finetuning, beyond the model: the engine's settings and the chapter's phases (chapter 03's
    settings build it)."""

    engine: EngineConfig
    batch_size: int
    head_lr: float  # new parameters: features, heads, experts
    head_epochs: int  # epochs training only the new parameters before finetuning everything
    refit_epochs: int  # epochs training only the auxiliary heads on the chosen model
    valid_users: int  # validation sample size (0: every user; VALID_USERS)

    @classmethod
    def of(cls, settings: Any) -> FinetuneConfig:
        """From the settings of a chapter that finetunes with these phases (03's, 03b's): their
        ``engine``, ``batch_size``, ``head_lr``, ``head_epochs``, ``refit_epochs`` and ``valid_users``."""
        return cls(settings.engine, settings.batch_size, settings.head_lr, settings.head_epochs,
                   settings.refit_epochs, settings.valid_users)  # fmt: skip


@dataclass
class FinetuneResult:
    """The best model, its epoch, the per-epoch log and the training time."""

    model: MultiTaskModel
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    train_seconds: float = 0.0
    genre_threshold: float = 0.5
    refit: dict[str, float] = field(default_factory=dict)  # validation metrics after the head refit


def validation_metrics(
    model: MultiTaskModel, task_data: TaskData, users: np.ndarray | None = None
) -> dict[str, float]:
    """Every head of ``model`` on the validation split, or on its ``users`` (genre F1 at its best
    threshold), from one forward pass over them."""
    model.eval()
    record: dict[str, float] = {}
    ranker = task_data.ranker("valid") if "next" in model.config.tasks else None
    predictions = predict(model, task_data, "valid", users, ranker)
    if ranker is not None:
        ranking = ranker.result()
        record.update(
            {"ndcg@10": float(ranking.ndcg(10).mean()), "hr@10": float(ranking.hit_rate(10).mean())}
        )
    targets = task_data.targets("valid", users)
    threshold = best_threshold(predictions["genre"], targets["genres"]) if "genre" in predictions else 0.5
    record.update(task_metrics(predictions, targets, threshold))
    record["genre_threshold"] = threshold
    model.train()
    return record


def selection_score(record: dict[str, float], tasks: list[str]) -> float:
    """The number early stopping maximises: the primary task's metric, or the single task's."""
    metric, sign = SELECTION["next" if "next" in tasks else tasks[0]]
    return sign * record[metric]


class WeightedModel(nn.Module):
    """The multi-task model and its loss weighting as one module: the weighting's learned
    parameters train, and are checkpointed, with the model."""

    def __init__(self, model: MultiTaskModel, weighting: LossWeighting, without_next: bool = False) -> None:
        super().__init__()
        self.model, self.weighting, self.without_next = model, weighting, without_next

    def total(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted sum of the task losses, and the losses (``without_next``: the next-item loss
        is 0, not computed — see :func:`train_only`)."""
        losses = self.model.task_losses(batch, self.without_next)
        return self.weighting.combine(losses, self.model.shared_parameters()), losses


@dataclass
class FinetuneObjective(Objective):
    """Stage 03's objective: every task's loss on the training windows, combined by the weighting."""

    task_data: TaskData
    examples: list[np.ndarray]
    batch_size: int
    device: torch.device
    weighting: LossWeighting
    valid_users: np.ndarray | None = None  # the validation sample (None: every user)

    def __post_init__(self) -> None:
        self.lengths = np.array([len(w) for w in self.examples])
        self.profiles = self.task_data.profile_users("train")

    def batches(self, generator: torch.Generator) -> list[np.ndarray]:
        return length_grouped_batches(self.lengths, self.batch_size, generator)

    def loss(self, call: Callable[..., Any], indices: np.ndarray, generator: torch.Generator):
        rows = [self.examples[i] for i in indices]
        batch = self.task_data.batch(rows, False, self.profiles).to(self.device)
        total, losses = call("total", batch)
        return total, {f"loss_{task}": value.item() for task, value in losses.items()}

    def end_epoch(self, sums: dict[str, float]) -> dict[str, float]:
        self.weighting.end_epoch({t: sums[f"loss_{t}"] for t in self.weighting.tasks})
        return {f"weight_{t}": w for t, w in self.weighting.weights().items()}

    def validate(self, model: WeightedModel, accelerator: Accelerator) -> dict[str, float]:
        record = validation_metrics(model.model, self.task_data, self.valid_users)
        return {
            **{f"valid_{k}": v for k, v in record.items()},
            "score": selection_score(record, model.model.config.tasks),
        }

    def state(self) -> dict[str, Any]:
        return self.weighting.extra_state()

    def restore(self, state: dict[str, Any]) -> None:
        self.weighting.load_extra_state(state)


def chosen_names(model: nn.Module, chosen: set[int]) -> list[str]:
    """The names of ``model``'s parameters whose ids are in ``chosen`` (what a phase trains)."""
    return [name for name, p in model.named_parameters() if id(p) in chosen]


def train_only(
    model: MultiTaskModel,
    parameters: list[torch.nn.Parameter],
    objective: FinetuneObjective,
    config: FinetuneConfig,
    epochs: int,
    generator: torch.Generator,
    run_dir: Path | None = None,
) -> float:
    """Train ``parameters`` alone (everything else frozen) on the plain sum of the task losses (less
    those the run's weighting leaves out, weight 0), at a constant ``head_lr``, keeping the last epoch
    (checkpointed in ``run_dir``, if given, and read back finished there); returns the training seconds."""
    if not parameters or not epochs:
        return 0.0
    chosen = {id(p) for p in parameters}
    frozen = [p for p in model.parameters() if p.requires_grad and id(p) not in chosen]
    for parameter in frozen:
        parameter.requires_grad_(False)
    off = {
        name: 0.0 for name, weight in objective.weighting.weights().items() if weight == 0
    }  # never trained
    plain = replace(objective, weighting=FixedWeights(model.loss_names(), off).to(objective.device))
    # the auxiliary heads alone: the next-item loss cannot reach them (its full softmax is skipped;
    # their gradients, and the dropout draws, are the same to the last bit)
    heads_only = chosen <= {id(p) for p in model.aux_head_parameters()}
    settings = dataclasses.replace(
        config.engine, epochs=epochs, lr=config.head_lr, schedule="constant", select_best=False
    )
    phase = [dataclasses.asdict(settings), chosen_names(model, chosen), off, objective.batch_size]
    key = run_key([*phase, objective.task_data.data.manifest["fingerprint"]], model)  # and every weight
    try:
        fitted = fit(
            WeightedModel(model, plain.weighting, heads_only), [{"params": parameters}], plain, settings,
            accelerator_for(str(objective.device)), run_dir, key, progress=False, generator=generator,
        )  # fmt: skip
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)
    return fitted.train_seconds


def finetune(
    model: MultiTaskModel,
    weighting: LossWeighting,
    task_data: TaskData,
    config: FinetuneConfig,
    device: torch.device,
    progress: bool = True,
    label: str = "finetuning",
    run_dir: Path | None = None,
) -> FinetuneResult:
    """Warm up the new heads, then train ``model`` (on ``device``) with ``weighting`` on the shared
    engine, then refit the auxiliary heads — each phase resuming from its checkpoint in ``run_dir``
    (``heads/``, the run's own, ``refit/``); returns the best epoch's model."""
    settings = [dataclasses.asdict(config), type(weighting).__name__, task_data.data.manifest["fingerprint"]]
    key = run_key(settings, model, weighting)
    accelerator = accelerator_for(str(device))
    device = accelerator.device  # the device the engine trains on: batches go where the model is
    set_seed(config.engine.seed)
    weighting.to(device)
    generator = torch.Generator().manual_seed(config.engine.seed)  # one batch order through the phases
    examples = task_data.train_windows(model.config.max_len)
    sample = task_data.validation_sample(config.valid_users, config.engine.seed)
    objective = FinetuneObjective(task_data, examples, config.batch_size, device, weighting, sample)
    result = FinetuneResult(model=model)
    model.to(device).train()
    heads, refit = (run_dir / "heads", run_dir / "refit") if run_dir is not None else (None, None)
    result.train_seconds += train_only(
        model, model.new_parameters(), objective, config, config.head_epochs, generator, heads
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    new = {id(p) for p in model.new_parameters()}
    groups = [
        {"params": [p for p in trainable if id(p) not in new]},
        {"params": [p for p in trainable if id(p) in new], "lr": config.head_lr},
        {"params": weighting.trainable_parameters(), "weight_decay": 0.0, "lr": config.head_lr},
    ]
    fitted = fit(
        WeightedModel(model, weighting), groups, objective, config.engine, accelerator, run_dir,
        key, label, progress, generator=generator,
    )  # fmt: skip
    result.history, result.best_epoch = fitted.history, fitted.best_epoch
    result.train_seconds += fitted.train_seconds
    result.genre_threshold = fitted.history[fitted.best_epoch - 1]["valid_genre_threshold"]
    if config.refit_epochs and model.aux_head_parameters():
        model.train()
        result.train_seconds += train_only(
            model, model.aux_head_parameters(), objective, config, config.refit_epochs, generator, refit
        )
        result.refit = validation_metrics(model, task_data, sample)
        result.genre_threshold = result.refit["genre_threshold"]
    model.eval()
    return result
