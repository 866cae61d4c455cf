"""Chapter 04's explorer: one simulated session, step by step."""

from __future__ import annotations

import ipywidgets as widgets

from mtrec_helpers.core.display import fill


def session_replay(steps: list[dict]) -> widgets.Widget:
    """Step through one simulated session: the slate shown, the choice, the reward, the user state."""
    slider = widgets.IntSlider(min=1, max=max(len(steps), 1), value=1, description="step")
    output = widgets.Output()

    def show(step: int) -> None:
        fill(output, *(f"{key}: {value}" for key, value in steps[step - 1].items()))

    slider.observe(lambda change: show(change["new"]), names="value")
    show(1)
    return widgets.VBox([slider, output])
