"""Turn the text a researcher types (prompts, candidates) into token ids, loudly.

A tokenizer silently maps what it does not know to `<unk>`: an English prompt on the
3-symbol mess3 character tokenizer becomes a row of `<unk>` tokens and every number
computed from it is meaningless. `encode_prompt` encodes without special tokens (the
models put the end-of-text context in themselves) and warns in one line, naming the
characters or words that became `<unk>`. `encode_candidates` does the same for a list of
candidate continuations (or fillers of a mask), with the checks every candidate list needs.
"""

from __future__ import annotations

import warnings
from typing import Iterable

import numpy as np

from storylab.checks import check_int


class UnknownTokenWarning(UserWarning):
    """Text held characters (or words) the tokenizer has no token for."""


def encode_prompt(tokenizer, text: str, name: str = "prompt") -> list[int]:
    """Token ids of `text` (no special tokens), warning when some of it became `<unk>`."""
    if not isinstance(text, str):
        raise ValueError(f"{name}: expected a string, got {type(text).__name__}")
    encoding = tokenizer.backend_tokenizer.encode(text, add_special_tokens=False)
    ids = list(encoding.ids)
    unk_id = tokenizer.unk_token_id
    if unk_id is not None and unk_id in ids:
        pieces = [text[start:end] for token, (start, end) in zip(ids, encoding.offsets) if token == unk_id]
        unknown = list(dict.fromkeys(pieces))  # first-seen order, no repeats
        shown = ", ".join(repr(p) for p in unknown[:12]) + (f" and {len(unknown) - 12} more" if len(unknown) > 12 else "")
        warnings.warn(
            f"{name}: the tokenizer has no token for {shown}: {len(pieces)} of {len(ids)} "
            f"tokens became {tokenizer.unk_token!r}", UnknownTokenWarning, stacklevel=2)
    return ids


def encode_candidates(tokenizer, candidates: Iterable, allow_ids: bool = False) -> tuple[list, list[list[int]]]:
    """`(candidates as a list, the token ids of each)`: non-empty strings, encoded by `encode_prompt`
    (so `<unk>` warns), or with `allow_ids` also token ids (one token each); none listed twice, and
    no two encoding to the same tokens (which would make their probabilities one number shared)."""
    candidates = list(candidates)
    if not candidates:
        raise ValueError("candidates: expected at least one candidate, got none")
    is_id = [allow_ids and isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in candidates]
    bad = [c for c, token in zip(candidates, is_id) if not token and not (isinstance(c, str) and c)]
    if bad:
        raise ValueError(f"candidates: expected non-empty strings{' or token ids' if allow_ids else ''}, got {bad[0]!r}")
    if len(set(candidates)) != len(candidates):
        raise ValueError(f"candidates: a candidate is listed twice in {candidates}")
    encoded = [[check_int("candidates", c, below=len(tokenizer))] if token else encode_prompt(tokenizer, c, name="candidates")
               for c, token in zip(candidates, is_id)]
    if not all(encoded):
        raise ValueError(f"candidates: {candidates[[len(ids) for ids in encoded].index(0)]!r} encodes to no tokens")
    if len({tuple(ids) for ids in encoded}) != len(candidates):
        raise ValueError(f"candidates: two candidates encode to the same tokens (unknown characters?): {candidates}")
    return candidates, encoded
