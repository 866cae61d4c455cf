"""Notebook parameters: what each notebook declares, and overrides checked before anything runs.

Every notebook has one cell tagged ``parameters``; its defaults fix each parameter's type. An
override must have that type (an int where the default is an int, a list of ints where it is a
list of ints; an int is accepted for a float), lie in the parameter's range where one is named in
:data:`RANGES`, and pick from :data:`CHOICES` where those are fixed — all checked for every notebook
before the first one starts, with an error that names the parameter and the notebook.

One name has one meaning across the course: a name declared by several notebooks is listed in
:data:`SHARED` with what it means everywhere (a test checks both).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import papermill

from mtrec_helpers.data.movielens import DATASETS


class NotebookParameterError(ValueError):
    """An override names a parameter no notebook declares, or has the wrong type or value."""


SHARED = {
    "DATASET": "the dataset every chapter reads",
    "ARTIFACTS_DIR": "the one artifacts folder of a run",
    "DEVICE": "where the chapter trains and scores (auto, cpu, cuda; pick a GPU with CUDA_VISIBLE_DEVICES)",
    "SEED": "the seed of every random draw in the chapter",
    "EPOCHS": "training epochs of the chapter's models (each chapter has its own default)",
    "BATCH_SIZE": "training sequences per optimisation step",
    "LR": "learning rate of the chapter's sequence models (the pretrained encoder in 03)",
    "PATIENCE": "epochs without a better validation score before training stops",
    "MAX_STEPS": "at most this many training batches per epoch (0: whole epochs; the scale benchmark)",
    "N_BOOT": "bootstrap resamples of every confidence interval",
    "VALID_USERS": "validation ranks at most this many users (a seeded sample beyond; 0: all); test: all",
    "TEXT_MODEL": "the pretrained text encoder of the item texts (a folder or a Hugging Face model name)",
    "ENCODER": "the pretrained model of notebook 02 that 03 and 03b finetune (a causal encoder)",
    "HEAD_LR": "learning rate of the parameters finetuning adds (heads, features, experts, scenario layers)",
    "HEAD_EPOCHS": "epochs training only the new parameters (encoder frozen) before finetuning everything",
    "REFIT_EPOCHS": "epochs training only the auxiliary heads on the chosen epoch's model",
    "DWA_TEMPERATURE": "the temperature T of dynamic weight average (03's tasks, 03b's scenarios × tasks)",
}
"""The names several notebooks declare, with the one thing each means in all of them."""


@dataclass(frozen=True)
class Range:
    """An interval a number (or every number of a list or dict) must lie in."""

    low: float
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def __str__(self) -> str:
        left = f"{'>' if self.open_low else '≥'} {_number(self.low)}"
        return (
            left
            if math.isinf(self.high)
            else f"{left} and {'<' if self.open_high else '≤'} {_number(self.high)}"
        )


def _number(value: float) -> str:
    """A bound as a reader would write it: 2147483647 in full, 0.5 as it is."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


POSITIVE, NON_NEGATIVE = Range(0, open_low=True), Range(0)
AT_LEAST_ONE, PROBABILITY = Range(1), Range(0, 1, open_high=True)
RANGES: dict[str, Range] = {
    **dict.fromkeys(
        ["EPOCHS", "BATCH_SIZE", "HIDDEN", "LAYERS", "HEADS", "MAX_LEN", "N_BOOT", "PATIENCE",
         "KNN_NEIGHBOURS", "GRADNORM_EVERY", "N_CANDIDATES", "SLATE_SIZE", "HORIZON", "EVAL_REPEATS",
         "ITERATIONS", "SLATEQ_ITERATIONS", "BATCH_USERS", "POLICY_HIDDEN", "LOG_REPEATS",
         "OFFPOLICY_EPOCHS", "KMEANS_INIT", "STUDENT_HIDDEN", "STUDENT_LAYERS", "ABLATION_HIDDEN",
         "THROUGHPUT_REPEATS"],
        AT_LEAST_ONE,
    ),
    **dict.fromkeys(
        ["HEAD_EPOCHS", "REFIT_EPOCHS", "MMOE_EXPERTS", "LORA_RANK", "N_CLUSTERS", "CONTENT_WINDOW",
         "RRF_DEPTH"],
        NON_NEGATIVE,
    ),
    "SEED": Range(0, 2**31 - 1),  # NumPy's legacy seeding (set_seed) takes < 2**32, and seeds get offsets
    **dict.fromkeys(
        ["LR", "HEAD_LR", "POLICY_LR", "EASE_L2", "GRADNORM_ALPHA", "DWA_TEMPERATURE",
         "EXPLORATION_TEMPERATURE", "BEHAVIOUR_TEMPERATURE", "SOFT_TEMPERATURE", "IS_CAP", "MIN_COMPRESSION"],
        POSITIVE,
    ),
    **dict.fromkeys(
        ["DROPOUT", "STUDENT_DROPOUT", "MASK_PROB", "HELDOUT_SHARE", "EPSILON"], PROBABILITY
    ),
    **dict.fromkeys(["AUX_LAMBDAS", "CE_WEIGHT", "SOFT_WEIGHT", "CLUSTER_WEIGHT"], NON_NEGATIVE),
    "GAMMA": Range(0, 1),
    "MAPPER_DROPOUT": Range(0, 1, open_low=True),  # 0 would never train the mapper
    "COLD_FOLDS": Range(2),
    "PRIORS": NON_NEGATIVE,
    "MAPPER_LR": POSITIVE,
    "MAPPER_EPOCHS": AT_LEAST_ONE,
    "MIN_INTERACTIONS": Range(3),
    "K_RANGE": Range(2),
}  # fmt: skip
"""Ranges of the numeric parameters (for lists and dicts: of every element)."""

