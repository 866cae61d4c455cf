"""Per-task predictions and metrics of a multi-task model, and each task's trivial baseline.

Metrics (names as in metrics.json): next item ``ndcg@10``/``hr@10`` (full ranking, see
:mod:`mtrec_helpers.core.evaluation`); ``rating_rmse``/``rating_mae``; ``like_auc``/``like_logloss``;
``genre_micro_f1`` (one threshold over all genres, chosen on the validation split) /
``genre_auc`` (micro-averaged); ``profile_accuracy``/``profile_macro_f1`` (the mean over age
bucket, gender and occupation, on the users whose profile belongs to the split).

Trivial baselines, fitted on the same interactions the model may use as input: most-popular for the
next item; global mean + user bias + item bias (ridge-regularised, alternating updates) for the
rating; the training like rate; each genre's training frequency; the training majority class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score, log_loss, roc_auc_score

from mtrec_helpers.core.device import autocast
from mtrec_helpers.core.evaluation import Ranker, ScoreFn, split_histories
from mtrec_helpers.core.memory import reusing_heap
from mtrec_helpers.core.protocol import SPLITS
from mtrec_helpers.multitask.model import MultiTaskModel
from mtrec_helpers.multitask.tasks import PROFILE_FIELDS, TaskData

THRESHOLDS = np.linspace(0.05, 0.95, 91)


def multitask_scorer(model: MultiTaskModel, task_data: TaskData, split: str) -> ScoreFn:
    """An evaluator score function for ``split``: the model's next-item scores with its input
    features (history ratings, time of the held-out interaction)."""

    def score(users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        batch = task_data.split_batch(users, split, model.config.max_len).to(model.device)
        with torch.no_grad(), autocast(model.device):
            return model.next_item_outputs(batch).float()

    return score


def predict(
    model: MultiTaskModel,
    task_data: TaskData,
    split: str,
    users: np.ndarray | None = None,
    ranker: Ranker | None = None,
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """Auxiliary predictions for each user's (default: every user's) held-out ``split``
    interaction: ``rating``, ``like`` and ``genre`` probabilities, ``profile_<k>`` class
    probabilities. With ``ranker``, the next-item scores of the same forward pass are ranked into
    it, so one pass over the users gives every head's validation or test numbers."""
    model.eval()
    chosen = np.arange(task_data.data.n_users) if users is None else np.asarray(users)
    histories = split_histories(task_data.data, split) if ranker is not None else []
    parts: dict[str, list[np.ndarray]] = {}
    with torch.no_grad(), autocast(model.device):
        for start in reusing_heap(range(0, len(chosen), batch_size)):
            rows = chosen[start : start + batch_size]
            batch = task_data.split_batch(rows, split, model.config.max_len).to(model.device)
            outputs = model.task_outputs(batch)
            scores = outputs.pop("next", None)
            if ranker is not None and scores is not None:
                ranker.add(rows, [histories[u] for u in rows], scores.float())
            for name, value in outputs.items():
                value = value.float()
                if name in ("like", "genre"):
                    value = torch.sigmoid(value)
                elif name.startswith("profile_"):
                    value = torch.softmax(value, dim=-1)
                parts.setdefault(name, []).append(value.cpu().numpy())
    return {name: np.concatenate(values) for name, values in parts.items()}


