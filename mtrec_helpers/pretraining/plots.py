"""Chapter 02's plots: where the Transformer attends."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from mtrec_helpers.core.plotting import set_style


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
