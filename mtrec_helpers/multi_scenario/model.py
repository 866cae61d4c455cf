"""Scenario-aware multi-task models: 03's model, told which scenario each request comes from.

:class:`ScenarioModel` *is* chapter 03's :class:`~mtrec_helpers.multitask.model.MultiTaskModel` (same
encoder, input features, heads and sharing layer) and adds, by ``scenario_model``:

- ``shared`` — nothing: the scenario-agnostic reference;
- ``embedding`` — a scenario embedding added to every input position (zero at the start);
- ``star`` — STAR (Sheng et al., CIKM 2021) between encoder and heads: a partitioned normalisation
  (shared scale and shift times/plus the scenario's own) and a star-topology tower whose weights are
  the shared weights times the scenario's (element-wise), W_s = W ⊙ W_s', b_s = b + b_s', added to the
  encoder state (its output layer starts at zero); plus the auxiliary scenario network, a small net on
  the scenario embedding whose output vector scores every item (a logit added to the next-item scores);
- ``experts`` — scenario experts with gates (CGC, the layer of PLE): shared experts plus experts of
  each scenario, and one softmax gate per scenario × task over the shared experts and that scenario's.

With catalogues (``domain``: each scenario ranks its own items) the next-item softmax of a position
is over its scenario's items, as it is ranked — computed on those items' columns alone
(:meth:`ScenarioModel.catalogue_losses`: the same loss as every other item's logit at −∞, for
Σ_s N_s V_s logits instead of N V). Losses are per scenario × task: L_{s,t}, the mean of task t's
loss over the positions of scenario s in the batch (0 where the batch has none), keyed
``"<scenario>/<task>"`` — what a loss weighting over the s×t grid combines. A scenario is coded 1..k
per position (0: padding).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mtrec_helpers.core.chunked import chunked_mean
from mtrec_helpers.multitask.model import MultiTaskConfig, MultiTaskModel, _mlp
from mtrec_helpers.multitask.tasks import Batch
from mtrec_helpers.pretraining.models import catalogue_columns
from mtrec_helpers.pretraining.sequences import IGNORE

SCENARIO_MODELS = ("shared", "embedding", "star", "experts")
SCENARIO_PREFIXES = ("scenario_embeddings.", "star_", "aux_", "cgc_")
SCENARIO_TASKS = ("next", "rating", "like", "genre")
"""The tasks a scenario has: those of each interaction (the profile task belongs to users)."""


class ScenarioConfig(MultiTaskConfig):
    """03's config plus the scenarios (names, in code order 1..k) and the scenario layers."""

    model_type = "mtrec_multi_scenario"

    def __init__(
        self,
        scenario_names: Sequence[str] = ("all",),
        scenario_model: str = "shared",
        shared_experts: int = 2,
        scenario_experts: int = 1,
        catalogues: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.catalogues = catalogues  # each scenario ranks its own items (``domain``): its softmax too
        if scenario_model not in SCENARIO_MODELS:
            raise ValueError(f"scenario_model={scenario_model!r}; choose one of {SCENARIO_MODELS}")
        self.scenario_names = list(scenario_names)
        self.scenario_model = scenario_model
        self.shared_experts = shared_experts
        self.scenario_experts = scenario_experts

    @property
    def n_codes(self) -> int:
        """Scenario codes including padding (0)."""
        return len(self.scenario_names) + 1


class ScenarioModel(MultiTaskModel):
    """03's multi-task model with scenario layers (see the module docstring)."""

    config: ScenarioConfig
    config_class = ScenarioConfig

    def __init__(self, config: ScenarioConfig) -> None:
        super().__init__(config)
        hidden, codes, kind = config.hidden_size, config.n_codes, config.scenario_model
        if config.catalogues:  # each item's scenario (0: in none), set by set_catalogues
            self.register_buffer("item_scenarios", torch.zeros(config.vocab_size, dtype=torch.long))
        if kind == "embedding":
            self.scenario_embeddings = nn.Embedding(codes, hidden, padding_idx=0)
        if kind == "star":
            self.star_norm = nn.LayerNorm(hidden)  # partitioned normalisation: shared γ, β ...
            self.star_scale = nn.Parameter(torch.ones(codes, hidden))  # ... times the scenario's γ_s
            self.star_shift = nn.Parameter(torch.zeros(codes, hidden))  # ... plus its β_s
            self.star_in, self.star_out = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)  # W, b
            self.star_in_s = nn.Parameter(torch.ones(codes, hidden, hidden))  # W_s' (times W)
            self.star_out_s = nn.Parameter(torch.ones(codes, hidden, hidden))
            self.star_bias_s = nn.Parameter(torch.zeros(2, codes, hidden))  # b_s' (plus b)
            self.aux_embeddings = nn.Embedding(codes, hidden)
            self.aux_network = _mlp(hidden, hidden, hidden, config.hidden_dropout_prob)
        if kind == "experts":
            experts = config.shared_experts + codes * config.scenario_experts
            self.cgc_experts = nn.ModuleList(_mlp(hidden, hidden, hidden, config.hidden_dropout_prob)
                                             for _ in range(experts))  # fmt: skip
            width = config.shared_experts + config.scenario_experts
            self.cgc_gates = nn.Parameter(
                torch.zeros(codes, len(config.tasks), hidden, width)
            )  # uniform at first

    def set_catalogues(self, item_scenarios: np.ndarray) -> None:
        """Each item's scenario (``domain``: its family's code; 0 for PAD and MASK)."""
        self.item_scenarios.copy_(torch.as_tensor(item_scenarios, dtype=torch.long))

    def zero_new_inputs(self) -> None:
        """03's new inputs at zero, and every scenario layer at "no change" (the scenario embeddings,
        STAR's output layer and auxiliary network at zero, its scenario scales at one, the gates
        uniform): the model computes exactly the pretrained encoder's next-item scores, CGC's experts
        aside (they add to the state from the start, as 03's MMoE does)."""
        super().zero_new_inputs()
        kind = self.config.scenario_model
        with torch.no_grad():
            if kind == "embedding":
                self.scenario_embeddings.weight.zero_()
            if kind == "star":
                for one in (self.star_scale, self.star_in_s, self.star_out_s):
                    one.fill_(1.0)
                for zero in (self.star_shift, self.star_bias_s, self.star_out.weight, self.star_out.bias):
                    zero.zero_()
                self.aux_network[-1].weight.zero_()
                self.aux_network[-1].bias.zero_()
            if kind == "experts":
                self.cgc_gates.zero_()

    def new_parameters(self) -> list[nn.Parameter]:
        """03's new parameters plus the scenario layers (trained from scratch, at HEAD_LR)."""
        scenario = [p for name, p in self.named_parameters() if name.startswith(SCENARIO_PREFIXES)]
        return super().new_parameters() + scenario

    def input_features(self, batch: Batch) -> torch.Tensor | None:
        features = super().input_features(batch)
        if self.config.scenario_model != "embedding":
            return features
        scenario = self.scenario_embeddings(batch.scenario)
        return scenario if features is None else features + scenario

    @staticmethod
    def star_linear(
        x: torch.Tensor, layer: nn.Linear, specific: torch.Tensor, bias: torch.Tensor
    ) -> torch.Tensor:
        """One scenario's fully connected layer of the star topology: (W ⊙ W_s) x + b + b_s."""
        return F.linear(x, layer.weight * specific, layer.bias + bias)

    def star_tower(self, hidden: torch.Tensor, scenario: torch.Tensor) -> torch.Tensor:
        """hidden + STAR's tower: partitioned norm, then W ⊙ W_s layers, per scenario's positions."""
        normed = self.star_norm(hidden)
        out = hidden.clone()
        for code in scenario.unique().tolist():
            where = scenario == code
            x = normed[where] * self.star_scale[code] + self.star_shift[code]  # partitioned normalisation
            x = F.gelu(self.star_linear(x, self.star_in, self.star_in_s[code], self.star_bias_s[0, code]))
            out[where] = hidden[where] + self.star_linear(
                x, self.star_out, self.star_out_s[code], self.star_bias_s[1, code]
            )
        return out

    def cgc_states(self, hidden: torch.Tensor, scenario: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each task's state: hidden + the gated mix of the shared experts and the scenario's own."""
        shared, own = self.config.shared_experts, self.config.scenario_experts
        states = {task: hidden.clone() for task in self.config.tasks}
        for code in scenario.unique().tolist():
            where = scenario == code
            x = hidden[where]
            chosen = [*range(shared), *range(shared + code * own, shared + (code + 1) * own)]
            experts = torch.stack([self.cgc_experts[e](x) for e in chosen], dim=-1)  # (N, H, E)
            gates = torch.softmax(torch.einsum("nh,thE->tnE", x, self.cgc_gates[code]), dim=-1)
            for t, task in enumerate(self.config.tasks):
                states[task][where] = x + (experts * gates[t].unsqueeze(1)).sum(-1)
        return states

    def labelled_states(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        hidden, _ = self.encode(batch.items, extra_embeddings=self.input_features(batch))
        rows, positions = torch.nonzero(batch.next_item != IGNORE, as_tuple=True)
        if self.config.scenario_model == "star":
            hidden = self.star_tower(hidden, batch.scenario)
        if self.config.scenario_model == "experts":
            return self.cgc_states(hidden, batch.scenario), rows, positions
        return self.task_states(hidden), rows, positions

    def aux_vectors(self, scenario: torch.Tensor) -> torch.Tensor | None:
        """STAR's auxiliary network on each position's scenario (N, H); None for the other models."""
        if self.config.scenario_model != "star":
            return None
        return self.aux_network(self.aux_embeddings(scenario))

    def aux_logits(self, scenario: torch.Tensor) -> torch.Tensor | float:
        """STAR's auxiliary network: a logit per item from the scenario alone (N, V); 0 otherwise."""
        vectors = self.aux_vectors(scenario)
        if vectors is None:
            return 0.0
        return vectors @ self.item_embeddings(torch.arange(self.config.vocab_size, device=vectors.device)).T

    def next_scores(
        self, batch: Batch, state: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        return super().next_scores(batch, state, rows, positions) + self.aux_logits(
            batch.scenario[rows, positions]
        )

    def catalogue_losses(
        self, batch: Batch, states: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """(k,): each scenario's next-item cross-entropy, the mean over its positions of a softmax
        over its own catalogue — computed on those items' columns alone: the loss of the (N, V) logits
        with every other item at −∞, for the work of Σ_s N_s × V_s logits instead of N × V."""
        scenario, target = batch.scenario[rows, positions], batch.next_item[rows, positions]
        vectors = self.aux_vectors(scenario)  # STAR: drawn once for all positions, as in aux_logits
        losses = []
        for code in range(1, self.config.n_codes):
            where = torch.nonzero(scenario == code).squeeze(1)
            items = torch.nonzero(self.item_scenarios == code).squeeze(1)
            losses.append(
                self.catalogue_loss(batch, states, rows[where], positions[where], target[where], items,
                                    None if vectors is None else vectors[where])
                if len(where) else states.new_zeros(())
            )  # fmt: skip
        return torch.stack(losses)

    def catalogue_loss(
        self,
        batch: Batch,
        states: torch.Tensor,
        rows: torch.Tensor,
        positions: torch.Tensor,
        target: torch.Tensor,
        items: torch.Tensor,
        vectors: torch.Tensor | None,
    ) -> torch.Tensor:
        """Mean cross-entropy of the positions (rows, positions) of one scenario over its ``items``."""
        state, local = states[rows, positions], catalogue_columns(items, self.config.vocab_size)[target]

        def terms(part: slice) -> torch.Tensor:
            seeing = self.config.seen_bias
            seen = self.seen_items(batch.items, rows[part], positions[part]) if seeing else None
            logits = self.scores(state[part], seen, items)
            if vectors is not None:
                logits = logits + vectors[part] @ self.item_embeddings(items).T
            return F.cross_entropy(logits.float(), local[part])

        return chunked_mean(terms, len(rows), len(items))

    def loss_names(self) -> list[str]:
        return [f"{s}/{t}" for s in self.config.scenario_names for t in self.config.tasks]

    def task_losses(self, batch: Batch, without_next: bool = False) -> dict[str, torch.Tensor]:
        """L_{s,t} for every scenario × task, keyed ``"<scenario>/<task>"`` (see the module docstring);
        ``without_next``: each scenario's next-item loss is a constant 0, not computed (as 03's) —
        except in STAR, whose auxiliary network draws dropout masks on the next-item path (skipping
        it would change every later draw)."""
        states, rows, positions = self.labelled_states(batch)
        target, scenario = batch.next_item[rows, positions], batch.scenario[rows, positions]
        share = F.one_hot(scenario, self.config.n_codes)[:, 1:].float()
        share = share / share.sum(0).clamp(min=1)  # column s averages over scenario s's positions
        grouped: dict[str, torch.Tensor] = {}
        if "next" in states and without_next and self.config.scenario_model != "star":
            grouped["next"] = torch.zeros(share.shape[1], device=share.device)
        elif "next" in states and self.config.catalogues:
            grouped["next"] = self.catalogue_losses(batch, states["next"], rows, positions)
        elif "next" in states:
            state = states["next"][rows, positions]

            def terms(part: slice) -> torch.Tensor:
                seen = (
                    self.seen_items(batch.items, rows[part], positions[part])
                    if self.config.seen_bias
                    else None
                )
                logits = self.scores(state[part], seen) + self.aux_logits(scenario[part])
                loss = F.cross_entropy(logits.float(), target[part], reduction="none")
                return share[part].T @ loss / len(loss)

            grouped["next"] = chunked_mean(terms, len(target), self.config.vocab_size) * len(target)
        outputs = self.head_outputs(batch, states, rows, positions)
        bce = F.binary_cross_entropy_with_logits
        per_row = {
            "rating": lambda: (outputs["rating"].float() - batch.rating[rows, positions]) ** 2,
            "like": lambda: bce(outputs["like"].float(), batch.like[rows, positions], reduction="none"),
            "genre": lambda: bce(outputs["genre"].float(), self.item_genres[target], reduction="none").mean(
                -1
            ),
        }
        for task in self.config.tasks:
            if task in per_row:
                grouped[task] = share.T @ per_row[task]()
        return {
            f"{name}/{task}": grouped[task][s]
            for s, name in enumerate(self.config.scenario_names)
            for task in self.config.tasks
        }
