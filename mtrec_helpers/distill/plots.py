"""Chapter 05's plots: choosing k, the clusters, and accuracy against compression."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mtrec_helpers.core.plotting import set_style


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
