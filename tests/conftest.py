"""Shared fixtures: tiny releases in official formats, the real ML-100k, an isolated data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import make_run
from movielens_files import write_ml100k

from mtrec_helpers.core.paths import DATA_DIR_ENV
from mtrec_helpers.course.runner import CELL_TIMEOUT_ENV
from mtrec_helpers.data import DATASETS
from mtrec_helpers.data.sources import locate

os.environ.setdefault(
    CELL_TIMEOUT_ENV, "900"
)  # a kernel that stops answering fails its test, never stalls CI


@pytest.fixture
def tiny_ml100k(tmp_path: Path) -> Path:
    """A tiny ml-100k folder in the official format."""
    return write_ml100k(tmp_path / "ml-100k")


@pytest.fixture(scope="session")
def real_ml100k() -> Path:
    """The real MovieLens 100K, found by the package's own lookup (MTREC_DATA_DIR in CI).

    No skip: without the data (and without network to download it) these tests fail.
    """
    return locate(DATASETS["ml-100k"])


@pytest.fixture
def isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty MTREC_DATA_DIR, so a test controls exactly what the lookup finds."""
    folder = tmp_path / "user-data"
    folder.mkdir()
    monkeypatch.setenv(DATA_DIR_ENV, str(folder))
    return folder


@pytest.fixture(scope="session")
def pipeline(real_ml100k: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make run PRESET=tiny` on the real ML-100k from an empty artifacts folder, exactly as a user
    types it (in CI: a fresh clone in an empty home, so a step only a used machine had done fails
    here); the stage tests and the book's browser test read what it wrote. Session-wide: it runs once
    however many modules use it."""
    folder = tmp_path_factory.mktemp("pipeline")
    done = make_run(folder)
    print(done.stdout[-2000:])
    return folder
