"""Run the numbered notebooks with papermill: one at a time (tests) or all in order (`make run`).

Papermill only warns about a parameter the notebook does not declare; here that is an error,
so a typo in an override never runs a notebook with its defaults silently.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import resource
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import papermill
from jupyter_client.kernelspec import NoSuchKernel
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from jupyter_core.utils import ensure_dir_exists
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from papermill.exceptions import PapermillExecutionError
from traitlets import default

from mtrec_helpers.core.atomic import atomic_write_text
from mtrec_helpers.core.errors import DataError
from mtrec_helpers.core.paths import absolutize_data_dir_env, ensure_writable, notebooks_dir
from mtrec_helpers.core.progress import progress_file
from mtrec_helpers.core.stages import STAGES
from mtrec_helpers.course.parameters import (
    NotebookParameterError,
    check_declared_somewhere,
    check_parameters,
    declared_parameters,
    parse_assignment,
)
from mtrec_helpers.course.presets import PRESETS, with_preset

KERNEL_ENV = "MTREC_KERNEL"
DEFAULT_KERNEL = "mtrec"
MAKEFILE_VARIABLES = (
    "PYTHON", "DATASET", "ARTIFACTS_DIR", "RUNS_DIR", "DEVICE", "GPU_PARAMS", "PARAMS", "PYTEST_ARGS",
    "BENCH_DIR", "TORCH_SPEC", "PRESET", "BENCH_NAME", "SCENARIO_BENCH", "SCENARIO_MODELS",
    "SIZES", "PROFILE", "TEST_WORKERS", "TRAIN_WORKERS",
)  # fmt: skip
"""The Makefile's own variables; any other upper-case `make run NAME=VALUE` is a notebook override."""
CELL_TIMEOUT_ENV = "MTREC_CELL_TIMEOUT"
TIMINGS = "timings.json"
"""Written into RUNS_DIR by :func:`run_pipeline`: each notebook's wall time and the kernels' peak memory."""


IPC_PATH_MAX = 100
"""Longest socket path the runner gives a kernel: AF_UNIX allows 107 bytes on Linux, 103 on macOS."""


@dataclass(frozen=True)
class KernelTransport:
    """How the runner's kernels talk to it: IPC sockets in ``folder``, or TCP on localhost, with
    ``note`` saying why when IPC was wanted but cannot work."""

    kind: str  # "ipc" or "tcp"
    folder: Path | None = None
    note: str = ""


def kernel_transport() -> KernelTransport:
    """IPC sockets in Jupyter's runtime folder where the OS has them (POSIX): no TCP port is opened,
    and newer ipykernels' warning about unencrypted TCP does not apply. The folder is created,
    private to the user (0700), when it does not exist yet, as on a machine that never ran Jupyter;
    where it cannot be created or written, or its path is too long for a socket, TCP it is."""
    if os.name != "posix":
        return KernelTransport("tcp")
    folder = Path(jupyter_runtime_dir())
    fix = "set JUPYTER_RUNTIME_DIR to a short, writable folder for IPC sockets"
    try:
        ensure_dir_exists(folder, mode=0o700)
    except OSError as exc:
        return KernelTransport("tcp", note=f"Jupyter's runtime folder {folder} cannot be created "
                               f"({exc.strerror or exc}); {fix}")  # fmt: skip
    if not os.access(folder, os.W_OK | os.X_OK):
        return KernelTransport("tcp", note=f"Jupyter's runtime folder {folder} is not writable; {fix}")
    if len(str(_socket_prefix(folder))) + len("-5") > IPC_PATH_MAX:
        too_long = f"at most {IPC_PATH_MAX} characters with the socket name"
        return KernelTransport("tcp", note=f"Jupyter's runtime folder {folder} is too long a path for a "
                               f"socket ({too_long}); {fix}")  # fmt: skip
    return KernelTransport("ipc", folder)


def _socket_prefix(folder: Path) -> Path:
    """A socket name of this kernel's own, so that parallel runs never share one."""
    return folder / f"mtrec-{uuid.uuid4().hex[:12]}-ipc"


@functools.cache
def _say_once(note: str) -> None:
    """Print a note once per process (a run of every notebook says it once)."""
    print(f"note: kernels talk over TCP on localhost: {note}", file=sys.stderr, flush=True)


class LocalKernelManager(AsyncKernelManager):
    """A kernel manager on :func:`kernel_transport`'s transport."""

    @default("transport")
    def _transport_default(self) -> str:
        return kernel_transport().kind

    @default("ip")
    def _ip_default(self) -> str:
        transport = kernel_transport()
        if transport.kind != "ipc" or transport.folder is None:
            return super()._ip_default()
        return str(_socket_prefix(transport.folder))


class NotebookFailed(RuntimeError):
    """A notebook raised; says which notebook and cell, and where the executed copy is."""


def kernel_name() -> str:
    """The Jupyter kernel to run notebooks with: ``$MTREC_KERNEL``, else ``mtrec``."""
    return os.environ.get(KERNEL_ENV, DEFAULT_KERNEL)


