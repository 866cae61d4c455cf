"""The explorers render into their Output widget directly (no kernel capture), first view and after
a change of the control."""

from __future__ import annotations

import numpy as np
import pytest

from mtrec_helpers.data import SyntheticConfig, prepare_dataset
from mtrec_helpers.data.widgets import user_explorer
from mtrec_helpers.ensemble.widgets import top_lists_explorer
from mtrec_helpers.multitask.widgets import sweep_explorer
from mtrec_helpers.rl.widgets import session_replay
from mtrec_helpers.text.widgets import text_search_explorer


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("widgets")
    return prepare_dataset("synthetic", folder, min_interactions=3, synthetic=SyntheticConfig(n_users=30))


def _texts(box, child: int = 1) -> str:
    output = box.children[child]
    return "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in output.outputs)


def test_sweep_explorer_shows_the_chosen_run(data) -> None:
    box = sweep_explorer({0.1: {"ndcg@10": 0.11}, 0.3: {"ndcg@10": 0.09}}, {"ndcg@10": 0.10})
    assert "0.11" in _texts(box) and "0.09" not in _texts(box)
    box.children[0].value = 0.3
    assert "0.09" in _texts(box) and "0.11" not in _texts(box)  # replaced, not appended


def test_session_replay_steps_through_the_session() -> None:
    steps = [
        {"step": 1, "slate": ["Alpha", "Gamma"], "clicked": "Alpha", "reward": 0.7399717569351196,
         "most tired of": [], "left": False},
        {"step": 2, "slate": ["Beta", "Gamma"], "clicked": "no click", "reward": 0.0,
         "most tired of": ["Drama", "Comedy"], "left": True},
    ]  # fmt: skip
    box = session_replay(steps)
    assert "step 1 of 2 · reward 0.74 · most tired of: nothing yet · stays" in _texts(box)
    assert "Alpha" in _texts(box) and "0.7399" not in _texts(box) + _texts(box, child=2)
    box.children[0].value = 2
    assert "Beta" in _texts(box) and "Alpha" not in _texts(box) and "leaves after this step" in _texts(box)
    whole = _texts(box, child=2)  # the whole session, whatever the slider shows
    assert "return 0.74" in whole and "Alpha" in whole and "Drama, Comedy" in whole


def test_user_and_top_list_explorers_render_a_user(data) -> None:
    first = int(data.users["user_id"].iloc[0])
    assert "gender" in _texts(user_explorer(data)) and len(user_explorer(data).children[1].outputs) == 2
    tops = {"model": np.tile(np.arange(1, 11), (data.n_users, 1))}
    box = top_lists_explorer(data, tops, history_rows=3)
    assert "last 3 interactions" in _texts(box) and box.children[0].value == first


def test_text_search_guards_an_empty_a_very_long_and_a_non_english_query(data) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(data.n_items + 2, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    encoded = []

    def encode(text: str) -> np.ndarray:
        encoded.append(text)
        return vectors[1]

    box = text_search_explorer(data, encode, vectors, lambda user: rng.normal(size=data.n_items + 2), "")

    def shown() -> str:
        return _texts(box, child=2)

    assert shown().startswith("Type a description") and encoded == []  # nothing ranked without a query
    box.children[0].value = "space opera " * 500
    assert "Only the start of this 5,999-character query is read" in shown() and len(encoded) == 1
    assert "space opera " * 10 not in shown() and "…' for user" in shown()  # the echo is cut short
    box.children[0].value = "фильм о любви и войне"
    assert "trained on English text" in shown() and "closest to the description" in shown()
    box.children[0].value = "a heist comedy"
    assert (
        "Only the start" not in shown()
        and "English" not in shown()
        and "'a heist comedy' for user" in shown()
    )
