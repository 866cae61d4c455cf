"""Train a sequential recommender: AdamW, warm-up, clipping, early stopping on validation NDCG@10.

A checkpoint (model, optimizer, scheduler, random states, history) is written atomically after
every epoch; calling :func:`train` again with the same arguments continues from it, so a killed
run loses at most one epoch, and a finished run is returned without training again. On CPU the
same arguments give the same numbers, resumed or not. Checkpoints hold only tensors, numbers,
strings, lists and dicts and are read back with ``weights_only=True``: a file that would need to
unpickle anything else (code) is refused, never executed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup, set_seed

from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.device import autocast, peak_memory_mb
from mtrec_helpers.evaluation import evaluate
from mtrec_helpers.models import SeqRecConfig, SeqRecModel, scorer
from mtrec_helpers.sequences import causal_batch, length_grouped_batches, masked_batch, windows
from mtrec_helpers.stages import damaged_artifact

CHECKPOINT = "checkpoint.pt"
TRAINING_VERSION = 1  # bump when a change to this loop makes old checkpoints stale


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings, named in one place."""

    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    clip_norm: float = 1.0
    patience: int = 20
    mask_prob: float = 0.2
    last_prob: float = 0.1
    seed: int = 0


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


def make_batch(
    model_config: SeqRecConfig, config: TrainConfig, batch: list[np.ndarray], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and labels for one batch of windows, for the model's objective."""
    if model_config.objective == "causal":
        return causal_batch(batch)
    return masked_batch(batch, model_config.mask_id, config.mask_prob, config.last_prob, generator)


def validation_ndcg(model: SeqRecModel, data: ProcessedData, device: torch.device) -> dict[str, float]:
    """Validation NDCG@10 and HR@10 (full ranking, history excluded)."""
    model.eval()
    result = evaluate(scorer(model), data, "valid", device=device)
    model.train()
    return {"valid_ndcg@10": float(result.ndcg(10).mean()), "valid_hr@10": float(result.hit_rate(10).mean())}


def fingerprint(model_config: SeqRecConfig, config: TrainConfig, data: ProcessedData) -> str:
    """What a checkpoint must match to be resumed: the model, the optimisation and the data."""
    payload = {
        "model": model_config.to_dict(),
        "train": dataclasses.asdict(config),
        "data": data.manifest["fingerprint"],
        "version": TRAINING_VERSION,
    }
    payload["model"].pop("transformers_version", None)
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`train`, read without unpickling arbitrary objects; anything
    else (a planted pickle, a truncated file) is refused with what to do."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise damaged_artifact(path, f"is not a checkpoint that can be loaded safely ({first})") from exc
    if not isinstance(saved, dict) or "fingerprint" not in saved:
        raise damaged_artifact(path, "is not a training checkpoint of this course")
    return saved


def new_model(model_config: SeqRecConfig, data: ProcessedData) -> SeqRecModel:
    """A freshly initialised model carrying the dataset's side-information tables."""
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
) -> TrainResult:
    """Train (or resume, or return a finished run from ``run_dir``) and return the best model.

    ``on_epoch`` is called with each epoch's record once its checkpoint is on disk.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = run_dir / CHECKPOINT
    key = fingerprint(model_config, config, data)
    set_seed(config.seed)
    model = new_model(model_config, data).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    examples = training_windows(model_config, data)
    lengths = np.array([len(w) for w in examples])
    steps_per_epoch = -(-len(examples) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * total_steps), total_steps
    )
    generator = torch.Generator().manual_seed(config.seed)
    state: dict[str, Any] = {
        "fingerprint": key,
        "epoch": 0,
        "history": [],
        "best_valid": -1.0,
        "best_epoch": 0,
        "best_model": None,
        "bad_epochs": 0,
        "train_seconds": 0.0,
        "sequences_seen": 0,
        "finished": False,
    }
    resumed_from = 0
    if checkpoint_path.is_file():
        saved = load_checkpoint(checkpoint_path)
        if saved["fingerprint"] == key:
            state = saved
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            generator.set_state(saved["generator"])
            torch.set_rng_state(saved["torch_rng"])
            resumed_from = saved["epoch"]
    bar = tqdm(
        range(state["epoch"], config.epochs),
        desc=f"{model_config.objective} training",
        disable=not progress or state["finished"],
        initial=state["epoch"],
        total=config.epochs,
    )
    model.train()
    for epoch in bar:
        if state["finished"]:
            break
        start = time.perf_counter()
        losses = []
        for indices in length_grouped_batches(lengths, config.batch_size, generator):
            batch = [examples[i] for i in indices]
            inputs, labels = make_batch(model_config, config, batch, generator)
            with autocast(device):
                loss = model.loss(inputs.to(device), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
        state["train_seconds"] += time.perf_counter() - start
        state["sequences_seen"] += len(examples)
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)), **validation_ndcg(model, data, device)}
        state["history"].append(record)
        if record["valid_ndcg@10"] > state["best_valid"]:
            state["best_valid"], state["best_epoch"], state["bad_epochs"] = (
                record["valid_ndcg@10"],
                epoch + 1,
                0,
            )
            state["best_model"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch + 1
        state["finished"] = state["bad_epochs"] >= config.patience or epoch + 1 == config.epochs
        bar.set_postfix(loss=f"{record['loss']:.3f}", ndcg=f"{record['valid_ndcg@10']:.4f}")
        _save_checkpoint(
            checkpoint_path,
            {
                **state,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
            },
        )
        if on_epoch is not None:
            on_epoch(record)
    bar.close()
    model.load_state_dict(state["best_model"])
    model.eval()
    return TrainResult(
        model=model,
        history=state["history"],
        best_epoch=state["best_epoch"],
        best_valid_ndcg=state["best_valid"],
        train_seconds=state["train_seconds"],
        train_seq_per_s=state["sequences_seen"] / max(state["train_seconds"], 1e-9),
        peak_memory_mb=peak_memory_mb(device),
        resumed_from_epoch=resumed_from,
        stopped_early=state["bad_epochs"] >= config.patience,
    )
