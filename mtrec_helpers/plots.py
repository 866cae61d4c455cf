"""Plots for the notebooks: one line in a notebook, the styling here."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter, ScalarFormatter

from mtrec_helpers.data.store import ProcessedData


def set_style() -> None:
    """The course's plot style."""
    sns.set_theme(style="whitegrid", context="notebook", palette="deep")


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


def attention_heatmap(weights: np.ndarray, labels: list[str], title: str, last: int = 15) -> Figure:
    """Last layer's attention averaged over heads, for the last ``last`` positions."""
    set_style()
    matrix = weights[-1].mean(axis=0)[-last:, -last:]
    names = labels[-last:]
    fig, ax = plt.subplots(figsize=(9, 7.5), constrained_layout=True)
    sns.heatmap(matrix, xticklabels=names, yticklabels=names, cmap="viridis", ax=ax, square=True)
    ax.set(title=title, xlabel="attends to (key)", ylabel="position (query)")
    ax.tick_params(axis="x", rotation=90)
    return fig


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


def kmeans_choice(sweep: pd.DataFrame, chosen: int) -> Figure:
    """Elbow (inertia) and silhouette against k, the chosen k marked."""
    set_style()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), constrained_layout=True)
    for ax, column in zip(axes, ("inertia", "silhouette"), strict=True):
        ax.plot(sweep["k"], sweep[column], marker="o")
        ax.axvline(chosen, linestyle="--", color="grey")
        ax.set(xlabel="k (clusters)", ylabel=column, title=f"{column} of the teacher's users")
    return fig


def cluster_map(points: np.ndarray, labels: np.ndarray, names: dict[int, str]) -> Figure:
    """Users in 2-D (principal components of the teacher's representations), coloured by cluster."""
    set_style()
    fig, ax = plt.subplots(figsize=(8, 6), constrained_layout=True)
    for cluster in np.unique(labels):
        members = labels == cluster
        ax.scatter(*points[members].T, s=10, alpha=0.7, label=f"{cluster}: {names.get(int(cluster), '')}")
    ax.set(xlabel="PC 1", ylabel="PC 2", title="Users by teacher cluster")
    ax.legend(fontsize=7, markerscale=2, loc="best")
    return fig


def compression_curve(results: dict[str, dict[str, float]], teacher: str = "teacher") -> Figure:
    """NDCG@10 kept (share of the teacher's) and throughput gained against compression."""
    set_style()
    reference = results[teacher]
    frame = pd.DataFrame(
        {
            name: {
                "compression": reference["params"] / r["params"],
                "kept": r["ndcg@10"] / reference["ndcg@10"],
                "speed-up": r["throughput_users_per_s"] / reference["throughput_users_per_s"],
            }
            for name, r in results.items()
            if name != teacher
        }
    ).T
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for ax, column in zip(axes, ("kept", "speed-up"), strict=True):
        ax.scatter(frame["compression"], frame[column])
        for name, row in frame.iterrows():
            ax.annotate(str(name), (row["compression"], row[column]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
        ax.set(xlabel="parameters: teacher / student", ylabel=column)
    axes[0].axhline(0.95, linestyle="--", color="grey")
    axes[0].set(title="Test NDCG@10 kept")
    axes[1].set(title="CPU scoring throughput vs teacher")
    return fig


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
