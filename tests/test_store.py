"""Processed data: what is written, when it is reused or rebuilt, and that failures leave no debris."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from movielens_files import write_ml100k

from mtrec_helpers.data import DataError, SyntheticConfig, load_processed, prepare_dataset
from mtrec_helpers.data.store import FILES

SMALL = SyntheticConfig(n_users=60, n_items=80, min_length=8, max_length=20)


def _prepare(tmp_path: Path, **kwargs):
    return prepare_dataset("synthetic", tmp_path / "artifacts", synthetic=SMALL, **kwargs)


def test_writes_every_file_and_a_manifest(tmp_path: Path) -> None:
    data = _prepare(tmp_path)
    assert sorted(p.name for p in data.folder.iterdir()) == sorted(FILES)
    manifest = json.loads((data.folder / "manifest.json").read_text())
    assert manifest["dataset"] == "synthetic" and manifest["seed"] == 0
    assert manifest["params"]["min_interactions"] == 5
    assert manifest["counts"]["n_users"] == data.n_users == 60
    assert manifest["splits"] == {
        "train": manifest["counts"]["n_interactions"] - 120,
        "valid": 60,
        "test": 60,
    }
    assert data.vocab["pad"] == 0 and data.vocab["mask"] == data.n_items + 1
    assert data.interactions["item_idx"].between(1, data.n_items).all()
    assert sorted(data.interactions["item_idx"].unique()) == list(range(1, data.n_items + 1))


def test_reused_when_nothing_changed_and_rebuilt_otherwise(tmp_path: Path) -> None:
    first = _prepare(tmp_path)
    assert not first.reused
    again = _prepare(tmp_path)
    assert again.reused
    pd.testing.assert_frame_equal(first.interactions, again.interactions)
    other_k = _prepare(tmp_path, min_interactions=6)
    assert not other_k.reused and other_k.manifest["fingerprint"] != first.manifest["fingerprint"]
    other_seed = _prepare(tmp_path, min_interactions=6, seed=1)
    assert not other_seed.reused
    assert not other_seed.interactions[["user_id", "item_id"]].equals(
        other_k.interactions[["user_id", "item_id"]]
    )


def test_changed_source_file_rebuilds(isolated_data_dir: Path, tmp_path: Path) -> None:
    from movielens_files import write_ml100k

    folder = write_ml100k(isolated_data_dir / "ml-100k")
    first = prepare_dataset("ml-100k", tmp_path / "artifacts", min_interactions=3)
    assert set(first.manifest["sources"]) == {"u.data", "u.item", "u.genre", "u.user"}
    assert first.manifest["raw"] == {
        "n_users": 4,
        "n_items": 5,
        "n_interactions": 20,
        "n_items_in_catalogue": 5,
    }
    assert prepare_dataset("ml-100k", tmp_path / "artifacts", min_interactions=3).reused
    data = folder / "u.data"
    data.write_text(data.read_text().replace("\t1\t", "\t5\t", 1))
    rebuilt = prepare_dataset("ml-100k", tmp_path / "artifacts", min_interactions=3)
    assert not rebuilt.reused
    assert rebuilt.manifest["sources"]["u.data"] != first.manifest["sources"]["u.data"]


def test_failed_rebuild_leaves_previous_data_and_no_debris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _prepare(tmp_path)
    original = pd.DataFrame.to_parquet

    def broken(self, path, *args, **kwargs):
        if Path(path).name == "users.parquet":
            raise OSError("disk full")
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    with pytest.raises(OSError, match="disk full"):
        _prepare(tmp_path, min_interactions=6)
    kept = load_processed(first.folder)
    assert kept.manifest["fingerprint"] == first.manifest["fingerprint"]
    assert sorted(p.name for p in first.folder.parent.iterdir()) == ["processed"]


def test_sequences_and_targets_agree_with_the_split(tmp_path: Path) -> None:
    data = _prepare(tmp_path)
    train, valid, test = (data.sequences(s) for s in ("train", "valid", "test"))
    valid_targets, test_targets = data.targets("valid"), data.targets("test")
    for user in range(data.n_users):
        assert np.array_equal(valid[user], np.append(train[user], valid_targets[user]))
        assert np.array_equal(test[user], np.append(valid[user], test_targets[user]))
    with pytest.raises(ValueError, match="through='later'"):
        data.sequences("later")


def test_genre_matrix(tmp_path: Path) -> None:
    data = _prepare(tmp_path)
    matrix = data.genre_matrix()
    assert matrix.shape == (data.n_items + 2, len(data.vocab["genres"]))
    assert matrix[0].sum() == 0 and matrix[-1].sum() == 0
    first = data.items.iloc[0]
    expected = sorted(data.vocab["genres"].index(g) for g in first["genres"])
    assert np.flatnonzero(matrix[first["item_idx"]]).tolist() == expected


def test_missing_processed_folder_says_which_notebook_to_run(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="01_data_prep"):
        load_processed(tmp_path / "nothing")


def test_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown dataset 'ml-3k'") as caught:
        prepare_dataset("ml-3k", tmp_path)
    assert "ml-100k" in caught.value.fix and "synthetic" in caught.value.fix


# --- hardening (issue 13): damaged files, folder permissions, leftovers, unwritable folders -----------


def test_damaged_parquet_is_rebuilt_on_reuse_and_reported_on_load(tmp_path: Path) -> None:
    first = _prepare(tmp_path)
    target = first.folder / "interactions.parquet"
    target.write_bytes(target.read_bytes()[:-100])  # cut short, as by a full disk
    with pytest.raises(DataError, match="interactions.parquet: is damaged") as caught:
        load_processed(first.folder)
    assert "01_data_prep" in caught.value.fix
    with pytest.warns(UserWarning, match="rebuilding the processed data"):
        again = _prepare(tmp_path)
    assert not again.reused and again.interactions.equals(first.interactions)


def test_folder_written_atomically_has_the_umask_mode_and_leftovers_go(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    dead = artifacts / ".processed.999999999.abc.tmp"  # a killed build's folder (no such process)
    alive = artifacts / f".processed.{os.getpid()}.xyz.tmp"  # a build still running
    dead.mkdir()
    alive.mkdir()
    previous = os.umask(0o022)
    try:
        data = _prepare(tmp_path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(data.folder.stat().st_mode) == 0o755
    assert stat.S_IMODE((data.folder / "manifest.json").stat().st_mode) == 0o644
    assert not dead.exists() and alive.exists()


def test_unwritable_artifacts_dir_fails_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    def must_not_run(*args, **kwargs):
        raise AssertionError("the dataset was parsed before the folder was checked")

    monkeypatch.setattr("mtrec_helpers.data.store.load_raw", must_not_run)
    with pytest.raises(DataError) as caught:
        prepare_dataset("synthetic", blocker / "artifacts", synthetic=SMALL)
    assert caught.value.path == blocker / "artifacts" and "cannot create or write" in str(caught.value)
    assert "ARTIFACTS_DIR" in caught.value.fix and len(caught.value.problem.splitlines()) == 1


def test_manifest_records_source_encodings(isolated_data_dir: Path, tmp_path: Path) -> None:
    write_ml100k(isolated_data_dir / "ml-100k")
    data = prepare_dataset("ml-100k", tmp_path / "artifacts", min_interactions=3)
    assert data.manifest["source_encodings"] == {
        "u.data": "utf-8", "u.genre": "utf-8", "u.item": "latin-1", "u.user": "utf-8",
    }  # fmt: skip
