"""Chapter 03b's settings (one field per parameter of the notebook) and the runs they plan.

Every run finetunes notebook 02's encoder with chapter 03's heads, sharing layer and task weights
(03's chosen configuration, read from ``<ARTIFACTS_DIR>/multitask/``) under the same budget; runs
differ in the scenario layers and the weights of the scenarios. The plan:

- ``models`` — ``shared`` (scenario-agnostic, 03's pooled loss: the reference) and each model of
  ``MODELS`` (``embedding``, ``star``, ``experts``), all with proportional weights;
- ``separate`` — one shared model per scenario, trained on that scenario's positions alone
  (``only:<scenario>``), selected on its own users (``SEPARATE``);
- ``weighting`` — once the models are done, the scenario-aware model chosen on validation trained
  again with each scheme of ``WEIGHTINGS`` (uniform, balanced, uncertainty, dwa).

The notebook trains the plan a section at a time; ``python -m mtrec_helpers.multi_scenario`` all at
once, with the same names (the notebook then finds the runs finished).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from accelerate.utils import set_seed

from mtrec_helpers.core.engine import EngineConfig
from mtrec_helpers.core.settings import Settings
from mtrec_helpers.core.stages import missing_artifact
from mtrec_helpers.core.workers import train_ahead
from mtrec_helpers.multi_scenario.evaluation import measure, scenario_means
from mtrec_helpers.multi_scenario.model import SCENARIO_MODELS, SCENARIO_TASKS, ScenarioModel
from mtrec_helpers.multi_scenario.scenarios import ScenarioData
from mtrec_helpers.multi_scenario.weighting import grid_weighting
from mtrec_helpers.multitask.experiments import aux_lambdas
from mtrec_helpers.multitask.finetune import FinetuneConfig, FinetuneResult, finetune
from mtrec_helpers.multitask.model import MultiTaskConfig, build_multitask

SECTIONS = ("models", "separate", "weighting")


@dataclass(frozen=True)
class MultiScenarioSettings(Settings):
    """Notebook 03b's parameters; ``engine`` takes EPOCHS, LR, PATIENCE, MAX_STEPS and SEED."""

    ENGINE: ClassVar[dict[str, float]] = {"warmup_ratio": 0.1}  # as chapter 03: the encoder is trained

    dataset: str
    artifacts_dir: str
    device: str
    encoder: str
    scenarios: str
    min_scenario_users: int
    scenario_tasks: list[str]
    models: list[str]
    separate: bool
    weightings: list[str]
    batch_size: int
    head_lr: float
    head_epochs: int
    refit_epochs: int
    shared_experts: int
    scenario_experts: int
    dwa_temperature: float
    valid_users: int
    n_boot: int
    engine: EngineConfig

    def finetune_config(self) -> FinetuneConfig:
        """How each run finetunes (03's phases)."""
        return FinetuneConfig.of(self)


@dataclass(frozen=True)
class Reference:
    """What 03 chose and every run here inherits: its sharing layer, its task weights λ_t, its name."""

    sharing: str
    n_experts: int
    task_lambdas: dict[str, float]
    chosen: str


def reference_of_03(artifacts: Path, tasks: Sequence[str]) -> Reference:
    """03's chosen configuration (``multitask/metrics.json`` and the saved model's config), with 03's
    fixed λ for the auxiliary tasks among ``tasks``."""
    metrics, model = artifacts / "multitask" / "metrics.json", artifacts / "multitask" / "model"
    if not metrics.is_file() or not (model / "config.json").is_file():
        raise missing_artifact(metrics if not metrics.is_file() else model, "chapter 03's chosen model")
    record = json.loads(metrics.read_text(encoding="utf-8"))
    config = MultiTaskConfig.from_pretrained(model)
    return Reference(
        config.sharing,
        config.n_experts,
        aux_lambdas(tasks, float(record["chosen_aux_lambda"])),
        record["best"],
    )


def scenario_tasks(requested: Sequence[str], available: Sequence[str]) -> tuple[str, ...]:
    """The tasks of 03b: those requested that the release has labels for; each must be per interaction."""
    unknown = sorted(set(requested) - set(SCENARIO_TASKS))
    if unknown or "next" not in requested:
        raise ValueError(
            f"SCENARIO_TASKS={list(requested)!r}: choose 'next' and any of {list(SCENARIO_TASKS[1:])} "
            "(the profile task belongs to users, not to a scenario's interactions)"
        )
    return tuple(t for t in SCENARIO_TASKS if t in requested and t in available)


@dataclass(frozen=True)
class ScenarioRun:
    """One finetuning of the plan: its name, section, scenario layers and scenario weights."""

    name: str
    section: str
    model: str
    weighting: str = "proportional"

    @property
    def focus(self) -> str | None:
        """The one scenario a *separate* run trains on (None: every scenario)."""
        return self.weighting.removeprefix("only:") if self.weighting.startswith("only:") else None


