"""The chosen REINFORCE policy outside the simulator: saved by notebook 04, used as a re-ranker by 06.

As a re-ranker for the next-item task the policy orders each user's N retrieved candidates by its
logits before the first slate of a session (no clicks yet); items outside the candidates keep the
retrieval model's order below them — the usual two-stage ranking, so it is a full-catalogue ranking
the evaluator can score. Its scores mean something only among the candidates.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mtrec_helpers.core.atomic import atomic_directory
from mtrec_helpers.core.stages import damaged_artifact, missing_artifact
from mtrec_helpers.rl.agents import Reinforce, ReinforceConfig, first_step_features
from mtrec_helpers.rl.retrieval import CandidateTable

WEIGHTS, CONFIG = "policy.safetensors", "policy.json"


def save_policy(network: Reinforce, folder: Path, name: str) -> Path:
    """The network's weights and settings in ``folder`` (atomically)."""
    with atomic_directory(Path(folder)) as tmp:
        save_file(network.state_dict(), tmp / WEIGHTS)
        (tmp / CONFIG).write_text(
            json.dumps({"name": name, **network.config.__dict__}, indent=2), encoding="utf-8"
        )
    return Path(folder)


def load_policy(folder: Path) -> tuple[Reinforce, str]:
    """The saved network (eval mode) and the learner's name."""
    folder = Path(folder)
    if not (folder / CONFIG).is_file():
        raise missing_artifact(folder, "a saved policy (policy.json)")
    try:
        settings = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
        name = settings.pop("name")
        network = Reinforce(ReinforceConfig(**settings))
        network.load_state_dict(load_file(folder / WEIGHTS))
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, SafetensorError) as exc:
        raise damaged_artifact(
            folder, f"the saved policy cannot be loaded ({type(exc).__name__}: {exc})"
        ) from exc
    return network.eval(), name


def first_slate_logits(network: Reinforce, table: CandidateTable) -> torch.Tensor:
    """(U, N) the policy's logits for every user's candidates before any click."""
    with torch.no_grad():
        return network.logits(first_step_features(table), torch.ones_like(table.scores, dtype=torch.bool))


def reranked_scores(base: torch.Tensor, table: CandidateTable, logits: torch.Tensor) -> torch.Tensor:
    """Catalogue scores (U, V): the candidates in the policy's order above every other item, which
    keep the retrieval model's ``base`` order; the candidates' values are logits minus the row minimum."""
    floor = base[:, 1:-1].max(dim=1, keepdim=True).values + 1.0
    scores = base - floor  # every item below -1 ...
    lifted = logits - logits.min(dim=1, keepdim=True).values  # ... every candidate at 0 or above
    return scores.scatter(1, table.items.to(torch.long), lifted)
