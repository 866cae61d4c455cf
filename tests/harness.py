"""The papermill test harness: run one notebook into a temporary folder, return its metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mtrec_helpers.notebooks import run_notebook
from mtrec_helpers.paths import notebooks_dir
from mtrec_helpers.results import read_metrics


def run_stage(notebook: str, stage: str, tmp_path: Path, **parameters: Any) -> dict[str, Any]:
    """Run ``notebook`` with its artifacts under ``tmp_path`` (plus ``parameters``); return metrics.json.

    Parameters the notebook does not declare are refused before anything runs; the kernel is
    ``$MTREC_KERNEL`` (default ``mtrec``), named explicitly.
    """
    artifacts = tmp_path / "artifacts"
    run_notebook(
        notebooks_dir() / notebook,
        tmp_path / "runs" / notebook,
        {"ARTIFACTS_DIR": str(artifacts), **parameters},
    )
    return read_metrics(artifacts, stage)
