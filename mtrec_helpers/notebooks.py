"""Run the numbered notebooks with papermill: one at a time (tests) or all in order (`make run`).

Papermill only warns about a parameter the notebook does not declare; here that is an error,
so a typo in an override never runs a notebook with its defaults silently.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import papermill
from jupyter_client.kernelspec import NoSuchKernel
from papermill.exceptions import PapermillExecutionError

from mtrec_helpers.paths import absolutize_data_dir_env, notebooks_dir

KERNEL_ENV = "MTREC_KERNEL"
DEFAULT_KERNEL = "mtrec"
COMMON_PARAMETERS = ("DATASET", "ARTIFACTS_DIR", "DEVICE")
"""Passed to every notebook that declares them; other overrides must be declared somewhere."""


class NotebookParameterError(ValueError):
    """An override names a parameter the notebook does not declare."""


class NotebookFailed(RuntimeError):
    """A notebook raised; says which notebook and cell, and where the executed copy is."""


def kernel_name() -> str:
    """The Jupyter kernel to run notebooks with: ``$MTREC_KERNEL``, else ``mtrec``."""
    return os.environ.get(KERNEL_ENV, DEFAULT_KERNEL)


def numbered_notebooks(folder: Path | None = None) -> list[Path]:
    """The course's notebooks in reading order (``NN_name.ipynb``)."""
    return sorted((folder or notebooks_dir()).glob("[0-9][0-9]_*.ipynb"))


def declared_parameters(notebook: Path) -> dict[str, Any]:
    """Names and defaults of the notebook's ``parameters`` cell."""
    found = papermill.inspect_notebook(str(notebook))
    if not found:
        raise NotebookParameterError(f"{notebook} has no cell tagged 'parameters'.")
    return {name: info["default"] for name, info in found.items()}


def check_parameters(notebook: Path, parameters: Mapping[str, Any]) -> None:
    """Refuse overrides the notebook does not declare, listing the ones it does."""
    declared = declared_parameters(notebook)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise NotebookParameterError(
            f"{notebook.name} does not declare {', '.join(unknown)}; "
            f"its parameters are {', '.join(sorted(declared))}."
        )


def run_notebook(
    notebook: Path,
    output: Path,
    parameters: Mapping[str, Any] | None = None,
    kernel: str | None = None,
) -> Path:
    """Execute ``notebook`` into ``output`` with papermill, in the notebooks folder."""
    parameters = dict(parameters or {})
    check_parameters(notebook, parameters)
    output.parent.mkdir(parents=True, exist_ok=True)
    absolutize_data_dir_env()
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            kernel_name=kernel or kernel_name(),
            cwd=str(notebook.parent),
            progress_bar=False,
        )
    except PapermillExecutionError as exc:
        raise NotebookFailed(
            f"{notebook.name} failed in cell {exc.cell_index} (execution count {exc.exec_count}): "
            f"{exc.ename}: {exc.evalue}\n  executed copy with the traceback: {output}"
        ) from exc
    except NoSuchKernel as exc:
        raise NotebookFailed(
            f"Jupyter kernel {kernel or kernel_name()!r} is not installed: run `make setup` "
            f"(or set {KERNEL_ENV} to an installed kernel)."
        ) from exc
    return output


def parameters_for(notebook: Path, common: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The common parameters the notebook declares, plus the overrides it declares."""
    declared = declared_parameters(notebook)
    chosen = {k: v for k, v in common.items() if k in declared}
    chosen.update({k: v for k, v in overrides.items() if k in declared})
    return chosen


def check_declared_somewhere(notebooks: Sequence[Path], overrides: Mapping[str, Any]) -> None:
    """Refuse overrides that none of ``notebooks`` declares, listing those they do."""
    everywhere = {name for nb in notebooks for name in declared_parameters(nb)}
    unknown = sorted(set(overrides) - everywhere)
    if unknown:
        raise NotebookParameterError(
            f"no notebook declares {', '.join(unknown)}; "
            f"declared parameters: {', '.join(sorted(everywhere))}."
        )


def run_pipeline(
    notebooks: Sequence[Path],
    runs_dir: Path,
    common: Mapping[str, Any],
    overrides: Mapping[str, Any],
) -> list[tuple[Path, float]]:
    """Run notebooks in order into ``runs_dir``, stopping at the first failure."""
    check_declared_somewhere(notebooks, overrides)
    timings = []
    for notebook in notebooks:
        start = time.perf_counter()
        print(f"▶ {notebook.name} ...", flush=True)
        run_notebook(notebook, runs_dir / notebook.name, parameters_for(notebook, common, overrides))
        elapsed = time.perf_counter() - start
        print(f"  done in {elapsed:.1f} s → {runs_dir / notebook.name}", flush=True)
        timings.append((notebook, elapsed))
    return timings


def parse_assignment(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as a Python literal when it is one, else as a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key.strip(), value


def notebook_number(text: str) -> str:
    """A two-digit notebook number for ``--only``; anything else (e.g. a KEY=VALUE that ``--only``
    swallowed) is refused rather than silently matching no notebook."""
    if len(text) != 2 or not text.isdigit():
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
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        type=notebook_number,
        help="notebook numbers, e.g. 01 02 (after KEY=VALUE)",
    )
    parser.add_argument("overrides", nargs="*", type=parse_assignment, help="KEY=VALUE parameters")
    args = parser.parse_args(argv)
    root = notebooks_dir().parent
    runs_dir = Path(args.runs_dir or root / "runs" / args.dataset).resolve()
    artifacts = str(Path(args.artifacts_dir).resolve()) if args.artifacts_dir else ""
    notebooks = numbered_notebooks()
    if args.only:
        notebooks = [nb for nb in notebooks if nb.name[:2] in set(args.only)]
    common = {"DATASET": args.dataset, "ARTIFACTS_DIR": artifacts, "DEVICE": args.device}
    try:
        timings = run_pipeline(notebooks, runs_dir, common, dict(args.overrides))
    except (NotebookFailed, NotebookParameterError) as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    total = sum(seconds for _, seconds in timings)
    print(f"All {len(timings)} notebook(s) ran in {total:.1f} s; executed copies in {runs_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
