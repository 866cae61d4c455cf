"""Chapter 03's explorer: the fixed-weight sweep, one auxiliary weight at a time."""

from __future__ import annotations

import ipywidgets as widgets
import pandas as pd

from mtrec_helpers.core.display import fill


def sweep_explorer(sweep: dict[float, dict[str, float]], baselines: dict[str, float]) -> widgets.Widget:
    """Slide over a precomputed sweep of fixed auxiliary weights λ; see each metric beside its
    trivial baseline (and the pretrained-only NDCG@10 when ``baselines`` holds it)."""
    values = sorted(sweep)
    slider = widgets.SelectionSlider(options=values, value=values[0], description="aux λ")
    output = widgets.Output()

    def show(value: float) -> None:
        record = sweep[value]
        rows = {
            m: {"λ run": v, "reference": baselines.get(m)} for m, v in record.items() if isinstance(v, float)
        }
        fill(output, pd.DataFrame.from_dict(rows, orient="index").round(4))

    slider.observe(lambda change: show(change["new"]), names="value")
    show(values[0])
    return widgets.VBox([slider, output])
