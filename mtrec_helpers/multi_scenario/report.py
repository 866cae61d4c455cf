"""Chapter 03b's tables: the scenarios' sizes, each model per scenario, and the seesaw table."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mtrec_helpers.core.formatting import with_interval
from mtrec_helpers.multi_scenario.scenarios import ScenarioData


def scenario_sizes(data: ScenarioData) -> pd.DataFrame:
    """Per scenario: training interactions, their share, and test users."""
    codes, split = data.scenarios.codes, data.split_code
    train = np.bincount(codes[split == 0], minlength=data.scenarios.k + 1)[1:]
    test = np.bincount(data.held_out("test"), minlength=data.scenarios.k + 1)[1:]
    return pd.DataFrame(
        {"train interactions": train, "share": np.round(train / max(train.sum(), 1), 3), "test users": test},
        index=pd.Index(data.scenarios.names, name="scenario"),
    )


def per_scenario_table(results: dict[str, dict[str, Any]], metric: str = "ndcg@10") -> pd.DataFrame:
    """Models × scenarios: ``metric`` [95% interval], then the overall figure and the mean over scenarios."""
    rows = {}
    for name, record in results.items():
        row = {s: f"{r[metric]:.4f} [{r[f'{metric}_ci'][0]:.4f}, {r[f'{metric}_ci'][1]:.4f}]"
               for s, r in record["scenarios"].items()}  # fmt: skip
        overall = record["overall"]
        row["overall"] = (
            f"{overall[metric]:.4f} [{overall[f'{metric}_ci'][0]:.4f}, {overall[f'{metric}_ci'][1]:.4f}]"
        )
        row["mean over scenarios"] = f"{record['mean_over_scenarios'][metric]:.4f}"
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def seesaw_cell(row: dict[str, Any]) -> str:
    """One model × scenario of the seesaw table: 'diff [low, high] (MDE m)'."""
    return f"{with_interval(row, 'diff', signed=True)} (MDE {row['mde']:.4f})"


def seesaw_table(table: dict[str, dict[str, dict[str, Any]]], metric: str = "ndcg@10") -> pd.DataFrame:
    """Models × scenarios (smallest first): the paired difference against shared, its interval and the
    minimum detectable effect, as 'diff [low, high] (MDE m)'; ``metric="like_auc"``: the like head's
    AUC difference and interval."""
    cell = seesaw_cell if metric == "ndcg@10" else lambda r: with_interval(r, f"{metric}_diff", signed=True)
    rows = {
        name: {f"{s} (n={r['n_users']})": cell(r) for s, r in scenarios.items()}
        for name, scenarios in table.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")
