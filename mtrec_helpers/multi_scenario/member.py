"""Chapter 03b's chosen model as one of 06's recommenders: next-item scores over the whole catalogue.

Where the scenario is known when a user asks (``user_group``, ``time``), the model scores every item
under the scenario of the request, as in 03b. Under ``domain`` the scenario is the family of the item
being chosen — unknown to a recommender that ranks the whole catalogue, and reading it off the
held-out item would leak the answer. The model's next item within family s is P(i | u, s) (its
softmax is over the family's items), so the catalogue-wide score is the mixture

    log P(i | u) = log P(s(i) | u) + log P(i | u, s(i)),

with P(s | u) the user's share of earlier interactions in family s, smoothed towards the training
split's shares: one forward pass per family.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mtrec_helpers.core.device import autocast
from mtrec_helpers.core.evaluation import ScoreFn
from mtrec_helpers.core.protocol import SPLITS
from mtrec_helpers.multi_scenario.model import ScenarioModel
from mtrec_helpers.multi_scenario.scenarios import ScenarioData, define_scenarios
from mtrec_helpers.multitask.tasks import TaskData
from mtrec_helpers.pretraining.artifacts import load_recommender
from mtrec_helpers.pretraining.sequences import IGNORE

PRIOR_STRENGTH = 5.0  # pseudo-interactions of the training split's family shares in P(s | u)


def family_prior(data: ScenarioData, split: str, strength: float = PRIOR_STRENGTH) -> torch.Tensor:
    """(U, k + 1) log P(s | u) before ``split``'s held-out interaction (column 0, padding, is -inf):
    the user's counts per scenario plus ``strength`` interactions spread as the training split's."""
    k = data.scenarios.k
    before = data.split_code < SPLITS.index(split)
    users, codes = data.user[1:].numpy()[before], data.scenario[1:].numpy()[before]
    counts = np.zeros((data.data.n_users, k + 1))
    np.add.at(counts, (users, codes), 1.0)
    train = data.scenario[1:].numpy()[data.split_code == 0]
    prior = (counts + strength * np.bincount(train, minlength=k + 1) / max(1, len(train)))[:, 1:]
    log_prior = np.full((data.data.n_users, k + 1), -np.inf)
    log_prior[:, 1:] = np.log(prior / prior.sum(1, keepdims=True))
    return torch.from_numpy(log_prior).float()


def scenario_scorer(model: ScenarioModel, data: ScenarioData, split: str) -> ScoreFn:
    """An evaluator score function over the whole catalogue for ``split`` (see the module docstring)."""
    catalogues = model.config.catalogues
    prior = family_prior(data, split) if catalogues else None

    def score(users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        batch = data.split_batch(users, split, model.config.max_len).to(model.device)
        with torch.no_grad(), autocast(model.device):
            if not catalogues:
                return model.next_item_outputs(batch).float()
            asked = batch.next_item != IGNORE  # each row's held-out position
            out = torch.zeros(len(users), model.config.vocab_size, device=model.device)
            log_prior = prior[torch.as_tensor(users)].to(model.device)
            for code in range(1, data.scenarios.k + 1):
                batch.scenario[asked] = code  # "the user is on family s's page"
                inside = model.item_scenarios == code
                logits = model.next_item_outputs(batch).float()[:, inside]
                out[:, inside] = F.log_softmax(logits, dim=-1) + log_prior[:, code : code + 1]
            nowhere = model.item_scenarios == 0  # PAD and MASK: finite, below every item
            out[:, nowhere] = out[:, ~nowhere].min(dim=1, keepdim=True).values - 1.0
            return out

    return score


@dataclass
class ScenarioMember:
    """03b's saved model and the scenario data it reads (its definition rebuilt from the processed data)."""

    model: ScenarioModel
    data: ScenarioData
    name: str

    def scorer(self, split: str) -> ScoreFn:
        return scenario_scorer(self.model, self.data, split)


def load_scenario_member(artifacts: Path, task_data: TaskData, device: torch.device) -> ScenarioMember | None:
    """03b's chosen model from ``<artifacts>/multi_scenario/model/`` (None where 03b has not run)."""
    folder = Path(artifacts) / "multi_scenario" / "model"
    if not (folder / "config.json").is_file():
        return None
    model, _, params = load_recommender(folder, ScenarioModel)
    scenarios = define_scenarios(task_data.data, params["SCENARIOS"], int(params["MIN_SCENARIO_USERS"]))
    if scenarios.names != model.config.scenario_names:
        raise ValueError(
            f"{folder}: the model's scenarios {model.config.scenario_names} are not the data's "
            f"{scenarios.names}; run notebooks/03b_multi_scenario.ipynb again on this ARTIFACTS_DIR."
        )
    data = ScenarioData(task_data.data, scenarios, seed=int(params["SEED"]))
    return ScenarioMember(model.to(device), data, str(params.get("model", "")))
