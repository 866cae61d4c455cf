"""Keep the process's memory at what it uses: a fixed threshold for glibc's large allocations.

Evaluation allocates a (batch × catalogue) score matrix per batch (27 MB at ML-20M's shape) and
frees it. glibc serves blocks that large with ``mmap`` and returns them on ``free`` — until the
first such free, after which its *dynamic* threshold rises to that size and later blocks come from
the heap, where freed space fragments and stays resident. Evaluating all 138,493 users of
synthetic-20m with most-popular grew the process from 1.2 to 5.5 GB that way (and the 02 notebook
to 10.6 GB); with the threshold fixed at 1 MB it stayed at 2.0 GB and ran faster (33.7 vs 39.3 s).
``mallopt(M_MMAP_THRESHOLD, …)`` fixes the threshold (and turns the dynamic adjustment off) for
this process; it is called once when ``mtrec_helpers`` is imported, and does nothing off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD = 1 << 20  # blocks from 1 MB up are mapped and unmapped, never left in the heap


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Set glibc's mmap threshold; True when it was set (False on other C libraries)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False
