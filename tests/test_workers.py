"""Trainings ahead, side by side (core/workers.py): every item runs, in other processes, with this one's
thread count and without spinning; a worker's error is raised; how many at once."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest
import torch

from mtrec_helpers.core.workers import ENV, side_by_side, train_ahead, train_workers


def leave_a_note(value: int, folder: Path) -> None:
    """A worker's job: write what it ran on (its process, threads, OpenMP wait policy) to disk."""
    note = {"pid": os.getpid(), "threads": torch.get_num_threads(), "wait": os.environ.get("OMP_WAIT_POLICY")}
    (folder / f"{value}.json").write_text(json.dumps(note), encoding="utf-8")


def fails_on_three(value: int) -> None:
    if value == 3:
        raise ValueError(f"item {value} is bad")


def test_every_item_runs_in_another_process_with_this_ones_threads(tmp_path: Path) -> None:
    before, threads = os.environ.get("OMP_WAIT_POLICY"), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_ahead(functools.partial(leave_a_note, folder=tmp_path), [3, 1, 4, 5], workers=2)
    finally:
        torch.set_num_threads(threads)
    notes = {int(p.stem): json.loads(p.read_text(encoding="utf-8")) for p in tmp_path.glob("*.json")}
    assert sorted(notes) == [1, 3, 4, 5]
    processes = {n["pid"] for n in notes.values()}
    assert os.getpid() not in processes and len(processes) <= 2
    assert {(n["threads"], n["wait"]) for n in notes.values()} == {(1, "PASSIVE")}
    assert os.environ.get("OMP_WAIT_POLICY") == before  # this process's environment as it was


def test_nothing_runs_ahead_with_one_worker_or_one_item_and_a_workers_error_is_raised(tmp_path: Path) -> None:
    train_ahead(functools.partial(leave_a_note, folder=tmp_path), [1, 2], workers=1)
    train_ahead(functools.partial(leave_a_note, folder=tmp_path), [7], workers=4)
    assert list(tmp_path.iterdir()) == []  # the chapter's own loop trains these
    with pytest.raises(ValueError, match="item 3 is bad"):
        train_ahead(fails_on_three, [1, 2, 3], workers=2)


def count_ones(item: int, table: torch.Tensor) -> None:
    assert int(table.sum()) == item


def test_the_function_reaches_the_workers_as_a_copy_and_this_processs_tensors_stay_put() -> None:
    table = torch.ones(1000, dtype=torch.int64)
    view = table.numpy()  # a NumPy array on the tensor's memory, as notebook 05's cluster labels are
    address = table.data_ptr()
    train_ahead(functools.partial(count_ones, table=table), [1000, 1000], workers=2)
    assert table.data_ptr() == address and not table.is_shared()  # not moved into shared memory
    view[:] = 7  # still the tensor's own memory (a moved storage would leave this array dangling)
    assert int(table.sum()) == 7000


def square_and_where(value: int) -> tuple[int, int]:
    return value * value, os.getpid()


def test_side_by_side_returns_each_items_result_in_order_from_the_workers() -> None:
    results = side_by_side(square_and_where, [3, 1, 4, 5], workers=2)
    assert [square for square, _ in results] == [9, 1, 16, 25]
    assert os.getpid() not in {pid for _, pid in results}
    assert side_by_side(square_and_where, [2, 6], workers=1) == [(4, os.getpid()), (36, os.getpid())]
    with pytest.raises(ValueError, match="item 3 is bad"):
        side_by_side(fails_on_three, [1, 2, 3], workers=2)


def test_worker_count_from_the_environment_or_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert train_workers("cuda") == 1
    assert train_workers("cpu") == min(2, os.cpu_count() or 1)
    monkeypatch.setenv(ENV, "3")
    assert train_workers("cpu") == 3 and train_workers("cuda") == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(ENV, bad)
        with pytest.raises(ValueError, match=f"{ENV}={bad!r}: expected a whole number"):
            train_workers("cpu")
