"""How much of a run's training came after its best epoch: early stopping's price, from the checkpoints.

Every training that selects its best epoch on validation (02's objectives, 02b's fold models, 03's,
03b's and 05's runs) stops after ``PATIENCE`` epochs without a better validation score, or at
``EPOCHS``. The epochs after the best one train nothing the chapter keeps; they are what it costs to
be sure. For each chapter this module reads every run's history from the engine's checkpoint
(``<folder>/runs/<run>/checkpoint/engine.json``, plain JSON: nothing read here can run code) and counts

- ``epochs_run`` and ``after_best``: the epochs trained, and those after each run's best;
- ``longest_wait``: the longest stretch of epochs without a new best *before* a run's best epoch.

The learning-rate schedule spans ``EPOCHS``, not ``PATIENCE``, so any patience above the chapter's
``longest_wait`` keeps every run's best epoch, and with it every number of the chapter, on this data;
``saved_at_tightest`` is how many epochs that patience would have spared. On another dataset a run may
wait longer before improving: the figure says how much a tighter patience could buy, not that it is safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mtrec_helpers.core.engine import CHECKPOINT, STATE, saved_history
from mtrec_helpers.core.stages import STAGES


def stopping(scores: Sequence[float]) -> dict[str, int]:
    """One run's validation scores, epoch by epoch → its best epoch (the first of equal bests, as the
    engine keeps it), the epochs run and the longest stretch without a new best before the best."""
    best, best_epoch, wait, longest = float("-inf"), 0, 0, 0
    for epoch, score in enumerate(scores, start=1):
        if score > best:
            best, best_epoch, longest, wait = score, epoch, max(longest, wait), 0
        else:
            wait += 1
    return {"best_epoch": best_epoch, "epochs_run": len(scores), "longest_wait": longest}


def run_histories(folder: Path) -> dict[str, list[float]]:
    """Every run under a chapter's artifact ``folder`` that selected its best epoch, by its path there
    (e.g. ``runs/single_next``) → its validation scores; phases without selection (03's head and refit
    epochs) have none and are left out."""
    runs = {}
    for state in sorted(folder.glob(f"runs/**/{CHECKPOINT}/{STATE}")):
        run_dir = state.parent.parent
        history = saved_history(run_dir)
        if history and all("score" in row for row in history):
            runs[run_dir.relative_to(folder).as_posix()] = [row["score"] for row in history]
    return runs


def chapter_summary(runs: Mapping[str, Sequence[float]]) -> dict[str, int]:
    """The runs of one chapter: their epochs, those after each best, the longest wait before a best,
    and the epochs a patience of one more than that wait would have spared."""
    each = [stopping(scores) for scores in runs.values()]
    longest = max(run["longest_wait"] for run in each)
    return {
        "runs": len(each),
        "epochs_run": sum(run["epochs_run"] for run in each),
        "after_best": sum(run["epochs_run"] - run["best_epoch"] for run in each),
        "longest_wait": longest,
        "saved_at_tightest": sum(  # a patience of longest + 1 stops a run that many epochs after its best
            max(0, run["epochs_run"] - run["best_epoch"] - (longest + 1)) for run in each
        ),
    }


def early_stopping(artifacts: Path) -> dict[str, dict[str, int]]:
    """Per chapter number (``02``, ``02b``, …), the summary of the runs in the folders it writes under
    ``artifacts`` (:func:`chapter_summary`); chapters without such runs are left out."""
    summary = {}
    for stage in STAGES:
        runs = {f"{folder}/{name}": scores for folder in stage.writes
                for name, scores in run_histories(artifacts / folder).items()}  # fmt: skip
        if runs:
            summary[stage.number] = chapter_summary(runs)
    return summary


def markdown(record: Mapping[str, Any]) -> list[str]:
    """The summary's lines: per chapter, the epochs after the best and what the tightest patience
    that keeps every model would have spared."""
    chapters = record.get("early_stopping") or {}
    if not chapters:
        return []
    lines = [
        "",
        "Early stopping (every run that selects its best epoch on validation; `course/early_stopping.py`):",
        "",
        "| chapter | runs | epochs | after the best | longest wait before a best "
        "| spared by a patience of wait + 1 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for chapter, row in chapters.items():
        lines.append(
            f"| {chapter} | {row['runs']} | {row['epochs_run']} | {row['after_best']} | "
            f"{row['longest_wait']} | {row['saved_at_tightest']} |"
        )
    return lines
