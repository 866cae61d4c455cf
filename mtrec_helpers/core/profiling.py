"""Where a notebook's time goes: per cell (papermill's durations) and per function (cProfile).

``make bench-scale PROFILE=1`` (``scale_benchmark --profile``, results in
``benchmarks/scale-<device>[-<sizes>]-profile.json``) sets :data:`PROFILE_ENV` to a file
path for each notebook's kernel; the first import of ``mtrec_helpers`` in that kernel starts a
``cProfile`` profiler (:func:`start_from_environment`), and the statistics are written to that file
after every cell, so a notebook that fails still leaves its profile. :func:`summary` reads them back
with ``pstats`` (data, never code) together with the executed notebook's cell durations.

``make bench-scale`` also sets :data:`MEMORY_ENV` for every kernel: after every cell the kernel's
peak RSS so far is appended to a JSON list (:func:`record_memory_from_environment`), and
:func:`memory_table` names the cells that raised it most — where a stage's peak memory comes from.

cProfile slows Python-level code (calls into torch kernels much less), so a profiled run's wall
time is not the benchmark's: it says where the time goes, the unprofiled run says how much.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import resource
from pathlib import Path
from typing import Any

from mtrec_helpers.core.atomic import atomic_write_text

PROFILE_ENV = "MTREC_PROFILE"
MEMORY_ENV = "MTREC_CELL_MEMORY"
PACKAGE = "mtrec_helpers"
_active: cProfile.Profile | None = None
_recording = False


def _dump(profiler: cProfile.Profile, path: Path) -> None:
    """Write the statistics so far (atomically: a reader never sees half a file)."""
    profiler.disable()
    partial = path.with_suffix(path.suffix + ".partial")
    profiler.dump_stats(partial)
    os.replace(partial, path)
    profiler.enable()


def _kernel() -> Any:
    """This process's IPython shell, or None outside a kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def start_from_environment() -> bool:
    """Start profiling this IPython kernel if :data:`PROFILE_ENV` names a file (once per process);
    the statistics are rewritten after every cell. Returns whether a profiler runs."""
    global _active
    target = os.environ.get(PROFILE_ENV, "").strip()
    if not target or _active is not None:
        return _active is not None
    shell = _kernel()
    if shell is None:
        return False
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    _active = cProfile.Profile()
    shell.events.register("post_run_cell", lambda *_: _dump(_active, path))
    _active.enable()
    return True


def _first_line(source: str) -> str:
    lines = source.strip().splitlines()
    return lines[0][:80] if lines else ""


def peak_rss_mb() -> float:
    """This process's own peak RSS in MB: VmHWM on Linux (``ru_maxrss`` keeps, across exec, the peak
    of the process this one was forked from — a kernel would inherit its launcher's), else ru_maxrss."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text(encoding="utf-8").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _append_peak(path: Path, source: str) -> None:
    """Add one cell's entry — its first line and the kernel's peak RSS so far — to the JSON list."""
    entries = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    entries.append({"first_line": _first_line(source), "peak_rss_mb": round(peak_rss_mb(), 1)})
    atomic_write_text(path, json.dumps(entries))


def recorded_peak(memory_file: Path) -> float | None:
    """The kernel's peak RSS in MB after its last recorded cell, or None without a record."""
    if not memory_file.is_file():
        return None
    entries = json.loads(memory_file.read_text(encoding="utf-8"))
    return max((entry["peak_rss_mb"] for entry in entries), default=None)


def record_memory_from_environment() -> bool:
    """If :data:`MEMORY_ENV` names a file, append this kernel's peak RSS to it after every cell (once
    per process): where the peak rises is the cell that reached it. Returns whether it records."""
    global _recording
    target = os.environ.get(MEMORY_ENV, "").strip()
    if not target or _recording:
        return _recording
    shell = _kernel()
    if shell is None:
        return False
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    shell.events.register("post_run_cell", lambda result: _append_peak(path, result.info.raw_cell or ""))
    _recording = True
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


def code_cells(executed: Path) -> list[dict[str, Any]]:
    """Every code cell of an executed notebook: index, papermill's duration and first line."""
    notebook = json.loads(executed.read_text(encoding="utf-8"))
    return [
        {
            "cell": index,
            "seconds": round(float(cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0), 1),
            "first_line": _first_line("".join(cell["source"])),
        }
        for index, cell in enumerate(notebook["cells"])
        if cell["cell_type"] == "code"
    ]


def cell_table(executed: Path, top: int = 8) -> list[dict[str, Any]]:
    """The ``top`` code cells of an executed notebook by papermill's duration, with their first line."""
    return sorted(code_cells(executed), key=lambda c: -c["seconds"])[:top]


def memory_table(executed: Path, memory_file: Path, top: int = 3) -> list[dict[str, Any]]:
    """The ``top`` code cells by how much they raised the kernel's peak RSS (``rise_mb``), with the
    peak after each (``peak_rss_mb``); the entries of ``memory_file`` are matched to the executed
    notebook's code cells in order, by first line (cells run before the recording began have none)."""
    entries = json.loads(memory_file.read_text(encoding="utf-8"))
    cells, rows, previous, at = code_cells(executed), [], 0.0, 0
    for entry in entries:
        while at < len(cells) and cells[at]["first_line"] != entry["first_line"]:
            at += 1
        if at == len(cells):
            break
        rise = entry["peak_rss_mb"] - previous if previous else 0.0
        rows.append({**cells[at], "peak_rss_mb": entry["peak_rss_mb"], "rise_mb": round(rise, 1)})
        previous, at = entry["peak_rss_mb"], at + 1
    return sorted(rows, key=lambda r: -r["rise_mb"])[:top]


def summary(
    executed: Path, stats_file: Path | None, top: int = 15, memory_file: Path | None = None
) -> dict[str, Any]:
    """A notebook's slowest cells, the cells that raised its peak memory most (if recorded) and, if it
    was profiled, its slowest functions."""
    record: dict[str, Any] = {"cells": cell_table(executed)}
    if memory_file is not None and memory_file.is_file():
        record["memory_cells"] = memory_table(executed, memory_file)
    if stats_file is not None and stats_file.is_file():
        record["functions"] = function_table(stats_file, top)
    return record
