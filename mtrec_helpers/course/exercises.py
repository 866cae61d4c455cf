"""`make bench-exercises`: the chapters' parameter exercises as recorded runs, for the worked solutions.

Each entry of :data:`EXERCISES` re-runs one chapter with the exercise's parameters on a copy of a
finished run's artifacts (the folders the chapter reads), with that run's preset, and keeps the
figures the exercise asks about beside the same figures of the run itself. Everything goes to
``benchmarks/<device>-<dataset>[-<preset>]-exercises.json`` with the machine, the command and the
date; the worked solutions read that file, so a parameter exercise is answered by a run, not by words.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mtrec_helpers.core.atomic import atomic_write_text
from mtrec_helpers.core.paths import notebooks_dir, project_root
from mtrec_helpers.core.results import read_metrics
from mtrec_helpers.core.stages import STAGES, Stage
from mtrec_helpers.course.benchmark import machine, results_name
from mtrec_helpers.course.runner import run_pipeline

RANKING = ("n_users", "ndcg@10", "ndcg@10_ci")


def _pick(record: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {key: record[key] for key in keys if key in record}


def _ranking(record: dict[str, Any]) -> dict[str, Any]:
    return _pick(record, RANKING)


def _multitask(metrics: dict[str, Any]) -> dict[str, Any]:
    """03: the fixed-λ sweep's test figures, and the weights each adaptive scheme ended with."""
    keys = (*RANKING, "rating_rmse", "like_auc", "genre_micro_f1")
    sweep = {weight: _pick(record, keys) for weight, record in metrics["fixed_sweep"].items()}
    final = {name: history[-1] for name, history in metrics["histories"].items() if name.startswith("mtl_")}
    weights = {
        name: {k: v for k, v in last.items() if k.startswith("weight_")} for name, last in final.items()
    }
    return {"fixed_sweep": sweep, "final_weights": weights}


def _text(metrics: dict[str, Any]) -> dict[str, Any]:
    """02b: what validation chose, and the pooled cold slice."""
    return {
        "chosen": metrics["chosen"],
        "cold": {n: _ranking(r) for n, r in metrics["slices"]["cold"].items()},
    }


def _ensemble(metrics: dict[str, Any]) -> dict[str, Any]:
    """06: every model's and ensemble's test NDCG@10, and the ensembles against the best single model."""
    results = {name: _ranking(record) for name, record in metrics["results"].items()}
    return {"results": results, "paired": metrics["paired"], "best_single": metrics["best_single"]}


FIGURES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "data_prep": lambda m: _pick(m, ("n_users", "n_items", "n_interactions")),
    "pretraining": lambda m: {name: _ranking(record) for name, record in m["results"].items()},
    "text": _text,
    "multitask": _multitask,
    "multi_scenario": lambda m: _pick(m, ("scenarios", "merged", "seesaw", "verdict")),
    "rl": lambda m: {
        name: _pick(record, ("return_mean", "return_ci")) for name, record in m["results"].items()
    },
    "distillation": lambda m: {"kmeans": _pick(m["kmeans"], ("k", "sweep"))},
    "ensemble": _ensemble,
}
"""Per stage: the figures of its metrics.json that its exercises ask about."""


@dataclass(frozen=True)
class Exercise:
    """One parameter exercise: the chapter, its number there, and the parameters it sets."""

    chapter: str
    number: int
    overrides: dict[str, Any] = field(default_factory=dict)
    label: str = ""  # how a table names the run, where its settings are too long to read

    @property
    def key(self) -> str:
        """E.g. "03.1 AUX_LAMBDAS=[0.03, 3.0]": chapter, exercise and what it sets (values as JSON)."""
        settings = " ".join(f"{name}={json.dumps(value)}" for name, value in self.overrides.items())
        return f"{self.chapter}.{self.number} {settings}"


ONLY_THE_SWEEP = {"ADAPTIVE": ["dwa"], "MMOE_EXPERTS": 0, "LORA_RANK": 0, "USER_TEXT": False}
"""03's runs an exercise does not ask about left out (MMoE, LoRA, user texts; of the adaptive
schemes, of which the chapter needs one, only the cheapest)."""
EXERCISES = (
    Exercise("01", 1, {"MIN_INTERACTIONS": 20}),
    Exercise("02", 1, {"MAX_LEN": 20}),
    Exercise("02", 3, {"OBJECTIVES": ["causal"], "DROPOUT": {"masked": 0.2, "causal": 0.2}}),
    Exercise("02b", 1, {"PRIORS": [0.0, 1.0, 4.0, 16.0, 64.0]}),
    Exercise("02b", 2, {"MAPPER_DROPOUT": 1.0}),
    Exercise("02b", 2, {"MAPPER_DROPOUT": 0.1}),
    Exercise("02b", 3, {"COLD_FOLDS": 2}),
    Exercise("02b", 3, {"COLD_FOLDS": 10}),
    Exercise("03", 1, {"AUX_LAMBDAS": [0.03, 3.0], **ONLY_THE_SWEEP}),
    Exercise("03", 2, {"GRADNORM_ALPHA": 0.5, **ONLY_THE_SWEEP, "ADAPTIVE": ["gradnorm"]}),
    Exercise("03", 2, {"GRADNORM_ALPHA": 3.0, **ONLY_THE_SWEEP, "ADAPTIVE": ["gradnorm"]}),
    Exercise("03b", 1, {"SCENARIOS": "time"}),
    Exercise("03b", 2, {"MIN_SCENARIO_USERS": 200}),
    Exercise("04", 1, {"GAMMA": 0.0}),
    Exercise("04", 2, {"BEHAVIOUR_TEMPERATURE": 5.0}),
    Exercise("05", 2, {"K_RANGE": [2, 16]}),
    Exercise("06", 1, {"SCORE_MEMBERS": ["ease", "multitask"]}),
    Exercise("06", 2, {"SCORE_MEMBERS": ["pop", "itemknn", "bert4rec", "causal", "text_aware", "multitask",
                                         "multi_scenario", "student"]}, "every member but ease"),
)  # fmt: skip
"""Every parameter exercise the chapters set that a run on ML-100k can answer (02b's other encoder
and other releases need what the reference machine does not have)."""


