"""Chapter 04's part of `make bench`'s results file: each agent's session return and its difference
from greedy in both simulators, the chosen learner against the myopic oracle, the phase diagram of
planning against the horizon strength, and the off-policy estimates against the simulated truth."""

from __future__ import annotations

from typing import Any

from mtrec_helpers.core.formatting import with_interval

KEYS = ("return_mean", "return_ci", "diff_vs_greedy", "diff_vs_greedy_ci")
OPE_KEYS = ("truth", "ess_share", "ips", "ips_ci", "snips", "snips_ci", "dr", "dr_ci")


def record(stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """This chapter's entries of the results file, from every stage's metrics.json of the run."""
    rl = stages["rl"]
    variants = {
        variant: {agent: {k: r[k] for k in KEYS if k in r} for agent, r in agents.items()}
        for variant, agents in rl["variants"].items()
    }
    section: dict[str, Any] = {"variants": variants, "best": rl["best"]}
    for key in ("versus_oracle", "sweep", "plausible_strength", "planning_best"):
        if key in rl:
            section[key] = rl[key]
    if "ope" in rl:
        section["ope"] = {name: {k: r[k] for k in OPE_KEYS} for name, r in rl["ope"].items()}
    return {"rl": section}


def markdown(record: dict[str, Any]) -> list[str]:
    """The agents table of the summary, then the oracle comparison, the sweep and the OPE table."""
    rl = record["rl"]
    variants = rl["variants"]
    lines = ["", f"Notebook 04 (chosen: {rl['best']}), Δ return vs greedy [95% CI]:", "",
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
    for variant, row in rl.get("versus_oracle", {}).items():
        gain = with_interval(row, "gain_vs_myopic_oracle_pct", signed=True, digits=1)
        lines.append(f"\n{variant}: {rl['best']} − myopic oracle: {gain} % of the oracle's return")
    if "sweep" in rl:
        lines += _sweep(rl)
    if "ope" in rl:
        lines += _ope(rl["ope"])
    return lines


def _sweep(rl: dict[str, Any]) -> list[str]:
    """Per strength and simulator: each learner's return − the myopic oracle's and − the like
    re-ranker's (the myopic policy with the learner's information), in % [95% CI]."""
    points = rl["sweep"]
    learners = [n for n in points[0]["tuning"] if n not in ("greedy", "by_like", "myopic_oracle")]
    seeds, plausible = len(points[0]["seeds"]), rl.get("plausible_strength")
    lines = []
    for reference, label in (("myopic_oracle", "the myopic oracle"), ("by_like", "the like re-ranker")):
        lines += ["", f"Planning vs {label} (return − its return, % [95% CI], {seeds} training seeds; "
                  f"plausible strength {plausible}):", "",
                  "| strength | simulator | " + " | ".join(learners) + " |",
                  "|---|---|" + "---|" * len(learners)]  # fmt: skip
        for point in points:
            for simulator in ("tuning", "heldout"):
                rows = point[simulator]
                cells = [with_interval(rows[n], f"gain_vs_{reference}_pct", signed=True, digits=1)
                         for n in learners if n != reference]  # fmt: skip
                lines.append(f"| {point['strength']:g} | {simulator} | " + " | ".join(cells) + " |")
    return lines


def _ope(ope: dict[str, dict[str, Any]]) -> list[str]:
    """Each target policy's estimates [95% CI] against the simulated truth, nearest the logger first."""
    lines = ["", "Off-policy evaluation of the first slate (estimate [95% CI]; truth: the simulator):", "",
             "| policy | n_eff/n | truth | IPS | SNIPS | DR |", "|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in sorted(ope.items(), key=lambda kv: -kv[1]["ess_share"]):
        cells = [with_interval(r, key) for key in ("ips", "snips", "dr")]
        lines.append(f"| {name} | {r['ess_share']:.4f} | {r['truth']:.4f} | " + " | ".join(cells) + " |")
    return lines
