"""The experiments of notebook 03: one call trains and measures one configuration on the test split.

An :class:`Experiment` names the tasks, the weighting strategy, the sharing layer and whether the
encoder is finetuned in full or through LoRA adapters. :func:`run_experiment` starts from the same
pretrained encoder every time, finetunes (model selection on validation), and measures every
trained head on the test split, next-item metrics with bootstrap intervals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from accelerate.utils import set_seed

from mtrec_helpers.core.evaluation import RankingResult, evaluate
from mtrec_helpers.multitask.finetune import FinetuneConfig, FinetuneResult, finetune
from mtrec_helpers.multitask.lora import add_lora, merge_lora, trainable_share
from mtrec_helpers.multitask.metrics import (
    best_threshold,
    predict,
    task_metrics,
    trivial_predictions,
)
from mtrec_helpers.multitask.model import MultiTaskModel, build_multitask
from mtrec_helpers.multitask.tasks import TASKS, TaskData
from mtrec_helpers.multitask.weighting import make_weighting
from mtrec_helpers.pretraining.artifacts import load_recommender
from mtrec_helpers.pretraining.baselines import fit_popularity
from mtrec_helpers.pretraining.models import scorer

REPORTED = (
    "ndcg@10", "ndcg@10_ci", "hr@10", "rating_rmse", "rating_mae", "like_auc", "like_logloss",
    "genre_micro_f1", "genre_auc", "profile_accuracy", "profile_macro_f1",
)  # fmt: skip


@dataclass(frozen=True)
class Experiment:
    """One configuration: tasks, loss weighting (with options), sharing layer, LoRA or full."""

    name: str
    tasks: tuple[str, ...] = TASKS
    weighting: str = "fixed"
    options: Mapping[str, Any] = field(default_factory=dict)
    sharing: str = "shared"
    n_experts: int = 4  # MMoE experts (with sharing="mmoe")
    lora_rank: int = 0  # 0: finetune the encoder in full; r > 0: LoRA adapters of rank r
    user_text: bool = False  # the user's mean item text vector as an input of the genre/profile heads


@dataclass
class Outcome:
    """A trained configuration: its model, training log, test record and next-item ranking."""

    experiment: Experiment
    model: MultiTaskModel
    training: FinetuneResult
    test: dict[str, Any]
    ranking: RankingResult | None
    trainable_share: float


def aux_lambdas(tasks: Sequence[str], aux: float) -> dict[str, float]:
    """Fixed weights: 1 for the next-item task, ``aux`` for every auxiliary task."""
    return {task: 1.0 if task == "next" else aux for task in tasks}


def chosen_lambda(sweep: Mapping[float, Outcome]) -> float:
    """The fixed auxiliary weight whose run has the best validation NDCG@10."""
    return max(sweep, key=lambda aux: sweep[aux].test["valid_selection"]["ndcg@10"])


def ranking_record(ranking: RankingResult, n_boot: int) -> dict[str, Any]:
    """NDCG@10 and HR@10 with bootstrap intervals, from a ranking."""
    summary = ranking.summary(ks=(10,), n_boot=n_boot)
    return {key: summary[key] for key in ("ndcg@10", "ndcg@10_ci", "hr@10", "hr@10_ci")}


def test_record(
    model: MultiTaskModel, task_data: TaskData, genre_threshold: float, n_boot: int
) -> tuple[dict[str, Any], RankingResult | None]:
    """Every trained head of ``model`` on the test split."""
    record: dict[str, Any] = {"split": "test"}
    ranker = task_data.ranker("test") if "next" in model.config.tasks else None
    predictions = predict(model, task_data, "test", ranker=ranker)  # one pass: every head
    ranking = ranker.result() if ranker is not None else None
    if ranking is not None:
        record.update(ranking_record(ranking, n_boot))
    record.update(task_metrics(predictions, task_data.targets("test"), genre_threshold))
    return record, ranking


def run_experiment(
    experiment: Experiment,
    encoder_dir: Path,
    task_data: TaskData,
    config: FinetuneConfig,
    device: torch.device,
    n_boot: int = 2000,
    progress: bool = True,
    runs_dir: Path | None = None,
    text: np.ndarray | None = None,
    measured: bool = True,
) -> Outcome | None:
    """Finetune ``experiment`` from the pretrained encoder and measure it on the test split; with
    ``runs_dir``, its checkpoints go to ``runs_dir/<name>`` and a re-run resumes from them. The new
    heads start from the engine's seed, so a configuration trains alike whatever ran before it.
    ``text``: the item text vectors (02b), needed by an experiment with ``user_text``. Not
    ``measured``: only trained (into ``runs_dir``, by a worker that trains ahead), and None returned."""
    if experiment.user_text and text is None:
        raise ValueError(f"{experiment.name}: user_text needs the item text vectors (text=...)")
    set_seed(config.engine.seed)
    model = build_multitask(
        encoder_dir, task_data, experiment.tasks, experiment.sharing,
        text=text if experiment.user_text else None, n_experts=experiment.n_experts,
    ).to(device)  # fmt: skip
    wrapped = (
        add_lora(model, rank=experiment.lora_rank, alpha=2 * experiment.lora_rank)
        if experiment.lora_rank
        else None
    )
    share = trainable_share(model)
    weighting = make_weighting(experiment.weighting, model.config.tasks, **dict(experiment.options))
    run_dir = runs_dir / experiment.name if runs_dir is not None else None
    training = finetune(model, weighting, task_data, config, device, progress, experiment.name, run_dir)
    if not measured:
        return None
    if wrapped is not None:
        model = merge_lora(wrapped).eval()
        training.model = model
    test, ranking = test_record(model, task_data, training.genre_threshold, n_boot)
    best = training.history[training.best_epoch - 1]
    test.update(
        valid_selection={k.removeprefix("valid_"): v for k, v in best.items() if k.startswith("valid_")},
        valid_after_refit=training.refit,
        best_epoch=training.best_epoch,
        train_seconds=training.train_seconds,
        trainable_share=share,
    )
    return Outcome(experiment, model, training, test, ranking, share)


def pretrained_reference(
    encoder_dir: Path,
    task_data: TaskData,
    device: torch.device,
    n_boot: int,
    valid_users: np.ndarray | None = None,
) -> tuple[dict[str, Any], RankingResult, float]:
    """The pretrained model alone on test (and its validation NDCG@10 on ``valid_users``, default
    all): the transfer reference."""
    encoder = load_recommender(encoder_dir)[0].to(device)
    data = task_data.data
    ranking = evaluate(scorer(encoder), data, "test", device=device)
    valid = float(evaluate(scorer(encoder), data, "valid", device=device, users=valid_users).ndcg(10).mean())
    return {"split": "test", **ranking_record(ranking, n_boot)}, ranking, valid


def trivial_baselines(task_data: TaskData, n_boot: int, tasks: Sequence[str] = TASKS) -> dict[str, Any]:
    """Most-popular for the next item; biases, base rates and majority classes for the other
    ``tasks``."""
    popularity = fit_popularity(task_data.data)
    record: dict[str, Any] = ranking_record(evaluate(popularity.score, task_data.data, "test"), n_boot)
    threshold = 0.5
    if "genre" in tasks:
        threshold = best_threshold(
            trivial_predictions(task_data, "valid", ("genre",))["genre"], task_data.targets("valid")["genres"]
        )
    test = trivial_predictions(task_data, "test", tasks)
    record.update(task_metrics(test, task_data.targets("test"), threshold))
    return {"split": "test", **record}


AUX_METRIC = {
    "rating": "rating_rmse",
    "like": "like_auc",
    "genre": "genre_auc",
    "profile": "profile_accuracy",
}
"""The one metric per auxiliary task that the trade-off plot shows."""


def results_frame(
    results: Mapping[str, Mapping[str, Any]], metrics: Sequence[str] = REPORTED
) -> pd.DataFrame:
    """One row per configuration, one column per metric (intervals as 'low–high' text)."""
    rows = {}
    for name, record in results.items():
        row: dict[str, Any] = {}
        for metric in metrics:
            value = record.get(metric)
            if isinstance(value, list | tuple):
                row[metric] = f"{value[0]:.4f}–{value[1]:.4f}"
            else:
                row[metric] = np.nan if value is None else round(float(value), 4)
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def choose_best(outcomes: Mapping[str, Outcome], prefix: str = "mtl_") -> str:
    """The multi-task configuration with the best validation NDCG@10 (never chosen on test)."""
    candidates = {n: o for n, o in outcomes.items() if n.startswith(prefix) and "next" in o.experiment.tasks}
    return max(candidates, key=lambda n: candidates[n].test["valid_selection"]["ndcg@10"])
