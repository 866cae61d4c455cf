"""A planted pickle for the tests that check nothing read back from disk can run code."""

from __future__ import annotations

from pathlib import Path


class Payload:
    """Unpickling this object runs code: it creates the file ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))
