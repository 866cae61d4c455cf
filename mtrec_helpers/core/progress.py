"""Training progress: a live bar in JupyterLab, one line per loop in an executed copy.

Nobody watches the bars of a notebook that `make run` (or the tests) execute, and its executed copy
would keep a widget frozen at "0%". So the runner names a progress file in ``MTREC_PROGRESS_FILE``
for each kernel it starts; a loop then writes its current step there (`make run` shows it as it
runs) and prints one summary line when it ends, which is what the executed copy keeps.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm.auto import tqdm

from mtrec_helpers.core.environment import environment_variable

PROGRESS_ENV = "MTREC_PROGRESS_FILE"


class LoopProgress:
    """Progress of a loop of ``total`` steps (epochs) that starts at step ``done`` (a resumed run)."""

    def __init__(self, label: str, done: int, total: int, enabled: bool = True, unit: str = "epochs") -> None:
        self.label, self.done, self.total, self.unit, self.enabled = label, done, total, unit, enabled
        self.started, self.first = time.perf_counter(), done
        target = os.environ.get(PROGRESS_ENV)
        self.file = Path(target) if target else None
        self.bar = tqdm(desc=label, initial=done, total=total) if enabled and self.file is None else None

    def step(self, note: str = "") -> None:
        """One more step done; ``note`` (e.g. the validation score) goes beside the count."""
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(note, refresh=False)
        elif self.enabled and self.file is not None:
            line = f"{self.label}: {self.unit[:-1]} {self.done}/{self.total}" + (f", {note}" if note else "")
            self.file.write_text(line + "\n", encoding="utf-8")

    def close(self) -> None:
        """End the loop: close the bar, or print the one-line summary an executed copy keeps."""
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.done > self.first:
            seconds = time.perf_counter() - self.started
            print(f"{self.label}: {self.done - self.first} {self.unit} in {seconds:.1f} s "
                  f"({self.done}/{self.total})")  # fmt: skip


PRINT_EVERY = 10.0
"""Seconds between the runner's looks at the progress file."""


@contextmanager
def progress_file(prefix: str | None = None) -> Iterator[Path]:
    """A fresh progress file named in ``MTREC_PROGRESS_FILE`` for the kernels started inside (they
    inherit the environment); with ``prefix``, each new line it gets is printed, at most every
    :data:`PRINT_EVERY` seconds. The file and the variable are gone afterwards."""
    handle, name = tempfile.mkstemp(prefix="mtrec-progress-", suffix=".txt")
    os.close(handle)
    path, stop = Path(name), threading.Event()

    def watch() -> None:
        shown = ""
        while not stop.wait(PRINT_EVERY):
            line = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
            if line and line != shown:
                print(f"{prefix}{line}", flush=True)
                shown = line

    watcher = threading.Thread(target=watch, daemon=True) if prefix is not None else None
    try:
        with environment_variable(PROGRESS_ENV, name):
            if watcher is not None:
                watcher.start()
            yield path
    finally:
        stop.set()
        if watcher is not None:
            watcher.join()
        path.unlink(missing_ok=True)
