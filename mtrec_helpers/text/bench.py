"""Chapter 02b's part of `make bench`'s results file: the slices (cold pooled over the folds, long
tail, overall) with paired differences and minimum detectable effects, each fold's cold-slice
results, the choices made on validation, and every fold model's training."""

from __future__ import annotations

from typing import Any

from mtrec_helpers.core.formatting import with_interval

KEPT = ("text_model", "embed_seconds", "embeddings_cached", "slices", "paired", "folds", "chosen", "training")


def record(stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """This chapter's entries of the results file, from every stage's metrics.json of the run."""
    text = stages["text"]
    return {"text": {key: text[key] for key in KEPT}}


def markdown(record: dict[str, Any]) -> list[str]:
    """The slices table of the summary, then the folds."""
    text = record["text"]
    seconds = (
        "read from the cache" if text["embeddings_cached"] else f"embedded in {text['embed_seconds']:.1f} s"
    )
    chosen = text["chosen"]
    lines = ["", f"Notebook 02b ({text['text_model']['name']}, {seconds}; chosen on validation: the mapper "
             f"reads {chosen['features']}, k = {chosen['prior']:g}), test NDCG@10 [95% CI]; Δ = text_aware − "
             "the named model, paired, with the minimum detectable effect (MDE, 80% power):", "",
             "| slice | users | id_only | text_aware | genres mapper | content_only | Δ id_only "
             "| Δ content_only | Δ genres mapper | MDE (vs id_only) |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, models in text["slices"].items():
        pairs = text["paired"][name]
        scores = [with_interval(models[m], "ndcg@10") if m in models else "–"
                  for m in ("id_only", "text_aware", "genres", "content_only")]  # fmt: skip
        differences = [
            with_interval(pairs[f"text_aware_vs_{b}"], "ndcg@10_diff", signed=True)
            if f"text_aware_vs_{b}" in pairs else "–"
            for b in ("id_only", "content_only", "genres")
        ]  # fmt: skip
        mde = f"{pairs['text_aware_vs_id_only']['ndcg@10_mde']:.4f}"
        lines.append(
            f"| {name} | {models['id_only']['n_users']} | " + " | ".join([*scores, *differences, mde]) + " |"
        )
    lines.append("\nCold test NDCG@10 per fold (fold model's validation NDCG@10): " + "; ".join(
        f"fold {k} ({run['valid_ndcg@10']:.4f}, {fold['cold_test_users']} users): "
        + ", ".join(f"{m} {v:.4f}" for m, v in fold["test_ndcg@10"].items())
        for k, (fold, run) in enumerate(zip(text["folds"], text["training"].values(), strict=True))
    ))  # fmt: skip
    return lines
