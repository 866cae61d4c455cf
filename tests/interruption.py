"""Interrupt a training run between two epochs, and count what a resumed run still does."""

from __future__ import annotations

from types import ModuleType

import pytest


class Interrupted(Exception):
    """Stands for a kill between two epochs."""


def interrupt_on_call(monkeypatch: pytest.MonkeyPatch, module: ModuleType, name: str, call: int) -> None:
    """Make ``module.name`` raise :class:`Interrupted` on its ``call``-th call."""
    original, calls = getattr(module, name), []

    def interrupting(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise Interrupted
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, interrupting)


def count_calls(monkeypatch: pytest.MonkeyPatch, module: ModuleType, name: str) -> list[int]:
    """A list that grows by one at every call of ``module.name`` (restored first if interrupted)."""
    monkeypatch.undo()
    original, calls = getattr(module, name), []
    monkeypatch.setattr(module, name, lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs))
    return calls
