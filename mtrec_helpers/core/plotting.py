"""The course's plot style and the plots every training chapter draws (learning curves)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def set_style() -> None:
    """The course's plot style."""
    sns.set_theme(style="whitegrid", context="notebook", palette="deep")


def learning_curves(histories: dict[str, list[dict[str, float]]]) -> Figure:
    """Training loss and validation NDCG@10 per epoch, one line per model."""
    set_style()
    fig, (loss_ax, ndcg_ax) = plt.subplots(1, 2, figsize=(13, 4.5), constrained_layout=True)
    for name, history in histories.items():
        frame = pd.DataFrame(history)
        loss_ax.plot(frame["epoch"], frame["loss"], label=name)
        ndcg_ax.plot(frame["epoch"], frame["valid_ndcg@10"], label=name)
        best = frame.loc[frame["valid_ndcg@10"].idxmax()]
        ndcg_ax.scatter([best["epoch"]], [best["valid_ndcg@10"]], marker="*", s=120)
    loss_ax.set(title="Training loss (cross-entropy)", xlabel="epoch", ylabel="loss")
    for ax in (loss_ax, ndcg_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs only
    ndcg_ax.set(title="Validation NDCG@10 (full ranking; ★ = kept)", xlabel="epoch", ylabel="NDCG@10")
    loss_ax.legend()
    ndcg_ax.legend()
    return fig
