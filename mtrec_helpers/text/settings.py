"""Chapter 02b's settings (one field per parameter of the notebook) and the runs they plan: a text-aware
model per ``ID_DROPOUT`` candidate on 02's split, and in the cold-start protocol the id-only model
and a text-aware model per candidate. The notebook and ``python -m mtrec_helpers.text`` iterate the
same :func:`plan` and train each run with :func:`train_run`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mtrec_helpers.core.engine import EngineConfig
from mtrec_helpers.core.settings import Settings
from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.pretraining.train import TrainConfig, TrainResult, train
from mtrec_helpers.text.coldstart import ColdStartSplit
from mtrec_helpers.text.models import model_class, text_aware_config

STANDARD, COLD = "standard", "cold"


@dataclass(frozen=True)
class TextSettings(Settings):
    """Notebook 02b's parameters; ``engine`` takes EPOCHS, LR, PATIENCE, MAX_STEPS and SEED."""

    dataset: str
    artifacts_dir: str
    device: str
    text_model: str
    text_delta: float
    id_dropout: list[float]
    cold_share: float
    content_window: int
    batch_size: int
    valid_users: int
    n_boot: int
    query: str
    engine: EngineConfig

    def train_config(self) -> TrainConfig:
        """How each of the chapter's models trains: 02's causal objective (no masking), full softmax."""
        return TrainConfig(
            self.engine, self.batch_size, mask_prob=0.0, negatives=0, valid_users=self.valid_users
        )


@dataclass(frozen=True)
class TextRun:
    """One model the chapter trains."""

    name: str  # its run folder under <ARTIFACTS_DIR>/text/runs/
    protocol: str  # STANDARD (02's split) or COLD (the cold-start protocol)
    id_dropout: float | None  # None: the id-only model (02's config, retrained without the cold items)


def plan(settings: TextSettings) -> list[TextRun]:
    """The chapter's runs, in the order it trains them."""
    return [
        *(TextRun(f"text_aware_dropout{p}", STANDARD, p) for p in settings.id_dropout),
        TextRun("cold_id_only", COLD, None),
        *(TextRun(f"cold_text_aware_dropout{p}", COLD, p) for p in settings.id_dropout),
    ]


def train_run(
    run: TextRun,
    settings: TextSettings,
    data: ProcessedData,
    cold: ColdStartSplit | None,
    vectors: np.ndarray,
    artifacts: Path,
    device: torch.device,
    progress: bool = True,
) -> TrainResult:
    """Train (or resume, or read back finished) one planned run: 02's causal model, text-aware over
    ``vectors`` unless the run is id-only, on 02's split or with ``cold``'s items withheld."""
    causal_dir = artifacts / "pretrained" / "causal"
    text_dim = 0 if run.id_dropout is None else vectors.shape[1]
    model_config = text_aware_config(causal_dir, text_dim, settings.text_delta, run.id_dropout or 0.0)
    if run.protocol == COLD and cold is None:
        raise ValueError(f"run {run.name} is in the cold-start protocol: give its ColdStartSplit")
    split, exclude = (data, None) if cold is None or run.protocol == STANDARD else (cold.data, cold.exclude)
    folder = artifacts / "text" / "runs" / run.name
    text = vectors if text_dim else None
    config, architecture = settings.train_config(), model_class(model_config)
    return train(model_config, config, split, folder, device, progress, None, text, exclude, architecture)
