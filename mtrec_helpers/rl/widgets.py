"""Chapter 04's explorer: one simulated session, step by step, and the whole session in one table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import pandas as pd

from mtrec_helpers.core.display import fill


def step_view(step: dict[str, Any], n_steps: int) -> tuple[str, pd.DataFrame]:
    """One step: a line with the reward, the user's fatigue and whether they left, and the slate
    shown (one row per slot, the clicked film marked)."""
    tired = ", ".join(step["most tired of"]) or "nothing yet"
    ending = "leaves after this step" if step["left"] else "stays"
    line = (
        f"step {step['step']} of {n_steps} · reward {step['reward']:.2f} · most tired of: {tired} · {ending}"
    )
    slate = pd.DataFrame(
        {
            "film": step["slate"],
            "clicked": ["✓" if film == step["clicked"] else "" for film in step["slate"]],
        },
        index=pd.RangeIndex(1, len(step["slate"]) + 1, name="slot"),
    )
    return line, slate


def session_table(steps: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The whole session, one row per step: what was clicked, the reward, fatigue, leaving."""
    return pd.DataFrame(
        {
            "clicked": [s["clicked"] for s in steps],
            "reward": [f"{s['reward']:.2f}" for s in steps],
            "most tired of": [", ".join(s["most tired of"]) for s in steps],
            "left": ["yes" if s["left"] else "" for s in steps],
        },
        index=pd.Index([s["step"] for s in steps], name="step"),
    )


def session_replay(steps: list[dict[str, Any]]) -> widgets.Widget:
    """Step through one simulated session (a slider over the steps: the slate shown, the choice, the
    reward, the user's fatigue), above the whole session's table."""
    slider = widgets.IntSlider(min=1, max=max(len(steps), 1), value=1, description="step")
    output, whole = widgets.Output(), widgets.Output()

    def show(step: int) -> None:
        fill(output, *step_view(steps[step - 1], len(steps)))

    slider.observe(lambda change: show(change["new"]), names="value")
    show(1)
    fill(whole, f"The whole session ({len(steps)} steps, return {sum(s['reward'] for s in steps):.2f}):",
         session_table(steps))  # fmt: skip
    return widgets.VBox([slider, output, whole])
