"""Chapter 03's settings (one field per parameter of the notebook) and the experiments they plan.

The plan depends on what has finished: the fixed-weight sweep chooses the λ that MMoE and LoRA then
use, and the configuration chosen on validation is trained again with the user-text features. So
:func:`plan` lists every experiment that can be named given the finished ones, and
:func:`run_plan` trains until nothing new can be named. The notebook trains the plan a section at a
time (with tables and plots between), ``python -m mtrec_helpers.multitask`` all at once; both get
the same experiments, in the same order, with the same names (so the notebook finds the launcher's
runs finished).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from mtrec_helpers.core.engine import EngineConfig
from mtrec_helpers.core.settings import Settings
from mtrec_helpers.core.workers import train_ahead
from mtrec_helpers.multitask.experiments import (
    Experiment,
    Outcome,
    aux_lambdas,
    choose_best,
    chosen_lambda,
    run_experiment,
)
from mtrec_helpers.multitask.finetune import FinetuneConfig
from mtrec_helpers.multitask.tasks import TaskData
from mtrec_helpers.text.encoder import embed_texts
from mtrec_helpers.text.items import item_texts

SECTIONS = ("single", "sweep", "adaptive", "sharing", "user_text")
"""The plan's sections, in training order (each a section of the notebook)."""


@dataclass(frozen=True)
class MultitaskSettings(Settings):
    """Notebook 03's parameters; ``engine`` takes EPOCHS, LR, PATIENCE, MAX_STEPS and SEED."""

    ENGINE: ClassVar[dict[str, float]] = {"warmup_ratio": 0.1}  # a longer warm-up: the encoder is trained

    dataset: str
    artifacts_dir: str
    device: str
    encoder: str
    tasks: list[str]
    batch_size: int
    head_lr: float
    head_epochs: int
    refit_epochs: int
    aux_lambdas: list[float]
    adaptive: list[str]
    gradnorm_alpha: float
    gradnorm_every: int
    dwa_temperature: float
    mmoe_experts: int
    lora_rank: int
    valid_users: int
    user_text: bool
    text_model: str
    n_boot: int
    engine: EngineConfig

    def finetune_config(self) -> FinetuneConfig:
        """How each experiment finetunes."""
        return FinetuneConfig.of(self)

    def strategy_options(self) -> dict[str, dict[str, float]]:
        """The adaptive strategies' options (GRADNORM_ALPHA, GRADNORM_EVERY, DWA_TEMPERATURE)."""
        return {
            "gradnorm": {"alpha": self.gradnorm_alpha, "every": self.gradnorm_every},
            "dwa": {"temperature": self.dwa_temperature},
        }


@dataclass(frozen=True)
class Planned:
    """An experiment of the plan and the section it belongs to."""

    section: str
    experiment: Experiment


def plan(settings: MultitaskSettings, tasks: Sequence[str], done: Mapping[str, Outcome]) -> list[Planned]:
    """Every experiment of the chapter that can be named given the finished ones (``done``, by name):
    one per task alone; the fixed-weight sweep over ``AUX_LAMBDAS``; each ``ADAPTIVE`` strategy; once
    the sweep is done, MMoE and LoRA at its chosen λ; once every multi-task run is done, the one chosen
    on validation with the user-text features (``USER_TEXT``)."""
    tasks = tuple(tasks)
    sweep = {aux: Experiment(f"fixed_aux={aux}", tasks, options={"lambdas": aux_lambdas(tasks, aux)})
             for aux in settings.aux_lambdas}  # fmt: skip
    options = settings.strategy_options()
    planned = [
        *(Planned("single", Experiment(f"single_{task}", (task,))) for task in tasks),
        *(Planned("sweep", experiment) for experiment in sweep.values()),
        *(
            Planned("adaptive", Experiment(f"mtl_{s}", tasks, s, options.get(s, {})))
            for s in settings.adaptive
        ),
    ]
    if not all(experiment.name in done for experiment in sweep.values()):
        return planned
    fixed = {"lambdas": aux_lambdas(tasks, chosen_lambda({aux: done[e.name] for aux, e in sweep.items()}))}
    if settings.mmoe_experts:
        mmoe = Experiment(
            "mtl_fixed_mmoe", tasks, options=fixed, sharing="mmoe", n_experts=settings.mmoe_experts
        )
        planned.append(Planned("sharing", mmoe))
    if settings.lora_rank:
        lora = Experiment("mtl_fixed_lora", tasks, options=fixed, lora_rank=settings.lora_rank)
        planned.append(Planned("sharing", lora))
    multitask = [p.experiment.name for p in planned if p.section in ("adaptive", "sharing")]
    if settings.user_text and all(name in done for name in multitask):
        candidates = multitask_outcomes(done, settings)
        best = choose_best(candidates)
        with_text = dataclasses.replace(candidates[best].experiment, name=f"{best}+user_text", user_text=True)
        planned.append(Planned("user_text", with_text))
    return planned


def multitask_outcomes(done: Mapping[str, Outcome], settings: MultitaskSettings) -> dict[str, Outcome]:
    """The multi-task models the chapter compares, by name: ``mtl_fixed`` (the sweep's chosen λ), each
    adaptive strategy, MMoE and LoRA — those finished."""
    sweep = {aux: done[f"fixed_aux={aux}"] for aux in settings.aux_lambdas if f"fixed_aux={aux}" in done}
    chosen = {"mtl_fixed": sweep[chosen_lambda(sweep)]} if len(sweep) == len(settings.aux_lambdas) else {}
    return {**chosen, **{n: o for n, o in done.items() if n.startswith("mtl_") and "+" not in n}}


def run_plan(
    settings: MultitaskSettings,
    tasks: Sequence[str],
    train: Callable[[Experiment], Outcome],
    done: dict[str, Outcome],
    sections: Sequence[str] = SECTIONS,
    workers: int = 1,
) -> dict[str, Outcome]:
    """Train the plan's experiments of ``sections`` not yet in ``done`` (which gains them), in order,
    until the plan names nothing new; returns those trained now. With ``workers`` > 1 the experiments
    of a round train ahead in worker processes first (:func:`~mtrec_helpers.core.workers.train_ahead`:
    ``train`` picklable, taking ``progress`` and ``measured``: the workers only train)."""
    trained: dict[str, Outcome] = {}
    while todo := [p.experiment for p in plan(settings, tasks, done)
                   if p.section in sections and p.experiment.name not in done]:  # fmt: skip
        train_ahead(functools.partial(train, progress=False, measured=False), todo, workers)
        for experiment in todo:
            done[experiment.name] = trained[experiment.name] = train(experiment)
    return trained


def train_experiment(
    experiment: Experiment,
    settings: MultitaskSettings,
    task_data: TaskData,
    artifacts: Path,
    device: torch.device,
    progress: bool = True,
    measured: bool = True,
) -> Outcome | None:
    """Finetune one planned experiment from 02's ``ENCODER`` into ``<artifacts>/multitask/runs/<name>``
    (or read it back finished) and measure it on test (unless not ``measured``: None); an experiment
    with user text reads 02b's cached item text vectors (or embeds the texts)."""
    text = None
    if experiment.user_text:
        cache = artifacts / "text" / "embeddings"
        text = embed_texts(item_texts(task_data.data), settings.text_model, cache, device).vectors
    encoder, runs = artifacts / "pretrained" / settings.encoder, artifacts / "multitask" / "runs"
    config = settings.finetune_config()
    return run_experiment(
        experiment, encoder, task_data, config, device, settings.n_boot, progress, runs, text, measured
    )
