"""Independent trainings side by side: the runs of a chapter that do not depend on each other (02's two
objectives, 02b's folds, 03's single-task runs and λ sweep, 03b's models, 05's students, the points of
04's planning sweep) train in worker processes at the same time.

For checkpointed runs (:func:`train_ahead`) the workers write each run's checkpoint; the chapter's own
loop then reads every run back finished, as it does after an interrupted run. Jobs without checkpoints
whose results are plain data (04's sweep: per-session returns) come back from the workers
(:func:`side_by_side`). Why it is exact: each worker computes with the thread count the
chapter's own process has, so every kernel splits its work the same way and every number — weights,
histories, test rankings — is the same to the last bit as when the runs train one after another
(tests compare). Only the wall time changes:
a model of ML-100k's size keeps two cores busy only part of the time (small matrices, Python between
kernels), so two runs at once finish sooner than one after the other. The workers wait for work
without spinning (``OMP_WAIT_POLICY=PASSIVE``), else two processes of two threads on two cores slow
each other down tenfold.

How many: ``MTREC_TRAIN_WORKERS`` (``make run TRAIN_WORKERS=N``), else two on a CPU with two or more cores
and one on a GPU. Each worker holds its own copy of the data and its model: at ML-20M's size set
``MTREC_TRAIN_WORKERS=1`` on a machine with less than twice the memory one run needs (the scale
benchmark measures with one). A run's training throughput is measured while it shares the CPU.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

import torch

from mtrec_helpers.core.environment import environment_variable

ENV = "MTREC_TRAIN_WORKERS"

Item = TypeVar("Item")
Result = TypeVar("Result")


def train_workers(device: torch.device | str) -> int:
    """How many runs train at once on ``device``: ``MTREC_TRAIN_WORKERS`` if set, else 2 on a CPU with at
    least two cores, 1 on a GPU (its kernels already fill it)."""
    value = os.environ.get(ENV, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{ENV}={value!r}: expected a whole number ≥ 1 (1: one run after another)")
        return int(value)
    return 1 if torch.device(device).type == "cuda" else min(2, os.cpu_count() or 1)


_JOB: Callable[[object], object] | None = None  # a worker's function, unpickled once per worker
_KEEP = False  # whether a worker sends its results back


def _start_worker(threads: int, job: bytes, keep: bool) -> None:
    """A worker computes with its parent's thread count (the same splits, the same numbers) and keeps
    the function it runs."""
    global _JOB, _KEEP
    torch.set_num_threads(threads)
    _JOB, _KEEP = pickle.loads(job), keep


def _run(item: bytes) -> bytes | None:
    assert _JOB is not None, "a worker runs only after _start_worker"
    result = _JOB(pickle.loads(item))
    return pickle.dumps(result) if _KEEP else None


def _in_workers(function: Callable[[Item], Result], items: Sequence[Item], workers: int, keep: bool) -> list:
    """``function`` over ``items`` in up to ``workers`` fresh processes; their results if ``keep``."""
    context = multiprocessing.get_context("spawn")  # never fork a process that holds OpenMP threads
    # Plain pickle, not multiprocessing's: that one would move every tensor the function holds (a model,
    # the data) into shared memory in place, and a NumPy array viewing the old memory would dangle.
    job = pickle.dumps(function)
    with (
        environment_variable("OMP_WAIT_POLICY", "PASSIVE"),  # set before the workers load OpenMP
        ProcessPoolExecutor(
            min(workers, len(items)), context, _start_worker, (torch.get_num_threads(), job, keep)
        ) as pool,
    ):
        sent = pool.map(_run, [pickle.dumps(item) for item in items])
        return [pickle.loads(result) if keep else None for result in sent]


def train_ahead(function: Callable[[Item], object], items: Sequence[Item], workers: int) -> None:
    """Run ``function(item)`` for every item, up to ``workers`` at once in fresh processes, for what it
    leaves on disk: each run's finished checkpoint. The chapter's own loop then calls the same function
    in its process and reads every run back finished (:func:`~mtrec_helpers.core.engine.fit` returns a
    finished run without training), so its models, logs and progress are its own, exactly as if it had
    trained them. ``function`` must be picklable (a module's function, or a ``functools.partial`` of
    one); a worker's error is raised here. With one worker, or one item, nothing runs ahead."""
    if workers > 1 and len(items) > 1:
        _in_workers(function, items, workers, keep=False)  # only the checkpoints count


def side_by_side(function: Callable[[Item], Result], items: Sequence[Item], workers: int) -> list[Result]:
    """``[function(item) for item in items]``, up to ``workers`` at once in fresh processes (one, or one
    item: in this one), for independent jobs whose results are plain data (arrays, numbers): each worker
    gets a copy of ``function`` and everything it holds, so a job must not depend on state another job
    leaves behind. Picklable as for :func:`train_ahead`; a worker's error is raised here."""
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    return _in_workers(function, items, workers, keep=True)