def plan(settings: MultiScenarioSettings, scenarios: Sequence[str], chosen: str | None) -> list[ScenarioRun]:
    """The chapter's runs given the scenario names and, once the models section is done, the
    scenario-aware model chosen on validation (``chosen``; None before)."""
    unknown = sorted(set(settings.models) - set(SCENARIO_MODELS[1:]))
    if unknown:
        raise ValueError(f"MODELS={settings.models!r}: choose among {list(SCENARIO_MODELS[1:])}")
    runs = [ScenarioRun("shared", "models", "shared")]
    runs += [ScenarioRun(model, "models", model) for model in settings.models]
    if settings.separate and len(scenarios) > 1:
        runs += [ScenarioRun(f"separate:{s}", "separate", "shared", f"only:{s}") for s in scenarios]
    if chosen is not None:
        runs += [ScenarioRun(f"{chosen}+{w}", "weighting", chosen, w) for w in settings.weightings
                 if w != "proportional"]  # fmt: skip
    return runs


@dataclass
class ScenarioOutcome:
    """A finished run: the model and its training log (per-epoch losses and λ_{s,t})."""

    run: ScenarioRun
    model: ScenarioModel
    training: FinetuneResult
    valid: dict[str, float]  # validation NDCG@10 per scenario (every user, the chosen epoch)

    @property
    def valid_mean(self) -> float:
        """Validation NDCG@10 averaged over scenarios: what the chapter chooses models by."""
        return float(np.mean(list(self.valid.values())))


def train_run(
    run: ScenarioRun,
    settings: MultiScenarioSettings,
    data: ScenarioData,
    reference: Reference,
    artifacts: Path,
    device: torch.device,
    progress: bool = True,
    measured: bool = True,
) -> ScenarioOutcome | None:
    """Finetune one run from 02's ``ENCODER`` into ``<artifacts>/multi_scenario/runs/<name>`` (or read
    it back finished) and measure it on the validation sample (unless not ``measured``: None, for a
    worker that trains ahead)."""
    set_seed(settings.engine.seed)
    names = data.scenarios.names
    sharing = "shared" if run.model == "experts" else reference.sharing  # CGC replaces 03's MMoE
    model = build_multitask(
        artifacts / "pretrained" / settings.encoder, data, tuple(reference.task_lambdas), sharing,
        model_class=ScenarioModel, n_experts=reference.n_experts, scenario_names=names,
        scenario_model=run.model, shared_experts=settings.shared_experts,
        scenario_experts=settings.scenario_experts, catalogues=data.scenarios.item_codes is not None,
    )  # fmt: skip
    if data.scenarios.item_codes is not None:
        model.set_catalogues(data.scenarios.item_codes)
    model.to(device)
    events = np.bincount(data.scenarios.codes[data.split_code == 0], minlength=len(names) + 1)[1:]
    options = {"temperature": settings.dwa_temperature} if run.weighting == "dwa" else {}
    weighting = grid_weighting(run.weighting, names, events.tolist(), reference.task_lambdas, options)
    focused = data.focus(names.index(run.focus) + 1 if run.focus else None)
    runs_dir = artifacts / "multi_scenario" / "runs" / run.name.replace(":", "-")
    config = settings.finetune_config()
    training = finetune(model, weighting, focused, config, device, progress, run.name, runs_dir)
    if not measured:
        return None
    sample = data.validation_sample(settings.valid_users, settings.engine.seed)
    valid = scenario_means(measure(model, data, "valid", sample), data)
    return ScenarioOutcome(run, training.model, training, valid)


def run_plan(
    settings: MultiScenarioSettings,
    scenarios: Sequence[str],
    train: Callable[[ScenarioRun], ScenarioOutcome],
    done: dict[str, ScenarioOutcome],
    sections: Sequence[str] = SECTIONS,
    workers: int = 1,
) -> dict[str, ScenarioOutcome]:
    """Train the plan's runs of ``sections`` not yet in ``done`` (which gains them), choosing the
    model for the weighting section (:func:`choose`) once the models are done; returns those trained now.
    With ``workers`` > 1 the runs of a round train ahead in worker processes first
    (:func:`~mtrec_helpers.core.workers.train_ahead`: ``train`` picklable, taking ``progress`` and
    ``measured``: the workers only train)."""
    trained: dict[str, ScenarioOutcome] = {}

    def chosen() -> str | None:
        models = [r.name for r in plan(settings, scenarios, None) if r.section == "models"]
        return choose(done, settings.models) if all(m in done for m in models) and settings.models else None

    while todo := [r for r in plan(settings, scenarios, chosen())
                   if r.section in sections and r.name not in done]:  # fmt: skip
        train_ahead(functools.partial(train, progress=False, measured=False), todo, workers)
        for run in todo:
            done[run.name] = trained[run.name] = train(run)
    return trained


def choose(done: Mapping[str, ScenarioOutcome], models: Sequence[str]) -> str:
    """Of the finished ``models``, the best by validation NDCG@10 averaged over scenarios."""
    return max((m for m in models if m in done), key=lambda m: done[m].valid_mean)


def describe(outcome: ScenarioOutcome) -> dict[str, Any]:
    """What the results record keeps of a run's training: best epoch, seconds, the λ per epoch."""
    history = outcome.training.history
    weights = [
        {k.removeprefix("weight_"): v for k, v in row.items() if k.startswith("weight_")} for row in history
    ]
    return {"best_epoch": outcome.training.best_epoch, "train_seconds": outcome.training.train_seconds,
            "lambdas": weights}  # fmt: skip
