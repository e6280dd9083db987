"""Turn the text a researcher types (prompts, candidates) into token ids, loudly.

A tokenizer silently maps what it does not know to `<unk>`: an English prompt on the
3-symbol mess3 character tokenizer becomes a row of `<unk>` tokens and every number
computed from it is meaningless. `encode_prompt` encodes without special tokens (the
models put the end-of-text context in themselves) and warns in one line, naming the
characters or words that became `<unk>`.
"""

from __future__ import annotations

import warnings


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
