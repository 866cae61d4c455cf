"""Chapter 04's part of `make bench`'s results file: each agent's session return and its difference
from greedy, in both simulators."""

from __future__ import annotations

from typing import Any

from mtrec_helpers.core.formatting import with_interval

KEYS = ("return_mean", "return_ci", "diff_vs_greedy", "diff_vs_greedy_ci")


def record(stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """This chapter's entries of the results file, from every stage's metrics.json of the run."""
    rl = stages["rl"]
    variants = {
        variant: {agent: {k: r[k] for k in KEYS if k in r} for agent, r in agents.items()}
        for variant, agents in rl["variants"].items()
    }
    return {"rl": {"variants": variants, "best": rl["best"]}}


def markdown(record: dict[str, Any]) -> list[str]:
    """The agents table of the summary."""
    variants = record["rl"]["variants"]
    lines = ["", f"Notebook 04 (chosen: {record['rl']['best']}), Δ return vs greedy [95% CI]:", "",
             "| agent | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]  # fmt: skip
    for agent in next(iter(variants.values())):
        cells = [
            f"{rows[agent]['return_mean']:.3f}" + (
                f", {with_interval(rows[agent], 'diff_vs_greedy', signed=True, digits=3)}"
                if "diff_vs_greedy" in rows[agent] else ""
            )
            for rows in variants.values()
        ]  # fmt: skip
        lines.append(f"| {agent} | " + " | ".join(cells) + " |")
    return lines
