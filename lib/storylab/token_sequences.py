"""Check and normalise the `sequences` and `prefix_ids` arguments every model takes.

A model accepts a list of 1-D token-id arrays (numpy, torch or lists), a 2-D array with
one sequence per row, or an encoded split from `storylab.tokenizers` (anything with
`.sequences(append_eot=True, max_len=None)`). Out-of-range ids are reported before any
compute, naming the sequence and the vocabulary size.

`as_token_sequences` returns a list of arrays. A model that reads its data in batches
(the HMM's EM) takes `as_token_source` instead: a `TokenSequences`, which knows every
sequence's length and hands out the sequences a batch needs (`take`), so a memory-mapped
encoded split (`EncodedSplit.chunks()`, `storylab.split_chunks`) is read a batch at a
time and never held whole.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Protocol, runtime_checkable

import numpy as np
import torch

GROUP_TOKENS = 1 << 20  # tokens per group when a whole source is streamed (hashing, counting): 8 MB as int64


@runtime_checkable
class TokenSequences(Protocol):
    """Sequences of token ids read on demand: `lengths` (n,) int64, and `take(positions)`,
    the int64 arrays of those sequences in that order."""

    lengths: np.ndarray

    def take(self, positions: np.ndarray) -> list[np.ndarray]: ...


class SequenceList:
    """A `TokenSequences` over arrays already in memory (checked by `as_token_sequences`)."""

    def __init__(self, arrays: list[np.ndarray]):
        self.arrays = arrays
        self.lengths = np.fromiter(map(len, arrays), dtype=np.int64, count=len(arrays))

    def take(self, positions) -> list[np.ndarray]:
        return [self.arrays[i] for i in positions]

    def __len__(self) -> int:
        return len(self.arrays)


class Subset:
    """Some sequences of a `TokenSequences`, in the order of `positions` (a process's share of the data)."""

    def __init__(self, source: TokenSequences, positions: np.ndarray):
        self.source, self.positions = source, np.asarray(positions, dtype=np.int64)
        self.lengths = np.asarray(source.lengths)[self.positions]

    def take(self, positions) -> list[np.ndarray]:
        return self.source.take(self.positions[np.asarray(positions, dtype=np.int64)])

    def __len__(self) -> int:
        return len(self.positions)


def sequence_groups(source: TokenSequences, group_tokens: int = GROUP_TOKENS) -> Iterator[list[np.ndarray]]:
    """Every sequence of `source` in order, as lists of about `group_tokens` tokens."""
    ends = np.cumsum(source.lengths)
    first = 0
    while first < len(ends):
        before = ends[first - 1] if first else 0
        last = max(first + 1, int(np.searchsorted(ends, before + group_tokens, side="right")))
        yield source.take(np.arange(first, last))
        first = last


def as_token_source(sequences: Any, vocab_size: int, name: str = "sequences") -> TokenSequences:
    """A checked `TokenSequences`: an encoded split (or its `chunks()` view) stays memory-mapped; anything
    else goes through `as_token_sequences`. Same one-line errors as `as_token_sequences`."""
    if hasattr(sequences, "chunks") and callable(sequences.chunks):  # an EncodedSplit: all its stories, each ending in end-of-text
        sequences = sequences.chunks()
    if hasattr(sequences, "check_ids"):  # a lazy view checks its ids in one streamed pass
        sequences.check_ids(vocab_size, name)
        return sequences
    return SequenceList(as_token_sequences(sequences, vocab_size, name))


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
