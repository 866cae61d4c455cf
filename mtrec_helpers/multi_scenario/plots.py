"""Chapter 03b's plots: per-scenario NDCG against the shared model, and λ_{s,t} over training."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mtrec_helpers.core.plotting import set_style


def seesaw_plot(table: dict[str, dict[str, dict[str, Any]]]) -> Figure:
    """Each model's paired NDCG@10 difference against shared per scenario (smallest scenario left),
    with its 95% interval; the grey band is ± the minimum detectable effect at 80% power."""
    set_style()
    models = list(table)
    scenarios = list(next(iter(table.values()))) if table else []
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(scenarios) + 2), 3.8), constrained_layout=True)
    width = 0.8 / max(len(models), 1)
    for m, model in enumerate(models):
        x = np.arange(len(scenarios)) + (m - (len(models) - 1) / 2) * width
        rows = [table[model][s] for s in scenarios]
        diff = np.array([r["diff"] for r in rows])
        low, high = (np.array([r["diff_ci"][i] for r in rows]) for i in (0, 1))
        ax.errorbar(x, diff, yerr=[diff - low, high - diff], fmt="o", capsize=3, label=model)
    for k, scenario in enumerate(scenarios):
        mde = float(np.mean([table[m][scenario]["mde"] for m in models]))
        ax.fill_between([k - 0.45, k + 0.45], -mde, mde, color="grey", alpha=0.15, linewidth=0)
    ax.axhline(0.0, color="black", linewidth=0.8)
    labels = [f"{s}\n({table[models[0]][s]['n_users']} users)" for s in scenarios] if models else []
    ax.set_xticks(range(len(scenarios)), labels)
    ax.set(ylabel="NDCG@10 − shared (test)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return fig


def lambda_curves(lambdas: dict[str, list[dict[str, float]]], task: str = "next") -> Figure:
    """λ_{s,task} per epoch for each run (one panel per run, one line per scenario)."""
    set_style()
    fig, axes = plt.subplots(
        1, len(lambdas), figsize=(4.0 * len(lambdas), 3.6), constrained_layout=True, squeeze=False
    )
    for ax, (name, epochs) in zip(axes[0], lambdas.items(), strict=True):
        keys = [k for k in (epochs[0] if epochs else {}) if k.endswith(f"/{task}")]
        for key in keys:
            ax.plot(range(1, len(epochs) + 1), [e[key] for e in epochs], marker="o", label=key.split("/")[0])
        ax.set(title=name, xlabel="epoch", ylabel=f"λ(s, {task})")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return fig
