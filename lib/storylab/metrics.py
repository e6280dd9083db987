"""Unit conversions between nats/token and bits/char, and metrics.json I/O.

A model's validation cost is the sum over validation stories of −ln p(each token of the
story and the end-of-text token after it). Divided by the number of characters it
becomes bits per character, which does not depend on the tokenizer and sits on the
same axis as the corpus floor.
"""

from __future__ import annotations

import json
import math
import resource
import sys
from pathlib import Path
from typing import Any

from storylab.cache import write_json_atomic
from storylab.paths import run_dir

LN2 = math.log(2)


def bits_per_char(total_nats: float, n_chars: int) -> float:
    return float(total_nats) / LN2 / n_chars


def nats_per_token(total_nats: float, n_tokens: int) -> float:
    return float(total_nats) / n_tokens


def perplexity(total_nats: float, n_tokens: int) -> float:
    return math.exp(nats_per_token(total_nats, n_tokens))


def validation_summary(total_nats: float, n_tokens: int, n_chars: int, floor_bits_per_char: float | None) -> dict[str, Any]:
    """The standard validation figures of a language model, gap to the floor included."""
    val_bits_per_char = bits_per_char(total_nats, n_chars)
    return {
        "val_nats_per_token": nats_per_token(total_nats, n_tokens),
        "val_perplexity": perplexity(total_nats, n_tokens),
        "val_bits_per_char": val_bits_per_char,
        "floor_bits_per_char": floor_bits_per_char,
        "gap_to_floor_bits_per_char": None if floor_bits_per_char is None else val_bits_per_char - floor_bits_per_char,
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def read_metrics(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save_metrics(metrics: dict[str, Any], folder: str | Path | None = None) -> None:
    """Merge `metrics` into `<run folder>/metrics.json`, atomically."""
    folder = Path(folder) if folder is not None else run_dir()
    merged = {**read_metrics(folder), **metrics}
    write_json_atomic(folder / "metrics.json", merged)


MODEL_FAMILIES = ("unigram", "bigram", "neural bigram", "hmm", "transformer")


def model_record(family: str, label: str, *, tokenizer: str, vocab_size: int, corpus: dict[str, Any],
                 params: int, train_tokens: int, train_flops: float, elapsed_s: float,
                 val_total_nats: float, val_tokens: int, val_chars: int, floor_bits_per_char: float | None,
                 **extra: Any) -> dict[str, Any]:
    """One language model's row for 05_compare: what it is, what it cost, how well it does.

    Runs list these under `metrics.json["models"]`; `train_flops` is an estimate of the
    arithmetic spent training (6·params·tokens for a transformer, the EM matmuls for an
    HMM, one pass of counting for n-grams), for a bits/char-vs-compute plot.
    """
    if family not in MODEL_FAMILIES:
        raise ValueError(f"family: expected one of {MODEL_FAMILIES}, got {family!r}")
    return {
        "family": family, "model": label, "tokenizer": tokenizer, "vocab_size": int(vocab_size), "corpus": corpus,
        "params": int(params), "train_tokens": int(train_tokens), "train_flops": float(train_flops),
        "elapsed_s": float(elapsed_s), "peak_rss_mb": peak_rss_mb(),
        **validation_summary(val_total_nats, val_tokens, val_chars, floor_bits_per_char),
        **extra,
    }


def tokenizer_label(spec: str | dict[str, Any], tokenizer: Any = None) -> str:
    """"bpe:512" for {"kind": "bpe", "vocab_size": 512}; "byte" for {"kind": "byte"}.

    Given the trained `tokenizer`, the number is the vocabulary it really has: "bpe:3091" for a
    `bpe:100000000` whose corpus ran out of merges, so a label never claims more than was trained
    (record `tokenizer_label(spec)` beside it for what was asked).
    """
    if tokenizer is not None:
        from storylab.tokenizers import normalize_tokenizer_spec, trained_vocab_size  # heavy: only when needed

        spec = normalize_tokenizer_spec(spec)
        if "vocab_size" in spec:
            spec = {**spec, "vocab_size": trained_vocab_size(spec, tokenizer)}
    if isinstance(spec, str):
        return spec
    return spec["kind"] + (f":{spec['vocab_size']}" if "vocab_size" in spec else "")
