"""Write files and folders so that readers never see them half-written, or missing.

Temporary siblings are named ``.<name>.<pid>.<random>.tmp``: a later write of the same path removes
those whose process is gone (a killed build), never one that is still being written. Folders get
the permissions a plain ``mkdir`` would (0777 less the umask), not ``mkdtemp``'s 0700.

Several writers of one folder at once (two notebooks writing the same artifacts folder) are safe:
each builds its own temporary folder, and the swap into place is serialised by a lock on the parent
folder: the last writer's complete folder wins, nothing is left behind. On
Linux the swap is one atomic exchange (``renameat2``), so a reader never finds the folder absent;
elsewhere there is a moment between moving the old folder aside and the new one in.

A full disk while writing is one error naming what was being written (:class:`DiskFull`); the old
file or folder is left as it was and the partial copy is removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

_FULL = {errno.ENOSPC, errno.EDQUOT}


class DiskFull(OSError):
    """The disk (or the user's quota) filled up while a file or folder was being written."""


def _full_disk_error(path: Path, exc: OSError) -> DiskFull | None:
    """A :class:`DiskFull` naming ``path`` when ``exc`` is a full disk (pyarrow words it in its message)."""
    text = str(exc)
    if exc.errno in _FULL or "No space left on device" in text or "Disk quota exceeded" in text:
        return DiskFull(
            f"{path}: the disk is full (no space left on {path.parent}); nothing was changed and the "
            "partial copy was removed. Free some space, or point ARTIFACTS_DIR / RUNS_DIR at another disk."
        )
    return None


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path to write; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and (full := _full_disk_error(path, exc)) is not None:
            raise full from exc
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _process_alive(pid: int) -> bool:
    """Whether a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary siblings of ``path`` left by processes that no longer run."""
    removed = []
    for leftover in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
        parts = leftover.name[len(Path(path).name) + 2 :].split(".")
        if parts and parts[0].isdigit() and not _process_alive(int(parts[0])):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold a lock on ``path``'s parent folder: one writer swaps at a time (the lock is the folder's
    own, so no lock file is left; the system releases it if the process dies)."""
    handle = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


def _exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2`` with RENAME_EXCHANGE); False
    where the system or file system cannot, and nothing was changed."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_cwd, exchange = -100, 2  # AT_FDCWD, RENAME_EXCHANGE
    if renameat2(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


def _swap_in(tmp: Path, path: Path) -> None:
    """Put the finished ``tmp`` folder at ``path``; the folder it replaces is removed afterwards."""
    if path.exists() and _exchange(tmp, path):
        shutil.rmtree(tmp)  # now holds the old folder
        return
    old = path.with_name(f".{path.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder that replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        with _locked(path):
            _swap_in(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and (full := _full_disk_error(path, exc)) is not None:
            raise full from exc
        raise
