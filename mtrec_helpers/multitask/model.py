"""The multi-task recommender: the pretrained sequence encoder plus one head per task.

:class:`MultiTaskModel` *is* a :class:`~mtrec_helpers.pretraining.models.SeqRecModel` (same encoder, same tied
next-item output, same seen-item bias) with

- input features: the rating of each history interaction and the time context of the interaction
  being predicted (hour, weekday, time since the previous interaction), as embeddings added to the
  item embeddings. They start at zero, so finetuning starts from exactly the pretrained model;
- a sharing layer: ``shared`` (shared-bottom: every head reads the encoder state) or ``mmoe``
  (Ma et al. 2018: experts on the encoder state, one softmax gate per task; residual, so each
  task's state is the encoder state plus its mixture of experts);
- heads: rating (regression) and like (binary) from the task state and the predicted item's
  embedding; genres of the next item (multi-label) from the task state alone; user profile (age
  bucket, gender, occupation) from the state at the last position;
- optionally (``user_text``) the user's *interests in words*: the mean text embedding (notebook 02b's
  pretrained language model) of the items so far, projected and added to the genre and profile
  heads' inputs. The projection starts at zero, like the other new inputs.

``save_pretrained`` writes heads and encoder together; ``MultiTaskModel.from_pretrained`` restores
them. :func:`from_encoder` starts one from a pretrained ``SeqRecModel`` folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import logging as hf_logging

from mtrec_helpers.multitask.tasks import GAP_BUCKETS, TASKS, Batch, TaskData, check_tasks
from mtrec_helpers.pretraining.models import SeqRecConfig, SeqRecModel
from mtrec_helpers.pretraining.sequences import IGNORE

SHARING = ("shared", "mmoe")
AUX_HEAD_PREFIXES = (
    "rating_head.", "rating_item_bias.", "like_", "genre_head.", "profile_heads.", "user_text_projection.",
)  # fmt: skip
NEW_PREFIXES = (
    "rating_",
    "like_head.",
    "like_item_bias.",
    "genre_head.",
    "profile_heads.",
    "experts.",
    "gates.",
    "user_text_projection.",
)
HISTORY_FEATURES = 2  # the user's mean rating so far (minus the global mean) and log history length
AUXILIARY = tuple(t for t in TASKS if t != "next")


class MultiTaskConfig(SeqRecConfig):
    """A :class:`SeqRecConfig` plus the tasks, the sharing layer and the label vocabularies."""

    model_type = "mtrec_multitask"

    def __init__(
        self,
        tasks: Sequence[str] = TASKS,
        sharing: str = "shared",
        n_experts: int = 4,
        context: bool = True,
        rating_input: bool = True,
        n_rating_buckets: int = 11,
        profile_classes: Sequence[int] = (0, 0, 0),
        rating_mean: float = 0.0,
        user_text: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if user_text and not self.text_dim:
            raise ValueError("user_text needs the item text vectors: give text_dim (their width)")
        self.user_text = user_text
        if sharing not in SHARING:
            raise ValueError(f"SHARING={sharing!r}; choose one of {SHARING}")
        self.tasks = list(check_tasks(tasks))
        self.sharing = sharing
        self.n_experts = n_experts
        self.context = context
        self.rating_input = rating_input
        self.n_rating_buckets = n_rating_buckets
        self.profile_classes = list(profile_classes)
        self.rating_mean = rating_mean


def _mlp(inputs: int, hidden: int, outputs: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, outputs)
    )


class MultiTaskModel(SeqRecModel):
    """Encoder + input features + sharing layer + task heads (see the module docstring)."""

    config: MultiTaskConfig
    config_class = MultiTaskConfig

    def __init__(self, config: MultiTaskConfig) -> None:
        super().__init__(config)
        if config.objective != "causal":
            raise ValueError(
                "multi-task finetuning trains every position of a causal encoder; the pretrained model "
                f"has objective={config.objective!r}. Use the 'causal' pretrained model (ENCODER='causal')."
            )
        hidden, dropout = config.hidden_size, config.hidden_dropout_prob
        if config.context:
            self.hour_embeddings = nn.Embedding(25, hidden, padding_idx=0)
            self.weekday_embeddings = nn.Embedding(8, hidden, padding_idx=0)
            self.gap_embeddings = nn.Embedding(GAP_BUCKETS, hidden, padding_idx=0)
        if config.rating_input:
            self.rating_embeddings = nn.Embedding(config.n_rating_buckets, hidden, padding_idx=0)
        if config.sharing == "mmoe":
            self.experts = nn.ModuleList(
                _mlp(hidden, hidden, hidden, dropout) for _ in range(config.n_experts)
            )
            self.gates = nn.ModuleDict({t: nn.Linear(hidden, config.n_experts) for t in config.tasks})
        tasks = config.tasks
        for task in ("rating", "like"):
            if task in tasks:
                setattr(self, f"{task}_head", _mlp(2 * hidden + HISTORY_FEATURES, hidden, 1, dropout))
                setattr(self, f"{task}_item_bias", nn.Embedding(config.vocab_size, 1))
        if "genre" in tasks:
            self.genre_head = nn.Linear(hidden, max(config.n_genres, 1))
        if "profile" in tasks:
            self.profile_heads = nn.ModuleList(nn.Linear(hidden, n) for n in config.profile_classes)
        if config.user_text:
            self.user_text_projection = nn.Linear(config.text_dim, hidden, bias=False)
        self.post_init()

    def zero_new_inputs(self) -> None:
        """Zero the input-feature embeddings (so the model computes exactly what the encoder did)
        and the per-item biases of the rating and like heads."""
        with torch.no_grad():
            for name in (
                "hour_embeddings",
                "weekday_embeddings",
                "gap_embeddings",
                "rating_embeddings",
                "rating_item_bias",
                "like_item_bias",
                "user_text_projection",
            ):
                if hasattr(self, name):
                    getattr(self, name).weight.zero_()

    def set_priors(self, like_rate: float, genre_rates: torch.Tensor) -> None:
        """Start the like and genre heads at the training base rates (output bias = logit)."""
        with torch.no_grad():
            if "like" in self.config.tasks:
                self.like_head[-1].bias.fill_(float(torch.logit(torch.tensor(like_rate))))
            if "genre" in self.config.tasks:
                self.genre_head.bias.copy_(torch.logit(genre_rates.clamp(1e-4, 1 - 1e-4)))

    def new_parameters(self) -> list[nn.Parameter]:
        """Parameters finetuning adds: input features, heads, experts and gates (trained from scratch)."""
        return [p for name, p in self.named_parameters() if name.startswith(NEW_PREFIXES)]

    def aux_head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the auxiliary heads alone: training only these never moves next-item scores."""
        return [p for name, p in self.named_parameters() if name.startswith(AUX_HEAD_PREFIXES)]

    def input_features(self, batch: Batch) -> torch.Tensor | None:
        """Sum of the rating and time-context embeddings (B, L, H), or None without features."""
        parts = []
        if self.config.context:
            parts += [self.hour_embeddings(batch.hour), self.weekday_embeddings(batch.weekday)]
            parts.append(self.gap_embeddings(batch.gap))
        if self.config.rating_input:
            parts.append(self.rating_embeddings(batch.rating_in))
        return torch.stack(parts).sum(0) if parts else None

    def history_features(self, batch: Batch) -> torch.Tensor:
        """(B, L, 2): at each position the mean rating of the interactions so far minus the global
        mean, and log(1 + their number) / 5 — the user-bias signal, from inputs only."""
        rated = (batch.rating_in > 0).float()
        count = rated.cumsum(dim=1)
        total = (batch.rating_in.float() / 2).cumsum(dim=1)
        mean = torch.where(count > 0, total / count.clamp(min=1) - self.config.rating_mean, 0.0)
        return torch.stack([mean, torch.log1p(count) / 5], dim=-1)

    def user_interests(self, batch: Batch) -> torch.Tensor:
        """(B, L, H): at each position the projected mean text vector of the items so far (PAD and
        MASK have zero text vectors and do not count)."""
        text = self.item_text[batch.items]
        real = ((batch.items != 0) & (batch.items != self.config.mask_id)).cumsum(dim=1).clamp(min=1)
        return self.user_text_projection(text.cumsum(dim=1) / real.unsqueeze(-1))

    def task_states(self, hidden: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each task's representation from the encoder states (shared-bottom or MMoE)."""
        if self.config.sharing == "shared":
            return dict.fromkeys(self.config.tasks, hidden)
        experts = torch.stack([expert(hidden) for expert in self.experts], dim=-1)  # (..., H, E)
        return {
            task: hidden + (experts * torch.softmax(gate(hidden), dim=-1).unsqueeze(-2)).sum(-1)
            for task, gate in self.gates.items()
        }

    def labelled_states(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Each task's states (B, L, H) and the (rows, positions) of the labelled positions."""
        hidden, _ = self.encode(batch.items, extra_embeddings=self.input_features(batch))
        rows, positions = torch.nonzero(batch.next_item != IGNORE, as_tuple=True)
        return self.task_states(hidden), rows, positions

    def next_scores(
        self, batch: Batch, state: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """Catalogue scores (N, V) from the next-item states (B, L, H) at (rows, positions)."""
        seen = self.seen_items(batch.items, rows, positions) if self.config.seen_bias else None
        return self.scores(state[rows, positions], seen)

    def next_item_outputs(self, batch: Batch) -> torch.Tensor:
        """The next-item scores (N, V) alone (no auxiliary head is computed)."""
        states, rows, positions = self.labelled_states(batch)
        return self.next_scores(batch, states["next"], rows, positions)

    def task_outputs(
        self, batch: Batch, next_scores: bool = True, next_loss: bool = True
    ) -> dict[str, torch.Tensor]:
        """Predictions at the labelled positions: ``next`` scores (N, V), ``rating`` (N,), ``like``
        logits (N,), ``genre`` logits (N, G); ``profile_<k>`` logits at each row's last position.
        With ``next_scores=False`` the (N, V) scores are left out and ``next_loss`` (the chunked
        full-softmax cross-entropy) is given instead — unless ``next_loss=False`` too."""
        states, rows, positions = self.labelled_states(batch)
        target = batch.next_item[rows, positions]
        outputs: dict[str, torch.Tensor] = {}
        if "next" in states and next_scores:
            outputs["next"] = self.next_scores(batch, states["next"], rows, positions)
        elif "next" in states and next_loss:
            outputs["next_loss"] = self.next_item_loss(batch.items, states["next"], rows, positions, target)
        return {**outputs, **self.head_outputs(batch, states, rows, positions)}

    def head_outputs(
        self, batch: Batch, states: dict[str, torch.Tensor], rows: torch.Tensor, positions: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The auxiliary heads' predictions from the task ``states`` at the labelled (rows, positions):
        ``rating`` (N,), ``like`` logits (N,), ``genre`` logits (N, G), ``profile_<k>`` per row."""
        target = batch.next_item[rows, positions]
        outputs: dict[str, torch.Tensor] = {}
        if "rating" in states or "like" in states:
            item, history = self.item_embeddings(target), self.history_features(batch)[rows, positions]
        for task in ("rating", "like"):
            if task in states:
                joined = torch.cat([states[task][rows, positions], item, history], dim=-1)
                bias = getattr(self, f"{task}_item_bias")(target)
                outputs[task] = (getattr(self, f"{task}_head")(joined) + bias).squeeze(-1)
        if "rating" in outputs:
            outputs["rating"] = outputs["rating"] + self.config.rating_mean
        interests = self.user_interests(batch) if self.config.user_text else None
        if "genre" in states:
            genre_state = states["genre"][rows, positions]
            if interests is not None:
                genre_state = genre_state + interests[rows, positions]
            outputs["genre"] = self.genre_head(genre_state)
        if "profile" in states:
            last = states["profile"][:, -1] + (interests[:, -1] if interests is not None else 0.0)
            for k, head in enumerate(self.profile_heads):
                outputs[f"profile_{k}"] = head(last)
        return outputs

    def candidate_outputs(self, batch: Batch, items: torch.Tensor) -> dict[str, torch.Tensor]:
        """Rating and like logits (B, N) of the rating/like heads for N candidate ``items`` per
        row, at each row's last position (the next interaction)."""
        hidden, _ = self.encode(batch.items, extra_embeddings=self.input_features(batch))
        states = self.task_states(hidden)
        history = self.history_features(batch)[:, -1:, :].expand(-1, items.shape[1], -1)
        embedded = self.item_embeddings(items)
        outputs = {}
        for task in ("rating", "like"):
            if task in states:
                state = states[task][:, -1:, :].expand(-1, items.shape[1], -1)
                joined = torch.cat([state, embedded, history], dim=-1)
                head, bias = getattr(self, f"{task}_head"), getattr(self, f"{task}_item_bias")
                outputs[task] = (head(joined) + bias(items)).squeeze(-1)
        if "rating" in outputs:
            outputs["rating"] = outputs["rating"] + self.config.rating_mean
        return outputs

    def task_losses(self, batch: Batch, without_next: bool = False) -> dict[str, torch.Tensor]:
        """One loss per task: cross-entropy, MSE, binary cross-entropy, mean per-genre BCE, and the
        mean profile cross-entropy over attributes (0 when the batch has no profile label).
        ``without_next``: the next-item loss (the full softmax) is not computed but given as a
        constant 0 — for training that only moves the auxiliary heads, which it cannot reach."""
        outputs = self.task_outputs(batch, next_scores=False, next_loss=not without_next)
        labelled = batch.next_item != IGNORE
        target = batch.next_item[labelled]
        losses: dict[str, torch.Tensor] = {}
        if "next_loss" in outputs:
            losses["next"] = outputs["next_loss"]
        elif "next" in self.config.tasks:
            losses["next"] = torch.zeros((), device=target.device)
        if "rating" in outputs:
            losses["rating"] = F.mse_loss(outputs["rating"].float(), batch.rating[labelled])
        if "like" in outputs:
            losses["like"] = F.binary_cross_entropy_with_logits(outputs["like"].float(), batch.like[labelled])
        if "genre" in outputs:
            losses["genre"] = F.binary_cross_entropy_with_logits(
                outputs["genre"].float(), self.item_genres[target]
            )
        if "profile" in self.config.tasks:
            parts = [
                F.cross_entropy(
                    outputs[f"profile_{k}"].float(), batch.profile[:, k], ignore_index=-1, reduction="sum"
                )
                / (batch.profile[:, k] >= 0).sum().clamp(min=1)
                for k in range(len(self.config.profile_classes))
            ]
            losses["profile"] = torch.stack(parts).mean()
        return losses

    def loss_names(self) -> list[str]:
        """The keys of :meth:`task_losses`, which a loss weighting is built over: the tasks."""
        return list(self.config.tasks)

    def shared_parameters(self) -> list[torch.Tensor]:
        """The last encoder layer's output weights: what GradNorm balances gradients on."""
        return [self.bert.encoder.layer[-1].output.dense.weight]


def multitask_config(
    encoder_config: SeqRecConfig,
    task_data: TaskData,
    tasks: Sequence[str],
    sharing: str = "shared",
    config_class: type[MultiTaskConfig] = MultiTaskConfig,
    **options,
) -> MultiTaskConfig:
    """A multi-task config (or a subclass's: ``config_class``) extending a pretrained encoder's config
    with the dataset's label sizes."""
    ratings = task_data.train_ratings("train")[2]
    settings = {k: v for k, v in encoder_config.to_dict().items() if k not in ("model_type", "architectures")}
    settings.pop("transformers_version", None)
    return config_class(
        tasks=tasks,
        sharing=sharing,
        n_rating_buckets=task_data.n_rating_buckets,
        profile_classes=task_data.profile_classes,
        rating_mean=float(ratings.mean()),
        **{**settings, **options},  # e.g. text_dim for user_text over an id-only encoder
    )


def build_multitask(
    encoder_dir: Path,
    task_data: TaskData,
    tasks: Sequence[str],
    sharing: str = "shared",
    text: np.ndarray | None = None,
    model_class: type[MultiTaskModel] | None = None,
    **options,
) -> MultiTaskModel:
    """The pretrained encoder in ``encoder_dir`` with heads for ``tasks`` started at the base rates;
    ``text`` (V, D): item text vectors, which switch on the user-interest input of the genre and
    profile heads; ``model_class``: a subclass of :class:`MultiTaskModel` to build (its config takes
    ``options``)."""
    model_class = model_class or MultiTaskModel
    encoder_config = SeqRecConfig.from_pretrained(Path(encoder_dir))
    if text is not None:
        options = {**options, "user_text": True, "text_dim": int(text.shape[1])}
    config = multitask_config(encoder_config, task_data, tasks, sharing, model_class.config_class, **options)
    model = from_encoder(encoder_dir, config, model_class)
    if text is not None:
        model.set_item_text(text)
    like_rate, genre_rates = task_data.base_rates()
    model.set_priors(like_rate, genre_rates)
    return model


def from_encoder(
    encoder_dir: Path, config: MultiTaskConfig, model_class: type[MultiTaskModel] | None = None
) -> MultiTaskModel:
    """A multi-task model whose encoder (and next-item output) are the pretrained ones in
    ``encoder_dir``; new heads are freshly initialised and the new input features start at zero."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the new heads are "missing" from the checkpoint by design
    hf_logging.disable_progress_bar()
    try:
        model = (model_class or MultiTaskModel).from_pretrained(Path(encoder_dir), config=config)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.zero_new_inputs()
    return model
