"""Token windows for training: random windows of a flat token stream, reproducible per step.

Training batches are random windows of a flat token stream (stories each followed by
the end-of-text token), in any integer dtype: a memory-mapped uint16 stream is read only
where windows fall, and only the drawn windows become int64. The windows of step `s`
come from a generator seeded with `(seed, s)`, so a run resumed at any step draws
exactly the batches an unbroken run would, without saving any sampler state. Scoring
lives in `scoring`.
"""

from __future__ import annotations

import numpy as np
import torch

from storylab.memory_maps import value_range


def check_stream(name: str, stream, vocab_size: int, min_len: int) -> np.ndarray:
    """`stream` as a 1-D integer array with ids below `vocab_size` and at least `min_len` tokens.

    Never a copy: a memory-mapped stream (`EncodedSplit.stream()`) stays mapped, and its
    range is checked a chunk at a time without keeping the pages read (`memory_maps`).
    """
    array = stream if isinstance(stream, np.ndarray) else np.asarray(stream)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name}: expected a 1-D array of integer token ids, got shape {array.shape} {array.dtype}")
    if len(array) < min_len:
        raise ValueError(f"{name}: expected at least {min_len} tokens, got {len(array)}")
    low, high = value_range(array) if len(array) else (0, 0)
    if high >= vocab_size or low < 0:
        raise ValueError(f"{name}: token ids must lie in [0, {vocab_size}) (vocab_size), found [{low}, {high}]")
    return array


def train_batch(stream: np.ndarray, n_ctx: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """`batch_size` random windows of `n_ctx + 1` tokens (inputs plus shifted targets) for `step`."""
    rng = np.random.default_rng([seed, step])
    starts = rng.integers(0, len(stream) - n_ctx, size=batch_size)
    windows = np.stack([stream[start : start + n_ctx + 1] for start in starts])
    return torch.from_numpy(windows.astype(np.int64))