def threshold_f1(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Micro-F1 = 2TP / (2TP + FP + FN) of predicting ``probabilities >= t`` at each of
    :data:`THRESHOLDS`, from one sort (sklearn's ``f1_score`` per threshold gives the same numbers,
    91 passes slower); 0 where nothing is predicted or true."""
    scores, truth = probabilities.astype(np.float64).ravel(), labels.ravel().astype(bool)
    positives, negatives = np.sort(scores[truth]), np.sort(scores[~truth])
    tp = len(positives) - np.searchsorted(positives, THRESHOLDS, side="left")
    fp = len(negatives) - np.searchsorted(negatives, THRESHOLDS, side="left")
    denominator = 2 * tp + fp + (len(positives) - tp)
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def best_threshold(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The single threshold over all labels that maximises micro-F1 (chosen on validation)."""
    return float(THRESHOLDS[int(np.argmax(threshold_f1(probabilities, labels)))])


def task_metrics(
    predictions: dict[str, np.ndarray], targets: dict[str, Any], genre_threshold: float = 0.5
) -> dict[str, float]:
    """The auxiliary metrics for whichever heads ``predictions`` holds."""
    record: dict[str, float] = {}
    if "rating" in predictions:
        error = predictions["rating"] - targets["rating"]
        record["rating_rmse"] = float(np.sqrt(np.mean(error**2)))
        record["rating_mae"] = float(np.mean(np.abs(error)))
    if "like" in predictions:
        probability = np.clip(predictions["like"], 1e-6, 1 - 1e-6)
        record["like_auc"] = float(roc_auc_score(targets["like"], probability))
        record["like_logloss"] = float(log_loss(targets["like"], probability, labels=[0, 1]))
    if "genre" in predictions:
        labels = targets["genres"]
        record["genre_micro_f1"] = float(
            f1_score(labels.ravel(), predictions["genre"].ravel() >= genre_threshold, zero_division=0)
        )
        record["genre_auc"] = float(roc_auc_score(labels.ravel(), predictions["genre"].ravel()))
    if "profile_0" in predictions:
        record.update(
            profile_metrics([predictions[f"profile_{k}"] for k in range(len(PROFILE_FIELDS))], targets)
        )
    return record


def profile_metrics(probabilities: Sequence[np.ndarray], targets: dict[str, Any]) -> dict[str, float]:
    """Accuracy and macro-F1 per profile attribute and their means, on the split's profile users."""
    record: dict[str, float] = {}
    for k, (field, probs) in enumerate(zip(PROFILE_FIELDS, probabilities, strict=True)):
        truth = targets["profile"][:, k]
        keep = targets["profile_users"] & (truth >= 0)
        guess = probs.argmax(axis=1)[keep]
        name = field.removesuffix("_idx")
        if not keep.any():  # a validation sample without a profile user of this split
            record[f"profile_{name}_accuracy"] = record[f"profile_{name}_macro_f1"] = float("nan")
            continue
        record[f"profile_{name}_accuracy"] = float(np.mean(guess == truth[keep]))
        record[f"profile_{name}_macro_f1"] = float(
            f1_score(truth[keep], guess, average="macro", zero_division=0)
        )
    for metric in ("accuracy", "macro_f1"):
        values = [record[f"profile_{f.removesuffix('_idx')}_{metric}"] for f in PROFILE_FIELDS]
        record[f"profile_{metric}"] = float(np.mean(values))
    return record


def fit_rating_biases(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    shape: tuple[int, int],
    reg: float = 10.0,
    sweeps: int = 10,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Global mean and user/item bias arrays of sizes ``shape`` minimising squared error +
    reg·(‖b_u‖² + ‖b_i‖²) by alternating exact updates."""
    mean = float(ratings.mean())
    user_count = np.bincount(users, minlength=shape[0])
    item_count = np.bincount(items, minlength=shape[1])
    user_bias, item_bias = np.zeros(shape[0]), np.zeros(shape[1])
    for _ in range(sweeps):
        user_bias = np.bincount(users, ratings - mean - item_bias[items], shape[0]) / (user_count + reg)
        item_bias = np.bincount(items, ratings - mean - user_bias[users], shape[1]) / (item_count + reg)
    return mean, user_bias, item_bias


def trivial_predictions(
    task_data: TaskData, split: str, tasks: Sequence[str] = ("rating", "like", "genre", "profile")
) -> dict[str, np.ndarray]:
    """The trivial baseline prediction of each auxiliary task in ``tasks`` for every user's held-out
    interaction."""
    before = SPLITS[SPLITS.index(split) - 1]
    users, items, ratings = task_data.train_ratings(before)
    targets = task_data.targets(split)
    n_users = len(targets["item"])
    mean, user_bias, item_bias = fit_rating_biases(users, items, ratings, (n_users, len(task_data.genres)))
    like_rate = float(task_data.like[1:].numpy()[task_data.split_code <= SPLITS.index(before)].mean())
    genre_rate = task_data.genres.numpy()[items].mean(axis=0)
    train_profiles = task_data.profiles.numpy()[task_data.profile_users("train")]
    predictions = {
        "rating": mean + user_bias + item_bias[targets["item"]],
        "like": np.full(n_users, like_rate),
        "genre": np.tile(genre_rate, (n_users, 1)),
    }
    predictions = {task: value for task, value in predictions.items() if task in tasks}
    if "profile" not in tasks:
        return predictions
    for k, n_classes in enumerate(task_data.profile_classes):
        column = train_profiles[:, k]
        majority = np.bincount(column[column >= 0], minlength=n_classes).argmax()
        predictions[f"profile_{k}"] = np.tile(np.eye(n_classes)[majority], (n_users, 1))
    return predictions
