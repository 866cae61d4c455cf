"""Chapter 04's settings: one field per parameter of the notebook (its learners train with their own
loops, not the engine: a simulated session is not a batch of logged examples)."""

from __future__ import annotations

from dataclasses import dataclass

from mtrec_helpers.core.settings import Settings


@dataclass(frozen=True)
class RLSettings(Settings):
    """Notebook 04's parameters."""

    dataset: str
    artifacts_dir: str
    device: str
    seed: int
    n_candidates: int
    slate_size: int
    horizon: int
    no_click_utility: float
    fatigue_weight: float
    fatigue_decay: float
    leave_base: float
    leave_slope: float
    heldout_simulator: dict[str, float]
    heldout_user_model: dict[str, float]
    heldout_share: float
    eval_repeats: int
    iterations: int
    slateq_iterations: int
    epsilon: list[float]
    batch_users: int
    gamma: float
    exploration_temperature: float
    policy_hidden: int
    policy_lr: float
    behaviour_temperature: float
    log_repeats: int
    offpolicy_epochs: int
    is_cap: float
    valid_users: int
    n_boot: int
