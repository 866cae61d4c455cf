"""Chapter 02's settings (one field per parameter of the notebook) and the runs they plan: one
sequence model per objective. The notebook and ``python -m mtrec_helpers.pretraining`` train the
same :func:`plan` with :func:`train_planned`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from mtrec_helpers.core.engine import EngineConfig
from mtrec_helpers.core.settings import Settings
from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.pretraining.models import SeqRecConfig, build_config
from mtrec_helpers.pretraining.train import TrainConfig, TrainResult, train

YEAR_BUCKETS = 13
"""Release decades 1900s … 2020s (store.decade_buckets), the side information's vocabulary."""


@dataclass(frozen=True)
class PretrainingSettings(Settings):
    """Notebook 02's parameters; ``engine`` takes EPOCHS, LR, PATIENCE, MAX_STEPS and SEED."""

    dataset: str
    artifacts_dir: str
    device: str
    objectives: list[str]
    max_len: int
    hidden: int
    layers: int
    heads: int
    dropout: dict[str, float]
    side_info: bool
    seen_bias: bool
    batch_size: int
    mask_prob: float
    negatives: int
    knn_neighbours: list[int]
    ease_l2: list[float]
    valid_users: int
    item_item_max: int
    n_boot: int
    engine: EngineConfig

    def train_config(self) -> TrainConfig:
        """How each of the chapter's models trains."""
        return TrainConfig(self.engine, self.batch_size, self.mask_prob, self.negatives, self.valid_users)


def plan(settings: PretrainingSettings, data: ProcessedData) -> dict[str, tuple[SeqRecConfig, TrainConfig]]:
    """The chapter's runs: for each objective of ``OBJECTIVES``, its model and how it trains."""
    return {
        objective: (
            build_config(
                data.n_items,
                objective,
                hidden=settings.hidden,
                layers=settings.layers,
                heads=settings.heads,
                max_len=settings.max_len,
                dropout=settings.dropout[objective],
                side_info=settings.side_info,
                n_genres=len(data.vocab["genres"]),
                n_year_buckets=YEAR_BUCKETS,
                seen_bias=settings.seen_bias,
            ),
            settings.train_config(),
        )  # fmt: skip
        for objective in settings.objectives
    }


def train_planned(
    objective: str,
    settings: PretrainingSettings,
    data: ProcessedData,
    artifacts: Path,
    device: torch.device,
    progress: bool = True,
) -> TrainResult:
    """Train (or resume, or read back finished) the plan's run of ``objective`` into
    ``<artifacts>/pretrained/runs/<objective>``."""
    model_config, config = plan(settings, data)[objective]
    return train(model_config, config, data, artifacts / "pretrained" / "runs" / objective, device, progress)
