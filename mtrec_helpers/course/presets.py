"""Presets: named settings per chapter, chosen with one switch (`make run PRESET=class`).

``default`` is every notebook's own parameters cell. ``tiny`` runs every chapter end to end with the
smallest settings that exercise all of its code (one or two epochs, 16-wide models, 200 bootstrap
resamples): a check that an installation works, in a few minutes on a laptop; its numbers are not
results. The tests run the course with it through `make run PRESET=tiny`.

``class`` is for teaching: each chapter's training is cut so that the whole course runs in a few
minutes on a 2-core laptop while every lesson still shows — the Transformers beat the tuned
baselines, the RL learners beat the greedy ranker, the small student keeps most of its teacher.
Fewer epochs and smaller grids mean wider intervals and numbers below the default run's;
`RESULTS.md` has both runs. Overrides given on the command line win over a preset's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "default": {},
    "tiny": {
        "02": {
            "EPOCHS": 2,
            "HIDDEN": 16,
            "MAX_LEN": 20,
            "LR": 5e-3,
            "KNN_NEIGHBOURS": [20],
            "EASE_L2": [200],
            "N_BOOT": 200,
        },
        "02b": {"EPOCHS": 1, "COLD_FOLDS": 2, "FEATURES": ["text"], "MAPPER_EPOCHS": 1, "N_BOOT": 200},
        "03": {
            "EPOCHS": 1,
            "HEAD_EPOCHS": 0,
            "REFIT_EPOCHS": 1,
            "AUX_LAMBDAS": [0.3],
            "LR": 1e-3,
            "LORA_RANK": 4,
            "N_BOOT": 200,
        },
        "03b": {
            "EPOCHS": 1,
            "MAX_STEPS": 10,
            "HEAD_EPOCHS": 0,
            "REFIT_EPOCHS": 1,
            "LR": 1e-3,
            "MIN_SCENARIO_USERS": 300,
            "WEIGHTINGS": ["dwa"],
            "N_BOOT": 200,
        },
        "04": {
            "ITERATIONS": 5,
            "SLATEQ_ITERATIONS": 3,
            "BATCH_USERS": 64,
            "EVAL_REPEATS": 1,
            "LOG_REPEATS": 1,
            "OFFPOLICY_EPOCHS": 2,
            "HORIZON_STRENGTHS": [8.0],  # strength 0 is the chapter's main evaluation
            "SWEEP_SEEDS": 1,
            "OPE_SAMPLES": 2,
            "N_BOOT": 200,
        },
        "05": {
            "K_RANGE": [3, 4],
            "STUDENT_HIDDEN": [8],
            "ABLATION_HIDDEN": 8,
            "EPOCHS": 1,
            "THROUGHPUT_REPEATS": 1,
            "N_BOOT": 200,
        },
        "06": {"N_BOOT": 200},
    },  # fmt: skip
    "class": {
        "02": {
            "EPOCHS": 40,  # the cosine schedule spans EPOCHS: at 25 the causal model only tied EASE (paired)
            "PATIENCE": 8,
            "KNN_NEIGHBOURS": [10, 100],
            "EASE_L2": [100, 1000],
            "N_BOOT": 500,
        },
        "02b": {"EPOCHS": 4, "COLD_FOLDS": 4, "FEATURES": ["text"], "MAPPER_EPOCHS": 3, "N_BOOT": 500},
        "03": {
            "EPOCHS": 2,
            "PATIENCE": 1,
            "REFIT_EPOCHS": 1,
            "AUX_LAMBDAS": [0.3],
            "USER_TEXT": False,
            "N_BOOT": 500,
        },
        "03b": {
            "EPOCHS": 2,
            "PATIENCE": 1,
            "REFIT_EPOCHS": 1,
            "SEPARATE": False,  # five more finetunings: the default run has them
            "WEIGHTINGS": ["uniform"],
            "N_BOOT": 500,
        },
        "04": {
            "ITERATIONS": 80,
            "SLATEQ_ITERATIONS": 30,
            "EVAL_REPEATS": 3,
            "OFFPOLICY_EPOCHS": 15,
            "HORIZON_STRENGTHS": [0.0, 8.0, 32.0],  # a 3-point sweep
            "SWEEP_SEEDS": 1,
            "OPE_SAMPLES": 8,
            "N_BOOT": 500,
        },
        "05": {
            "EPOCHS": 3,
            "STUDENT_HIDDEN": [32, 16],
            "ABLATION_HIDDEN": 16,
            "THROUGHPUT_REPEATS": 1,
            "N_BOOT": 500,
        },
        "06": {"LEAVE_ONE_OUT": False, "N_BOOT": 500},
    },  # fmt: skip
}
"""Per preset, per chapter number: the parameter overrides."""


def preset_overrides(preset: str, number: str) -> dict[str, Any]:
    """The overrides ``preset`` sets for chapter ``number`` (e.g. "02b"); an unknown preset is an
    error that lists the known ones."""
    if preset not in PRESETS:
        raise ValueError(f"PRESET={preset!r}: no such preset; the presets are {', '.join(PRESETS)}")
    return dict(PRESETS[preset].get(number, {}))


def with_preset(preset: str, number: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The preset's overrides for the chapter, then the command line's (which win)."""
    return {**preset_overrides(preset, number), **overrides}
