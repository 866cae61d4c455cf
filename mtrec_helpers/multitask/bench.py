"""Chapter 03's part of `make bench`'s results file: every configuration's test metrics with paired
differences against the pretrained model, the chosen λ, and the user-text features' effect."""

from __future__ import annotations

from typing import Any

from mtrec_helpers.core.formatting import fixed, number, table, with_interval

METRICS = (
    "ndcg@10", "hr@10", "rating_rmse", "rating_mae", "like_auc", "like_logloss", "genre_micro_f1",
    "genre_auc", "profile_accuracy", "profile_macro_f1", "trainable_share", "train_seconds",
)  # fmt: skip


def record(stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """This chapter's entries of the results file, from every stage's metrics.json of the run."""
    multitask = stages["multitask"]
    return {
        "multitask": {
            "results": table(multitask["results"], METRICS),
            "trivial": table({"trivial": multitask["trivial_baselines"]}, METRICS)["trivial"],
            "best": multitask["best"],
            "chosen_aux_lambda": multitask["chosen_aux_lambda"],
            "paired_vs_pretrained": multitask["paired_vs_pretrained"],
            "user_text": multitask.get("user_text", {}),
        }
    }


def markdown(record: dict[str, Any]) -> list[str]:
    """The configurations table of the summary, and the user-text effect."""
    multitask = record["multitask"]
    lines = ["", f"Notebook 03 (chosen: {multitask['best']}, λ = {multitask['chosen_aux_lambda']}):", "",
             "| configuration | NDCG@10 [95% CI] | HR@10 | rating RMSE | like AUC | genre micro-F1 | "
             "profile acc. / macro-F1 | paired vs pretrained |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    paired = multitask["paired_vs_pretrained"]
    for name, row in {**multitask["results"], "trivial": multitask["trivial"]}.items():
        pair = paired.get(name)
        lines.append(
            f"| {name} | {with_interval(row, 'ndcg@10')} | {number(row, 'hr@10')} | "
            f"{number(row, 'rating_rmse')} | {number(row, 'like_auc', 3)} | "
            f"{number(row, 'genre_micro_f1', 3)} | "
            f"{number(row, 'profile_accuracy', 3)} / {number(row, 'profile_macro_f1', 3)} | "
            f"{with_interval(pair, 'ndcg@10_diff', signed=True) if pair else '–'} |"
        )
    if multitask.get("user_text"):
        differences = multitask["user_text"].items()
        lines.append("\nUser-interest text features in 03 (with − without): " + ", ".join(
            f"{name} {fixed(row['difference'], 4, signed=True)}" for name, row in differences
        ))  # fmt: skip
    return lines
