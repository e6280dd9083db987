"""Read memory-mapped arrays without their pages piling up in this process's resident memory.

A page of a memory-mapped file stays mapped into the process once it has been read, and
counts in its resident memory (RSS) until the kernel needs the room back. A pass over a
1 GB encoded corpus would so end with 1 GB more RSS, although nothing holds the data.
`release_pages(array)` tells the kernel this process is done with the pages it read
(`madvise(MADV_DONTNEED)` on the read-only map: the data stays in the page cache, and the
next read maps it again at the cost of a minor fault), so a pass peaks at what one batch
touched. `value_range` finds the smallest and largest value of a long array that way.

Only read-only maps (`np.load(..., mmap_mode="r")`) are released; anything else (an array
in memory, a copy-on-write map whose changes would be lost) is left alone.
"""

from __future__ import annotations

import mmap

import numpy as np

RANGE_CHUNK = 1 << 20  # values read at a time by `value_range`: 2 MB of uint16


def read_only_map(array) -> mmap.mmap | None:
    """The read-only file map behind `array` (through views and `np.asarray`), or None."""
    while array is not None:
        if isinstance(array, np.memmap) and array.mode == "r" and isinstance(array.base, mmap.mmap):
            return array.base
        array = getattr(array, "base", None)
    return None


def release_pages(array) -> None:
    """Drop the pages of `array`'s read-only file map from this process's resident memory (see the module docstring)."""
    mapped = read_only_map(array)
    if mapped is not None and hasattr(mmap, "MADV_DONTNEED"):  # Linux and macOS; elsewhere the kernel decides
        mapped.madvise(mmap.MADV_DONTNEED)


def value_range(array: np.ndarray) -> tuple[int, int]:
    """`(min, max)` of a non-empty 1-D integer array, read a chunk at a time (releasing a map's pages)."""
    low, high = None, None
    for first in range(0, len(array), RANGE_CHUNK):
        chunk = array[first : first + RANGE_CHUNK]
        chunk_low, chunk_high = int(chunk.min()), int(chunk.max())
        low = chunk_low if low is None else min(low, chunk_low)
        high = chunk_high if high is None else max(high, chunk_high)
        release_pages(array)
    return low, high
