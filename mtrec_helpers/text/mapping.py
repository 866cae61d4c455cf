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
from collections.abc import Iterator, Sequence
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
    """The frozen id model's training positions: transformed states and next items of all ``count``
    positions, or (``index``, sorted) only of those a budgeted training reads."""

    states: torch.Tensor
    targets: torch.Tensor
    count: int = -1  # every position's number (-1: len(targets), all held)
    index: torch.Tensor | None = None  # (n,) the held positions' numbers; None: all

    def rows(self, positions: torch.Tensor) -> torch.Tensor:
        """Where ``positions`` (numbers in 0..count-1, all held) are in ``states`` and ``targets``."""
        return positions if self.index is None else torch.searchsorted(self.index, positions)

    def __len__(self) -> int:
        return len(self.targets) if self.count < 0 else self.count


def usable_sequences(model: SeqRecModel, sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The part of each sequence with a next item that the model reads: its last ``max_len`` + 1
    items (a sequence of n gives n − 1 positions, numbered on from the previous one's)."""
    max_len = model.config.max_len
    return [np.asarray(s[-(max_len + 1) :], dtype=np.int64) for s in sequences if len(s) > 1]


def n_positions(model: SeqRecModel, sequences: Sequence[np.ndarray]) -> int:
    """How many next-item positions ``sequences`` give the model."""
    return sum(len(s) - 1 for s in usable_sequences(model, sequences))


@torch.no_grad()
def training_positions(
    model: SeqRecModel, sequences: Sequence[np.ndarray], batch: int = 128, read: np.ndarray | None = None
) -> Positions:
    """Every next-item position of ``sequences`` (each one's last ``max_len`` + 1 items) as the frozen
    ``model`` sees it: the state its output layer scores (after the head's transform) and the target.
    ``read`` (sorted position numbers): only the sequences holding them are encoded, those kept."""
    max_len, states, targets = model.config.max_len, [], []
    usable = usable_sequences(model, sequences)
    starts = np.cumsum([0, *(len(s) - 1 for s in usable)])
    if read is not None:
        owners = np.unique(np.searchsorted(starts, read, side="right") - 1)
        usable = [usable[o] for o in owners]
        held = np.concatenate([np.arange(starts[o], starts[o + 1]) for o in owners])
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
    if read is None:
        return Positions(torch.cat(states), torch.cat(targets))
    kept = torch.from_numpy(np.searchsorted(held, read))
    return Positions(
        torch.cat(states)[kept], torch.cat(targets)[kept], int(starts[-1]), torch.from_numpy(read)
    )


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
    x = torch.as_tensor(features, dtype=torch.float32)
    embeddings, biases = item_rows(model)
    mapper = new_mapper(x.shape[1], embeddings.shape[1], config)
    optimiser = torch.optim.Adam(mapper.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    for batch, handed in steps(len(positions), len(x), config):  # handed: D, this batch's items placed by f
        rows = positions.rows(batch)
        mapped = mapper(x)
        table = torch.where(handed[:, None], mapped[:, :-1], embeddings)
        bias = torch.where(handed, mapped[:, -1], biases)
        logits = (positions.states[rows] @ table.T + bias).masked_fill(exclude, float("-inf"))
        loss = nn.functional.cross_entropy(logits, positions.targets[rows])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return mapper.eval()


def new_mapper(features: int, hidden: int, config: MapperConfig) -> nn.Linear:
    """A mapper of zeros, made after seeding the RNG its training then draws from (:func:`steps`)."""
    torch.manual_seed(config.seed)
    mapper = nn.Linear(features, hidden + 1)  # its initialisation draws, as it always did
    nn.init.zeros_(mapper.weight), nn.init.zeros_(mapper.bias)
    return mapper


def steps(count: int, n_items: int, config: MapperConfig) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Each training step's positions (of ``count``) and the items handed to the mapper, drawn from the
    global RNG in the order training uses them (a permutation per epoch, then one draw per batch)."""
    for _ in range(config.epochs):
        batches = torch.randperm(count).split(config.batch_size)
        for batch in batches[: config.max_batches or None]:
            yield batch, torch.rand(n_items) < config.dropout


def positions_read(features: int, hidden: int, count: int, n_items: int, config: MapperConfig) -> np.ndarray:
    """The sorted positions a mapper's training reads under a step budget: its draws replayed (the RNG
    is left as a training would leave it)."""
    new_mapper(features, hidden, config)
    return np.unique(np.concatenate([batch.numpy() for batch, _ in steps(count, n_items, config)]))


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
