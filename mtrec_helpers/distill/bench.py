"""Chapter 05's part of `make bench`'s results file: every student's size, speed and quality, the chosen
one and its paired difference from the teacher."""

from __future__ import annotations

from typing import Any

from mtrec_helpers.core.formatting import number, table, with_interval

METRICS = ("params", "size_bytes", "throughput_users_per_s", "ndcg@10", "hr@10", "valid_ndcg@10")


def record(stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """This chapter's entries of the results file, from every stage's metrics.json of the run."""
    distillation = stages["distillation"]
    return {
        "distillation": {
            "results": table(distillation["results"], METRICS),
            "best": distillation["best"],
            "paired_vs_teacher": distillation["paired_vs_teacher"],
            "k": distillation["kmeans"]["k"],
        }
    }


def markdown(record: dict[str, Any]) -> list[str]:
    """The students table of the summary."""
    distillation = record["distillation"]
    lines = ["", f"Notebook 05 (k = {distillation['k']}; chosen: {distillation['best']}):", "",
             "| model | params | size (KB) | users/s | NDCG@10 [95% CI] | HR@10 | valid NDCG@10 |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, row in distillation["results"].items():
        lines.append(
            f"| {name} | {row['params']:,} | {row['size_bytes'] / 1024:.0f} | "
            f"{row['throughput_users_per_s']:,.0f} | {with_interval(row, 'ndcg@10')} | "
            f"{number(row, 'hr@10')} | {number(row, 'valid_ndcg@10')} |"
        )
    pair = distillation["paired_vs_teacher"]
    lines.append(
        f"\n{distillation['best']} − teacher: NDCG@10 {with_interval(pair, 'ndcg@10_diff', signed=True)}"
    )
    return lines
