"""Interactive explorers for JupyterLab (they render as plain text under papermill)."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
import numpy as np
import pandas as pd

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


def _show(output: widgets.Output, *parts: str | pd.DataFrame) -> None:
    """Replace the Output widget's content with ``parts`` (lines of text or tables). The outputs are
    set directly rather than captured by entering the widget as a context: capturing re-routes the
    kernel's current parent message, and under ipykernel 7 that can leave a non-interactive client
    (papermill) waiting for a reply that went out under another parent."""
    output.outputs = ()
    for part in parts:
        if isinstance(part, str):
            output.append_stdout(part + "\n")
        else:
            output.append_display_data(part)


def user_explorer(data: ProcessedData, rows: int = 20) -> widgets.Widget:
    """Pick a user and see their timeline: the last ``rows`` interactions and profile."""
    ids = data.users["user_id"].tolist()
    picker = widgets.Dropdown(options=ids, value=ids[0], description="user_id")
    output = widgets.Output()
    profile = data.users.set_index("user_id")

    def show(user_id: int) -> None:
        fields = profile.loc[user_id, ["age", "age_bucket", "gender", "occupation"]]
        summary = ", ".join(f"{k}: {v}" for k, v in fields.items())
        _show(output, summary, user_timeline(data, user_id).tail(rows))

    picker.observe(lambda change: show(change["new"]), names="value")
    show(ids[0])
    return widgets.VBox([picker, output])


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
        _show(output, pd.DataFrame.from_dict(rows, orient="index").round(4))

    slider.observe(lambda change: show(change["new"]), names="value")
    show(values[0])
    return widgets.VBox([slider, output])


def session_replay(steps: list[dict]) -> widgets.Widget:
    """Step through one simulated session: the slate shown, the choice, the reward, the user state."""
    slider = widgets.IntSlider(min=1, max=max(len(steps), 1), value=1, description="step")
    output = widgets.Output()

    def show(step: int) -> None:
        _show(output, *(f"{key}: {value}" for key, value in steps[step - 1].items()))

    slider.observe(lambda change: show(change["new"]), names="value")
    show(1)
    return widgets.VBox([slider, output])


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
        _show(
            output,
            f"last {history_rows} interactions before the {split} item:",
            timeline[timeline["split"] != split].tail(history_rows),
            top_lists(data, tops, user_idx, int(targets[user_idx])),
        )

    picker.observe(lambda change: show(change["new"]), names="value")
    show(ids[0])
    return widgets.VBox([picker, output])


def closest_items(query: np.ndarray, item_vectors: np.ndarray, k: int = 10) -> np.ndarray:
    """The ``k`` real items (indices 1..V-2) whose unit text vectors have the highest cosine with
    the unit vector ``query``, best first."""
    similarity = item_vectors[1:-1] @ query
    return np.argsort(-similarity, kind="stable")[:k] + 1


def query_recommendations(
    data: ProcessedData,
    query: np.ndarray,
    item_vectors: np.ndarray,
    user_scores: np.ndarray,
    k: int = 10,
    pool: int = 100,
) -> pd.DataFrame:
    """Side by side: the items closest to a description, the user's top ``k`` by the recommender's
    ``user_scores`` (V,; items already seen scored -inf), and the user's top ``k`` among the
    ``pool`` items closest to the description (the recommender re-ranking the text search)."""
    titles = data.items.set_index("item_idx")["title"]
    near = closest_items(query, item_vectors, pool)
    scores = np.asarray(user_scores, dtype=np.float64).copy()
    scores[[0, -1]] = -np.inf
    columns = {
        "closest to the description": near[:k],
        "recommended to the user": np.argsort(-scores, kind="stable")[:k],
        "recommended among the closest": near[np.argsort(-scores[near], kind="stable")][:k],
    }
    return pd.DataFrame(
        {name: [titles.get(int(item), "?") for item in items] for name, items in columns.items()},
        index=pd.RangeIndex(1, k + 1, name="rank"),
    )


def text_search_explorer(
    data: ProcessedData,
    encode: Callable[[str], np.ndarray],
    item_vectors: np.ndarray,
    user_scores: Callable[[int], np.ndarray],
    query: str = "a dark sci-fi thriller about memory",
) -> widgets.Widget:
    """Type a description and pick a user: what the text finds, and what the text-aware recommender
    shows that user (``encode``: text → unit vector; ``user_scores``: user_idx → catalogue scores)."""
    index = data.users.sort_values("user_idx").set_index("user_id")["user_idx"].to_dict()
    ids = list(index)
    box = widgets.Text(value=query, description="describe", layout=widgets.Layout(width="60%"))
    picker = widgets.Dropdown(options=ids, value=ids[0], description="user_id")
    output = widgets.Output()

    def show(_: object = None) -> None:
        user_idx = int(index[picker.value])
        table = query_recommendations(data, encode(box.value), item_vectors, user_scores(user_idx))
        _show(output, f"{box.value!r} for user {picker.value}:", table)

    box.observe(show, names="value")
    picker.observe(show, names="value")
    show()
    return widgets.VBox([box, picker, output])
