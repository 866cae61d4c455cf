"""Dual-path items: warm items keep the id model's rows, and a mapper trained on the frozen id model
writes the rows the data could not — those of items without interactions.

The id model (02's causal model) scores item j for a user state h by h·e_j + b_j. An item absent from
training keeps its random e_j and b_j = 0: it is ranked by noise. The mapper f(x) = W x + c predicts an
item's whole row (e_j, b_j) from its features x_j — a language model's text vector, or genres and
decade — and is trained the way a cold item will be used: the id model frozen, on its own training
positions (state h_t, next item y_t), each batch hands a random share p of the items to f
(DropoutNet, Volkovs et al. 2017, with the recommender frozen as in Heater and ALDI):

    L(f) = − Σ_t log softmax_j( h_t·ẽ_j + b̃_j )[y_t],   (ẽ_j, b̃_j) = f(x_j) if j ∈ D else (e_j, b_j),
    D ~ Bernoulli(p) per batch,

so a mapped item's score is on the scale of the trained ones it competes with (its predicted bias
is its predicted popularity). At serving, item j's rows blend the two by its evidence, n_j training
interactions: w_j = n_j / (n_j + k), rows = w_j (e_j, b_j) + (1 − w_j) f(x_j). An item never seen is
placed by f alone; with k = 0 every trained item keeps exactly its id rows, so warm accuracy cannot
move; k > 0 lends rare items some of the text (chosen on validation).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mtrec_helpers.pretraining.models import SeqRecModel
from mtrec_helpers.pretraining.sequences import IGNORE


@dataclass(frozen=True)
class MapperConfig:
    """How the mapper trains: the share p of items handed to it per batch, and the optimiser."""

    dropout: float = 0.5
    epochs: int = 10
    lr: float = 1e-2
    weight_decay: float = 1e-4
    batch_size: int = 2048
    seed: int = 0
    max_batches: int = 0  # 0: every batch of an epoch; N: only the first N (MAX_STEPS, a step budget)


@dataclass
class Positions:
    """The frozen id model's training positions: transformed states (N, H) and next items (N,)."""

    states: torch.Tensor
    targets: torch.Tensor


@torch.no_grad()
def training_positions(model: SeqRecModel, sequences: Sequence[np.ndarray], batch: int = 128) -> Positions:
    """Every next-item position of ``sequences`` (each one's last ``max_len`` + 1 items) as the frozen
    ``model`` sees it: the state its output layer scores (after the head's transform) and the target."""
    max_len, states, targets = model.config.max_len, [], []
    usable = [np.asarray(s[-(max_len + 1) :], dtype=np.int64) for s in sequences if len(s) > 1]
    for start in range(0, len(usable), batch):
        part = usable[start : start + batch]
        inputs = torch.zeros((len(part), max_len), dtype=torch.long)
        labels = torch.full((len(part), max_len), IGNORE, dtype=torch.long)
        for row, sequence in enumerate(part):
            inputs[row, max_len - len(sequence) + 1 :] = torch.from_numpy(sequence[:-1])
            labels[row, max_len - len(sequence) + 1 :] = torch.from_numpy(sequence[1:])
        hidden, _ = model.encode(inputs.to(model.device))
        rows, columns = torch.nonzero(labels != IGNORE, as_tuple=True)
        states.append(model.cls.predictions.transform(hidden[rows, columns.to(hidden.device)]).float().cpu())
        targets.append(labels[rows, columns])
    return Positions(torch.cat(states), torch.cat(targets))


def item_rows(model: SeqRecModel) -> tuple[torch.Tensor, torch.Tensor]:
    """The id model's output rows: item embeddings e (V, H) and biases b (V,), detached, on the CPU."""
    return (
        model.bert.embeddings.word_embeddings.weight.detach().float().cpu().clone(),
        model.cls.predictions.bias.detach().float().cpu().clone(),
    )


def train_mapper(
    features: np.ndarray,
    model: SeqRecModel,
    positions: Positions,
    exclude: torch.Tensor,
    config: MapperConfig,
) -> nn.Linear:
    """f: features (V, D) → rows (H + 1) trained against the frozen ``model`` (module docstring);
    ``exclude`` (V,) marks the items out of the softmax (PAD, MASK, items absent from training)."""
    torch.manual_seed(config.seed)
    x = torch.as_tensor(features, dtype=torch.float32)
    embeddings, biases = item_rows(model)
    mapper = nn.Linear(x.shape[1], embeddings.shape[1] + 1)
    nn.init.zeros_(mapper.weight), nn.init.zeros_(mapper.bias)
    optimiser = torch.optim.Adam(mapper.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    for _ in range(config.epochs):
        batches = torch.randperm(len(positions.targets)).split(config.batch_size)
        for batch in batches[: config.max_batches or None]:
            handed = torch.rand(len(x)) < config.dropout  # D: this batch's items placed by f
            mapped = mapper(x)
            table = torch.where(handed[:, None], mapped[:, :-1], embeddings)
            bias = torch.where(handed, mapped[:, -1], biases)
            logits = (positions.states[batch] @ table.T + bias).masked_fill(exclude, float("-inf"))
            loss = nn.functional.cross_entropy(logits, positions.targets[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return mapper.eval()


@torch.no_grad()
def with_mapped_items(
    model: SeqRecModel, mapper: nn.Linear, features: np.ndarray, counts: np.ndarray, prior: float
) -> SeqRecModel:
    """A copy of ``model`` whose item rows blend its own with the mapper's by evidence: w_j = n_j /
    (n_j + ``prior``) with n_j = ``counts`` (training interactions per vocabulary index); an item
    with n_j = 0 takes the mapper's rows, and ``prior`` = 0 leaves every other item untouched (PAD and
    MASK always are)."""
    mapped = mapper(torch.as_tensor(features, dtype=torch.float32))
    n = torch.as_tensor(counts, dtype=torch.float32)
    weight = torch.where(n > 0, n / (n + prior), torch.zeros_like(n))
    weight[[0, model.config.mask_id]] = 1.0  # PAD and MASK are not items
    embeddings, biases = item_rows(model)
    blended = copy.deepcopy(model)
    rows = weight[:, None] * embeddings + (1 - weight[:, None]) * mapped[:, :-1]
    blended.bert.embeddings.word_embeddings.weight.copy_(rows.to(model.device))
    blended.cls.predictions.bias.copy_((weight * biases + (1 - weight) * mapped[:, -1]).to(model.device))
    return blended.eval()
