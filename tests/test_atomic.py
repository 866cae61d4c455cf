"""Atomic writes under pressure: several writers of one folder at once, and a disk that fills up."""

from __future__ import annotations

import contextlib
import multiprocessing
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from mtrec_helpers.core.atomic import DiskFull, atomic_directory
from mtrec_helpers.data import load_processed, prepare_dataset
from mtrec_helpers.data.synthetic import SyntheticConfig

ROUNDS = 40


def _write(folder: str, writer: int) -> None:
    """Write ``folder`` ROUNDS times; each version's two files name the same writer and round."""
    for round_ in range(ROUNDS):
        with atomic_directory(Path(folder)) as tmp:
            stamp = f"{writer}:{round_}"
            (tmp / "a.txt").write_text(stamp)
            (tmp / "b.txt").write_text(stamp * 200)


def _read(folder: str, stop, problems) -> None:  # noqa: ANN001 (multiprocessing objects)
    """Keep reading ``folder`` until told to stop; record every time it is absent or a file is cut."""
    path, reads = Path(folder), 0
    while not stop.is_set():
        try:
            a = (path / "a.txt").read_text()
        except FileNotFoundError:
            problems.put("absent")
            continue
        reads += 1
        if ":" not in a:
            problems.put(f"cut {a!r}")
    problems.put(reads)


def test_concurrent_writers_of_one_folder_leave_one_whole_version_and_no_debris(tmp_path: Path) -> None:
    """Two processes rewrite the same folder 40 times each while a third reads it: the reader never finds
    it absent or a file half-written, and no temporary or old copy is left. (A reader of several files
    may still meet two versions; the processed data's readers check every file against its manifest.)"""
    folder = tmp_path / "processed"
    _write(str(folder), 0)
    context = multiprocessing.get_context("fork")
    stop, problems = context.Event(), context.Queue()
    reader = context.Process(target=_read, args=(str(folder), stop, problems))
    writers = [context.Process(target=_write, args=(str(folder), w)) for w in (1, 2)]
    reader.start()
    for process in writers:
        process.start()
    for process in writers:
        process.join(120)
        assert process.exitcode == 0
    stop.set()
    reader.join(30)
    seen = []
    while not problems.empty():
        seen.append(problems.get())
    assert len(seen) == 1 and seen[0] > 100, seen  # only the count of reads: no problem recorded
    assert (folder / "a.txt").read_text() in {f"1:{ROUNDS - 1}", f"2:{ROUNDS - 1}"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["processed"]


@contextlib.contextmanager
def _small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 1 MB file system (tmpfs, where this user may mount one, as root in CI); elsewhere a folder
    whose parquet writes fail the way pyarrow fails on a full disk."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                             capture_output=True).returncode == 0  # fmt: skip
    if not mounted:
        original = pd.DataFrame.to_parquet

        def full(self: pd.DataFrame, path: Path, *args: object, **kwargs: object) -> None:
            if Path(path).is_relative_to(mount) and len(self) > 1000:
                raise OSError(28, "Error writing bytes to file. Detail: [errno 28] No space left on device")
            original(self, path, *args, **kwargs)

        monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    try:
        yield mount
    finally:
        if mounted:
            subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_names_the_folder_and_keeps_the_previous_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyarrow's "Error writing bytes to file" used to surface raw; now the error names the folder and
    says the disk is full, the previous processed data stays readable and no partial copy is left."""
    small = SyntheticConfig(n_users=30, n_items=40, min_length=5, max_length=10)
    large = SyntheticConfig(n_users=6000, n_items=2000, min_length=20, max_length=60)
    with _small_disk(tmp_path, monkeypatch) as disk:
        artifacts = disk / "artifacts"
        before = prepare_dataset("synthetic", artifacts, min_interactions=3, synthetic=small)
        with pytest.raises(DiskFull) as caught:
            prepare_dataset("synthetic", artifacts, min_interactions=3, synthetic=large)
        message = str(caught.value)
        assert message.startswith(f"{artifacts / 'processed'}: the disk is full") and "\n" not in message
        assert "ARTIFACTS_DIR" in message
        again = load_processed(artifacts / "processed")
        assert again.manifest["fingerprint"] == before.manifest["fingerprint"]
        assert sorted(p.name for p in artifacts.iterdir()) == ["processed"]


def test_a_failed_write_leaves_the_old_folder(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    with atomic_directory(folder) as tmp:
        (tmp / "x").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(folder) as tmp:
        (tmp / "x").write_text(uuid.uuid4().hex)
        raise RuntimeError("stop")
    assert (folder / "x").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
