"""The results contract: every stage writes ``<ARTIFACTS_DIR>/<stage>/metrics.json``.

Tests, benchmarks and the final report read these files; nobody scrapes printed text.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from mtrec_helpers.core.atomic import atomic_write_text
from mtrec_helpers.core.stages import STAGE_NAMES, damaged_artifact, missing_artifact

STAGES = STAGE_NAMES
REQUIRED_KEYS = ("stage", "dataset", "device", "wall_time_s", "params", "results", "best")


class Stopwatch:
    """Wall time since creation, for a stage's ``wall_time_s``."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        """Seconds since the stopwatch was created."""
        return time.perf_counter() - self.start


def metrics_path(artifacts_dir: Path, stage: str) -> Path:
    """Where a stage's metrics.json lives."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
    return Path(artifacts_dir) / stage / "metrics.json"


def plain(value: Any) -> Any:
    """JSON-ready copy: numpy scalars and arrays to Python, non-finite floats refused."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"metrics must be finite numbers, got {value}")
    if isinstance(value, Path):
        return str(value)
    return value


def write_metrics(
    artifacts_dir: Path,
    stage: str,
    *,
    dataset: str,
    device: str,
    wall_time_s: float,
    params: dict[str, Any],
    results: dict[str, Any],
    best: str | None,
    **extra: Any,
) -> Path:
    """Write a stage's metrics.json atomically and return its path."""
    record = {
        "stage": stage,
        "dataset": dataset,
        "device": device,
        "wall_time_s": round(float(wall_time_s), 3),
        "params": params,
        "results": results,
        "best": best,
        **extra,
    }
    path = metrics_path(artifacts_dir, stage)
    atomic_write_text(path, json.dumps(plain(record), indent=2) + "\n")
    return path


def read_metrics(artifacts_dir: Path, stage: str) -> dict[str, Any]:
    """A stage's metrics.json, checked for the contract's keys."""
    path = metrics_path(artifacts_dir, stage)
    if not path.is_file():
        raise missing_artifact(path, "the stage's metrics.json")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise damaged_artifact(path, f"is not readable JSON ({exc})") from exc
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        raise damaged_artifact(path, f"lacks {missing} (see the results contract in docs/design.md)")
    return record
