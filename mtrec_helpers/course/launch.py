"""The command line that every training chapter shares, for several processes.

    accelerate launch --num_processes N -m mtrec_helpers.<chapter> --artifacts-dir DIR [KEY=VALUE ...]
    torchrun --nproc_per_node N -m mtrec_helpers.<chapter> --artifacts-dir DIR [KEY=VALUE ...]

A chapter's ``__main__`` hands :func:`stage_command` the function that trains its notebook's plan
(the chapter's ``settings.plan``) into the same run folders, with the notebook's parameters, the
``--preset`` and the overrides applied as `make run` applies them; the notebook run afterwards with
the same parameters finds those runs finished (same settings, same starting weights) and goes on to
evaluation, plots and saving.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from mtrec_helpers.core.device import resolve_device
from mtrec_helpers.core.engine import accelerator_for
from mtrec_helpers.core.paths import notebooks_dir, resolve_artifacts_dir
from mtrec_helpers.core.stages import ArtifactError, stage_named
from mtrec_helpers.course.parameters import (
    NotebookParameterError,
    check_parameters,
    declared_parameters,
    parse_assignment,
)
from mtrec_helpers.course.presets import PRESETS, with_preset
from mtrec_helpers.data import DataError

Trainer = Callable[[dict[str, Any], Path, torch.device, bool], None]
"""``train(params, artifacts, device, main_process)``: train a stage's runs; print on the main process."""


def stage_command(stage: str, train: Trainer, description: str, argv: Sequence[str] | None = None) -> int:
    """Parse the command line, check the parameters against the stage's notebook, train; 1 on a
    user error (one line on stderr), 0 on success."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--artifacts-dir", default="")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--preset", default="default", choices=sorted(PRESETS), help="per-chapter settings, as `make run`"
    )
    parser.add_argument("overrides", nargs="*", type=parse_assignment, help="KEY=VALUE notebook parameters")
    args = parser.parse_args(argv)
    chapter = stage_named(stage)
    notebook = notebooks_dir() / chapter.notebook
    overrides = with_preset(args.preset, chapter.number, dict(args.overrides))
    try:
        check_parameters(notebook, overrides)
        params = {**declared_parameters(notebook), "DATASET": args.dataset, **overrides}
        device = resolve_device(args.device)
        accelerator = accelerator_for(str(device))
        train(
            params,
            resolve_artifacts_dir(args.artifacts_dir, args.dataset),
            device,
            accelerator.is_main_process,
        )
        accelerator.end_training()  # destroy the process group: gloo aborts at exit otherwise
    except (NotebookParameterError, DataError, ArtifactError) as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    return 0
