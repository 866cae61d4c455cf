"""Shared fixtures: tiny releases in official formats, the real ML-100k, an isolated data dir."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from harness import make_run
from movielens_files import write_ml100k

from mtrec_helpers.core.paths import DATA_DIR_ENV
from mtrec_helpers.course.book import build_book
from mtrec_helpers.course.runner import CELL_TIMEOUT_ENV
from mtrec_helpers.data import DATASETS
from mtrec_helpers.data.sources import locate

os.environ.setdefault(
    CELL_TIMEOUT_ENV, "900"
)  # a kernel that stops answering fails its test, never stalls CI
if "PYTEST_XDIST_WORKER" in os.environ:  # `make test`'s workers share the cores: one thread each, for
    # this process and every kernel and launcher it starts (threads that wait spinning on a busy core
    # slow every process several-fold)
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    torch.set_num_threads(1)


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


@pytest.fixture(scope="session")
def book(pipeline: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make book` on the pipeline's run (a copy of its executed notebooks): the worked solutions run
    on its artifacts, then the site is built. Returns the runs folder (``book/``, ``solutions/``)."""
    runs = tmp_path_factory.mktemp("book") / "runs"
    shutil.copytree(pipeline / "runs", runs)
    build_book(runs, pipeline / "artifacts")
    return runs


PIPELINE_MODULES = ("test_book.py", "test_notebooks.py", "test_solutions.py")
"""The modules that read the session's tiny pipeline (and its book): one xdist work unit, so each is
built once."""


def work_unit(nodeid: str) -> str:
    """The xdist work unit of a test (`make test` runs two workers): the pipeline's modules together,
    each release of test_releases alone (each runs every notebook), every other module whole (its
    module fixtures are built once)."""
    module = nodeid.split("::", 1)[0]
    if module.rsplit("/", 1)[-1] in PIPELINE_MODULES:
        return "pipeline"
    return nodeid if module.endswith("test_releases.py") else module


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The costliest work units first (the pipeline, then the releases), so the two workers end
    together; a test reading the pipeline outside PIPELINE_MODULES is refused (it would build it twice)."""
    for item in items:
        if "pipeline" in getattr(item, "fixturenames", ()) and work_unit(item.nodeid) != "pipeline":
            raise pytest.UsageError(f"{item.nodeid} reads the pipeline: add its module to PIPELINE_MODULES")
    rank = {"pipeline": 0}
    items.sort(key=lambda item: rank.get(work_unit(item.nodeid), 1 if "test_releases" in item.nodeid else 2))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist's scope scheduling with :func:`work_unit` as the scope, in collection order."""
    from xdist.scheduler import LoadScopeScheduling

    class ByWorkUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False
    return ByWorkUnit(config, log)
