"""Chapter 06's plots: the final comparison and the fusion weights."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from mtrec_helpers.core.plotting import set_style


def final_comparison(results: dict[str, dict], ensembles: list[str]) -> Figure:
    """Test NDCG@10 of every model with its 95% interval (ensembles highlighted), and accuracy
    against intra-list diversity (marker size: coverage@10)."""
    set_style()
    order = sorted(results, key=lambda name: results[name]["ndcg@10"])
    values = np.array([results[name]["ndcg@10"] for name in order])
    intervals = np.array([results[name]["ndcg@10_ci"] for name in order])
    colours = ["tab:orange" if name in ensembles else "tab:blue" for name in order]
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.35 * len(order) + 2.5), constrained_layout=True)
    axes[0].barh(order, values, xerr=[values - intervals[:, 0], intervals[:, 1] - values], color=colours,
                 capsize=3)  # fmt: skip
    axes[0].set(xlabel="test NDCG@10 (95% bootstrap interval)", title="Every model on the test split")
    for name in order:
        record = results[name]
        axes[1].scatter(record["diversity@10"], record["ndcg@10"], s=600 * record["coverage@10"] + 10,
                        color="tab:orange" if name in ensembles else "tab:blue", alpha=0.7)  # fmt: skip
        axes[1].annotate(name, (record["diversity@10"], record["ndcg@10"]), fontsize=8, xytext=(4, 4),
                         textcoords="offset points")  # fmt: skip
    axes[1].set(xlabel="intra-list diversity@10 (genres)", ylabel="test NDCG@10",
                title="Accuracy and diversity (size: coverage@10)")  # fmt: skip
    return fig


def fusion_weights(shares: dict[str, float]) -> Figure:
    """Each member's share of the fitted softmax-fusion weights."""
    set_style()
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(shares) + 1.5), constrained_layout=True)
    names = sorted(shares, key=shares.get)
    ax.barh(names, [shares[name] for name in names])
    ax.set(xlabel="share of Σα (fitted on validation)", title="Softmax fusion weights")
    return fig
