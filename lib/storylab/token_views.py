"""What notebook 01 shows of its tokenizers: a summary table, rank–frequency curves, story lengths.

    described = {label: describe_tokenizer(tok, val_texts) for label, tok in tokenizers.items()}
    tokenizer_summary(described)                         # one column per tokenizer
    rank_curves(tokenizers, corpus.iter_texts("train"))   # {label: (rescaled ranks, counts)}, streamed
"""

from __future__ import annotations

from itertools import islice
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from storylab.tokenizers import encode_texts, token_frequencies


def tokenizer_summary(described: Mapping[str, dict[str, Any]]) -> pd.DataFrame:
    """`describe_tokenizer` results side by side: one column per tokenizer, one row per figure."""
    return pd.DataFrame({
        label: {
            "vocab_size (len)": d["vocab_size"],
            "validation tokens": d["tokens"],
            "chars per token": round(d["chars_per_token"], 3),
            "coverage (non-<unk>)": round(d["coverage"], 4),
            "encoding tokens/s": round(d["encode_tokens_per_s"]),
            **{f"tokens/story {k}": v for k, v in d["tokens_per_story"].items()},
        }
        for label, d in described.items()
    })


def rank_curves(tokenizers: Mapping[str, Any], texts: Iterable[str],
                batch_size: int = 2048) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Token counts by rank (most frequent first, unused tokens left out), ranks rescaled by
    `largest vocabulary / this vocabulary` so tokenizers of different sizes share one x-axis.

    `texts` is read once, `batch_size` stories at a time (a whole training split need not fit in memory)."""
    largest = max(len(tok) for tok in tokenizers.values())
    totals = {label: np.zeros(len(tok), dtype=np.int64) for label, tok in tokenizers.items()}
    texts = iter(texts)
    while batch := list(islice(texts, batch_size)):
        for label, tok in tokenizers.items():
            totals[label] += token_frequencies(tok, batch)
    curves = {}
    for label, tok in tokenizers.items():
        counts = np.sort(totals[label])[::-1]
        counts = counts[counts > 0]
        curves[label] = (np.arange(len(counts)) * largest / len(tok), counts)
    return curves


def story_lengths(tokenizers: Mapping[str, Any], texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Tokens per story under each tokenizer."""
    return {label: np.array([len(ids) for ids in encode_texts(tok, list(texts))]) for label, tok in tokenizers.items()}
