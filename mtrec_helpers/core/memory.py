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
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD = 1 << 20  # blocks from 1 MB up are mapped and unmapped, never left in the heap
SCORE_BATCH = 256  # users per evaluation batch (mtrec_helpers.core.evaluation.evaluate's default)
LARGE_SCORE_BLOCK = 8 << 20  # a batch of float32 catalogue scores this large fragments the heap


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Set glibc's mmap threshold; True when it was set (False on other C libraries)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False


def needs_bounded_heap(n_items: int) -> bool:
    """Whether a batch of scores over ``n_items`` items is large enough to fragment the heap."""
    return SCORE_BATCH * (n_items + 2) * 4 >= LARGE_SCORE_BLOCK


def bound_heap(n_items: int) -> bool:
    """Fix the mmap threshold at 1 MB for a catalogue of ``n_items`` items when it needs it (see the
    module docstring); True when it was fixed. The setting lasts for the process."""
    return needs_bounded_heap(n_items) and fix_mmap_threshold()
