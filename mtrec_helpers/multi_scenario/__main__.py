"""`python -m mtrec_helpers.multi_scenario`: notebook 03b's finetuning runs as a command (several processes).

    accelerate launch --num_processes 4 -m mtrec_helpers.multi_scenario --artifacts-dir DIR [KEY=VALUE ...]
    torchrun --nproc_per_node 4 -m mtrec_helpers.multi_scenario --artifacts-dir DIR [KEY=VALUE ...]

It trains the plan of notebook 03b (:func:`mtrec_helpers.multi_scenario.settings.plan`) with the
notebook's parameters into ``DIR/multi_scenario/runs/<name>/``: shared and the scenario-aware models,
the separate models, and the chosen model under each scenario weighting. Notebook 03b run afterwards
with the same parameters finds every run finished and goes on to the tables and plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mtrec_helpers.course.launch import stage_command
from mtrec_helpers.data import load_processed
from mtrec_helpers.multi_scenario.scenarios import ScenarioData, define_scenarios
from mtrec_helpers.multi_scenario.settings import (
    MultiScenarioSettings,
    ScenarioOutcome,
    ScenarioRun,
    reference_of_03,
    run_plan,
    scenario_tasks,
    train_run,
)


def train_plan(params: dict[str, Any], artifacts: Path, device: torch.device, main: bool) -> None:
    """Train notebook 03b's plan; print each run's validation NDCG@10 per scenario."""
    settings = MultiScenarioSettings.of(params)
    data = load_processed(artifacts / "processed")
    scenarios = define_scenarios(data, settings.scenarios, settings.min_scenario_users)
    task_data = ScenarioData(data, scenarios, seed=settings.engine.seed)
    tasks = scenario_tasks(settings.scenario_tasks, task_data.available_tasks(settings.scenario_tasks)[0])
    reference = reference_of_03(artifacts, tasks)

    def train(run: ScenarioRun) -> ScenarioOutcome:
        outcome = train_run(run, settings, task_data, reference, artifacts, device, progress=main)
        if main:
            print(f"{run.name}: validation NDCG@10 by scenario {outcome.valid}")
        return outcome

    run_plan(settings, scenarios.names, train, {})


if __name__ == "__main__":
    raise SystemExit(stage_command("multi_scenario", train_plan, __doc__ or ""))
