"""Every release the README offers runs through every notebook: synthetic data written in each
release's own file format (ml-1m's Latin-1 `.dat` with coded profiles; the CSV releases with half
stars, no user profiles, items without genres, sparse movie ids; a catalogue larger than ML-100k's)
and read back through the real readers, end to end with tiny settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from harness import run_all
from movielens_files import RELEASE_WINDOWS, write_synthetic_release
from test_notebooks import CONTRACT, TINY

from mtrec_helpers.core.paths import DATA_DIR_ENV
from mtrec_helpers.core.results import read_metrics
from mtrec_helpers.core.stages import STAGE_NAMES
from mtrec_helpers.data import SyntheticConfig, load_processed

RELEASES = {
    "ml-1m": (SyntheticConfig(n_users=200, n_items=200, seed=1), 1),
    "ml-latest-small@2016": (SyntheticConfig(n_users=200, n_items=200, seed=2), 397),
    "ml-latest-small@2018": (SyntheticConfig(n_users=200, n_items=200, seed=4), 397),
    "ml-25m": (
        SyntheticConfig(
            n_users=500, n_items=2200, min_length=30, max_length=60, popularity_strength=0.5, seed=3
        ),
        10_007,
    ),
}
"""Release (@version where GroupLens regenerates it) → (generator settings, movie-id stride); ml-25m's
stands for a catalogue larger than ML-100k's. The two ml-latest-small versions have their READMEs and
collection windows: 2016 from January 9, 1995, 2018 from March 29, 1996."""


@pytest.fixture(scope="module", params=list(RELEASES))
def release_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """All notebooks on one synthetic release read through its real reader (MTREC_DATA_DIR)."""
    config, stride = RELEASES[request.param]
    release, _, version = request.param.partition("@")
    data_dir = tmp_path_factory.mktemp("releases")
    write_synthetic_release(data_dir / release, release, config, id_stride=stride, version=version)
    folder = tmp_path_factory.mktemp(release)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DATA_DIR_ENV, str(data_dir))
        seconds = run_all(folder, TINY, dataset=release)
    print(request.param, "notebook seconds:", {name: round(value, 1) for name, value in seconds.items()})
    return request.param, folder / "artifacts"


def test_release_runs_every_notebook(release_run: tuple[str, Path]) -> None:
    name, artifacts = release_run
    release, _, version = name.partition("@")
    for stage in STAGE_NAMES:
        metrics = read_metrics(artifacts, stage)
        assert set(metrics) >= CONTRACT and metrics["dataset"] == release, stage
    data = load_processed(artifacts / "processed")
    manifest = data.manifest
    ensemble = read_metrics(artifacts, "ensemble")
    assert all(record["n_users"] == data.n_users for record in ensemble["results"].values())
    assert ensemble["results"]["ensemble_softmax"]["ndcg@10"] > ensemble["results"]["pop"]["ndcg@10"] / 2
    scenarios = read_metrics(artifacts, "multi_scenario")  # small scenarios merged, never a NaN
    for record in scenarios["per_scenario"].values():
        rows = record["scenarios"].values()
        assert sum(row["n_users"] for row in rows) == data.n_users
        assert all(np.isfinite(row["ndcg@10"]) and row["n_users"] > 0 for row in rows)
    multitask = read_metrics(artifacts, "multitask")
    chosen = multitask["results"][multitask["best"]]
    assert 0 < chosen["rating_rmse"] < 2 and 0.5 < chosen["like_auc"] <= 1
    if release == "ml-1m":
        assert manifest["source_encodings"]["movies.dat"] == "latin-1" and manifest["has_user_profile"]
        assert multitask["skipped_tasks"] == {} and 0 <= chosen["profile_accuracy"] <= 1
        assert data.vocab["rating_scale"] == [1.0, 5.0, 1.0]
    else:
        files = ["ratings.csv", "movies.csv", "tags.csv"]
        files += ["genome-scores.csv", "genome-tags.csv"] if release == "ml-25m" else []
        assert manifest["source_encodings"] == dict.fromkeys(files, "utf-8")
        assert data.items["tags"].map(len).gt(0).any()  # the tags reach the items (02b's texts)
        assert data.items["genome"].map(len).gt(0).any() == (release == "ml-25m")
        assert not manifest["has_user_profile"] and "user profiles" in multitask["skipped_tasks"]["profile"]
        assert not any(key.startswith("profile") for key in chosen)
        assert data.vocab["rating_scale"] == [0.5, 5.0, 0.5]
        assert set(data.interactions["rating"].unique()) >= {0.5, 1.5, 4.5}
        assert (data.items["genres"].map(len) == 0).any()  # items with "(no genres listed)"
        assert data.items["item_id"].max() > 2**16  # sparse movie ids map to contiguous indices
    if release == "ml-25m":
        assert data.n_items > 1349  # more than ML-100k's 5-core catalogue
    if version:  # the version's own window, its first rating included (the 2016 one: 1995-01-09)
        assert data.interactions["timestamp"].min() == RELEASE_WINDOWS[name][0]
