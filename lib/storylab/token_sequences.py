"""Check and normalise the `sequences` and `prefix_ids` arguments every model takes.

A model accepts a list of 1-D token-id arrays (numpy, torch or lists), a 2-D array with
one sequence per row, or an encoded split from `storylab.tokenizers` (anything with
`.sequences(append_eot=True, max_len=None)`). Out-of-range ids are reported before any
compute, naming the sequence and the vocabulary size.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import torch


def as_token_sequences(sequences: Any, vocab_size: int, name: str = "sequences") -> list[np.ndarray]:
    """A list of non-empty 1-D int64 arrays with ids in [0, vocab_size), or a one-line ValueError.

    Accepts a list of arrays/tensors/lists, a 2-D array (one row per sequence), or an
    encoded split (anything with `.sequences(append_eot=True, max_len=None)`).
    """
    if hasattr(sequences, "sequences") and callable(sequences.sequences):
        sequences = sequences.sequences(append_eot=True, max_len=None)
    if isinstance(sequences, torch.Tensor):
        sequences = sequences.detach().cpu().numpy()
    if isinstance(sequences, np.ndarray) and sequences.ndim == 2:
        sequences = list(sequences)
    if isinstance(sequences, (str, bytes)) or not isinstance(sequences, Iterable):
        raise ValueError(f"{name}: expected a list of 1-D token-id arrays or an encoded split, got {type(sequences).__name__}")
    arrays = []
    for i, seq in enumerate(sequences):
        array = seq.detach().cpu().numpy() if isinstance(seq, torch.Tensor) else np.asarray(seq)
        if array.ndim != 1 or array.shape[0] == 0:
            raise ValueError(f"{name}: sequence {i} must be a non-empty 1-D array of token ids, got shape {array.shape}")
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{name}: sequence {i} must hold integer token ids, got dtype {array.dtype}")
        arrays.append(array.astype(np.int64, copy=False))
    if not arrays:
        raise ValueError(f"{name}: expected at least one sequence, got none")
    flat = np.concatenate(arrays)
    if flat.min() < 0 or flat.max() >= vocab_size:
        bad = int(flat.min()) if flat.min() < 0 else int(flat.max())
        which = next(i for i, a in enumerate(arrays) if (a == bad).any())
        raise ValueError(f"{name}: token id {bad} in sequence {which} is outside [0, vocab_size={vocab_size})")
    return arrays


def as_token_prefix(prefix_ids: Any, vocab_size: int, name: str = "prefix_ids") -> np.ndarray:
    """A possibly empty 1-D int64 array of ids in [0, vocab_size), or a one-line ValueError."""
    array = prefix_ids.detach().cpu().numpy() if isinstance(prefix_ids, torch.Tensor) else np.asarray(prefix_ids)
    if isinstance(prefix_ids, (str, bytes)) or array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D list of token ids (encode text with the tokenizer first), got {prefix_ids!r:.60}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    return as_token_sequences([array], vocab_size, name)[0]
