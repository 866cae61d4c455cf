"""Summaries of a run read back from its metrics.json files (`make bench`, the final chapter)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from mtrec_helpers.core.atomic import atomic_directory
from mtrec_helpers.core.comparison import results_table
from mtrec_helpers.core.paths import resolve_artifacts_dir
from mtrec_helpers.core.results import metrics_path, read_metrics
from mtrec_helpers.core.stages import STAGE_NAMES, STAGES

TIMING_KEYS = ("dataset", "device", "wall_time_s", "best")


def stage_timings(artifacts_dir: Path) -> pd.DataFrame:
    """One row per stage that has run: device, wall time and chosen model."""
    rows = [
        {"stage": stage.name, "notebook": stage.notebook, **{k: record[k] for k in TIMING_KEYS}}
        for stage in STAGES
        if metrics_path(artifacts_dir, stage.name).is_file()
        for record in [read_metrics(artifacts_dir, stage.name)]
    ]
    return pd.DataFrame(rows, columns=["stage", "notebook", *TIMING_KEYS])


def stage_results(artifacts_dir: Path) -> dict[str, pd.DataFrame]:
    """Each stage's test table ('value [low, high]'), for stages that report ranking results."""
    tables = {}
    for stage in STAGE_NAMES:
        if metrics_path(artifacts_dir, stage).is_file():
            results = read_metrics(artifacts_dir, stage)["results"]
            ranked = {name: record for name, record in results.items() if "ndcg@10" in record}
            if ranked:
                tables[stage] = results_table(ranked)
    return tables


def write_report(folder: Path, tables: dict[str, pd.DataFrame], figures: dict[str, Figure]) -> list[Path]:
    """Replace ``folder`` (atomically) with ``<name>.csv`` per table and ``<name>.png`` per figure."""
    with atomic_directory(Path(folder)) as tmp:
        for name, table in tables.items():
            table.to_csv(tmp / f"{name}.csv")
        for name, figure in figures.items():
            figure.savefig(tmp / f"{name}.png", dpi=120, bbox_inches="tight")
    return sorted(Path(folder).iterdir())


def main(argv: Sequence[str] | None = None) -> int:
    """Print the timings and result tables of one artifacts folder."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--artifacts-dir", default="")
    args = parser.parse_args(argv)
    artifacts = resolve_artifacts_dir(args.artifacts_dir, args.dataset)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"Stages in {artifacts}:\n{stage_timings(artifacts).to_string(index=False)}\n")
        for stage, table in stage_results(artifacts).items():
            print(f"{stage} (test split):\n{table.to_string()}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
