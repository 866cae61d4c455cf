"""Chapter 02's part of `make bench`'s results file: the test table of the baselines and both
Transformers, and the training throughput."""

from __future__ import annotations

from typing import Any

from mtrec_helpers.core.formatting import TABLE_METRICS, table


def record(stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """This chapter's entries of the results file, from every stage's metrics.json of the run."""
    pretraining = stages["pretraining"]
    return {"pretraining": table(pretraining["results"], TABLE_METRICS),
            "train_seq_per_s": pretraining.get("train_seq_per_s")}  # fmt: skip


def markdown(record: dict[str, Any]) -> list[str]:
    """Nothing of its own in the summary: 02's models are rows of the final table (06)."""
    return []
