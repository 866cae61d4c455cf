"""Chapter 02b's plots: the slices' metrics, and the score scale the mapper reads from text."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def text_slices(slices: dict[str, dict[str, dict]], metric: str = "ndcg@10") -> Figure:
    """Bars with 95% intervals: each model's ``metric`` on each slice (cold, long tail, overall); a
    model a slice does not have is left out of it."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    names = list(dict.fromkeys(name for models in slices.values() for name in models))
    width = 0.8 / len(names)
    for n, name in enumerate(names):
        present = [k for k, s in enumerate(slices) if name in slices[s]]
        x = np.array(present) + (n - (len(names) - 1) / 2) * width
        rows = [slices[s][name] for s in slices if name in slices[s]]
        values = np.array([r[metric] for r in rows])
        low, high = np.array([r[f"{metric}_ci"] for r in rows]).T
        ax.bar(x, values, width, yerr=[values - low, high - values], capsize=3, label=name, color=f"C{n}")
    ax.set_xticks(np.arange(len(slices)), [f"{s}\n({next(iter(slices[s].values()))['n_users']} users)"
                                           for s in slices])  # fmt: skip
    ax.set(ylabel=metric.upper(), title=f"Test {metric.upper()} by slice (95% intervals)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def bias_from_text(id_bias: np.ndarray, text_bias: np.ndarray, counts: np.ndarray) -> Figure:
    """Each trained item's output bias b_i (its learned popularity in the score) against the bias the
    mapper reads from its features alone, coloured by training interactions."""
    fig, ax = plt.subplots(figsize=(6, 4))
    points = ax.scatter(id_bias, text_bias, c=np.log10(counts), s=8, alpha=0.6, cmap="viridis")
    fig.colorbar(points, ax=ax, label="log10 training interactions")
    r = np.corrcoef(id_bias, text_bias)[0, 1]
    ax.set(xlabel="id model's bias b_i", ylabel="bias from the features f(x_i)",
           title=f"The score scale, read from text (r = {r:.2f})")  # fmt: skip
    fig.tight_layout()
    return fig
