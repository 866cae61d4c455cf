"""Notebook 02b's recommender: 02's causal model made text-aware, and what its items learned.

The text-aware model is 02's causal model — the same encoder shape, side information, seen-item bias
and training engine — whose items are represented by a frozen text embedding t_i from a pretrained
language model through a learned projection P, plus a trainable id delta whose norm is bounded
relative to it, and whose output bias gets a text part beside the id bias:

    e_i = P t_i + m_i δ_i,   ‖δ_i‖ ≤ ρ ‖P t_i‖,   b_i = w·t_i + m_i β_i,   δ_i = β_i = 0 at the start,

so an item never seen in training still has the vector P t_i and the bias w·t_i, in the input and in
the output layer alike. During training a share ``id_dropout`` of the items drops its id part
(m_i = 0: DropoutNet), so that the text alone must place them. Any difference from 02's id-only
model is the text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mtrec_helpers.pretraining.models import SeqRecConfig, SeqRecModel


class TextAwareConfig(SeqRecConfig):
    """02's config plus the text-aware items' bound ρ and id dropout (``text_dim`` > 0: the text width)."""

    model_type = "mtrec_text_aware"

    def __init__(self, text_delta: float = 1.0, id_dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.text_delta = text_delta  # ρ: the bound on ‖δ_i‖ relative to ‖P t_i‖
        self.id_dropout = id_dropout  # share of items whose id part (δ_i, β_i) a training batch drops

    @classmethod
    def of(cls, base: SeqRecConfig, text_dim: int, text_delta: float, id_dropout: float) -> TextAwareConfig:
        """``base`` (02's config) with text-aware items over text vectors of width ``text_dim``."""
        settings = {
            k: v for k, v in base.to_dict().items() if k not in ("model_type", "transformers_version")
        }
        return cls(**{**settings, "text_dim": text_dim}, text_delta=text_delta, id_dropout=id_dropout)


class TextAwareModel(SeqRecModel):
    """02's model with text-aware items (see the module docstring)."""

    config: TextAwareConfig
    config_class = TextAwareConfig

    def __init__(self, config: TextAwareConfig) -> None:
        if not config.text_dim:
            raise ValueError("a text-aware model needs the width of its item text vectors (text_dim > 0)")
        super().__init__(config)
        with torch.no_grad():
            self.bert.embeddings.word_embeddings.weight.zero_()  # δ starts at zero: e_i = P t_i
            self.text_bias.weight.zero_()

    def add_item_layers(self, config: TextAwareConfig) -> None:
        """The projection P of the text vectors and the text bias w."""
        self.text_projection = nn.Linear(config.text_dim, config.hidden_size, bias=False)
        self.text_bias = nn.Linear(config.text_dim, 1, bias=False)

    def id_keep(self) -> torch.Tensor | None:
        """For one training batch, which items keep their id part (V,) bool: a share ``id_dropout``
        drops δ_i and β_i, so that the text alone must place them — the way a cold item is scored
        (DropoutNet). None outside training."""
        if not (self.training and self.config.id_dropout > 0):
            return None
        return torch.rand(self.config.vocab_size, device=self.device) >= self.config.id_dropout

    def id_vectors(self, items: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """P t_i + m_i δ_i, with ‖δ_i‖ ≤ ρ‖P t_i‖ (δ_i is the id embedding, m_i = ``keep``)."""
        delta = super().id_vectors(items, keep)
        text = self.text_projection(self.item_text[items])
        limit = self.config.text_delta * text.norm(dim=-1, keepdim=True)
        return text + delta * (limit / delta.norm(dim=-1, keepdim=True).clamp(min=1e-12)).clamp(max=1.0)

    def item_bias(self, items: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """w·t_i + m_i β_i: an item without interactions (or whose id part ``keep`` drops) gets the
        popularity its text predicts."""
        bias = super().item_bias(items, keep)
        if keep is not None:
            bias = bias * keep[items]
        return bias + self.text_bias(self.item_text[items]).squeeze(-1)

    def tied_logits(self, states: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Scores against the text-aware item table and biases (the tied output layer of e_i)."""
        items = torch.arange(self.config.vocab_size, device=states.device)
        return states @ self.item_embeddings(items, keep).T + self.item_bias(items, keep)

    def sampled_logits(
        self, states: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor, keep: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The targets' and the shared negatives' logits against the text-aware items."""
        positive = (states * self.item_embeddings(targets, keep)).sum(-1) + self.item_bias(targets, keep)
        negative = states @ self.item_embeddings(negatives, keep).T + self.item_bias(negatives, keep)
        return positive, negative


def text_aware_config(
    encoder_dir: Path, text_dim: int, delta: float, id_dropout: float = 0.0
) -> SeqRecConfig:
    """The config of the model in ``encoder_dir`` (02's causal model) with text-aware items over text
    vectors of width ``text_dim``, the δ bound ρ = ``delta`` and the id dropout; ``text_dim`` = 0:
    02's id-only config, unchanged."""
    config = SeqRecConfig.from_pretrained(Path(encoder_dir))
    return TextAwareConfig.of(config, text_dim, delta, id_dropout) if text_dim else config


def model_class(config: SeqRecConfig) -> type[SeqRecModel]:
    """The model a config builds: text-aware for a :class:`TextAwareConfig`, else 02's."""
    return TextAwareModel if isinstance(config, TextAwareConfig) else SeqRecModel


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
