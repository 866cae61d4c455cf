"""Chapter 02b's part of `make bench`'s results file: the slices (cold, long tail, overall) of the three
models with paired differences, the chosen ID_DROPOUT, and every training's validation NDCG@10."""

from __future__ import annotations

from typing import Any

from mtrec_helpers.core.formatting import with_interval

KEPT = ("text_model", "embed_seconds", "embeddings_cached", "id_dropout", "slices", "paired")


def record(stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """This chapter's entries of the results file, from every stage's metrics.json of the run."""
    text = stages["text"]
    section = {key: text[key] for key in KEPT}
    valid = {name: run["valid_ndcg@10"] for name, run in text["training"].items()}
    if "pretraining" in stages:  # 02's id-only causal model, the standard split's reference
        valid["id_only (02's causal)"] = stages["pretraining"]["training"]["causal"]["valid_ndcg@10"]
    return {"text": {**section, "valid_ndcg@10": valid}}


def markdown(record: dict[str, Any]) -> list[str]:
    """The slices table of the summary."""
    text = record["text"]
    seconds = (
        "read from the cache" if text["embeddings_cached"] else f"embedded in {text['embed_seconds']:.1f} s"
    )
    chosen = text["id_dropout"]
    lines = ["", f"Notebook 02b ({text['text_model']['name']}, {seconds}; ID_DROPOUT chosen on "
             f"validation: {chosen['standard']} on the standard split, {chosen['cold']} in the "
             "cold-start protocol), test NDCG@10 [95% CI]:", "",
             "| slice | users | id_only | text_aware | content_only | text_aware − id_only | "
             "text_aware − content_only |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, models in text["slices"].items():
        pairs = text["paired"][name]
        scores = " | ".join(
            with_interval(models[m], "ndcg@10") for m in ("id_only", "text_aware", "content_only")
        )
        differences = " | ".join(
            with_interval(pairs[f"text_aware_vs_{b}"], "ndcg@10_diff", signed=True)
            for b in ("id_only", "content_only")
        )
        lines.append(f"| {name} | {models['id_only']['n_users']} | {scores} | {differences} |")
    lines.append("\nValidation NDCG@10 (early stopping's best): " + ", ".join(
        f"{name} {value:.4f}" for name, value in text["valid_ndcg@10"].items()
    ))  # fmt: skip
    return lines
