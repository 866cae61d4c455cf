"""Sequential recommenders built from a `transformers` BERT config with our item vocabulary.

One class serves both objectives:

- ``masked`` (BERT4Rec): bidirectional self-attention; random items are replaced by [MASK] and
  predicted; for next-item prediction a [MASK] is appended to the history.
- ``causal`` (SASRec-style): the same encoder with a causal attention mask (``is_decoder``);
  every position predicts the next item with a full softmax over the catalogue.

The output layer is tied to the item embeddings. Optional side information adds a projection of
each item's genres and an embedding of its release decade to the item embedding. An optional
*seen-item bias* adds one learned number to the score of every item already in the model's input:
data without repeat consumption (nobody rates a movie twice) teach it a penalty, data with repeats
a bonus. Without it, tied embeddings make a Transformer recommend what the user just watched. Saved with
``save_pretrained`` (config + safetensors, side-information tables included), restored with
``SeqRecModel.from_pretrained`` — no training state needed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertModel
from transformers.models.bert.modeling_bert import BertOnlyMLMHead, BertPreTrainedModel

from mtrec_helpers.core.chunked import chunked_cross_entropy
from mtrec_helpers.core.device import autocast
from mtrec_helpers.core.sampled import sampled_cross_entropy
from mtrec_helpers.pretraining.sequences import IGNORE, next_item_inputs

OBJECTIVES = ("masked", "causal")

Seen = tuple[torch.Tensor, torch.Tensor]
"""Items already in a model's input: the distinct (row, item) pairs, two index tensors."""


def catalogue_columns(items: torch.Tensor, size: int) -> torch.Tensor:
    """(size,): each item's column among ``items`` (C,), in their order; −1 for an item not among them."""
    column = torch.full((size,), -1, dtype=torch.long, device=items.device)
    column[items] = torch.arange(len(items), device=items.device)
    return column


class SeqRecConfig(BertConfig):
    """A BERT config plus the recommender's objective and side-information sizes."""

    model_type = "mtrec_seqrec"

    def __init__(
        self,
        objective: str = "causal",
        side_info: bool = False,
        n_genres: int = 0,
        n_year_buckets: int = 0,
        seen_bias: bool = False,
        text_dim: int = 0,
        **kwargs,
    ) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f"objective={objective!r}; expected one of {OBJECTIVES}")
        kwargs.setdefault("is_decoder", objective == "causal")
        kwargs.setdefault("use_cache", False)
        kwargs.setdefault("pad_token_id", 0)
        kwargs.setdefault("type_vocab_size", 1)
        super().__init__(**kwargs)
        self.objective = objective
        self.side_info = side_info
        self.n_genres = n_genres
        self.n_year_buckets = n_year_buckets
        self.seen_bias = seen_bias
        self.text_dim = text_dim  # width of the frozen item text vectors stored in the model (0: none)

    @property
    def n_items(self) -> int:
        """Real items: indices 1..n_items."""
        return self.vocab_size - 2

    @property
    def mask_id(self) -> int:
        """The [MASK] index (the last one)."""
        return self.vocab_size - 1

    @property
    def max_len(self) -> int:
        """Longest input sequence."""
        return self.max_position_embeddings


def build_config(
    n_items: int,
    objective: str,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 2,
    max_len: int = 200,
    dropout: float = 0.2,
    side_info: bool = False,
    n_genres: int = 0,
    n_year_buckets: int = 0,
    seen_bias: bool = False,
) -> SeqRecConfig:
    """A config for ``n_items`` items (vocabulary: PAD, the items, MASK)."""
    return SeqRecConfig(
        objective=objective,
        side_info=side_info,
        seen_bias=seen_bias,
        n_genres=n_genres,
        n_year_buckets=n_year_buckets,
        vocab_size=n_items + 2,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        max_position_embeddings=max_len,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )


