"""An encoded split seen as model sequences, lazily: each story and its end-of-text, cut to `max_len`.

    chunks = exp.train.chunks(max_len=256, mode="split")   # reads nothing yet
    len(chunks), chunks.lengths                            # from the story offsets alone
    chunks.take([3, 1])                                    # int64 arrays, read from the memory map
    hmm.fit(chunks)                                        # EM reads it a batch at a time

`EncodedSplit.sequences(...)` is `list(split.chunks(...))`: the same arrays, all in memory at
once. A view holds three int64 numbers per sequence (its story, where it starts, its
length) and the split's memory-mapped ids; `take` gathers the tokens of the sequences
asked for, puts the end-of-text token where a story ends, and releases the map's pages
(`storylab.memory_maps`), so reading a whole corpus batch by batch never makes it resident.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from storylab.memory_maps import release_pages, value_range
from storylab.token_sequences import sequence_groups

MODES = ("split", "truncate")


def check_max_len(max_len, mode: str) -> None:
    if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) or max_len < 1):
        raise ValueError(f"max_len: expected a positive integer or None, got {max_len!r}")
    if mode not in MODES:
        raise ValueError(f"mode: expected 'split' or 'truncate', got {mode!r}")


class SplitChunks:
    """The sequences of an encoded split (a `storylab.token_sequences.TokenSequences`).

    Every story followed by `eot_id` (with `append_eot`); a story longer than `max_len`
    tokens is cut into chunks of `max_len` (`mode="split"`) or keeps only its first
    `max_len` tokens (`"truncate"`).
    """

    def __init__(self, ids: np.ndarray, offsets: np.ndarray, eot_id: int, append_eot: bool = True,
                 max_len: int | None = None, mode: str = "split"):
        check_max_len(max_len, mode)
        self.ids, self.offsets, self.eot_id, self.append_eot = ids, np.asarray(offsets, dtype=np.int64), int(eot_id), bool(append_eot)
        self._story_ids = np.diff(self.offsets)  # tokens of each story before its end-of-text
        story_lengths = self._story_ids + int(self.append_eot)
        if max_len is None or mode == "truncate":
            per_story = np.ones(len(story_lengths), dtype=np.int64)
        else:  # as `seq[j : j + max_len] for j in range(0, len(seq), max_len)`: an empty story has no chunk
            per_story = -(-story_lengths // max_len)
        self.story = np.repeat(np.arange(len(story_lengths), dtype=np.int64), per_story)
        rank = np.arange(len(self.story), dtype=np.int64) - np.repeat(np.cumsum(per_story) - per_story, per_story)
        self.start = rank * (max_len or 0)  # where each sequence starts within its story
        remaining = story_lengths[self.story] - self.start
        self.lengths = remaining if max_len is None else np.minimum(remaining, max_len)
        self._checked_vocab: int | None = None

    def __len__(self) -> int:
        return len(self.lengths)

    def take(self, positions) -> list[np.ndarray]:
        """The sequences at `positions`, in that order, as int64 arrays."""
        positions = np.asarray(positions, dtype=np.int64)
        lengths = self.lengths[positions]
        if not len(positions):
            return []
        total = int(lengths.sum())
        story = np.repeat(self.story[positions], lengths)
        # each token's place within its story: the sequence's start, then 0, 1, 2, ...
        within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths - self.start[positions], lengths)
        flat = np.full(total, self.eot_id, dtype=np.int64)
        is_token = within < self._story_ids[story]  # past the story's ids is its end-of-text
        flat[is_token] = self.ids[self.offsets[story[is_token]] + within[is_token]]
        release_pages(self.ids)
        return np.split(flat, np.cumsum(lengths)[:-1])

    def __iter__(self) -> Iterator[np.ndarray]:
        for group in sequence_groups(self):
            yield from group

    def check_ids(self, vocab_size: int, name: str = "sequences") -> None:
        """One-line ValueErrors, as `as_token_sequences` gives, for an empty sequence or an id outside [0, vocab_size)."""
        if self._checked_vocab is not None and self._checked_vocab <= vocab_size:
            return
        if not len(self):
            raise ValueError(f"{name}: expected at least one sequence, got none")
        empty = np.flatnonzero(self.lengths == 0)
        if empty.size:
            raise ValueError(f"{name}: sequence {int(empty[0])} must be a non-empty 1-D array of token ids, got shape (0,)")
        low, high = value_range(self.ids) if len(self.ids) else (0, 0)
        if self.append_eot:
            low, high = min(low, self.eot_id), max(high, self.eot_id)
        if low < 0 or high >= vocab_size:
            bad = low if low < 0 else high
            raise ValueError(f"{name}: token id {bad} in sequence {self._first_holding(bad)} is outside [0, vocab_size={vocab_size})")
        self._checked_vocab = vocab_size

    def _first_holding(self, token: int) -> int:
        """The first sequence holding `token` (for an error message)."""
        for first in range(0, len(self), 4096):
            for i, seq in enumerate(self.take(np.arange(first, min(first + 4096, len(self))))):
                if (seq == token).any():
                    return first + i
        return 0
