"""Keep the process's memory at what it uses on large catalogues: a fixed threshold for glibc's
large allocations.

Evaluation allocates a (batch × catalogue) score matrix per batch (27 MB at ML-20M's shape) and
frees it. glibc serves blocks that large with ``mmap`` and returns them on ``free`` — until the
first such free, after which its *dynamic* threshold rises to that size and later blocks come from
the heap, where freed space fragments and stays resident. Evaluating all 138,493 users of
synthetic-20m with most-popular grew the process from 1.2 to 5.5 GB that way (and the 02 notebook
to 10.6 GB); with the threshold fixed at 1 MB it stayed at 2.0 GB and ran faster (33.7 vs 39.3 s).

A fixed 1 MB threshold has a price on small catalogues, though: every training step's blocks above
it (activations, a batch's logits) become fresh mappings the kernel must zero, and four BERT4Rec
epochs on ML-100k took 18.6 s (14.0 s of it system time) instead of 10.2 s. So the threshold is
fixed only where a batch of catalogue scores is large (:func:`bound_heap`, called when a dataset is
built or loaded): catalogues from about 8,000 items; smaller ones keep glibc's dynamic threshold.
``mallopt(M_MMAP_THRESHOLD, …)`` fixes the threshold (and turns the dynamic adjustment off) for this
process; it does nothing off glibc.

Mapping every block has a time price at that size too: each new mapping is faulted in and zeroed
page by page, and in notebook 06's test pass at synthetic-20m that system time was as large as
the computing (14 million page faults in 12 batches). So the loops that repeat the same
allocations, batch after batch — evaluation over users, training steps — run inside
:func:`reusing_heap`: while they run, blocks of any size come from the heap and the next batch
reuses them, and every few batches (and at the end) ``malloc_trim`` hands what is free back, so
fragments cannot pile up. 06's test pass ran in about half the time (2.1 → 1.2 s per 256 users), its
resident memory flat.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterable, Iterator
from functools import cache
from typing import TypeVar

T = TypeVar("T")

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
MMAP_THRESHOLD = 1 << 20  # blocks from 1 MB up are mapped and unmapped, never left in the heap
TRIM_THRESHOLD = 128 << 10  # glibc's default: free space this large at the heap's top goes back at once
SCORE_BATCH = 256  # users per evaluation batch (mtrec_helpers.core.evaluation.evaluate's default)
LARGE_SCORE_BLOCK = 8 << 20  # a batch of float32 catalogue scores this large fragments the heap
REUSE_THRESHOLD = 1 << 30  # in :func:`reusing_heap`: blocks up to 1 GB from the heap, kept until a trim
REUSE_ENV = "MTREC_REUSE_HEAP"  # "0": never reuse (the bounded heap's lower peak, at its time cost)
_state = {"bounded": False, "reusing": False}


@cache
def _libc() -> ctypes.CDLL | None:
    """The C library (None where none loads)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _mallopt(parameter: int, value: int) -> bool:
    """glibc's ``mallopt``; True when it took the setting (False on other C libraries)."""
    try:
        return bool(_libc().mallopt(parameter, value))
    except AttributeError:  # no C library, or one without mallopt
        return False


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Set glibc's mmap threshold; True when it was set (False on other C libraries)."""
    return _mallopt(M_MMAP_THRESHOLD, threshold)


def keep_heap(keep: bool) -> bool:
    """``True``: blocks up to 1 GB come from the heap and stay there when freed (until
    :func:`release_free_heap`); ``False``: back to the bounded setting. True when glibc took it."""
    mmap, trim = (REUSE_THRESHOLD, REUSE_THRESHOLD) if keep else (MMAP_THRESHOLD, TRIM_THRESHOLD)
    return _mallopt(M_MMAP_THRESHOLD, mmap) and _mallopt(M_TRIM_THRESHOLD, trim)


def release_free_heap() -> bool:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``); False off glibc."""
    try:
        _libc().malloc_trim(0)
        return True
    except AttributeError:
        return False


def needs_bounded_heap(n_items: int) -> bool:
    """Whether a batch of scores over ``n_items`` items is large enough to fragment the heap."""
    return SCORE_BATCH * (n_items + 2) * 4 >= LARGE_SCORE_BLOCK


def bound_heap(n_items: int) -> bool:
    """Fix the mmap threshold at 1 MB for a catalogue of ``n_items`` items when it needs it (see the
    module docstring); True when it was fixed. The setting lasts for the process."""
    fixed = needs_bounded_heap(n_items) and fix_mmap_threshold()
    _state["bounded"] = _state["bounded"] or fixed
    return fixed


def reusing_heap(items: Iterable[T], trim_every: int = 1) -> Iterator[T]:
    """``items``, one at a time, with freed blocks kept in the heap for the next one and what is free
    handed back every ``trim_every`` items and at the end (see the module docstring). Where the heap
    is not bounded (small catalogues, other C libraries), inside another such loop, or with
    ``MTREC_REUSE_HEAP=0`` in the environment, just ``items``."""
    if not _state["bounded"] or _state["reusing"] or os.environ.get(REUSE_ENV) == "0":
        yield from items
        return
    _state["reusing"] = keep_heap(True)
    try:
        for count, item in enumerate(items, 1):
            yield item
            if count % trim_every == 0:
                release_free_heap()
    finally:
        if _state["reusing"]:
            keep_heap(False)
            _state["reusing"] = False
        release_free_heap()
