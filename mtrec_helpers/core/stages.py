"""The course's stages in one table: notebook, the artifact folders it writes and those it reads.

Every "run notebook NN first" message, the results contract's stage names, `make run`'s order and
the tests read this table, so a folder is always traced to the notebook that really writes it.
Folders are relative to ``ARTIFACTS_DIR``; a stage's ``metrics.json`` lives in ``<name>/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stage:
    """One chapter: its notebook, its results-contract name, the folders it writes and reads, and the
    package that holds its code (``mtrec_helpers.<package>``)."""

    notebook: str
    name: str
    writes: tuple[str, ...]
    reads: tuple[str, ...]
    package: str

    @property
    def number(self) -> str:
        """The chapter number, e.g. '03' (or '02b' for a chapter between 02 and 03)."""
        return self.notebook.split("_")[0]

    def run_first(self) -> str:
        """What to do when something this stage writes is missing or unusable."""
        return (
            f"run notebooks/{self.notebook} with this ARTIFACTS_DIR first (`make run` runs every notebook)."
        )


STAGES: tuple[Stage, ...] = (
    Stage("01_data_prep.ipynb", "data_prep", ("processed", "data_prep"), (), "data"),
    Stage("02_transformer_pretraining.ipynb", "pretraining", ("pretrained", "pretraining"), ("processed",),
          "pretraining"),
    Stage("02b_text_item_features.ipynb", "text", ("text",), ("processed", "pretrained"), "text"),
    Stage("03_multitask_finetuning.ipynb", "multitask", ("multitask",), ("processed", "pretrained"),
          "multitask"),
    Stage("03b_multi_scenario.ipynb", "multi_scenario", ("multi_scenario",),
          ("processed", "pretrained", "multitask"), "multi_scenario"),
    Stage("04_rl_ranking.ipynb", "rl", ("rl",), ("processed", "multitask"), "rl"),
    Stage("05_kmeans_distillation.ipynb", "distillation", ("distillation",), ("processed", "multitask"),
          "distill"),
    Stage(
        "06_ensemble_evaluation.ipynb",
        "ensemble",
        ("ensemble", "report"),
        ("processed", "pretrained", "pretraining", "text", "multitask", "rl", "distillation"),
        "ensemble",
    ),
)  # fmt: skip
STAGE_NAMES = tuple(stage.name for stage in STAGES)


class ArtifactError(ValueError):
    """A saved artifact that is missing or cannot be used: names the file and the notebook to run."""


def stage_named(name: str) -> Stage:
    """The stage with results-contract name ``name``."""
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise ValueError(f"unknown stage {name!r}; expected one of {STAGE_NAMES}")


def writer_of(path: Path) -> Stage | None:
    """The stage that writes ``path`` (judged by the last path component a stage writes), if any."""
    for part in reversed(Path(path).parts):
        for stage in STAGES:
            if part in stage.writes:
                return stage
    return None


def missing_artifact(path: Path, what: str) -> ArtifactError:
    """'<path>: <what> is missing' with the notebook that writes it."""
    stage = writer_of(path)
    todo = stage.run_first() if stage else "run the notebook that writes it first."
    return ArtifactError(f"{path}: {what} is missing: {todo}")


def damaged_artifact(path: Path, problem: str) -> ArtifactError:
    """'<path>: <problem>' with what to do: delete it and re-run the notebook that writes it."""
    stage = writer_of(path)
    notebook = f"notebooks/{stage.notebook}" if stage else "the notebook that wrote it"
    return ArtifactError(f"{path}: {problem}. Delete it and re-run {notebook}.")
