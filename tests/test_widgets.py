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


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("widgets")
    return prepare_dataset("synthetic", folder, min_interactions=3, synthetic=SyntheticConfig(n_users=30))


def _texts(box) -> str:
    output = box.children[1]
    return "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in output.outputs)


def test_sweep_explorer_shows_the_chosen_run(data) -> None:
    box = sweep_explorer({0.1: {"ndcg@10": 0.11}, 0.3: {"ndcg@10": 0.09}}, {"ndcg@10": 0.10})
    assert "0.11" in _texts(box) and "0.09" not in _texts(box)
    box.children[0].value = 0.3
    assert "0.09" in _texts(box) and "0.11" not in _texts(box)  # replaced, not appended


def test_session_replay_steps_through_the_session() -> None:
    box = session_replay([{"step": 1, "clicked": "Alpha"}, {"step": 2, "clicked": "Beta"}])
    assert "clicked: Alpha" in _texts(box)
    box.children[0].value = 2
    assert "clicked: Beta" in _texts(box) and "Alpha" not in _texts(box)


def test_user_and_top_list_explorers_render_a_user(data) -> None:
    first = int(data.users["user_id"].iloc[0])
    assert "gender" in _texts(user_explorer(data)) and len(user_explorer(data).children[1].outputs) == 2
    tops = {"model": np.tile(np.arange(1, 11), (data.n_users, 1))}
    box = top_lists_explorer(data, tops, history_rows=3)
    assert "last 3 interactions" in _texts(box) and box.children[0].value == first
