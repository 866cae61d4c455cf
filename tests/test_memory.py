"""Memory growth: the stages that used to hold users × catalogue matrices work a batch at a time.

The same computation runs on two synthetic datasets, one with twice the users of the other (same
catalogue, same batch size), while torch's profiler records every tensor allocation. A users ×
catalogue matrix anywhere would make the largest allocation grow by a byte or more per added user
and item; working in batches keeps it where it was (per-user vectors grow it by a few bytes per
user, far below that). The probe itself is checked on a planted users × catalogue matrix.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from mtrec_helpers.core import memory
from mtrec_helpers.core.memory import MMAP_THRESHOLD, bound_heap, fix_mmap_threshold, needs_bounded_heap
from mtrec_helpers.course import heap_benchmark
from mtrec_helpers.data import SyntheticConfig, prepare_dataset
from mtrec_helpers.ensemble.experiments import evaluation_pass, fit_fusions, validation_pass
from mtrec_helpers.ensemble.scores import score_batches
from mtrec_helpers.pretraining.baselines import fit_ease, fit_itemknn, fit_popularity
from mtrec_helpers.rl import user_model as user_model_module
from mtrec_helpers.rl.experiments import World
from mtrec_helpers.rl.retrieval import CandidateTable
from mtrec_helpers.rl.user_model import fit_user_model, held_out_fit

USERS, N_ITEMS, BATCH = (1200, 2400), 400, 64


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    return [
        prepare_dataset("synthetic", tmp_path_factory.mktemp(f"memory{n}"), min_interactions=3,
                        synthetic=SyntheticConfig(n_users=n, n_items=N_ITEMS, min_length=5, max_length=12))
        for n in USERS
    ]  # fmt: skip


def largest_allocation(run: Callable[[], Any]) -> int:
    """The largest single CPU tensor allocation (bytes) while ``run`` runs."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    return max((event.cpu_memory_usage for event in prof.events()), default=0)


def assert_no_growth(run: Callable[[Any], Any], datasets: list[Any]) -> None:
    """With twice the users, the largest allocation grows by less than half a byte per added user
    and catalogue item: a users × V matrix (even boolean) grows by at least one; per-user vectors
    (ranks, a few factors) by far less."""
    small, large = (largest_allocation(lambda d=d: run(d)) for d in datasets)
    added = (datasets[1].n_users - datasets[0].n_users) * (datasets[1].n_items + 2)
    assert datasets[1].n_users > 1.9 * datasets[0].n_users
    assert large - small < added / 2, (
        f"largest allocation grew from {small:,} to {large:,} bytes with the users"
    )


def test_the_probe_sees_a_users_by_catalogue_matrix(datasets) -> None:
    with pytest.raises(AssertionError, match="grew"):
        assert_no_growth(lambda d: torch.zeros(d.n_users, d.n_items + 2, dtype=torch.bool), datasets)


def test_fusion_and_evaluation_stream_over_user_batches(datasets) -> None:
    def both_passes(data) -> None:
        scorers = {"pop": fit_popularity(data).score, "ease": fit_ease(data, 50.0).score,
                   "itemknn": fit_itemknn(data, 20).score}  # fmt: skip
        names = list(scorers)
        valid = validation_pass(score_batches(scorers, data, "valid", BATCH), data, names, memory_mb=0.02)
        fits = fit_fusions(valid, names, leave_one_out=False)
        evaluation_pass(score_batches(scorers, data, "test", BATCH), data, names, fits, {})

    assert_no_growth(both_passes, datasets)


def test_simulator_world_and_held_out_fit_never_hold_every_users_row(datasets, monkeypatch) -> None:
    monkeypatch.setattr(user_model_module, "HELD_OUT_BATCH", BATCH)

    models = {
        data.n_users: fit_user_model(data, l2=50.0, dim=4) for data in datasets
    }  # O(users × d): allowed

    def simulator_inputs(data) -> None:
        model = models[data.n_users]
        items = torch.arange(1, 11).repeat(data.n_users, 1)
        table = CandidateTable(
            items, torch.zeros(items.shape), torch.zeros(items.shape), torch.zeros(items.shape)
        )
        World.build(data, table).histories(torch.arange(BATCH))
        held_out_fit(model, data)

    assert_no_growth(simulator_inputs, datasets)


