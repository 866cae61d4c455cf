"""Chapter 06's explorer: each model's top items for a chosen user."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import pandas as pd

from mtrec_helpers.core.display import fill
from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.data.widgets import user_timeline


def top_lists(
    data: ProcessedData, tops: dict[str, np.ndarray], user_idx: int, target: int, k: int = 10
) -> pd.DataFrame:
    """One user's top ``k`` titles per model side by side; the held-out item is marked ✓."""
    titles = data.items.set_index("item_idx")["title"]
    return pd.DataFrame(
        {
            name: [
                f"{'✓ ' if item == target else ''}{titles.get(int(item), '?')}" for item in top[user_idx, :k]
            ]
            for name, top in tops.items()
        },
        index=pd.RangeIndex(1, k + 1, name="rank"),
    )


def top_lists_explorer(
    data: ProcessedData, tops: dict[str, np.ndarray], split: str = "test", history_rows: int = 10
) -> widgets.Widget:
    """Pick a user: their last interactions before ``split`` and every model's top 10 side by side."""
    index = data.users.sort_values("user_idx").set_index("user_id")["user_idx"].to_dict()
    ids = list(index)
    picker = widgets.Dropdown(options=ids, value=ids[0], description="user_id")
    output = widgets.Output()
    targets = data.targets(split)

    def show(user_id: int) -> None:
        user_idx = int(index[user_id])
        timeline = user_timeline(data, user_id)
        fill(
            output,
            f"last {history_rows} interactions before the {split} item:",
            timeline[timeline["split"] != split].tail(history_rows),
            top_lists(data, tops, user_idx, int(targets[user_idx])),
        )

    picker.observe(lambda change: show(change["new"]), names="value")
    show(ids[0])
    return widgets.VBox([picker, output])
