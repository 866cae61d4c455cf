"""Find a MovieLens release on disk, or download and verify it (or generate a synthetic one).

Lookup order: ``$MTREC_DATA_DIR/<name>/`` → ``data/raw/<name>/`` → a zip already in ``data/raw``
→ download of the official zip. The synthetic scale presets (``synthetic-1m``, ``synthetic-20m``)
are generated into ``data/raw/<name>/`` instead of downloaded. A downloaded zip is written to a
temporary file and renamed into place only once its MD5 matches GroupLens' published checksum; it
is unpacked into a temporary folder that is renamed into place only once every file came out whole.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

from mtrec_helpers.core.atomic import atomic_directory
from mtrec_helpers.core.errors import DataError
from mtrec_helpers.core.paths import DATA_DIR_ENV, raw_dir, user_data_dir
from mtrec_helpers.data.files import file_problem
from mtrec_helpers.data.movielens import DatasetSpec

CHUNK = 1 << 20
_MD5_PATTERN = re.compile(r"\b([0-9a-fA-F]{32})\b")


def file_md5(path: Path) -> str:
    """MD5 of a file, read in chunks; a file that cannot be read is a DataError naming it."""
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(CHUNK), b""):
                digest.update(block)
    except OSError as exc:
        problem = file_problem(path) or f"cannot be read ({exc.strerror or exc})"
        raise DataError(f"{problem}.", path=path, fix="make the file readable by this user.") from exc
    return digest.hexdigest()


def _file_problems(folder: Path, spec: DatasetSpec) -> list[str]:
    """What is wrong with each of the release's files in ``folder`` ("u.data is a folder, not a file")."""
    found = ((name, file_problem(folder / name)) for name in spec.files)
    return [f"{name} {problem}" for name, problem in found if problem is not None]


def _manual_fix(spec: DatasetSpec, cache: Path) -> str:
    """How to put the files in place by hand (and where the lookup already looked)."""
    user_dir = user_data_dir()
    looked = f" ({DATA_DIR_ENV}={user_dir} has no {spec.name}/ folder.)" if user_dir else ""
    return (
        f"download {spec.url} by hand and unzip it so that {cache / spec.name / spec.files[0]} "
        f"exists, or set {DATA_DIR_ENV} to a folder that contains {spec.name}/.{looked}"
    )


def locate(spec: DatasetSpec, cache: Path | None = None, download: bool = True) -> Path:
    """The folder holding ``spec``'s files, downloading the release into ``cache`` if needed."""
    cache = Path(cache) if cache is not None else raw_dir()
    user_dir = user_data_dir()
    if user_dir is not None and (user_dir / spec.name).is_dir():
        folder = user_dir / spec.name
        problems = _file_problems(folder, spec)
        if problems:
            raise DataError(
                f"{DATA_DIR_ENV} points here but {'; '.join(problems)}.", path=folder, fix=spec.fix(folder)
            )
        return folder
    folder = cache / spec.name
    if folder.is_dir() and not _file_problems(folder, spec):
        return folder
    if spec.synthesize is not None:  # a generated release: written in place, atomically
        with atomic_directory(folder) as tmp:
            spec.synthesize(tmp)
        return folder
    archive = cache / f"{spec.name}.zip"
    if not archive.is_file():
        if not download:
            raise DataError(f"{spec.name} is not on this machine.", path=folder, fix=_manual_fix(spec, cache))
        fetch(spec, archive)
    return extract(spec, archive, folder)


def published_md5(spec: DatasetSpec) -> str:
    """GroupLens' published MD5 of the release's zip (pinned, or read from ``<url>.md5``)."""
    if spec.md5:
        return spec.md5
    with urllib.request.urlopen(f"{spec.url}.md5", timeout=60) as response:
        text = response.read(4096).decode("ascii", errors="replace")
    match = _MD5_PATTERN.search(text)
    if not match:
        raise DataError(f"no MD5 found in {spec.url}.md5 ({text[:80]!r}).", fix=_manual_fix(spec, raw_dir()))
    return match.group(1).lower()


def fetch(spec: DatasetSpec, archive: Path) -> Path:
    """Download the official zip to ``archive`` via a temporary file, verified by MD5."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".part")
    fix = _manual_fix(spec, archive.parent)
    digest = hashlib.md5(usedforsecurity=False)
    try:
        expected = published_md5(spec)
        with urllib.request.urlopen(spec.url, timeout=60) as response, open(partial, "wb") as out:
            for block in iter(lambda: response.read(CHUNK), b""):
                digest.update(block)
                out.write(block)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        partial.unlink(missing_ok=True)
        raise DataError(f"could not download {spec.url} ({exc}).", path=archive, fix=fix) from exc
    if digest.hexdigest() != expected:
        partial.unlink(missing_ok=True)
        raise DataError(
            f"checksum mismatch for {spec.url}: MD5 {digest.hexdigest()}, published {expected}. "
            "The download was corrupted or the file changed; nothing was kept.",
            path=archive,
            fix=fix,
        )
    os.replace(partial, archive)
    return archive


def extract(spec: DatasetSpec, archive: Path, folder: Path) -> Path:
    """Unpack ``archive`` into ``folder`` (atomically), checking every member's CRC."""
    fix = f"delete {archive} and run again to download it afresh, or {_manual_fix(spec, archive.parent)}"
    try:
        with zipfile.ZipFile(archive) as bundle:
            broken = bundle.testzip()
            if broken is not None:
                raise DataError(f"member {broken} is corrupt (CRC mismatch).", path=archive, fix=fix)
            with atomic_directory(folder) as tmp:
                bundle.extractall(tmp)
                _flatten(tmp, spec.name)
                problems = _file_problems(tmp, spec)
                if problems:
                    raise DataError(f"in the archive, {'; '.join(problems)}.", path=archive, fix=fix)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise DataError(
            f"is not a complete, readable zip archive ({exc}); the download was cut short or corrupted.",
            path=archive,
            fix=fix,
        ) from exc
    return folder


def _flatten(folder: Path, name: str) -> None:
    """GroupLens zips hold one top folder named like the release: move its content up."""
    inner = folder / name
    if inner.is_dir():
        for child in inner.iterdir():
            shutil.move(str(child), folder / child.name)
        inner.rmdir()