class SeqRecModel(BertPreTrainedModel):
    """BERT encoder + tied item head (+ optional genre/decade side information)."""

    config: SeqRecConfig
    config_class = SeqRecConfig
    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: SeqRecConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        hidden = config.hidden_size
        self.register_buffer("item_genres", torch.zeros(config.vocab_size, max(config.n_genres, 1)))
        self.register_buffer("item_years", torch.zeros(config.vocab_size, dtype=torch.long))
        if config.side_info:
            self.genre_embeddings = nn.Linear(max(config.n_genres, 1), hidden, bias=False)
            self.year_embeddings = nn.Embedding(config.n_year_buckets + 1, hidden, padding_idx=0)
        if config.seen_bias:
            self.seen_weight = nn.Parameter(torch.zeros(1))
        if config.text_dim:
            self.register_buffer("item_text", torch.zeros(config.vocab_size, config.text_dim))
        self.add_item_layers(config)
        self.post_init()

    def add_item_layers(self, config: SeqRecConfig) -> None:
        """Where a subclass adds the layers of its own item representation, so that they are created
        and initialised in the same pass as the rest (02's model has none)."""

    def set_side_information(self, genres: np.ndarray, year_buckets: np.ndarray) -> None:
        """Store each item's multi-hot genres (V, n_genres) and decade bucket (V,) in the model."""
        self.item_genres.copy_(torch.as_tensor(genres, dtype=torch.float32))
        self.item_years.copy_(torch.as_tensor(year_buckets, dtype=torch.long))

    def set_item_text(self, vectors: np.ndarray | torch.Tensor) -> None:
        """Store each vocabulary index's frozen text vector (V, text_dim); PAD and MASK get zeros."""
        table = torch.as_tensor(vectors, dtype=torch.float32).clone()
        table[[0, self.config.mask_id]] = 0.0
        self.item_text.copy_(table)

    def item_embeddings(self, items: torch.Tensor) -> torch.Tensor:
        """Item embeddings: the id embedding, plus genre and decade embeddings when side information
        is on."""
        embedded = self.bert.embeddings.word_embeddings(items)
        if self.config.side_info:
            embedded = embedded + self.genre_embeddings(self.item_genres[items])
            embedded = embedded + self.year_embeddings(self.item_years[items])
        return embedded

    def sampled_logits(
        self, states: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The targets' logits (N,) and the shared negatives' (N, K), from the tied decoder."""
        bias = self.cls.predictions.decoder.bias
        weight = self.cls.predictions.decoder.weight
        return (states * weight[targets]).sum(-1) + bias[targets], states @ weight[negatives].T + bias[
            negatives
        ]

    def encode(
        self,
        input_ids: torch.Tensor,
        output_attentions: bool = False,
        extra_embeddings: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """Hidden states (B, L, H) of left-padded item sequences, and attentions if asked.

        Positions count from the right (the last item is always at ``max_len - 1``), so a batch
        padded only to its longest sequence sees the same positions as a full-length one.
        ``extra_embeddings`` (B, L, H), e.g. context features, are added to the item embeddings.
        """
        length = input_ids.shape[1]
        positions = torch.arange(self.config.max_len - length, self.config.max_len, device=input_ids.device)
        embedded = self.item_embeddings(input_ids)
        if extra_embeddings is not None:
            embedded = embedded + extra_embeddings
        output = self.bert(
            inputs_embeds=embedded,
            attention_mask=(input_ids != 0).long(),
            position_ids=positions[None, :],
            output_attentions=output_attentions,
        )
        return output.last_hidden_state, output.attentions

    def _visible(
        self, input_ids: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The chosen rows' items (N, L) and which of them each (row, position) sees: earlier
        positions for the causal objective, the whole row for the masked one."""
        items = input_ids[rows]
        visible = (items != 0) & (items != self.config.mask_id)
        if self.config.objective == "causal":
            visible &= torch.arange(items.shape[1], device=items.device)[None, :] <= positions[:, None]
        return items, visible

    def seen_items(self, input_ids: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor) -> Seen:
        """The items visible to each chosen (row, position) of ``input_ids``, as the distinct pairs
        (index into ``rows``, item): a list, not an (N, V) indicator (a fifth of the time, by hand)."""
        items, visible = self._visible(input_ids, rows, positions)
        vocab = self.config.vocab_size
        pairs = (torch.arange(len(rows), device=items.device)[:, None] * vocab + items)[visible].unique()
        return pairs // vocab, pairs % vocab

    def sampled_loss(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor,
        negatives: torch.Tensor,
        log_q: torch.Tensor,
        exclude: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Sampled-softmax next-item loss at the labelled positions, K shared ``negatives`` drawn
        from q (:mod:`mtrec_helpers.core.sampled`): (N, K) logits instead of (N, V). ``exclude`` (V,)
        marks items withheld from training (the cold-start protocol): never a negative."""
        hidden, _ = self.encode(input_ids)
        rows, positions = torch.nonzero(labels != IGNORE, as_tuple=True)
        targets = labels[rows, positions]
        states = self.cls.predictions.transform(hidden[rows, positions])
        positive, negative = self.sampled_logits(states, targets, negatives)
        if exclude is not None:  # items withheld from training are never a negative
            negative = negative.masked_fill(exclude[negatives], float("-inf"))
        if self.config.seen_bias:
            items, visible = self._visible(input_ids, rows, positions)
            positive = positive + self.seen_weight * ((items == targets[:, None]) & visible).any(1).float()
            unique, inverse = negatives.unique(return_inverse=True)
            column = torch.full((self.config.vocab_size,), len(unique), device=items.device)
            column[unique] = torch.arange(len(unique), device=items.device)
            hits = torch.where(visible, column[items], len(unique))
            seen = torch.zeros(len(rows), len(unique) + 1, device=items.device).scatter_(1, hits, 1.0)
            negative = negative + self.seen_weight * seen[:, inverse]
        return sampled_cross_entropy(positive, negative, targets, negatives, log_q)

    def scores(
        self, hidden: torch.Tensor, seen: Seen | None = None, items: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scores over the whole vocabulary from hidden states (N, H) → (N, V) through the tied output
        layer (the id embeddings as the decoder, plus each item's bias), plus the learned
        seen-item bias at the (row, item) pairs of ``seen`` (:meth:`seen_items`). With ``items``
        (C,), the scores of those items alone, in that order: (N, C), the same columns computed
        without the others (the seen pairs of other items are dropped)."""
        decoder, state = self.cls.predictions.decoder, self.cls.predictions.transform(hidden)
        if items is None:
            logits = decoder(state)
        else:
            logits = F.linear(state, decoder.weight[items], decoder.bias[items])
            if seen is not None:
                column = catalogue_columns(items, self.config.vocab_size)
                kept = column[seen[1]] >= 0
                seen = (seen[0][kept], column[seen[1][kept]])
        if self.config.seen_bias and seen is not None:
            bias = self.seen_weight.to(logits.dtype).expand(len(seen[0]))
            # in place: the decoder's output is needed by no backward pass
            logits = logits.index_put_(seen, bias, accumulate=True)
        return logits

    def loss(
        self, input_ids: torch.Tensor, labels: torch.Tensor, exclude: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Full-softmax cross-entropy at the labelled positions (labels == -100 are skipped), over
        the catalogue less ``exclude`` (V,) when given (items withheld from training)."""
        hidden, _ = self.encode(input_ids)
        rows, positions = torch.nonzero(labels != IGNORE, as_tuple=True)
        return self.next_item_loss(input_ids, hidden, rows, positions, labels[rows, positions], exclude)

    def next_item_loss(
        self,
        input_ids: torch.Tensor,
        hidden: torch.Tensor,
        rows: torch.Tensor,
        positions: torch.Tensor,
        targets: torch.Tensor,
        exclude: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Full-softmax cross-entropy of the states ``hidden`` (B, L, H) at (rows, positions), computed
        in chunks of the catalogue's logits (:func:`~mtrec_helpers.core.chunked.chunked_cross_entropy`);
        items marked in ``exclude`` (V,) are left out of the softmax: their columns are not computed."""
        states = hidden[rows, positions]
        items = None if exclude is None else torch.nonzero(~exclude).squeeze(1)
        if items is not None:  # the targets' columns among the items kept
            targets = catalogue_columns(items, self.config.vocab_size)[targets]

        def scores(part: slice) -> torch.Tensor:
            seen = self.seen_items(input_ids, rows[part], positions[part]) if self.config.seen_bias else None
            return self.scores(states[part], seen, items)

        return chunked_cross_entropy(scores, targets, self.config.vocab_size if items is None else len(items))

    def next_item_scores(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The user representation (B, H) at the last position and its scores (B, V)."""
        hidden, _ = self.encode(input_ids)
        last = input_ids.shape[1] - 1
        rows = torch.arange(len(input_ids), device=input_ids.device)
        seen = (
            self.seen_items(input_ids, rows, torch.full_like(rows, last)) if self.config.seen_bias else None
        )
        return hidden[:, -1], self.scores(hidden[:, -1], seen)

    def learned_seen_bias(self) -> float | None:
        """The learned score offset for items already in the input (None when switched off)."""
        return float(self.seen_weight.detach()) if self.config.seen_bias else None

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Next-item scores (B, V) for left-padded inputs (see :meth:`next_item_inputs`)."""
        return self.next_item_scores(input_ids)[1]

    def next_item_inputs(self, sequences: Sequence[np.ndarray]) -> torch.Tensor:
        """Inputs whose last position predicts each sequence's next item."""
        mask_id = self.config.mask_id if self.config.objective == "masked" else None
        return next_item_inputs(sequences, self.config.max_len, mask_id).to(self.device)


def catalogue_scores(model: SeqRecModel, sequences: Sequence[np.ndarray]) -> torch.Tensor:
    """Next-item scores over the whole vocabulary (PAD and MASK included), shape (B, V)."""
    return model.next_item_scores(model.next_item_inputs(sequences))[1]


def scorer(model: SeqRecModel) -> Callable[[np.ndarray, list[np.ndarray]], torch.Tensor]:
    """An evaluator score function (users, histories) → catalogue scores, without gradients."""

    def score(users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        with torch.no_grad(), autocast(model.device):
            return catalogue_scores(model, histories).float()

    return score


def attention_weights(model: SeqRecModel, sequence: np.ndarray) -> np.ndarray:
    """Self-attention weights for one user's next-item input, shape (layers, heads, L, L)."""
    inputs = model.next_item_inputs([sequence])
    inputs = inputs[:, (inputs[0] != 0).nonzero()[0, 0] :]  # drop the padding
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")  # the fused kernels do not return weights
    try:
        with torch.no_grad():
            _, attentions = model.encode(inputs, output_attentions=True)
    finally:
        model.set_attn_implementation(previous)
    return torch.stack([a[0] for a in attentions]).float().cpu().numpy()
