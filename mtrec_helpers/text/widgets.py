"""Chapter 02b's free-text search: the closest films to a query, and a user's top films among them."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
import numpy as np
import pandas as pd

from mtrec_helpers.core.display import fill
from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.text.encoder import MAX_TOKENS

ECHO_CHARS = 80
"""How much of a query the explorer repeats above its table."""
LONG_QUERY_CHARS = 4 * MAX_TOKENS
"""Beyond about this many characters the encoder has stopped reading (it reads MAX_TOKENS word pieces)."""


def query_notes(query: str) -> list[str]:
    """One-line notes on a search query the encoder cannot read well: none, too long, not English."""
    text = query.strip()
    if not text:
        return ["Type a description of a film (in English) to search the catalogue."]
    notes = []
    if len(text) > LONG_QUERY_CHARS:
        notes.append(f"Only the start of this {len(text):,}-character query is read: the encoder stops "
                     f"after {MAX_TOKENS} word pieces (about {LONG_QUERY_CHARS:,} characters).")  # fmt: skip
    letters = [c for c in text if c.isalpha()]
    if letters and sum(c.isascii() for c in letters) < 0.5 * len(letters):
        notes.append("The encoder was trained on English text: in another language it matches films "
                     "mostly by chance.")  # fmt: skip
    return notes


def echoed(query: str) -> str:
    """The query as the explorer repeats it: at most ECHO_CHARS characters."""
    text = " ".join(query.split())
    return repr(text if len(text) <= ECHO_CHARS else text[: ECHO_CHARS - 1] + "…")


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
        notes = query_notes(box.value)
        if not box.value.strip():
            fill(output, *notes)
            return
        user_idx = int(index[picker.value])
        table = query_recommendations(data, encode(box.value), item_vectors, user_scores(user_idx))
        fill(output, *notes, f"{echoed(box.value)} for user {picker.value}:", table)

    box.observe(show, names="value")
    picker.observe(show, names="value")
    show()
    return widgets.VBox([box, picker, output])
