"""Chapter 02b's settings (one field per parameter of the notebook) and the runs they plan: one id-only
model per cold-start fold — 02's causal model retrained without that fold's items. The notebook and
``python -m mtrec_helpers.text`` iterate the same :func:`plan` and train each run with
:func:`train_run`; the mappers that give the cold items their rows train in seconds, in the notebook."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mtrec_helpers.core.engine import EngineConfig
from mtrec_helpers.core.evaluation import validation_users
from mtrec_helpers.core.settings import Settings
from mtrec_helpers.pretraining.models import SeqRecConfig
from mtrec_helpers.pretraining.train import TrainConfig, TrainResult, train
from mtrec_helpers.text.coldstart import ColdStartSplit
from mtrec_helpers.text.mapping import MapperConfig


@dataclass(frozen=True)
class TextSettings(Settings):
    """Notebook 02b's parameters; ``engine`` (the fold models') takes EPOCHS, LR, PATIENCE, MAX_STEPS
    and SEED."""

    dataset: str
    artifacts_dir: str
    device: str
    text_model: str
    genome: bool
    cold_folds: int
    features: list[str]
    priors: list[float]
    mapper_dropout: float
    mapper_epochs: int
    mapper_lr: float
    content_window: int
    batch_size: int
    valid_users: int
    n_boot: int
    query: str
    engine: EngineConfig

    def train_config(self) -> TrainConfig:
        """How each fold model trains: 02's causal objective (no masking), full softmax."""
        return TrainConfig(
            self.engine, self.batch_size, mask_prob=0.0, negatives=0, valid_users=self.valid_users
        )

    def validation_sample(self, n_users: int) -> np.ndarray:
        """The users every validation choice of the chapter ranks (at most VALID_USERS, a seeded sample
        beyond: the same sample as the fold models' early stopping)."""
        return validation_users(n_users, self.valid_users, self.engine.seed)

    def mapper(self) -> MapperConfig:
        """How every mapper trains."""
        return MapperConfig(
            dropout=self.mapper_dropout,
            epochs=self.mapper_epochs,
            lr=self.mapper_lr,
            seed=self.engine.seed,
            max_batches=self.engine.max_batches,
        )


@dataclass(frozen=True)
class TextRun:
    """One model the chapter trains."""

    name: str  # its run folder under <ARTIFACTS_DIR>/text/runs/
    fold: int  # the cold-start fold whose items it never sees


def plan(settings: TextSettings) -> list[TextRun]:
    """The chapter's runs, in the order it trains them: one per fold."""
    return [TextRun(f"fold{k}_id_only", k) for k in range(settings.cold_folds)]


def train_run(
    run: TextRun,
    settings: TextSettings,
    folds: list[ColdStartSplit],
    artifacts: Path,
    device: torch.device,
    progress: bool = True,
) -> TrainResult:
    """Train (or resume, or read back finished) one planned run: 02's causal model's configuration,
    trained from scratch with ``folds[run.fold]``'s items withheld."""
    model_config = SeqRecConfig.from_pretrained(artifacts / "pretrained" / "causal")
    split = folds[run.fold]
    folder = artifacts / "text" / "runs" / run.name
    return train(
        model_config, settings.train_config(), split.data, folder, device, progress, None, split.exclude
    )