def test_only_large_catalogues_need_a_bounded_heap() -> None:
    """A batch of scores over ML-20M's 26,744 items (27 MB) fragments the heap; ML-100k's and
    ML-1M's (1.7 and 3.8 MB) do not, and keep glibc's dynamic threshold (fast training steps)."""
    assert not needs_bounded_heap(1682) and not needs_bounded_heap(3706)
    assert needs_bounded_heap(26744) and needs_bounded_heap(59047)
    assert not bound_heap(1682)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_loading_a_large_catalogue_fixes_glibcs_mmap_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed: list[int] = []
    monkeypatch.setattr(memory, "fix_mmap_threshold", lambda: fixed.append(MMAP_THRESHOLD) or True)
    assert memory.bound_heap(26744) and fixed == [MMAP_THRESHOLD]
    assert fix_mmap_threshold(MMAP_THRESHOLD)  # glibc takes the setting


@pytest.fixture
def heap_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What :func:`memory.reusing_heap` asks of glibc, recorded instead of done, on a bounded heap."""
    calls: list[str] = []
    monkeypatch.setattr(memory, "keep_heap", lambda keep: calls.append("keep" if keep else "map") or True)
    monkeypatch.setattr(memory, "release_free_heap", lambda: calls.append("trim") or True)
    monkeypatch.setitem(memory._state, "bounded", True)
    return calls


def test_reusing_heap_keeps_blocks_in_the_heap_trims_every_few_items_and_restores(heap_calls) -> None:
    reuse, mapped = "keep", "map"
    assert list(memory.reusing_heap(range(5), trim_every=2)) == [0, 1, 2, 3, 4]
    assert heap_calls == [reuse, "trim", "trim", mapped, "trim"]
    heap_calls.clear()
    for item in memory.reusing_heap(range(5)):  # a loop left early: the generator is closed at once
        inner = list(memory.reusing_heap(range(3)))  # nested: the outer loop's setting holds
        if item == 1:
            break
    assert inner == [0, 1, 2] and heap_calls == [reuse, "trim", mapped, "trim"]
    heap_calls.clear()
    with pytest.raises(RuntimeError):
        for _ in memory.reusing_heap(range(5)):
            raise RuntimeError("a failing batch")
    assert heap_calls == [reuse, mapped, "trim"] and not memory._state["reusing"]


def test_reusing_heap_does_nothing_where_the_heap_is_not_bounded_or_when_switched_off(
    heap_calls, monkeypatch
) -> None:
    monkeypatch.setenv(memory.REUSE_ENV, "0")  # a machine short of memory: the bounded heap's peak
    assert list(memory.reusing_heap(iter("abc"))) == ["a", "b", "c"] and heap_calls == []
    monkeypatch.delenv(memory.REUSE_ENV)
    monkeypatch.setitem(memory._state, "bounded", False)
    assert list(memory.reusing_heap(iter("abc"))) == ["a", "b", "c"] and heap_calls == []


FAULTS = """
import resource, torch
from mtrec_helpers.core import memory
assert memory.bound_heap(26744)  # a large catalogue: blocks from 1 MB are mapped afresh
def faults(loop):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in loop(range(40)):
        blocks = [torch.ones(64, 26746) for _ in range(4)]  # four 6.8 MB blocks a batch
        del blocks
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(faults(iter), faults(lambda items: memory.reusing_heap(items, trim_every=10)))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_reusing_heap_saves_the_page_faults_of_mapping_every_batch_afresh() -> None:
    """In a fresh process (the setting lasts for the process): 40 batches of four 6.8 MB blocks fault
    in 40 × 4 × 1,672 pages when every block is a new mapping, a small share inside the loop."""
    run = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, check=True)
    mapped, reused = (int(n) for n in run.stdout.split())
    assert mapped > 40 * 4 * 1600 and reused < mapped / 4, (mapped, reused)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_the_heap_benchmark_measures_a_loop_and_writes_its_table() -> None:
    """`make bench-heap`'s worker, two iterations of 06's fusion in a fresh process, and its table."""
    code = (
        "import json; from mtrec_helpers.course import heap_benchmark as h; "
        "h.ITERATIONS['fusion_batch'] = 2; "
        "print(json.dumps(h.measure('fusion_batch', 'reused')))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    measured = json.loads(run.stdout.strip().splitlines()[-1])
    assert measured["iterations"] == 2 and measured["s_per_iteration"] > 0 and measured["minor_faults"] > 0
    assert measured["peak_rss_mb"] > 9 * 256 * 26746 * 4 / 2**20  # the nine members' scores were held
    workloads = {"fusion_batch": {"mapped": measured, "reused": measured}}
    record = {"n_items": 26744, "date": "2026-12-05T00:00:00", "command": "make bench-heap",
              "machine": {"cpu_count": 2}, "workloads": workloads}  # fmt: skip
    table = heap_benchmark.markdown(record)
    assert "| fusion_batch | reused |" in table and f"{measured['s_per_iteration']:.3f}" in table
