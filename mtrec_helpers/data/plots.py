"""Chapter 01's plots: ratings, popularity, activity and sequence lengths of a dataset."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

from mtrec_helpers.core.plotting import set_style
from mtrec_helpers.data.store import ProcessedData


def rating_distribution(interactions: pd.DataFrame, ax: Axes) -> Axes:
    """Bar chart of how often each rating is given."""
    counts = interactions["rating"].value_counts().sort_index()
    sns.barplot(x=counts.index.astype(str), y=counts.to_numpy(), ax=ax, color="C0")
    ax.set(title="Rating distribution", xlabel="rating", ylabel="interactions")
    return ax


def item_popularity(interactions: pd.DataFrame, ax: Axes) -> Axes:
    """Interactions per item by popularity rank, log scale: the long tail."""
    counts = np.sort(interactions["item_idx"].value_counts().to_numpy())[::-1]
    ax.plot(np.arange(1, len(counts) + 1), counts, color="C1")
    head = int(np.searchsorted(np.cumsum(counts), 0.5 * counts.sum())) + 1
    ax.axvline(head, color="grey", linestyle="--", label=f"{head} items = half of all interactions")
    ax.set(title="Item popularity (long tail)", xlabel="item rank", ylabel="interactions", yscale="log")
    ax.legend(loc="upper right", fontsize="small")
    return ax


def count_histogram(counts: np.ndarray, ax: Axes, title: str, xlabel: str) -> Axes:
    """Histogram of per-user counts on a log x-axis, with the median marked."""
    sns.histplot(counts, bins=40, log_scale=(True, False), ax=ax, color="C2")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # 10, 20, 50, 100: several labels
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.axvline(
        float(np.median(counts)),
        color="black",
        linestyle="--",
        label=f"median {np.median(counts):.0f}",
    )
    ax.set(title=title, xlabel=xlabel, ylabel="users")
    ax.legend(fontsize="small")
    return ax


def genre_popularity(data: ProcessedData, ax: Axes) -> Axes:
    """Interactions per genre (an item with several genres counts for each)."""
    per_item = data.genre_matrix()[data.interactions["item_idx"].to_numpy()].sum(axis=0)
    order = np.argsort(per_item)[::-1]
    names = np.asarray(data.vocab["genres"])[order]
    sns.barplot(x=per_item[order], y=names, ax=ax, color="C3", orient="h")
    ax.set(title="Genre popularity", xlabel="interactions", ylabel="")
    return ax


def activity_over_time(interactions: pd.DataFrame, ax: Axes) -> Axes:
    """Interactions per week."""
    weeks = pd.to_datetime(interactions["timestamp"], unit="s").dt.to_period("W").dt.start_time
    counts = weeks.value_counts().sort_index()
    ax.plot(counts.index, counts.to_numpy(), color="C4")
    ax.set(title="Activity over time", xlabel="week", ylabel="interactions")
    ax.tick_params(axis="x", rotation=30)
    return ax


def data_overview(data: ProcessedData) -> Figure:
    """The six plots of notebook 01 in one figure."""
    set_style()
    fig, axes = plt.subplots(2, 3, figsize=(17, 9), constrained_layout=True)
    interactions = data.interactions
    per_user = interactions.groupby("user_idx").size().to_numpy()
    train_lengths = np.array([len(s) for s in data.sequences("train")])
    rating_distribution(interactions, axes[0, 0])
    item_popularity(interactions, axes[0, 1])
    count_histogram(per_user, axes[0, 2], "Interactions per user", "interactions (log scale)")
    count_histogram(train_lengths, axes[1, 0], "Training sequence lengths", "length (log scale)")
    genre_popularity(data, axes[1, 1])
    activity_over_time(interactions, axes[1, 2])
    fig.suptitle(f"{data.manifest['dataset']}: {len(interactions):,} interactions after filtering")
    return fig
