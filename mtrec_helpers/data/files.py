"""What is wrong with a path that should be a readable data file, said in words a user can act on."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from mtrec_helpers.core.errors import DataError


def file_problem(path: Path) -> str | None:
    """None for a regular file this user can read; otherwise why not: "is missing", "is a folder, not
    a file", "is a symbolic link loop", "is a symbolic link to nothing", "cannot be read (...)"."""
    path = Path(path)
    try:
        info = path.stat()  # follows symbolic links
    except FileNotFoundError:
        return "is a symbolic link to nothing" if path.is_symlink() else "is missing"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link loop"
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISDIR(info.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if not os.access(path, os.R_OK):
        return "cannot be read (Permission denied)"
    return None


def present(path: Path) -> bool:
    """Whether anything is at ``path`` (a file, a folder, a broken or looping symbolic link)."""
    return os.path.lexists(path)


def require_file(path: Path, fix: str) -> None:
    """A DataError naming ``path`` and what is wrong with it, unless it is a readable regular file."""
    problem = file_problem(path)
    if problem is not None:
        readable = problem.startswith("cannot be read")
        raise DataError(
            f"{problem}.", path=path, fix="make the file readable by this user." if readable else fix
        )
