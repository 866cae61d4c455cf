"""Judging scenario-aware models per scenario: tables with intervals, the seesaw table, and what each
comparison could have detected.

Every user's held-out interaction belongs to one scenario, so a model's test ranking splits into one
ranking per scenario (within the scenario's catalogue for ``domain``). Per scenario: NDCG@10 and
HR@10 with 95% bootstrap intervals, the auxiliary heads' metrics; over all users the overall figure
and the mean over scenarios (each scenario counts once). The seesaw table pairs every model with the
shared one on each scenario's users — the mean difference, its interval, and the minimum detectable
effect at 80% power, smallest scenario first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from mtrec_helpers.core.evaluation import RankingResult, minimum_detectable_effect, paired_bootstrap
from mtrec_helpers.multi_scenario.scenarios import ScenarioData
from mtrec_helpers.multitask.metrics import predict
from mtrec_helpers.multitask.model import MultiTaskModel


@dataclass
class Measured:
    """A model's ranking of the users' held-out items and its auxiliary predictions (in ``users`` order)."""

    ranking: RankingResult
    predictions: dict[str, np.ndarray]
    users: np.ndarray


def measure(
    model: MultiTaskModel, data: ScenarioData, split: str, users: np.ndarray | None = None
) -> Measured:
    """The ``split`` ranking of every user's (or ``users``') held-out item (within the scenario's
    catalogue where it has one) and the auxiliary heads' predictions, in one pass."""
    users = np.arange(data.data.n_users) if users is None else np.asarray(users)
    ranker = data.ranker(split)
    predictions = predict(model, data, split, users, ranker)
    return Measured(ranker.result(), predictions, users)


def combine(parts: Mapping[int, Measured], codes: np.ndarray) -> Measured:
    """One measurement from one model per scenario (code → its measurement): each user's rows from
    the model of the user's scenario (``codes``) — the *separate* models as one recommender."""
    first = next(iter(parts.values()))
    ranks, top = first.ranking.ranks.copy(), first.ranking.top.copy()
    predictions = {name: values.copy() for name, values in first.predictions.items()}
    for code, part in parts.items():
        rows = codes == code
        ranks[rows], top[rows] = part.ranking.ranks[rows], part.ranking.top[rows]
        for name, values in part.predictions.items():
            predictions[name][rows] = values[rows]
    ranking = first.ranking
    result = RankingResult(ranks, top, ranking.n_items, ranking.split, ranking.exclude_history)
    return Measured(result, predictions, first.users)


def route(valid: Mapping[str, Mapping[str, float]], model: str, reference: str = "shared") -> dict[str, str]:
    """Per scenario, the run that serves it: ``model`` where its validation NDCG@10 (``valid``: run →
    scenario → value) is above ``reference``'s, else ``reference`` — launching a scenario-aware model
    only in the scenarios where validation says it helps."""
    return {s: model if valid[model][s] > value else reference for s, value in valid[reference].items()}


def aux_metrics(
    predictions: Mapping[str, np.ndarray], targets: Mapping[str, np.ndarray]
) -> dict[str, float | None]:
    """Rating RMSE, like AUC and genre AUC of the heads present; None where a metric is undefined on
    these users (an AUC needs both classes)."""
    record: dict[str, float | None] = {}
    if "rating" in predictions:
        record["rating_rmse"] = float(np.sqrt(np.mean((predictions["rating"] - targets["rating"]) ** 2)))
    for name, truth in (("like", targets["like"]), ("genre", targets["genres"])):
        if name in predictions:
            labels = np.asarray(truth).ravel()
            defined = 0 < labels.sum() < len(labels)
            score = roc_auc_score(labels, np.asarray(predictions[name]).ravel()) if defined else None
            record[f"{name}_auc"] = None if score is None else float(score)
    return record


def scenario_means(measured: Measured, data: ScenarioData, metric: str = "ndcg@10") -> dict[str, float]:
    """The mean of ``metric`` over each scenario's users (no interval: what validation compares)."""
    codes = data.held_out(measured.ranking.split)[measured.users]
    values = measured.ranking.per_user(metric)
    return {name: float(values[codes == code].mean()) for code, name in enumerate(data.scenarios.names, 1)}


