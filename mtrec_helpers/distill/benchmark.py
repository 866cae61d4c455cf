"""Serving cost: parameters, size on disk and CPU scoring throughput over the full catalogue."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch

from mtrec_helpers.multitask.model import MultiTaskModel
from mtrec_helpers.multitask.tasks import TaskData


def size_on_disk(folder: Path) -> int:
    """Bytes of the saved weights (``model.safetensors``) in a ``save_pretrained`` folder."""
    path = Path(folder) / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; save the model with save_pretrained first")
    return path.stat().st_size


def scoring_throughput(
    model: MultiTaskModel,
    task_data: TaskData,
    split: str = "test",
    batch_size: int = 256,
    repeats: int = 3,
    users: np.ndarray | None = None,
) -> float:
    """Users per second scored over the whole catalogue on the CPU (fp32, no autocast), the best of
    ``repeats`` passes over every user (or over ``users``: a rate needs no more than a sample of
    them); batches are built before the clock starts."""
    cpu = copy.deepcopy(model).to("cpu").eval()
    timed = np.arange(task_data.data.n_users) if users is None else np.asarray(users)
    batches = [
        task_data.split_batch(timed[start : start + batch_size], split, cpu.config.max_len)
        for start in range(0, len(timed), batch_size)
    ]
    best = np.inf
    with torch.inference_mode():
        cpu.next_item_outputs(batches[0])  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            for batch in batches:
                cpu.next_item_outputs(batch)
            best = min(best, time.perf_counter() - start)
    return len(timed) / best