def stage_of(chapter: str) -> Stage:
    """The stage of chapter number ``chapter``."""
    return next(stage for stage in STAGES if stage.number == chapter)


def run_exercise(exercise: Exercise, base: Path, common: dict[str, Any], preset: str) -> dict[str, Any]:
    """Run the exercise on a copy of the folders its chapter reads from ``base``; its figures and time."""
    stage = stage_of(exercise.chapter)
    with tempfile.TemporaryDirectory(prefix=".exercise-", dir=base.parent) as tmp:
        scratch = Path(tmp) / "artifacts"
        scratch.mkdir()
        for folder in stage.reads:
            shutil.copytree(base / folder, scratch / folder)
        start = time.perf_counter()
        run_pipeline([notebooks_dir() / stage.notebook], Path(tmp) / "runs",
                     {**common, "ARTIFACTS_DIR": str(scratch)}, exercise.overrides, preset)  # fmt: skip
        seconds = time.perf_counter() - start
        figures = FIGURES[stage.name](read_metrics(scratch, stage.name))
    return {"chapter": exercise.chapter, "number": exercise.number, "overrides": exercise.overrides,
            "wall_s": round(seconds, 1), "figures": figures}  # fmt: skip


def exercises_file(device: str, dataset: str, preset: str, folder: Path | None = None) -> Path:
    """The recorded exercises of a benchmarked run."""
    return (
        folder or project_root() / "benchmarks"
    ) / f"{results_name(device, dataset, preset)}-exercises.json"


def recorded(
    chapter: str, device: str = "cpu", dataset: str = "ml-100k", preset: str = "class"
) -> dict[str, Any]:
    """What the worked solutions show: the chapter's recorded exercise runs and the same figures of the
    run they changed (``base``), with the file's machine, command and date."""
    record = json.loads(exercises_file(device, dataset, preset).read_text(encoding="utf-8"))
    stage = stage_of(chapter).name
    runs = {key: run for key, run in record["exercises"].items() if run["chapter"] == chapter}
    return {"base": record["base"][stage], "runs": runs, "command": record["command"], "date": record["date"]}


def exercise_frame(
    chapter: str, number: int, project: Callable[[dict[str, Any]], dict[str, Any]], preset: str = "class"
) -> pd.DataFrame:
    """The recorded run and its exercise ``number``'s runs, one row each, with the columns ``project``
    takes from their figures (for the worked solutions)."""
    found = recorded(chapter, preset=preset)
    rows = {f"the {preset} run": project(found["base"])}
    labels = {exercise.key: exercise.label or exercise.key.split(" ", 1)[1] for exercise in EXERCISES}
    rows |= {labels.get(key, key): project(run["figures"]) for key, run in found["runs"].items()
             if run["number"] == number}  # fmt: skip
    return pd.DataFrame(rows).T.rename_axis(f"{chapter}, exercise {number}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts-dir", required=True, help="a finished run's artifacts (`make bench`)")
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--device", default="auto", help="auto: the device that run trained on")
    parser.add_argument(
        "--preset", default="class", help="the preset that run used (the exercises use it too)"
    )
    parser.add_argument("--only", nargs="*", default=[], help="chapter numbers (default: every exercise)")
    parser.add_argument("--command", default="make bench-exercises")
    parser.add_argument("--out", default=str(project_root() / "benchmarks"))
    args = parser.parse_args(argv)
    base = Path(args.artifacts_dir).resolve()
    if args.device == "auto":
        args.device = read_metrics(base, "pretraining")["device"]
    common = {"DATASET": args.dataset, "DEVICE": args.device}
    chosen = [e for e in EXERCISES if not args.only or e.chapter in args.only]
    record = {
        "machine": machine(), "command": args.command, "preset": args.preset,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "base": {stage.name: FIGURES[stage.name](read_metrics(base, stage.name)) for stage in STAGES},
        "exercises": {},
    }  # fmt: skip
    out = exercises_file(args.device, args.dataset, args.preset, Path(args.out))
    for exercise in chosen:
        print(f"▶ {exercise.key}", flush=True)
        record["exercises"][exercise.key] = run_exercise(exercise, base, common, args.preset)
        atomic_write_text(out, json.dumps(record, indent=2) + "\n")  # a run cut short keeps what it measured
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
