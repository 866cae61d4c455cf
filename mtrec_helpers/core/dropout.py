"""Dropout on the CPU at a quarter of the cost: the mask drawn from uniform numbers.

Dropout keeps each unit with probability ``keep = 1 − p`` and scales the kept ones by ``1 / keep``:

    y = x ⊙ m / keep,   m_i ~ Bernoulli(keep)   ⇔   m_i = [u_i < keep],  u_i ~ U[0, 1)

torch draws ``m`` on the CPU with ``bernoulli_``, which costs four times what ``rand_like(x) < keep``
does (4.0 against 1.0 ms for a 128 × 50 × 64 batch on this course's 2-core machine): a fifth of a
training step of 02's causal model on ML-100k (measured with ``torch.profiler``; docs/engine.md).
:class:`MaskDropout` draws ``m`` the second way: the same distribution from a different random stream,
so a run's numbers differ from torch's dropout as they would under another seed. On a GPU torch's fused
kernel is kept.

:func:`use_mask_dropout` (called by the engine on every model it trains) swaps each ``nn.Dropout`` for
a :class:`MaskDropout` and routes a ``transformers`` model's attention through :func:`attention`, which
drops attention probabilities the same way (torch's fused attention would draw them with
``bernoulli_``). ``MTREC_DROPOUT=torch`` keeps torch's own dropout everywhere: the numbers of the runs
before this module.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ENV = "MTREC_DROPOUT"
MODES = ("uniform", "torch")
ATTENTION = "mtrec_sdpa"
"""The attention implementation :func:`use_mask_dropout` sets: torch's fused attention, except while
training on the CPU with dropout."""


def dropout_mode() -> str:
    """``MTREC_DROPOUT``: ``uniform`` (the default: masks from uniform draws on the CPU) or ``torch``."""
    mode = os.environ.get(ENV, "").strip() or MODES[0]
    if mode not in MODES:
        raise ValueError(f"{ENV}={mode!r}: expected one of {', '.join(MODES)}")
    return mode


def mask_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """``x`` with each entry kept with probability ``1 − p`` (the mask from ``rand_like(x) < 1 − p``)
    and the kept entries scaled by ``1 / (1 − p)``."""
    keep = 1.0 - p
    if keep <= 0.0:
        return x * 0.0
    return x * torch.rand_like(x).lt_(keep).div_(keep)


class MaskDropout(nn.Dropout):
    """``nn.Dropout`` whose mask, on the CPU while training, comes from :func:`mask_dropout`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu":
            return super().forward(x)
        return mask_dropout(x, self.p)


def attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Scaled dot-product attention (B, heads, L, d) → (B, L, heads, d): ``transformers``' sdpa, except
    while training on the CPU with dropout, where softmax(q kᵀ · scaling + mask) has its probabilities
    dropped by :func:`mask_dropout` before multiplying ``value``. ``attention_mask`` is sdpa's (True:
    may attend); a fully masked row (a padding position) attends uniformly instead of producing NaN."""
    if not (module.training and dropout > 0.0 and query.device.type == "cpu"):
        return sdpa_attention_forward(
            module,
            query,
            key,
            value,
            attention_mask,
            dropout=dropout,
            scaling=scaling,
            is_causal=is_causal,
            **kwargs,
        )
    scores = query @ key.transpose(-2, -1) * (query.shape[-1] ** -0.5 if scaling is None else scaling)
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    allowed = attention_mask
    if allowed is None and causal and query.shape[2] > 1:
        allowed = torch.ones(query.shape[2], key.shape[2], dtype=torch.bool, device=query.device).tril()
    if allowed is not None and allowed.dtype == torch.bool:
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    elif allowed is not None:
        scores = scores + allowed
    weights = mask_dropout(scores.softmax(-1), dropout)
    return (weights @ value).transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION, attention)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)


def use_mask_dropout(model: nn.Module) -> None:
    """Swap every ``nn.Dropout`` of ``model`` for a :class:`MaskDropout` and send the attention of every
    ``transformers`` model inside it that uses sdpa through :func:`attention`; nothing under
    ``MTREC_DROPOUT=torch``. Weights and state dicts are untouched."""
    if dropout_mode() == "torch":
        return
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, MaskDropout(child.p, child.inplace).train(child.training))
        if isinstance(parent, PreTrainedModel) and parent.config._attn_implementation == "sdpa":
            parent.set_attn_implementation(ATTENTION)
