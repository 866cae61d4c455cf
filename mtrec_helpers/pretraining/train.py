"""Train a sequential recommender (notebook 02) on the shared engine: what is optimised, per batch.

The causal objective predicts every next item of a window (full softmax over the catalogue); the
masked (BERT4Rec) objective replaces a share of items by [MASK] and predicts them. Everything else —
AdamW with warm-up and cosine decay, clipping, early stopping on validation NDCG@10, checkpoints
that resume, bf16 on a GPU, several processes — is :mod:`mtrec_helpers.core.engine`'s. Calling
:func:`train` again with the same arguments continues from the run's checkpoint, so a killed run
loses at most one epoch, and a finished run is returned without training again; on CPU the same
arguments give the same numbers, resumed or not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from mtrec_helpers.core.device import peak_memory_mb
from mtrec_helpers.core.engine import EngineConfig, Objective, accelerator_for, fit, gather_rows
from mtrec_helpers.core.evaluation import evaluate, validation_users
from mtrec_helpers.core.sampled import draw_negatives, popularity_proposal
from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.pretraining.models import SeqRecConfig, SeqRecModel, scorer
from mtrec_helpers.pretraining.sequences import causal_batch, length_grouped_batches, masked_batch, windows

TRAINING_VERSION = 2  # bump when a change to this objective makes old checkpoints stale


@dataclass(frozen=True)
class TrainConfig:
    """One training of a sequence model, beyond the model itself: the engine's settings and the
    objective's batches. A chapter's plan builds it from the chapter's settings (02's and 02b's)."""

    engine: EngineConfig
    batch_size: int
    mask_prob: float  # masked objective: share of items replaced by [MASK] (the causal one ignores it)
    negatives: int  # 0: full softmax; K: sampled softmax over K negatives (NEGATIVES)
    valid_users: int  # validation sample size (0: every user; VALID_USERS)
    last_prob: float = 0.1  # masked objective: how often only the last item is masked (BERT4Rec's trick)


@dataclass
class TrainResult:
    """The best model (by validation NDCG@10) and how training went."""

    model: SeqRecModel
    history: list[dict[str, float]]
    best_epoch: int
    best_valid_ndcg: float
    train_seconds: float
    train_seq_per_s: float
    peak_memory_mb: float
    resumed_from_epoch: int = 0
    stopped_early: bool = False


def training_windows(model_config: SeqRecConfig, data: ProcessedData) -> list[np.ndarray]:
    """Training windows cut from every user's training sequence."""
    if model_config.objective == "causal":
        return windows(data.sequences("train"), model_config.max_len + 1, overlap=1)
    return windows(data.sequences("train"), model_config.max_len, overlap=0)


def validation_ndcg(
    model: SeqRecModel, data: ProcessedData, accelerator: Accelerator, config: TrainConfig
) -> dict[str, float]:
    """Validation NDCG@10 and HR@10 (full ranking, history excluded) on the validation sample; each
    process ranks its share of the users and the per-user values are gathered, so each counts once."""
    sample = validation_users(data.n_users, config.valid_users, config.engine.seed)
    users = np.array_split(sample, accelerator.num_processes)[accelerator.process_index]
    result = evaluate(scorer(model), data, "valid", device=accelerator.device, users=users)
    ndcg, hits = (gather_rows(values, accelerator) for values in (result.ndcg(10), result.hit_rate(10)))
    return {"valid_ndcg@10": float(ndcg.mean()), "valid_hr@10": float(hits.mean())}