CHOICES: dict[str, tuple[str, ...]] = {
    "DATASET": (*DATASETS, "synthetic"),
    "OBJECTIVES": ("masked", "causal"),
    "ENCODER": ("masked", "causal"),
    "TASKS": ("next", "rating", "like", "genre", "profile"),
    "ADAPTIVE": ("uncertainty", "gradnorm", "dwa"),
    "FEATURES": ("text", "genres", "text+genres"),
}
"""Parameters whose values (or list elements) come from a fixed set."""
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda")
"""What the engine honours: Accelerate places a process on the GPU of its rank, so a GPU is chosen
with CUDA_VISIBLE_DEVICES (or a launcher), never by an index here."""


def declared_parameters(notebook: Path) -> dict[str, Any]:
    """Names and default values of the notebook's ``parameters`` cell."""
    found = papermill.inspect_notebook(str(notebook))
    if not found:
        raise NotebookParameterError(f"{notebook} has no cell tagged 'parameters'.")
    return {name: ast.literal_eval(info["default"]) for name, info in found.items()}


def _kind(value: Any) -> str:
    """A value's type as this module compares them: bool, int, float, str, list, dict."""
    return "float" if isinstance(value, float) else type(value).__name__


def _with_article(kind: str) -> str:
    """'an int', 'a float'."""
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _fits(value: Any, default: Any) -> bool:
    """Whether ``value`` has the type of ``default`` (ints pass for floats; lists and dicts by element)."""
    expected = _kind(default)
    if expected == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if _kind(value) != expected:
        return False
    if expected == "list" and default:
        return all(any(_fits(v, d) for d in default) for v in value)
    if expected == "dict":
        return all(key in default and _fits(v, default[key]) for key, v in value.items())
    return True


def _numbers(value: Any) -> list[float]:
    """The numbers in a scalar, list or dict value."""
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, int | float) and not isinstance(v, bool)]


def check_value(name: str, value: Any, default: Any, notebook: str) -> None:
    """Refuse an override of the wrong type, outside its range or not among its choices."""
    where = f"{name}={value!r} (for {notebook})"
    if not _fits(value, default):
        shown = "text" if isinstance(value, str) else _kind(value)
        raise NotebookParameterError(
            f"{where}: expected {_with_article(_kind(default))} like the default {default!r}, got {shown}."
        )
    if any(not math.isfinite(v) for v in _numbers(value)):
        raise NotebookParameterError(f"{where}: every value must be a finite number (not inf or nan).")
    bad = [v for v in _numbers(value) if name in RANGES and v not in RANGES[name]]
    if bad or (isinstance(value, list) and name in RANGES and not value):
        raise NotebookParameterError(f"{where}: every value must be {RANGES[name]}.")
    values = value if isinstance(value, list) else [value]
    if name in CHOICES and (not values or any(v not in CHOICES[name] for v in values)):
        raise NotebookParameterError(f"{where}: choose from {list(CHOICES[name])}.")
    if name == "DEVICE" and not DEVICE_PATTERN.fullmatch(value):
        raise NotebookParameterError(
            f"{where}: use auto, cpu or cuda (choose the GPU with CUDA_VISIBLE_DEVICES=N, e.g. "
            "`CUDA_VISIBLE_DEVICES=1 make run DEVICE=cuda`)."
        )


def check_parameters(notebook: Path, parameters: Mapping[str, Any]) -> None:
    """Refuse overrides the notebook does not declare (listing those it does) or whose values do not fit."""
    declared = declared_parameters(notebook)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise NotebookParameterError(
            f"{notebook.name} does not declare {', '.join(unknown)}; "
            f"its parameters are {', '.join(sorted(declared))}."
        )
    for name, value in parameters.items():
        check_value(name, value, declared[name], notebook.name)


def check_declared_somewhere(notebooks: Sequence[Path], overrides: Mapping[str, Any]) -> None:
    """Refuse overrides that none of ``notebooks`` declares (suggesting the closest name), and
    check every override's value against each notebook that declares it."""
    declared = {nb: declared_parameters(nb) for nb in notebooks}
    everywhere = {name for names in declared.values() for name in names}
    unknown = sorted(set(overrides) - everywhere)
    if unknown:
        hints = [
            f"{name} (did you mean {close[0]}?)"
            if (close := difflib.get_close_matches(name, everywhere, 1))
            else name
            for name in unknown
        ]
        raise NotebookParameterError(
            f"no notebook declares {', '.join(hints)}; declared parameters: {', '.join(sorted(everywhere))}."
        )
    for notebook, names in declared.items():
        for name, value in overrides.items():
            if name in names:
                check_value(name, value, names[name], notebook.name)


def parse_assignment(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as a Python literal when it is one, else as a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key.strip(), value
