"""Chapter 02b's plots: the slices' metrics, and how far items moved from their text."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def text_slices(slices: dict[str, dict[str, dict]], metric: str = "ndcg@10") -> Figure:
    """Bars with 95% intervals: each model's ``metric`` on each slice (cold, long tail, overall)."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    names = list(next(iter(slices.values())))
    width = 0.8 / len(names)
    for n, name in enumerate(names):
        x = np.arange(len(slices)) + (n - (len(names) - 1) / 2) * width
        values = np.array([slices[s][name][metric] for s in slices])
        low, high = np.array([slices[s][name][f"{metric}_ci"] for s in slices]).T
        ax.bar(x, values, width, yerr=[values - low, high - values], capsize=3, label=name, color=f"C{n}")
    ax.set_xticks(np.arange(len(slices)), [f"{s}\n({next(iter(slices[s].values()))['n_users']} users)"
                                           for s in slices])  # fmt: skip
    ax.set(ylabel=metric.upper(), title=f"Test {metric.upper()} by slice (95% intervals)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def delta_by_popularity(popularity: np.ndarray, share: np.ndarray, bound: float) -> Figure:
    """Scatter of ‖δ_i‖ / ‖P t_i‖ against each item's training interactions: how far training moved
    an item away from its text, by how much the model saw it."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.scatter(popularity + 1, share, s=6, alpha=0.4, color="C0")
    ax.axhline(bound, color="grey", linestyle="--", label=f"bound ρ = {bound:g}")
    ax.set(xscale="log", xlabel="training interactions + 1", ylabel="‖δ‖ / ‖P t‖",
           title="How far each item moved from its text")  # fmt: skip
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
