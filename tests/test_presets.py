"""Presets: every value is a parameter its chapter declares, with the right type and range; the
command line's overrides win; an unknown preset is refused with the known ones."""

from __future__ import annotations

import pytest

from mtrec_helpers.course.parameters import check_parameters
from mtrec_helpers.course.presets import PRESETS, preset_overrides, with_preset
from mtrec_helpers.course.runner import notebook_number_of, numbered_notebooks, parameters_for

CHAPTERS = {notebook_number_of(nb): nb for nb in numbered_notebooks()}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_value_is_a_valid_parameter_of_its_chapter(preset: str) -> None:
    assert set(PRESETS[preset]) <= set(CHAPTERS)
    for number, notebook in CHAPTERS.items():
        chosen = preset_overrides(preset, number)
        assert parameters_for(notebook, {}, chosen) == chosen, f"{preset}/{number} sets undeclared names"
        check_parameters(notebook, chosen)  # type and range, as for any override


def test_the_class_preset_cuts_training_and_the_command_line_wins() -> None:
    assert preset_overrides("class", "02")["EPOCHS"] < 100 and preset_overrides("default", "02") == {}
    assert with_preset("class", "02", {"EPOCHS": 3})["EPOCHS"] == 3
    assert with_preset("class", "02", {})["PATIENCE"] == PRESETS["class"]["02"]["PATIENCE"]
    with pytest.raises(ValueError, match="no such preset; the presets are default, tiny, class"):
        preset_overrides("klass", "02")
