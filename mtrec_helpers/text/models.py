"""Notebook 02b's recommenders: 02's causal model made text-aware, and what its items learned.

The text-aware model is 02's causal model — the same encoder shape, side information, seen-item
bias and training engine — whose item vectors are e_i = P t_i + δ_i (see
:mod:`mtrec_helpers.pretraining.models`), so any difference from 02's id-only model is the text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from mtrec_helpers.pretraining.models import SeqRecConfig, SeqRecModel


def text_aware_config(
    encoder_dir: Path, text_dim: int, delta: float, id_dropout: float = 0.0
) -> SeqRecConfig:
    """The config of the model in ``encoder_dir`` (02's causal model) with text-aware items over text
    vectors of width ``text_dim``, the δ bound ρ = ``delta`` and the id dropout; ``text_dim`` = 0:
    the id-only one."""
    config = SeqRecConfig.from_pretrained(Path(encoder_dir))
    config.text_dim, config.text_items, config.text_delta = text_dim, text_dim > 0, delta
    config.id_dropout = id_dropout if text_dim else 0.0
    return config


@torch.no_grad()
def item_vectors(model: SeqRecModel) -> np.ndarray:
    """Every vocabulary index's item vector e_i (V, H) as the model uses it, L2-normalised."""
    table = model.item_embeddings(torch.arange(model.config.vocab_size, device=model.device))
    return torch.nn.functional.normalize(table.float(), dim=-1).cpu().numpy()


@torch.no_grad()
def delta_share(model: SeqRecModel) -> np.ndarray:
    """‖δ_i‖ / ‖P t_i‖ per vocabulary index (V,): how far training moved each item from its text
    (0: the text alone, ρ: as far as the bound allows)."""
    items = torch.arange(model.config.vocab_size, device=model.device)
    text = model.text_projection(model.item_text[items])
    raw = model.bert.embeddings.word_embeddings(items)
    limit = model.config.text_delta * text.norm(dim=-1)
    delta = torch.minimum(raw.norm(dim=-1), limit)
    return (delta / text.norm(dim=-1).clamp(min=1e-12)).cpu().numpy()


def choose_id_dropout(valid_ndcg: Mapping[float, float]) -> float:
    """The ``ID_DROPOUT`` candidate with the best validation NDCG@10 (chosen on validation, never on
    test). A candidate scored NaN — no validation user in the slice it is chosen for — never wins;
    when every score is NaN there is nothing to choose on and the first candidate is kept."""
    scored = {p: v for p, v in valid_ndcg.items() if not math.isnan(v)}
    return max(scored, key=scored.__getitem__) if scored else next(iter(valid_ndcg))
