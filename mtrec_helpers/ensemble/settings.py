"""Chapter 06's settings: one field per parameter of the notebook."""

from __future__ import annotations

from dataclasses import dataclass

from mtrec_helpers.core.settings import Settings


@dataclass(frozen=True)
class EnsembleSettings(Settings):
    """Notebook 06's parameters."""

    dataset: str
    artifacts_dir: str
    device: str
    seed: int
    score_members: list[str]
    leave_one_out: bool
    rrf_depth: int
    valid_users: int
    fusion_memory_mb: int
    n_boot: int
