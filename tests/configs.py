"""Training settings for the unit tests, built the way the chapters build theirs (the package holds no
defaults for what a notebook parameter sets; these are the tests' own small values)."""

from __future__ import annotations

from typing import Any

from mtrec_helpers.core.engine import EngineConfig
from mtrec_helpers.distill.train import DistillConfig
from mtrec_helpers.multitask.finetune import FinetuneConfig
from mtrec_helpers.pretraining.train import TrainConfig


def engine(
    epochs: int = 6, lr: float = 5e-3, patience: int = 20, seed: int = 0, **constants: Any
) -> EngineConfig:
    """The engine's settings: every notebook-parameter field given, the constants as the engine has them
    unless a test changes one."""
    max_batches = constants.pop("max_batches", 0)
    return EngineConfig(epochs, lr, patience, seed, max_batches, **constants)


def train_config(
    batch_size: int = 32, negatives: int = 0, last_prob: float = 0.1, **settings: Any
) -> TrainConfig:
    """A sequence model's training (chapter 02's objectives), masking 20% for the masked one."""
    return TrainConfig(engine(**settings), batch_size, 0.2, negatives, 0, last_prob)


def finetune_config(
    batch_size: int = 64, head_lr: float = 5e-3, head_epochs: int = 1, refit_epochs: int = 4, **settings: Any
) -> FinetuneConfig:
    """A finetuning (chapter 03), with 03's longer warm-up."""
    return FinetuneConfig(
        engine(warmup_ratio=0.1, **settings), batch_size, head_lr, head_epochs, refit_epochs, 0
    )


def distill_config(
    ce_weight: float = 1.0,
    soft_weight: float = 1.0,
    cluster_weight: float = 0.0,
    temperature: float = 2.0,
    batch_size: int = 128,
    soft_cache_mb: int = 2048,
    **settings: Any,
) -> DistillConfig:
    """A student's training (chapter 05)."""
    return DistillConfig(
        engine(**settings), batch_size, 0, ce_weight, soft_weight, cluster_weight, temperature, soft_cache_mb
    )


def head_gradients(model: Any, batch: Any, without_next: bool) -> tuple[list[Any], dict[str, Any]]:
    """The auxiliary heads' gradients of one training step of ``model`` (dropout at 0.3, seeded) on the
    plain sum of its task losses, with or without the next-item loss computed; and the losses."""
    import torch

    from mtrec_helpers.multitask.finetune import WeightedModel
    from mtrec_helpers.multitask.weighting import FixedWeights

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.3
    model.train().zero_grad()
    torch.manual_seed(0)
    total, losses = WeightedModel(model, FixedWeights(model.loss_names()), without_next).total(batch)
    total.backward()
    return [p.grad.clone() for p in model.aux_head_parameters()], {k: v.detach() for k, v in losses.items()}