def scenario_record(
    measured: Measured, data: ScenarioData, split: str, n_boot: int, seed: int = 0
) -> dict[str, Any]:
    """Per scenario (by name): users, NDCG@10 and HR@10 with intervals, auxiliary metrics; ``overall``
    over all users; ``mean_over_scenarios`` of NDCG@10 and HR@10."""
    codes, targets = data.held_out(split), data.targets(split)
    record: dict[str, Any] = {"scenarios": {}}
    for code, name in enumerate(data.scenarios.names, start=1):
        rows = np.flatnonzero(codes == code)
        summary = measured.ranking.select(rows).summary(ks=(10,), n_boot=n_boot, seed=seed)
        keep = {k: summary[k] for k in ("n_users", "ndcg@10", "ndcg@10_ci", "hr@10", "hr@10_ci")}
        aux = aux_metrics({n: v[rows] for n, v in measured.predictions.items()},
                          {n: v[rows] for n, v in targets.items() if n != "profile_users"})  # fmt: skip
        record["scenarios"][name] = {**keep, **aux}
    overall = measured.ranking.summary(ks=(10,), n_boot=n_boot, seed=seed)
    record["overall"] = {k: overall[k] for k in ("n_users", "ndcg@10", "ndcg@10_ci", "hr@10", "hr@10_ci")}
    record["overall"].update(aux_metrics(measured.predictions, targets))
    scenarios = record["scenarios"].values()
    record["mean_over_scenarios"] = {
        m: float(np.mean([r[m] for r in scenarios])) for m in ("ndcg@10", "hr@10")
    }
    return record


def paired_auc(
    a: np.ndarray, b: np.ndarray, labels: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> tuple[float, list[float]] | None:
    """AUC(a) − AUC(b) over the same users with a 95% paired bootstrap interval (None where the
    users have one class only). Each resample weights the users by their bootstrap counts w, so
    AUC = Σ_p Σ_n w_p w_n 1[s_p > s_n] / (Σ w_p · Σ w_n) for every resample in one product."""
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        return None
    n = len(labels)
    weights = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    weights = np.vstack([np.ones(n), weights])  # row 0: the point estimate
    pos, neg = weights[:, labels], weights[:, ~labels]
    mass = pos.sum(1) * neg.sum(1)

    def auc(scores: np.ndarray) -> np.ndarray:
        s = np.asarray(scores, dtype=np.float64)
        wins = (s[labels][:, None] > s[~labels][None, :]) + 0.5 * (s[labels][:, None] == s[~labels][None, :])
        return ((pos @ wins) * neg).sum(1) / np.where(mass > 0, mass, np.nan)

    diffs = auc(a) - auc(b)
    boot = diffs[1:][np.isfinite(diffs[1:])]
    return float(diffs[0]), [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))]


def seesaw(
    measured: Mapping[str, Measured],
    data: ScenarioData,
    split: str,
    reference: str = "shared",
    metric: str = "ndcg@10",
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Each model − ``reference`` on each scenario's users (scenarios smallest first): the mean paired
    difference in ``metric``, its 95% interval, and the minimum detectable effect at 80% power; with
    a like head, the like AUC's paired difference and interval too (None where AUC is undefined)."""
    codes, likes = data.held_out(split), data.targets(split)["like"]
    order = sorted(range(1, data.scenarios.k + 1), key=lambda c: (int((codes == c).sum()), c))
    base, base_like = (
        measured[reference].ranking.per_user(metric),
        measured[reference].predictions.get("like"),
    )
    table: dict[str, dict[str, Any]] = {}
    for name, model in measured.items():
        if name == reference:
            continue
        values, like = model.ranking.per_user(metric), model.predictions.get("like")
        table[name] = {}
        for code in order:
            rows = codes == code
            comparison = paired_bootstrap(values[rows], base[rows], n_boot=n_boot, seed=seed)
            row = {
                "n_users": int(rows.sum()),
                "diff": comparison.diff,
                "diff_ci": list(comparison.ci),
                "mde": minimum_detectable_effect(values[rows] - base[rows]),
            }
            if like is not None and base_like is not None:
                auc = paired_auc(like[rows], base_like[rows], likes[rows], n_boot, seed)
                row["like_auc_diff"], row["like_auc_diff_ci"] = auc if auc else (None, None)
            table[name][data.scenarios.names[code - 1]] = row
    return table
