"""`python -m mtrec_helpers.multitask`: notebook 03's finetuning runs as a command, for several processes.

    accelerate launch --num_processes 4 -m mtrec_helpers.multitask --artifacts-dir DIR [KEY=VALUE ...]
    torchrun --nproc_per_node 4 -m mtrec_helpers.multitask --artifacts-dir DIR [KEY=VALUE ...]

It trains the configurations of notebook 03, in the notebook's order and with its parameters, into
``DIR/multitask/runs/<name>/``: the single-task runs, the fixed-weight sweep (choosing λ on
validation, as the notebook does), the adaptive strategies, MMoE and LoRA. Notebook 03 run
afterwards with the same parameters finds every run finished and goes on to the tables and plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mtrec_helpers.data import load_processed
from mtrec_helpers.launch import stage_command
from mtrec_helpers.multitask.experiments import (
    Experiment,
    Outcome,
    aux_lambdas,
    chosen_lambda,
    run_experiment,
    strategy_options,
)
from mtrec_helpers.multitask.finetune import finetune_config
from mtrec_helpers.multitask.tasks import TaskData


def train_configurations(params: dict[str, Any], artifacts: Path, device: torch.device, main: bool) -> None:
    """Train notebook 03's configurations; print each one's validation NDCG@10."""
    task_data = TaskData(load_processed(artifacts / "processed"), seed=params["SEED"])
    tasks, _ = task_data.available_tasks(params["TASKS"])
    config, options = finetune_config(params), strategy_options(params)

    def run(name: str, **experiment: Any) -> Outcome:
        outcome = run_experiment(
            Experiment(name, **experiment), artifacts / "pretrained" / params["ENCODER"], task_data, config,
            device, params["N_BOOT"], progress=main, runs_dir=artifacts / "multitask" / "runs",
        )  # fmt: skip
        if main:
            print(f"{name}: validation {outcome.test['valid_selection']}")
        return outcome

    for task in tasks:
        run(f"single_{task}", tasks=(task,))
    sweep = {
        aux: run(f"fixed_aux={aux}", tasks=tasks, options={"lambdas": aux_lambdas(tasks, aux)})
        for aux in params["AUX_LAMBDAS"]
    }
    fixed = {"lambdas": aux_lambdas(tasks, chosen_lambda(sweep))}
    for strategy in params["ADAPTIVE"]:
        run(f"mtl_{strategy}", tasks=tasks, weighting=strategy, options=options.get(strategy, {}))
    if params["MMOE_EXPERTS"]:
        run("mtl_fixed_mmoe", tasks=tasks, options=fixed, sharing="mmoe", n_experts=params["MMOE_EXPERTS"])
    if params["LORA_RANK"]:
        run("mtl_fixed_lora", tasks=tasks, options=fixed, lora_rank=params["LORA_RANK"])


if __name__ == "__main__":
    raise SystemExit(stage_command("multitask", train_configurations, __doc__ or ""))
