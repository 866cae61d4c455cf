"""Chapter settings: one frozen dataclass per chapter, built in one call from the notebook's parameters.

A chapter's parameters cell is the one place that holds defaults. Its settings class has one field
per parameter — the parameter's name in lower case (``BATCH_SIZE`` → ``batch_size``) — and, where
the chapter trains with the engine, one ``engine`` field: an
:class:`~mtrec_helpers.core.engine.EngineConfig` built from ``EPOCHS``, ``LR``, ``PATIENCE``,
``MAX_STEPS`` and ``SEED`` plus the chapter's fixed optimisation constants (:attr:`Settings.ENGINE`).
A field that no parameter fills is an error naming it, so a renamed parameter can never fall back to
some default silently; :meth:`Settings.parameters` gives the cell's names and values back (what a
chapter records in its ``metrics.json``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from mtrec_helpers.core.engine import EngineConfig

ENGINE_PARAMETERS = {
    "EPOCHS": "epochs",
    "LR": "lr",
    "PATIENCE": "patience",
    "MAX_STEPS": "max_batches",
    "SEED": "seed",
}
"""The notebook parameters the engine takes, and the engine setting each one is."""


class SettingsError(ValueError):
    """A chapter's settings cannot be built from the parameters given."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of the chapters' settings classes (subclasses are frozen dataclasses without defaults)."""

    ENGINE: ClassVar[dict[str, Any]] = {}
    """The chapter's engine settings that are not parameters (e.g. a longer warm-up)."""

    @classmethod
    def parameter_names(cls) -> list[str]:
        """The parameters the class takes, as the notebook's parameters cell spells them."""
        names = [f.name.upper() for f in dataclasses.fields(cls) if f.name != "engine"]
        return names + (list(ENGINE_PARAMETERS) if cls._trains() else [])

    @classmethod
    def _trains(cls) -> bool:
        return any(f.name == "engine" for f in dataclasses.fields(cls))

    @classmethod
    def of(cls, parameters: Mapping[str, Any]) -> Self:
        """The settings from a notebook's parameters (in a notebook ``globals()``; in a launcher the
        parameters cell's values with the checked overrides). Names the class does not take are ignored."""
        missing = [name for name in cls.parameter_names() if name not in parameters]
        if missing:
            raise SettingsError(
                f"{cls.__name__} needs the parameters {', '.join(missing)}, which were not given."
            )
        values = {f.name: parameters[f.name.upper()] for f in dataclasses.fields(cls) if f.name != "engine"}
        if cls._trains():
            engine = {setting: parameters[name] for name, setting in ENGINE_PARAMETERS.items()}
            values["engine"] = EngineConfig(**engine, **cls.ENGINE)
        return cls(**values)

    def parameters(self) -> dict[str, Any]:
        """The parameters cell's names and values these settings were built from."""
        values = {
            f.name.upper(): getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "engine"
        }
        if self._trains():
            values.update(
                {name: getattr(self.engine, setting) for name, setting in ENGINE_PARAMETERS.items()}
            )
        return values
