"""Chapter 03b's explorer: pick a scenario definition and a model; see its per-scenario table and its
λ curves from the recorded runs (``<ARTIFACTS_DIR>/multi_scenario/<definition>.json``; nothing trains)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd

from mtrec_helpers.core.display import fill
from mtrec_helpers.multi_scenario.plots import lambda_curves


def recorded_definitions(folder: Path) -> dict[str, dict[str, Any]]:
    """Every definition's recorded results in ``folder`` (written by notebook 03b, one per SCENARIOS)."""
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))
            if path.name != "metrics.json"}  # fmt: skip


def per_scenario_frame(record: dict[str, Any], model: str) -> pd.DataFrame:
    """One row per scenario: users, NDCG@10 and its interval, the paired difference against shared."""
    rows = {}
    for scenario, row in record["results"][model]["scenarios"].items():
        pair = record["seesaw"].get(model, {}).get(scenario)
        rows[scenario] = {
            "users": row["n_users"], "NDCG@10": round(row["ndcg@10"], 4),
            "95% CI": f"{row['ndcg@10_ci'][0]:.4f}–{row['ndcg@10_ci'][1]:.4f}",
            "− shared": round(pair["diff"], 4) if pair else None,
            "interval": f"[{pair['diff_ci'][0]:+.4f}, {pair['diff_ci'][1]:+.4f}]" if pair else "",
            "MDE (80%)": round(pair["mde"], 4) if pair else None,
        }  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index")


def scenario_explorer(folder: Path) -> widgets.Widget:
    """Dropdowns over the recorded definitions and their models; the table and λ curves below."""
    records = recorded_definitions(Path(folder))
    if not records:
        return widgets.HTML(f"No recorded definitions in {folder}: run this notebook first.")
    definition = widgets.Dropdown(options=list(records), description="scenarios")
    model = widgets.Dropdown(description="model")
    output = widgets.Output()

    def models(name: str) -> None:
        model.options = list(records[name]["results"])
        model.value = model.options[0]

    def show(*_: Any) -> None:
        if model.value is None:  # between a definition's change and its models' arrival
            return
        record = records[definition.value]
        lambdas = record["lambdas"].get(model.value)
        figure = lambda_curves({model.value: lambdas}) if lambdas else None
        fill(output, per_scenario_frame(record, model.value), *([figure] if figure else []))
        if figure is not None:
            plt.close(figure)

    definition.observe(lambda change: (models(change["new"]), show()), names="value")
    model.observe(show, names="value")
    models(definition.value)
    show()
    return widgets.VBox([widgets.HBox([definition, model]), output])
