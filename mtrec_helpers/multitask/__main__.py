"""`python -m mtrec_helpers.multitask`: notebook 03's finetuning runs as a command, for several processes.

    accelerate launch --num_processes 4 -m mtrec_helpers.multitask --artifacts-dir DIR [KEY=VALUE ...]
    torchrun --nproc_per_node 4 -m mtrec_helpers.multitask --artifacts-dir DIR [KEY=VALUE ...]

It trains the configurations of notebook 03, in the notebook's order and with its parameters, into
``DIR/multitask/runs/<name>/``: the single-task runs, the fixed-weight sweep (choosing λ on
validation, as the notebook does), the adaptive strategies, MMoE and LoRA, and (``USER_TEXT``) the
configuration chosen on validation again with the user-text features. Notebook 03 run
afterwards with the same parameters finds every run finished and goes on to the tables and plots.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from mtrec_helpers.course.launch import stage_command
from mtrec_helpers.data import load_processed
from mtrec_helpers.multitask.experiments import (
    Experiment,
    Outcome,
    aux_lambdas,
    choose_best,
    chosen_lambda,
    run_experiment,
    strategy_options,
)
from mtrec_helpers.multitask.finetune import finetune_config
from mtrec_helpers.multitask.tasks import TaskData
from mtrec_helpers.text.encoder import embed_texts
from mtrec_helpers.text.items import item_texts


def train_configurations(params: dict[str, Any], artifacts: Path, device: torch.device, main: bool) -> None:
    """Train notebook 03's configurations; print each one's validation NDCG@10."""
    data = load_processed(artifacts / "processed")
    task_data = TaskData(data, seed=params["SEED"])
    tasks, _ = task_data.available_tasks(params["TASKS"])
    config, options = finetune_config(params), strategy_options(params)

    def run(name: str, text: Any = None, **experiment: Any) -> Outcome:
        outcome = run_experiment(
            Experiment(name, **experiment), artifacts / "pretrained" / params["ENCODER"], task_data, config,
            device, params["N_BOOT"], progress=main, runs_dir=artifacts / "multitask" / "runs", text=text,
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
    outcomes = {
        f"mtl_{strategy}": run(
            f"mtl_{strategy}", tasks=tasks, weighting=strategy, options=options.get(strategy, {})
        )
        for strategy in params["ADAPTIVE"]
    }
    if params["MMOE_EXPERTS"]:
        outcomes["mtl_fixed_mmoe"] = run(
            "mtl_fixed_mmoe", tasks=tasks, options=fixed, sharing="mmoe", n_experts=params["MMOE_EXPERTS"]
        )
    if params["LORA_RANK"]:
        outcomes["mtl_fixed_lora"] = run(
            "mtl_fixed_lora", tasks=tasks, options=fixed, lora_rank=params["LORA_RANK"]
        )
    if params["USER_TEXT"]:
        best = choose_best(outcomes)
        text = embed_texts(item_texts(data), params["TEXT_MODEL"], artifacts / "text" / "embeddings", device)
        same = {k: v for k, v in dataclasses.asdict(outcomes[best].experiment).items() if k != "name"}
        run(f"{best}+user_text", text=text.vectors, **{**same, "user_text": True})


if __name__ == "__main__":
    raise SystemExit(stage_command("multitask", train_configurations, __doc__ or ""))
