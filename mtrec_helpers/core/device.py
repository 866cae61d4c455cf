"""One device switch for the whole course: ``DEVICE="auto"`` → CUDA with bf16 autocast, else CPU."""

from __future__ import annotations

import contextlib
import resource
import sys

import torch


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; ``cpu``/``cuda`` are taken as given (the engine's Accelerator
    then places a process on the GPU of its rank: choose GPUs with CUDA_VISIBLE_DEVICES)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"DEVICE={device!r} but no CUDA GPU is visible; use DEVICE='auto' or 'cpu'.")
    return chosen


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA, nothing on CPU (fp32 keeps CPU runs exact and deterministic)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated on CUDA; on CPU the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
