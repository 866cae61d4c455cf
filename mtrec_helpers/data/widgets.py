"""Chapter 01's explorer: one user's timeline and profile (JupyterLab; plain text under papermill)."""

from __future__ import annotations

import ipywidgets as widgets
import pandas as pd

from mtrec_helpers.core.display import fill
from mtrec_helpers.data.store import ProcessedData


def user_timeline(data: ProcessedData, user_id: int) -> pd.DataFrame:
    """One user's interactions in sequence order (indexed by position), with time, title, genres,
    rating (as the release shows it: 5, 4.5) and split."""
    users = data.users.set_index("user_id")["user_idx"]
    if user_id not in users.index:
        raise KeyError(f"user_id {user_id} is not in the processed data (filtered out or unknown).")
    rows = data.interactions[data.interactions["user_idx"] == users[user_id]]
    items = data.items.set_index("item_idx")
    return pd.DataFrame(
        {
            "time (UTC)": pd.to_datetime(rows["timestamp"].to_numpy(), unit="s"),
            "title": items.loc[rows["item_idx"], "title"].to_numpy(),
            "genres": [", ".join(g) for g in items.loc[rows["item_idx"], "genres"]],
            "rating": [stars(r) for r in rows["rating"].to_numpy()],
            "split": rows["split"].astype(str).to_numpy(),
        },
        index=pd.Index(rows["position"].to_numpy(), name="position"),
    )


def stars(rating: float) -> str:
    """A rating as the release shows it: 5 for five stars, 4.5 for four and a half."""
    return f"{rating:g}"


def user_explorer(data: ProcessedData, rows: int = 20) -> widgets.Widget:
    """Pick a user and see their timeline: the last ``rows`` interactions and profile."""
    ids = data.users["user_id"].tolist()
    picker = widgets.Dropdown(options=ids, value=ids[0], description="user_id")
    output = widgets.Output()
    profile = data.users.set_index("user_id")

    def show(user_id: int) -> None:
        fields = profile.loc[user_id, ["age", "age_bucket", "gender", "occupation"]]
        summary = ", ".join(f"{k}: {v}" for k, v in fields.items())
        fill(output, summary, user_timeline(data, user_id).tail(rows))

    picker.observe(lambda change: show(change["new"]), names="value")
    show(ids[0])
    return widgets.VBox([picker, output])
