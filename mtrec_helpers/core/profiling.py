"""Where a notebook's time goes: per cell (papermill's durations) and per function (cProfile).

``make bench-scale PROFILE=1`` (``scale_benchmark --profile``, results in
``benchmarks/scale-<device>[-<sizes>]-profile.json``) sets :data:`PROFILE_ENV` to a file
path for each notebook's kernel; the first import of ``mtrec_helpers`` in that kernel starts a
``cProfile`` profiler (:func:`start_from_environment`), and the statistics are written to that file
after every cell, so a notebook that fails still leaves its profile. :func:`summary` reads them back
with ``pstats`` (data, never code) together with the executed notebook's cell durations.

cProfile slows Python-level code (calls into torch kernels much less), so a profiled run's wall
time is not the benchmark's: it says where the time goes, the unprofiled run says how much.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
from pathlib import Path
from typing import Any

PROFILE_ENV = "MTREC_PROFILE"
PACKAGE = "mtrec_helpers"
_active: cProfile.Profile | None = None


def _dump(profiler: cProfile.Profile, path: Path) -> None:
    """Write the statistics so far (atomically: a reader never sees half a file)."""
    profiler.disable()
    partial = path.with_suffix(path.suffix + ".partial")
    profiler.dump_stats(partial)
    os.replace(partial, path)
    profiler.enable()


def start_from_environment() -> bool:
    """Start profiling this IPython kernel if :data:`PROFILE_ENV` names a file (once per process);
    the statistics are rewritten after every cell. Returns whether a profiler runs."""
    global _active
    target = os.environ.get(PROFILE_ENV, "").strip()
    if not target or _active is not None:
        return _active is not None
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    _active = cProfile.Profile()
    shell.events.register("post_run_cell", lambda *_: _dump(_active, path))
    _active.enable()
    return True


def _label(function: tuple[str, int, str]) -> str:
    """``module.py:line(function)`` with the path shortened to the package (or the file's name)."""
    filename, line, name = function
    if filename == "~":
        return name  # a built-in: torch kernels and other C functions appear by name
    parts = Path(filename).parts
    short = "/".join(parts[parts.index(PACKAGE) :]) if PACKAGE in parts else Path(filename).name
    return f"{short}:{line}({name})"


def function_table(stats_file: Path, top: int = 15) -> dict[str, list[dict[str, Any]]]:
    """The ``top`` functions by own time (any code) and the package's ``top`` by cumulative time."""
    stats = pstats.Stats(str(stats_file))
    rows = [
        {
            "function": _label(function),
            "calls": int(calls),
            "own_s": round(own, 2),
            "cumulative_s": round(cum, 2),
        }
        for function, (_, calls, own, cum, _) in stats.stats.items()  # type: ignore[attr-defined]
    ]
    own = sorted(rows, key=lambda r: -r["own_s"])[:top]
    ours = sorted((r for r in rows if r["function"].startswith(PACKAGE)), key=lambda r: -r["cumulative_s"])
    return {"by_own_time": own, "package_by_cumulative_time": ours[:top]}


def cell_table(executed: Path, top: int = 8) -> list[dict[str, Any]]:
    """The ``top`` code cells of an executed notebook by papermill's duration, with their first line."""
    notebook = json.loads(executed.read_text(encoding="utf-8"))
    cells = [
        {
            "cell": index,
            "seconds": round(float(cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0), 1),
            "first_line": "".join(cell["source"]).strip().splitlines()[0][:80] if cell["source"] else "",
        }
        for index, cell in enumerate(notebook["cells"])
        if cell["cell_type"] == "code"
    ]
    return sorted(cells, key=lambda c: -c["seconds"])[:top]


def summary(executed: Path, stats_file: Path | None, top: int = 15) -> dict[str, Any]:
    """A notebook's slowest cells and, if it was profiled, its slowest functions."""
    record: dict[str, Any] = {"cells": cell_table(executed)}
    if stats_file is not None and stats_file.is_file():
        record["functions"] = function_table(stats_file, top)
    return record
