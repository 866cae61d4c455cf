"""Every reader returns the common schema; the real ML-100k has its published counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from movielens_files import write_csv_release, write_ml1m

from mtrec_helpers.core.errors import DataError
from mtrec_helpers.data import DATASETS
from mtrec_helpers.data.movielens import read_ml1m, read_ml100k, training_tags
from mtrec_helpers.data.schema import INTERACTION_COLUMNS, ITEM_COLUMNS, USER_COLUMNS, RawData


def _check_schema(raw: RawData) -> None:
    assert list(raw.interactions.columns) == INTERACTION_COLUMNS
    assert list(raw.items.columns) == ITEM_COLUMNS
    assert list(raw.users.columns) == USER_COLUMNS
    assert raw.interactions["user_id"].dtype == np.int64
    assert raw.interactions["timestamp"].dtype == np.int64
    assert raw.interactions["rating"].dtype == np.float32
    assert all(isinstance(g, list) for g in raw.items["genres"])


def test_ml100k_tiny(tiny_ml100k: Path) -> None:
    raw = read_ml100k(tiny_ml100k)
    _check_schema(raw)
    items = raw.items.set_index("item_id")
    assert items.loc[1, "genres"] == ["Animation", "Children's", "Comedy"]
    assert items.loc[3, "title"] == "Amélie (2001)"  # Latin-1 decoded
    assert items.loc[3, "year"] == 2001
    assert items.loc[4, "genres"] == ["unknown"] and pd.isna(items.loc[4, "year"])
    users = raw.users.set_index("user_id")
    assert users.loc[3, "age_bucket"] == "Under 18" and users.loc[4, "age_bucket"] == "56+"
    assert users.loc[1, "age_bucket"] == "18-24" and users.loc[1, "occupation"] == "technician"
    assert raw.has_user_profile


def test_ml1m_tiny(tmp_path: Path) -> None:
    raw = read_ml1m(write_ml1m(tmp_path / "ml-1m"))
    _check_schema(raw)
    assert len(raw.interactions) == 9
    items = raw.items.set_index("item_id")
    assert items.loc[3, "title"] == "Cité des enfants perdus, La (1995)"
    assert items.loc[2, "genres"] == ["Adventure", "Children's", "Fantasy"]
    users = raw.users.set_index("user_id")
    assert users.loc[1, "age_bucket"] == "Under 18" and users.loc[2, "age_bucket"] == "56+"
    assert users.loc[1, "occupation"] == "K-12 student" and users.loc[3, "occupation"] == "scientist"
    assert users["age"].isna().all()  # ML-1M publishes age groups only
    assert raw.genres == sorted({"Animation", "Children's", "Comedy", "Adventure", "Fantasy", "Sci-Fi"})


@pytest.mark.parametrize("name", ["ml-20m", "ml-25m", "ml-latest-small"])
def test_csv_releases_tiny(tmp_path: Path, name: str) -> None:
    raw = DATASETS[name].reader(write_csv_release(tmp_path / name))
    _check_schema(raw)
    assert raw.rating_scale == (0.5, 5.0, 0.5)
    assert sorted(raw.interactions["rating"].unique().tolist()) == [0.5, 2.0, 3.5, 4.0, 4.5, 5.0]
    items = raw.items.set_index("item_id")
    assert items.loc[3, "title"] == "American President, The (1995)"  # quoted, with a comma
    assert items.loc[6, "genres"] == []  # "(no genres listed)"
    assert items.loc[6, "year"] == 2008
    assert not raw.has_user_profile and raw.users["gender"].isna().all()
    assert raw.users["user_id"].tolist() == [1, 2]
    assert all(tags == [] for tags in items["tags"])  # filled once the data is split (training_tags)
    events = raw.tag_events.sort_values(["user_id", "item_id", "tag"]).reset_index(drop=True)
    assert events[["user_id", "item_id", "tag"]].values.tolist() == [
        [1, 1, "fun"], [1, 1, "pixar"], [2, 1, "pixar"], [2, 3, "politics, romance"], [2, 99, "orphan tag"]
    ]  # lower-cased, stripped, each user's first application once  # fmt: skip
    assert events.loc[2, "timestamp"] == 1262304000  # user 2 applied "pixar" twice: the first counts
    assert items.loc[1, "genome"] == ["toys", "war", "presidents"]  # by relevance
    assert items.loc[3, "genome"] == ["presidents", "war", "toys"] and items.loc[6, "genome"] == []


def test_csv_release_without_genome_and_bad_genome(tmp_path: Path) -> None:
    raw = DATASETS["ml-latest-small"].reader(write_csv_release(tmp_path / "small", genome=False))
    items = raw.items.set_index("item_id")
    assert len(raw.tag_events) == 5 and all(g == [] for g in items["genome"])
    folder = write_csv_release(tmp_path / "ml-20m")
    (folder / "genome-scores.csv").write_text("movieId,tagId,relevance\n1,1,0.9\n1,7,0.5\n")
    with pytest.raises(DataError, match=r"genome-scores.csv.*line 3.*tagId 7"):
        DATASETS["ml-20m"].reader(folder)


def test_real_ml100k_counts(real_ml100k: Path) -> None:
    raw = read_ml100k(real_ml100k)
    _check_schema(raw)
    assert raw.interactions["user_id"].nunique() == 943
    assert raw.interactions["item_id"].nunique() == 1682
    assert len(raw.interactions) == 100_000
    assert raw.interactions["rating"].value_counts().sort_index().tolist() == [
        6110,
        11370,
        27145,
        34174,
        21201,
    ]
    assert len(raw.genres) == 19 and raw.genres[0] == "unknown"
    toy_story = raw.items.set_index("item_id").loc[1]
    assert toy_story["title"] == "Toy Story (1995)" and toy_story["year"] == 1995
    assert toy_story["genres"] == ["Animation", "Children's", "Comedy"]
    assert raw.users.set_index("user_id").loc[1].tolist()[:4] == [24, "18-24", "M", "technician"]
    assert raw.repairs["duplicate_rows_dropped"] == 0


def test_only_tags_from_before_their_users_held_out_period_reach_the_items() -> None:
    events = pd.DataFrame(
        {"user_id": [1, 1, 2, 2, 3, 9], "item_id": [10, 10, 10, 11, 10, 11],
         "tag": ["pixar", "fun", "pixar", "late", "pixar", "outsider"], "timestamp": [5, 50, 7, 100, 8, 500]}
    )  # fmt: skip
    held_out_from = pd.Series({1: 40, 2: 100, 3: 200})  # user 9 was filtered away: no held-out period
    tags = training_tags(events, held_out_from)
    assert tags[10] == ["pixar"]  # user 1's "fun" came after their held-out period began
    assert tags[11] == ["outsider"]  # user 2's "late" at exactly the start is held out too
    assert training_tags(events.iloc[:0], held_out_from).empty