def cell_timeout() -> int | None:
    """Seconds one cell may run, from ``$MTREC_CELL_TIMEOUT`` (unset or 0: no limit). The tests set
    it, so that a kernel that stops answering fails the run instead of stalling it."""
    value = os.environ.get(CELL_TIMEOUT_ENV, "").strip()
    if not value.isdigit():
        if value:
            raise ValueError(f"{CELL_TIMEOUT_ENV}={value!r}: give a whole number of seconds (0: no limit)")
        return None
    return int(value) or None


def numbered_notebooks(folder: Path | None = None) -> list[Path]:
    """The course's notebooks in reading order, as the stage table lists them."""
    return [(folder or notebooks_dir()) / stage.notebook for stage in STAGES]


def run_notebook(
    notebook: Path,
    output: Path,
    parameters: Mapping[str, Any] | None = None,
    kernel: str | None = None,
    show_progress: bool = False,
) -> Path:
    """Execute ``notebook`` into ``output`` with papermill, in the notebooks folder; with
    ``show_progress``, print the loop the kernel is in (stage, epoch) as it runs."""
    parameters = dict(parameters or {})
    check_parameters(notebook, parameters)
    ensure_writable(output.parent, "RUNS_DIR")
    absolutize_data_dir_env()
    if note := kernel_transport().note:
        _say_once(note)
    try:
        with progress_file(f"    {notebook_number_of(notebook)} · " if show_progress else None):
            papermill.execute_notebook(
                str(notebook),
                str(output),
                parameters=parameters,
                kernel_name=kernel or kernel_name(),
                cwd=str(notebook.parent),
                progress_bar=False,
                execution_timeout=cell_timeout(),
                kernel_manager_class=LocalKernelManager,
            )
    except PapermillExecutionError as exc:
        raise NotebookFailed(
            f"{notebook.name} failed in cell {exc.cell_index} (execution count {exc.exec_count}): "
            f"{exc.ename}: {exc.evalue}\n  executed copy with the traceback: {output}"
        ) from exc
    except DeadKernelError as exc:
        raise NotebookFailed(
            f"{notebook.name} stopped: its Jupyter kernel died ({exc}). Likely causes: out of memory "
            "(try a smaller BATCH_SIZE, MAX_LEN or HIDDEN, or a smaller DATASET) or the process was "
            f"killed.\n  executed copy, up to the last cell that finished: {output}"
        ) from exc
    except CellTimeoutError as exc:
        raise NotebookFailed(
            f"{notebook.name}: a cell ran longer than {CELL_TIMEOUT_ENV}={cell_timeout()} s ({exc}); raise "
            f"{CELL_TIMEOUT_ENV} (or unset it: no limit) if the cell is just slow.\n  executed copy: {output}"
        ) from exc
    except RuntimeError as exc:
        if "Kernel died before replying" not in str(exc):
            raise
        raise NotebookFailed(
            f"{notebook.name} did not start: its Jupyter kernel {kernel or kernel_name()!r} exited before "
            f"answering ({exc}). Run the kernel by hand to see why: "
            f"`{sys.executable} -m ipykernel_launcher --help` should print its options."
        ) from exc
    except NoSuchKernel as exc:
        raise NotebookFailed(
            f"Jupyter kernel {kernel or kernel_name()!r} is not installed: run `make setup` "
            f"(or set {KERNEL_ENV} to an installed kernel)."
        ) from exc
    return output


def notebook_number_of(notebook: Path) -> str:
    """The chapter number of a notebook file, e.g. "02b" for 02b_text_item_features.ipynb."""
    return notebook.name.split("_")[0]


