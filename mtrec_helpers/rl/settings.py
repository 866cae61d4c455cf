"""Chapter 04's settings: one field per parameter of the notebook (its learners train with their own
loops, not the engine: a simulated session is not a batch of logged examples)."""

from __future__ import annotations

from dataclasses import dataclass

from mtrec_helpers.core.settings import Settings
from mtrec_helpers.rl.agents import ReinforceConfig
from mtrec_helpers.rl.offpolicy import OffPolicyConfig
from mtrec_helpers.rl.slateq import SlateQConfig


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
    horizon_strength: float
    horizon_strengths: list[float]
    sweep_seeds: int
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
    ope_samples: int
    valid_users: int
    n_boot: int

    def reinforce(self, seed: int) -> ReinforceConfig:
        """REINFORCE's settings (on-policy and from logs) with training seed ``seed``."""
        return ReinforceConfig(
            hidden=self.policy_hidden, lr=self.policy_lr, gamma=self.gamma, seed=seed,
            temperature=self.exploration_temperature, iterations=self.iterations,
            batch_users=self.batch_users,
        )  # fmt: skip

    def slateq(self, seed: int) -> SlateQConfig:
        """SlateQ's settings with training seed ``seed``."""
        return SlateQConfig(
            hidden=self.policy_hidden, lr=self.policy_lr, gamma=self.gamma, iterations=self.slateq_iterations,
            batch_users=self.batch_users, epsilon_start=self.epsilon[0], epsilon_end=self.epsilon[1],
            seed=seed,
        )  # fmt: skip

    def offpolicy(self, seed: int, correction: str = "topk") -> OffPolicyConfig:
        """The logger's and the off-policy learner's settings with seed ``seed``."""
        return OffPolicyConfig(
            behaviour_temperature=self.behaviour_temperature, log_repeats=self.log_repeats,
            epochs=self.offpolicy_epochs, cap=self.is_cap, correction=correction, seed=seed,
        )  # fmt: skip
