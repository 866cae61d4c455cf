"""Chapter 03b's part of `make bench`'s results file: each model per scenario with intervals, the
seesaw table against shared with minimum detectable effects, the chosen model and the verdict."""

from __future__ import annotations

from typing import Any

from mtrec_helpers.core.formatting import with_interval
from mtrec_helpers.multi_scenario.report import seesaw_cell

REFERENCE = "the Scenario-Wise Rec benchmark's STAR − shared bottom on ML-1M age groups: +0.000 to +0.002"

KEPT = (
    "per_scenario",
    "definition",
    "scenarios",
    "merged",
    "sizes",
    "seesaw",
    "best",
    "routes",
    "verdict",
    "train_seconds",
)


def record(stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """This chapter's entries of the results file, from every stage's metrics.json of the run."""
    chapter = stages["multi_scenario"]
    return {"multi_scenario": {key: chapter[key] for key in KEPT}}


def markdown(record: dict[str, Any]) -> list[str]:
    """Per-scenario NDCG@10 of every model, and the seesaw table."""
    chapter = record["multi_scenario"]
    scenarios = chapter["scenarios"]
    routed = ", ".join(f"{s}: {r}" for s, r in chapter["routes"].items())
    title = (f"Notebook 03b (scenarios: {chapter['definition']}; chosen on validation: {chapter['best']}; "
             f"routed: {routed})")  # fmt: skip
    lines = ["", f"{title}, test NDCG@10 [95% CI] per scenario:", "",
             "| model | " + " | ".join(scenarios) + " | overall | mean over scenarios |",
             "|---|" + "---|" * (len(scenarios) + 2)]  # fmt: skip
    for name, row in chapter["per_scenario"].items():
        cells = [with_interval(row["scenarios"][s], "ndcg@10") for s in scenarios]
        mean = f"{row['mean_over_scenarios']['ndcg@10']:.4f}"
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {with_interval(row['overall'], 'ndcg@10')} | {mean} |"
        )
    order = list(next(iter(chapter["seesaw"].values()))) if chapter["seesaw"] else []
    lines += ["", "Seesaw (model − shared, paired, smallest scenario first; MDE at 80% power):", "",
              "| model | " + " | ".join(order) + " |", "|---|" + "---|" * len(order)]  # fmt: skip
    for name, rows in chapter["seesaw"].items():
        cells = [seesaw_cell(rows[s]) for s in order]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    auc = [
        (name, rows)
        for name, rows in chapter["seesaw"].items()
        if any("like_auc_diff" in r for r in rows.values())
    ]
    if auc:
        lines += ["", f"Like AUC − shared's (paired, 95% CI; {REFERENCE}):", "",
                  "| model | " + " | ".join(order) + " |", "|---|" + "---|" * len(order)]  # fmt: skip
        for name, rows in auc:
            cells = [with_interval(rows[s], "like_auc_diff", signed=True) for s in order]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