def parameters_for(notebook: Path, common: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The common parameters the notebook declares, plus the overrides it declares."""
    declared = declared_parameters(notebook)
    chosen = {k: v for k, v in common.items() if k in declared}
    chosen.update({k: v for k, v in overrides.items() if k in declared})
    return chosen


def record_timing(runs_dir: Path, notebook: str, seconds: float, peak_mb: float, fresh: bool = False) -> None:
    """Add one finished notebook's wall time to ``runs_dir``'s timings file (rewritten atomically after
    every notebook, so a run stopped part-way still says what it ran). ``fresh`` starts the file anew
    (a whole run); otherwise the notebooks already there are kept (`--only`: a run continued in parts)."""
    path = runs_dir / TIMINGS
    record: dict[str, Any] = {"notebooks": {}, "peak_kernel_rss_mb": 0.0}
    if not fresh and path.is_file():
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: not a timings file ({exc}); delete it to start the run's timings anew"
            ) from exc
    record["notebooks"][notebook] = seconds
    record["peak_kernel_rss_mb"] = max(record["peak_kernel_rss_mb"], peak_mb)
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")


def run_pipeline(
    notebooks: Sequence[Path],
    runs_dir: Path,
    common: Mapping[str, Any],
    overrides: Mapping[str, Any],
    preset: str = "default",
    continued: bool = False,
) -> list[tuple[Path, float]]:
    """Run notebooks in order into ``runs_dir`` with the ``preset``'s settings (the overrides win),
    stopping at the first failure; ``continued``: keep the timings of notebooks run before (`--only`)."""
    check_declared_somewhere(notebooks, overrides)
    parameters = {
        notebook: parameters_for(
            notebook, common, with_preset(preset, notebook_number_of(notebook), overrides)
        )
        for notebook in notebooks
    }
    for (
        notebook,
        chosen,
    ) in parameters.items():  # every preset value is checked before the first notebook starts
        check_parameters(notebook, chosen)
    ensure_writable(runs_dir, "RUNS_DIR")
    timings = []
    for notebook in notebooks:
        start = time.perf_counter()
        print(f"▶ {notebook.name} ...", flush=True)
        run_notebook(notebook, runs_dir / notebook.name, parameters[notebook], show_progress=True)
        elapsed = time.perf_counter() - start
        print(f"  done in {elapsed:.1f} s → {runs_dir / notebook.name}", flush=True)
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest finished kernel
        record_timing(runs_dir, notebook.stem, elapsed, peak_kb / 1024, fresh=not (timings or continued))
        timings.append((notebook, elapsed))
    return timings


def make_overrides(makeflags: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """The upper-case variables given on the `make` command line (listed after `--` in MAKEFLAGS,
    their values exported to the environment) that are not the Makefile's own: notebook overrides."""
    _, found, assigned = makeflags.partition(" -- ")
    if not found:
        assigned = makeflags.removeprefix("-- ") if makeflags.startswith("-- ") else ""
    names = [word.split("=", 1)[0] for word in re.split(r"(?<!\\) ", assigned) if "=" in word]
    chosen = [n for n in names if n.isupper() and n not in MAKEFILE_VARIABLES and n in environ]
    return dict(parse_assignment(f"{name}={environ[name]}") for name in chosen)


def select_notebooks(notebooks: Sequence[Path], only: Sequence[str] | None) -> list[Path]:
    """The notebooks numbered in ``only`` (all when it is empty); a number without a notebook is refused."""
    if not only:
        return list(notebooks)
    numbers = {notebook_number_of(nb) for nb in notebooks}
    missing = sorted(set(only) - numbers)
    if missing:
        raise NotebookParameterError(
            f"--only {' '.join(missing)}: no such notebook; the notebooks are {', '.join(sorted(numbers))}."
        )
    return [nb for nb in notebooks if notebook_number_of(nb) in set(only)]


def notebook_number(text: str) -> str:
    """A notebook number for ``--only`` (two digits, e.g. 02, or a sidebar chapter like 02b); anything
    else (e.g. a KEY=VALUE that ``--only`` swallowed) is refused rather than silently matching no notebook."""
    if not re.fullmatch(r"\d\d[a-z]?", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a notebook number like 02; put KEY=VALUE overrides before --only"
        )
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Command line for `make run`."""
    parser = argparse.ArgumentParser(description="Run the mtrec notebooks in order with papermill.")
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--artifacts-dir", default="", help="default: data/artifacts/<dataset>")
    parser.add_argument("--runs-dir", default="", help="default: runs/<dataset>")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS), help="per-chapter settings")
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        type=notebook_number,
        help="notebook numbers, e.g. 01 02 (after KEY=VALUE)",
    )
    parser.add_argument(
        "--make-variables",
        action="store_true",
        help="also take upper-case variables of the `make` command line (MAKEFLAGS) as overrides",
    )
    parser.add_argument("overrides", nargs="*", type=parse_assignment, help="KEY=VALUE parameters")
    args = parser.parse_args(argv)
    root = notebooks_dir().parent
    runs_dir = Path(args.runs_dir or root / "runs" / args.dataset).resolve()
    artifacts = str(Path(args.artifacts_dir).resolve()) if args.artifacts_dir else ""
    overrides = dict(args.overrides)
    if args.make_variables:
        overrides.update(make_overrides(os.environ.get("MAKEFLAGS", ""), os.environ))
    if isinstance(overrides.get("ARTIFACTS_DIR"), str) and overrides["ARTIFACTS_DIR"]:
        # relative to where the command runs, not to notebooks/ where the kernels run
        overrides["ARTIFACTS_DIR"] = str(Path(overrides["ARTIFACTS_DIR"]).expanduser().resolve())
    common = {"DATASET": args.dataset, "ARTIFACTS_DIR": artifacts, "DEVICE": args.device}
    try:
        check_declared_somewhere(numbered_notebooks(), {**common, **overrides})
        notebooks = select_notebooks(numbered_notebooks(), args.only)
        timings = run_pipeline(notebooks, runs_dir, common, overrides, args.preset, continued=bool(args.only))
    except (NotebookFailed, NotebookParameterError, DataError) as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    total = sum(seconds for _, seconds in timings)
    print(f"All {len(timings)} notebook(s) ran in {total:.1f} s; executed copies in {runs_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
