"""Where the project keeps raw data, processed data, artifacts and notebooks."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

DATA_DIR_ENV = "MTREC_DATA_DIR"
"""Environment variable naming a folder that holds unpacked datasets (e.g. ``<dir>/ml-100k/u.data``)."""


def project_root() -> Path:
    """The repository root when the package is used from a checkout, else the working directory."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def raw_dir() -> Path:
    """The download cache for raw datasets: ``data/raw``."""
    return project_root() / "data" / "raw"


def user_data_dir() -> Path | None:
    """The folder named by ``MTREC_DATA_DIR``, if set."""
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def absolutize_data_dir_env() -> None:
    """Make ``MTREC_DATA_DIR`` absolute, so notebooks running in another folder find the same data."""
    folder = user_data_dir()
    if folder is not None:
        os.environ[DATA_DIR_ENV] = str(folder)


def ensure_writable(folder: Path, parameter: str) -> Path:
    """Create ``folder`` if needed and check that files can be written in it, before any long work;
    a one-line error names the folder and the parameter to change otherwise."""
    from mtrec_helpers.core.errors import DataError

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise DataError(
            f"cannot create or write this folder ({exc.strerror or exc}).",
            path=folder,
            fix=f"set {parameter} to a folder you can write to, or fix its permissions.",
        ) from exc
    return folder


def default_artifacts_dir(dataset: str) -> Path:
    """``data/artifacts/<dataset>``: where every stage reads and writes its artifacts. A name that is
    not one plain folder name (``../x``, ``a/b``) is refused: it would lead outside that folder."""
    if dataset in ("", ".", "..") or Path(dataset).name != dataset or "\\" in dataset:
        raise ValueError(f"DATASET={dataset!r} is not a dataset name; use one of the names the README lists.")
    return project_root() / "data" / "artifacts" / dataset


def resolve_artifacts_dir(artifacts_dir: str | os.PathLike | None, dataset: str) -> Path:
    """The notebooks' ``ARTIFACTS_DIR`` parameter, with an empty value meaning the default."""
    if artifacts_dir is None or str(artifacts_dir).strip() == "":
        return default_artifacts_dir(dataset)
    return Path(artifacts_dir).expanduser().resolve()


def notebooks_dir() -> Path:
    """The folder of numbered notebooks."""
    return project_root() / "notebooks"
