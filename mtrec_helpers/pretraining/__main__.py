"""`python -m mtrec_helpers.pretraining`: notebook 02's training as a command, for several processes.

    accelerate launch --num_processes 4 -m mtrec_helpers.pretraining --artifacts-dir DIR [KEY=VALUE ...]
    torchrun --nproc_per_node 4 -m mtrec_helpers.pretraining --artifacts-dir DIR [KEY=VALUE ...]

It trains every objective of notebook 02 with the notebook's parameters (its defaults, overridden
as in `make run`) into ``DIR/pretrained/runs/<objective>/``. Notebook 02 run afterwards with the same
parameters finds those runs finished and continues with evaluation, plots and saving.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mtrec_helpers.data import DataError, load_processed
from mtrec_helpers.device import resolve_device
from mtrec_helpers.engine import accelerator_for
from mtrec_helpers.parameters import (
    NotebookParameterError,
    check_parameters,
    declared_parameters,
    parse_assignment,
)
from mtrec_helpers.paths import notebooks_dir, resolve_artifacts_dir
from mtrec_helpers.pretraining import MODEL_NAMES
from mtrec_helpers.pretraining.train import objective_configs, train
from mtrec_helpers.stages import ArtifactError, stage_named


def main(argv: Sequence[str] | None = None) -> int:
    """Train notebook 02's objectives; print each run's best epoch and validation NDCG@10."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--artifacts-dir", default="")
    parser.add_argument("--device", default="auto")
    parser.add_argument("overrides", nargs="*", type=parse_assignment, help="KEY=VALUE notebook parameters")
    args = parser.parse_args(argv)
    notebook = notebooks_dir() / stage_named("pretraining").notebook
    overrides = dict(args.overrides)
    try:
        check_parameters(notebook, overrides)
        params = {**declared_parameters(notebook), **overrides}
        artifacts = resolve_artifacts_dir(args.artifacts_dir, args.dataset)
        data = load_processed(artifacts / "processed")
        device = resolve_device(args.device)
        accelerator = accelerator_for(str(device))
        main_process = accelerator.is_main_process
        for objective, (model_config, config) in objective_configs(data, params).items():
            run = train(
                model_config,
                config,
                data,
                artifacts / "pretrained" / "runs" / objective,
                device,
                main_process,
            )
            if main_process:
                name, epochs = MODEL_NAMES[objective], len(run.history)
                print(
                    f"{name}: best epoch {run.best_epoch} of {epochs}, validation NDCG@10 "
                    f"{run.best_valid_ndcg:.4f}"
                )
        accelerator.end_training()  # destroy the process group: gloo aborts at exit otherwise
    except (NotebookParameterError, DataError, ArtifactError) as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
