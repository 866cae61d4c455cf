"""Chapter 04's plots: session return over training against the fixed rankers, the phase diagram of
planning against the myopic oracle, and the off-policy estimators' errors."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mtrec_helpers.core.plotting import set_style


def rl_learning_curve(curves: dict[str, list[dict[str, float]]], references: dict[str, float]) -> Figure:
    """Mean return of the training sessions per iteration for each learner (rolling mean of 10),
    with dashed lines for reference agents (measured on the evaluation sessions)."""
    set_style()
    fig, ax = plt.subplots(figsize=(8, 4), constrained_layout=True)
    for name, curve in curves.items():
        frame = pd.DataFrame(curve)
        ax.plot(frame["iteration"], frame["return"].rolling(10, min_periods=1).mean(), label=name)
    for name, value in references.items():
        ax.axhline(value, linestyle="--", color="grey")
        ax.annotate(name, (1, value), fontsize=8, xytext=(2, 3), textcoords="offset points")
    ax.set(title="Learning curves (training sessions)", xlabel="iteration", ylabel="return per session")
    ax.legend()
    return fig


def phase_diagram(
    points: list[dict[str, Any]],
    learners: list[str],
    marks: dict[str, float],
    references: tuple[str, ...] = ("myopic_oracle", "by_like"),
) -> Figure:
    """Each learner's return − each of ``references``' (paired, 95% interval) against the horizon
    strength: one row per reference, one column per simulator; ``marks``: labelled strengths."""
    set_style()
    simulators = [key for key in points[0] if isinstance(points[0][key], dict)]
    size = (5 * len(simulators), 3.4 * len(references))
    fig, axes = plt.subplots(len(references), len(simulators), figsize=size, sharex=True, squeeze=False,
                             constrained_layout=True)  # fmt: skip
    strengths = [p["strength"] for p in points]
    for row, reference in zip(axes, references, strict=True):
        for ax, simulator in zip(row, simulators, strict=True):
            for name in learners:
                rows = [p[simulator][name] for p in points]
                diff = np.array([r[f"diff_vs_{reference}"] for r in rows])
                low, high = (np.array([r[f"diff_vs_{reference}_ci"][i] for r in rows]) for i in (0, 1))
                yerr = [diff - low, high - diff]
                ax.errorbar(strengths, diff, yerr=yerr, marker="o", capsize=3, label=name)
            ax.axhline(0.0, color="grey", linewidth=1)
            for label, strength in marks.items():
                ax.axvline(strength, color="grey", linestyle=":", linewidth=1)
                top = ax.get_ylim()[1]
                ax.annotate(label, (strength, top), fontsize=8, rotation=90, va="top", ha="right")
            ax.set(title=f"{simulator} simulator", xscale="symlog")
        row[0].set_ylabel(f"return − {reference}\n(95% CI)")
    for ax in axes[-1]:
        ax.set_xlabel("horizon strength")
    axes[0][0].legend(fontsize=8)
    return fig


def ope_errors(
    records: dict[str, dict[str, Any]], estimators: tuple[str, ...] = ("ips", "snips", "dr")
) -> Figure:
    """Each estimator's error (estimate − simulated truth, 95% interval) against the policy's distance
    from the logger (the weights' effective sample size share, log scale: far policies on the left)."""
    set_style()
    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    for offset, name in zip((-0.04, 0.0, 0.04), estimators, strict=False):
        for policy, r in records.items():
            error = r[f"{name}_error"]
            low, high = (bound - r["truth"] for bound in r[f"{name}_ci"])
            ax.errorbar([r["ess_share"] * 10**offset], [error], yerr=[[error - low], [high - error]],
                        fmt="o", capsize=3, color=f"C{estimators.index(name)}",
                        label=name if policy == next(iter(records)) else None)  # fmt: skip
    for policy, r in records.items():
        ax.annotate(
            policy, (r["ess_share"], 0), fontsize=7, rotation=45, xytext=(0, -12), textcoords="offset points"
        )
    ax.axhline(0.0, color="grey", linewidth=1)
    ax.set(xscale="log", xlabel="effective sample size / n (distance from the logger →)",
           ylabel="estimate − simulated value", title="Off-policy estimates vs the simulator")  # fmt: skip
    ax.invert_xaxis()
    ax.legend()
    return fig
