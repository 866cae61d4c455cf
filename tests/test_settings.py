"""One settings class per chapter, exactly the parameters of its notebook, built in one call; the
training configurations nest the engine's settings instead of re-declaring them; the launcher and the
notebook plan the same runs."""

from __future__ import annotations

import dataclasses

import pytest

from mtrec_helpers.core.engine import EngineConfig
from mtrec_helpers.core.settings import ENGINE_PARAMETERS, Settings, SettingsError
from mtrec_helpers.course.parameters import declared_parameters
from mtrec_helpers.course.presets import PRESETS, with_preset
from mtrec_helpers.course.runner import notebook_number_of, numbered_notebooks
from mtrec_helpers.data.settings import DataSettings
from mtrec_helpers.distill.settings import DistillSettings
from mtrec_helpers.distill.settings import plan as distill_plan
from mtrec_helpers.distill.train import DistillConfig
from mtrec_helpers.ensemble.settings import EnsembleSettings
from mtrec_helpers.multi_scenario.settings import MultiScenarioSettings
from mtrec_helpers.multitask.finetune import FinetuneConfig
from mtrec_helpers.multitask.settings import MultitaskSettings
from mtrec_helpers.multitask.settings import plan as multitask_plan
from mtrec_helpers.pretraining.settings import PretrainingSettings
from mtrec_helpers.pretraining.train import TrainConfig
from mtrec_helpers.rl.settings import RLSettings
from mtrec_helpers.text.settings import TextSettings
from mtrec_helpers.text.settings import plan as text_plan

SETTINGS: dict[str, type[Settings]] = {
    "01": DataSettings, "02": PretrainingSettings, "02b": TextSettings, "03": MultitaskSettings,
    "03b": MultiScenarioSettings, "04": RLSettings, "05": DistillSettings, "06": EnsembleSettings,
}  # fmt: skip
CELLS = {notebook_number_of(path): declared_parameters(path) for path in numbered_notebooks()}
TRAINING_CONFIGS = (TrainConfig, FinetuneConfig, DistillConfig)


def test_every_chapter_has_one_settings_class_with_exactly_its_notebooks_parameters() -> None:
    assert sorted(SETTINGS) == sorted(CELLS)
    for number, settings in SETTINGS.items():
        assert sorted(settings.parameter_names()) == sorted(CELLS[number]), number
        fields = dataclasses.fields(settings)
        assert all(
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING for f in fields
        ), f"{settings.__name__} declares a default: the notebook's parameters cell is the one place for them"


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_settings_build_from_every_presets_parameters_and_give_them_back(preset: str) -> None:
    for number, settings in SETTINGS.items():
        parameters = {**CELLS[number], **with_preset(preset, number, {})}
        built = settings.of(parameters)
        assert built.parameters() == parameters, number


def test_the_engine_takes_epochs_lr_patience_max_steps_and_seed_and_the_chapter_constants() -> None:
    cell = {**CELLS["03"], "EPOCHS": 2, "LR": 0.25, "PATIENCE": 1, "MAX_STEPS": 7, "SEED": 11}
    engine = MultitaskSettings.of(cell).engine
    assert (engine.epochs, engine.lr, engine.patience, engine.max_batches, engine.seed) == (2, 0.25, 1, 7, 11)
    assert engine.warmup_ratio == 0.1  # 03 warms up longer: the encoder is already trained
    assert PretrainingSettings.of(CELLS["02"]).engine.warmup_ratio == 0.05


def test_max_steps_reaches_the_configuration_every_training_chapter_trains_with() -> None:
    """The scale benchmark's step budget is ``MAX_STEPS``: every chapter that trains must pass it on."""
    configs = {
        "02": lambda s: s.train_config(), "02b": lambda s: s.train_config(),
        "03": lambda s: s.finetune_config(), "03b": lambda s: s.finetune_config(),
        "05": lambda s: s.distill_config(),
    }  # fmt: skip
    assert sorted(configs) == sorted(n for n, cell in CELLS.items() if "MAX_STEPS" in cell)
    for number, config in configs.items():
        assert config(SETTINGS[number].of({**CELLS[number], "MAX_STEPS": 7})).engine.max_batches == 7, number


def test_a_missing_parameter_is_named_never_defaulted() -> None:
    cell = {k: v for k, v in CELLS["02"].items() if k != "PATIENCE"}
    with pytest.raises(SettingsError, match="PretrainingSettings needs the parameters PATIENCE"):
        PretrainingSettings.of(cell)


def test_training_configurations_nest_the_engine_instead_of_redeclaring_it() -> None:
    engine_fields = {f.name for f in dataclasses.fields(EngineConfig)}
    parameters = {name.lower() for cell in CELLS.values() for name in cell} | set(ENGINE_PARAMETERS.values())
    for config in TRAINING_CONFIGS:
        fields = {f.name: f for f in dataclasses.fields(config)}
        assert fields["engine"].type in ("EngineConfig", EngineConfig), config.__name__
        assert not (set(fields) - {"engine"}) & engine_fields, (
            f"{config.__name__} re-declares engine settings"
        )
        defaulted = {n for n, f in fields.items() if f.default is not dataclasses.MISSING}
        assert not defaulted & parameters, (
            f"{config.__name__} has defaults for parameters: {defaulted & parameters}"
        )


def test_the_plans_follow_the_parameters() -> None:
    text = TextSettings.of({**CELLS["02b"], "COLD_FOLDS": 3})
    assert [(run.name, run.fold) for run in text_plan(text)] == [
        ("fold0_id_only", 0), ("fold1_id_only", 1), ("fold2_id_only", 2)
    ]  # fmt: skip
    distill = DistillSettings.of({**CELLS["05"], "STUDENT_HIDDEN": [16, 8], "ABLATION_HIDDEN": 8})
    assert [run.name for run in distill_plan(distill)] == [
        "student_h16", "student_h8", "h8_alone", "h8_soft", "h8_alone_random_start",
    ]  # fmt: skip
    multitask = MultitaskSettings.of({**CELLS["03"], "AUX_LAMBDAS": [0.3], "ADAPTIVE": ["dwa"]})
    first = multitask_plan(multitask, ["next", "rating"], {})
    assert [(p.section, p.experiment.name) for p in first] == [
        ("single", "single_next"),
        ("single", "single_rating"),
        ("sweep", "fixed_aux=0.3"),
        ("adaptive", "mtl_dwa"),
    ]  # MMoE and LoRA need the sweep's chosen λ: they are planned once it has finished
    assert first[3].experiment.options == {"temperature": CELLS["03"]["DWA_TEMPERATURE"]}
