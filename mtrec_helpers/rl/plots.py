"""Chapter 04's plots: session return over training against the fixed rankers."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from mtrec_helpers.core.plotting import set_style


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