@dataclass
class SequenceObjective(Objective):
    """Stage 02's objective: windows of training sequences, causal or masked."""

    model_config: SeqRecConfig
    config: TrainConfig
    data: ProcessedData
    device: torch.device
    exclude: torch.Tensor | None = None  # (V,) items withheld from training (cold-start protocol)

    def __post_init__(self) -> None:
        if self.exclude is not None:
            self.exclude = self.exclude.to(self.device)
        self.examples = training_windows(self.model_config, self.data)
        self.lengths = np.array([len(w) for w in self.examples])
        train = self.data.interactions.loc[self.data.interactions["split"] == "train", "item_idx"].to_numpy()
        self.log_q = popularity_proposal(train, self.model_config.vocab_size).to(self.device)

    def batches(self, generator: torch.Generator) -> Sequence[np.ndarray]:
        return length_grouped_batches(self.lengths, self.config.batch_size, generator)

    def loss(self, call: Callable[..., Any], indices: np.ndarray, generator: torch.Generator):
        batch = [self.examples[i] for i in indices]
        if self.model_config.objective == "causal":
            inputs, labels = causal_batch(batch)  # predict item t + 1 from items ≤ t
        else:
            inputs, labels = masked_batch(
                batch, self.model_config.mask_id, self.config.mask_prob, self.config.last_prob, generator
            )
        inputs, labels = inputs.to(self.device), labels.to(self.device)
        if self.config.negatives > 0:  # sampled softmax over K popularity-drawn negatives, logQ-corrected
            negatives = draw_negatives(self.log_q.cpu(), self.config.negatives, generator).to(self.device)
            loss = call("sampled_loss", inputs, labels, negatives, self.log_q, self.exclude)
        else:
            loss = call("loss", inputs, labels, self.exclude)  # full-softmax cross-entropy (in chunks)
        return loss, {"loss": loss.item()}

    def validate(self, model: SeqRecModel, accelerator: Accelerator) -> dict[str, float]:
        record = validation_ndcg(model, self.data, accelerator, self.config)
        return {**record, "score": record["valid_ndcg@10"]}


def array_digest(values: np.ndarray | torch.Tensor | None) -> str | None:
    """SHA-256 of an array's bytes (None for None): what a checkpoint records of its withheld items."""
    if values is None:
        return None
    return hashlib.sha256(np.ascontiguousarray(np.asarray(values)).tobytes()).hexdigest()


def fingerprint(
    model_config: SeqRecConfig,
    config: TrainConfig,
    data: ProcessedData,
    exclude: torch.Tensor | None = None,
) -> str:
    """What a checkpoint must match to be resumed: the model, the optimisation and the data (with
    the withheld items, when there are any)."""
    payload = {
        "model": model_config.to_dict(),
        "train": dataclasses.asdict(config),
        "data": data.manifest["fingerprint"],
        "version": TRAINING_VERSION,
    }
    if exclude is not None:
        payload["exclude"] = array_digest(exclude)
    payload["model"].pop("transformers_version", None)
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def new_model(model_config: SeqRecConfig, data: ProcessedData) -> SeqRecModel:
    """A freshly initialised 02 model carrying the dataset's side-information tables."""
    model = SeqRecModel(model_config)
    if model_config.side_info:
        model.set_side_information(data.genre_matrix(), data.year_buckets())
    return model


def train(
    model_config: SeqRecConfig,
    config: TrainConfig,
    data: ProcessedData,
    run_dir: Path,
    device: torch.device,
    progress: bool = True,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    exclude: torch.Tensor | None = None,
) -> TrainResult:
    """Train (or resume, or return a finished run from ``run_dir``) and return the best model.

    ``on_epoch`` is called with each epoch's record once its checkpoint is on disk; ``exclude`` (V,):
    items withheld from training, left out of the softmax (02b's cold-start folds).
    """
    accelerator = accelerator_for(str(device))
    set_seed(config.engine.seed)  # the initial weights, then dropout
    model = new_model(model_config, data)
    objective = SequenceObjective(model_config, config, data, accelerator.device, exclude)
    key = fingerprint(model_config, config, data, exclude)
    fitted = fit(
        model, [{"params": list(model.parameters())}], objective, config.engine, accelerator,
        Path(run_dir), key, f"{model_config.objective} training", progress, on_epoch,
    )  # fmt: skip
    return TrainResult(
        model=model,
        history=fitted.history,
        best_epoch=fitted.best_epoch,
        best_valid_ndcg=fitted.best_score,
        train_seconds=fitted.train_seconds,
        train_seq_per_s=fitted.examples_per_s,
        peak_memory_mb=peak_memory_mb(accelerator.device),
        resumed_from_epoch=fitted.resumed_from_epoch,
        stopped_early=fitted.stopped_early,
    )
