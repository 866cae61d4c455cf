"""Parameter-efficient finetuning: LoRA adapters (Hu et al. 2021, via ``peft``) on the encoder.

The pretrained encoder and item embeddings are frozen; low-rank adapters on every attention and
feed-forward projection learn the update, while the new parameters (input features, heads, experts)
train in full. After training the adapters are merged into the weights, so the saved model is a
plain :class:`~mtrec_helpers.multitask.model.MultiTaskModel`. ``peft`` is imported when adapters
are added (it takes seconds to import, and only the LoRA run needs it).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from mtrec_helpers.multitask.model import MultiTaskModel

if TYPE_CHECKING:
    from peft import PeftModel

TARGET_MODULES = ["query", "key", "value", "dense"]


@contextmanager
def _quiet_peft() -> Iterator[None]:
    """peft reads transformers' deprecated ``is_gradient_checkpointing`` when it wraps or unwraps a
    model; that FutureWarning is about peft's code, not ours, and says nothing to a reader."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        yield


def add_lora(model: MultiTaskModel, rank: int = 8, alpha: int = 16) -> PeftModel:
    """Wrap ``model`` with LoRA adapters; its new parameters stay trainable."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=TARGET_MODULES, lora_dropout=0.0)
    with _quiet_peft():
        wrapped = get_peft_model(model, config)
    for parameter in model.new_parameters():
        parameter.requires_grad_(True)
    return wrapped


def merge_lora(wrapped: PeftModel) -> MultiTaskModel:
    """The model with the adapters folded into its weights (no peft needed to use it)."""
    with _quiet_peft():
        return wrapped.merge_and_unload()


def trainable_share(model: MultiTaskModel) -> float:
    """Share of the model's parameters that receive gradients."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad) / total
