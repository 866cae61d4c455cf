"""Chapter 03's plots: task weights over training, and the trade-off between tasks."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mtrec_helpers.core.plotting import set_style


def weight_trajectories(histories: dict[str, list[dict[str, float]]]) -> Figure:
    """Each task's loss weight per epoch, one panel per weighting strategy."""
    set_style()
    fig, axes = plt.subplots(
        1, len(histories), figsize=(4.2 * len(histories), 3.8), constrained_layout=True, squeeze=False
    )
    for ax, (name, history) in zip(axes[0], histories.items(), strict=True):
        frame = pd.DataFrame(history)
        for column in [c for c in frame.columns if c.startswith("weight_")]:
            ax.plot(frame["epoch"], frame[column], marker="o", label=column.removeprefix("weight_"))
        ax.set(title=name, xlabel="epoch", ylabel="task weight")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def tradeoff(results: dict[str, dict[str, float]], reference: float, auxiliary: list[str]) -> Figure:
    """Primary-task NDCG@10 against each auxiliary metric, one point per configuration; the dashed
    line is the pretrained-only model's NDCG@10."""
    set_style()
    fig, axes = plt.subplots(
        1, len(auxiliary), figsize=(4.2 * len(auxiliary), 3.8), constrained_layout=True, squeeze=False
    )
    for ax, metric in zip(axes[0], auxiliary, strict=True):
        for name, record in results.items():
            if metric in record and "ndcg@10" in record:
                ax.scatter(record[metric], record["ndcg@10"], s=40)
                ax.annotate(name, (record[metric], record["ndcg@10"]), fontsize=8, xytext=(3, 3),
                            textcoords="offset points")  # fmt: skip
        ax.axhline(reference, linestyle="--", color="grey")
        ax.set(xlabel=metric, ylabel="test NDCG@10")
    return fig
