"""Chapter 06's part of `make bench`'s results file: the final table of every model and ensemble with
95% intervals, the paired tests against the best single model, and the text-aware and scenario-aware
members' shares and leave-one-out gains."""

from __future__ import annotations

from typing import Any

from mtrec_helpers.core.formatting import TABLE_METRICS, table, with_interval
from mtrec_helpers.core.tables import MODELS

MEMBERS = {"text_member": "Text-aware member", "scenario_member": "Scenario-aware member (03b)"}


def words(name: str) -> str:
    """A final-table model in words (its key where it has none)."""
    return MODELS[name][0] if name in MODELS else name


def record(stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """This chapter's entries of the results file, from every stage's metrics.json of the run."""
    ensemble = stages["ensemble"]
    return {
        "final_table": table(ensemble["results"], TABLE_METRICS),
        "best_single": ensemble["best_single"],
        "paired_vs_best_single": {
            name: {k: v for k, v in pair.items() if k.startswith("ndcg@10")}
            for name, pair in ensemble["paired"].items()
        },
        "text_member": ensemble.get("text_member"),
        "scenario_member": ensemble.get("scenario_member"),
    }


def markdown(record: dict[str, Any]) -> list[str]:
    """The final table of the summary (its headline, shown first), the paired tests and the members' gains."""
    header = "| model (test) | chapter | NDCG@10 [95% CI] | HR@10 | coverage@10 |"
    lines = ["", header, "|---|---|---|---|---|"]
    for name, row in sorted(record["final_table"].items(), key=lambda kv: -kv[1]["ndcg@10"]):
        low, high = row["ndcg@10_ci"]
        chapter = MODELS[name][1] if name in MODELS else "–"
        ndcg = f"{row['ndcg@10']:.4f} [{low:.4f}, {high:.4f}]"
        lines.append(f"| {words(name)} (`{name}`) | {chapter} | {ndcg} | {row['hr@10']:.4f} | "
                     f"{row.get('coverage@10', float('nan')):.3f} |")  # fmt: skip
    for name, pair in record["paired_vs_best_single"].items():
        difference = with_interval(pair, "ndcg@10_diff", signed=True)
        lines.append(f"\n{words(name)} − {words(record['best_single'])}: NDCG@10 {difference}")
    for key, title in MEMBERS.items():
        member = record.get(key)
        if member and member.get("ndcg@10_gain") is not None:
            lines.append(
                f"\n{title} in the fusion: α share {member['alpha_share']:.3f}; full fusion − fusion "
                f"without it: NDCG@10 {with_interval(member, 'ndcg@10_gain', signed=True)}"
            )
    return lines
