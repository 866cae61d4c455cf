"""Chapter 01's settings: one field per parameter of the notebook."""

from __future__ import annotations

from dataclasses import dataclass

from mtrec_helpers.core.settings import Settings


@dataclass(frozen=True)
class DataSettings(Settings):
    """Notebook 01's parameters."""

    dataset: str
    artifacts_dir: str
    min_interactions: int
    seed: int
