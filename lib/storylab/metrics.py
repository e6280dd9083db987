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


def validation_summary(total_nats: float, n_tokens: int, n_chars: int, floor_bits_per_char: float | None,
                       n_unk: int = 0) -> dict[str, Any]:
    """The standard validation figures of a language model, gap to the floor included.

    With `n_unk` > 0 `<unk>` tokens in the scored text, bits/char is None and
    `val_bits_per_char_note` says why: one `<unk>` stands for a whole unknown word (or
    character), so the model is charged one token's surprise for what the others pay
    character by character, and its bits/char would look better than it is. Nats per
    token stay, for comparisons under the same tokenizer.
    """
    comparable = n_unk == 0
    val_bits_per_char = bits_per_char(total_nats, n_chars) if comparable else None
    note = None
    if not comparable:
        note = (f"not comparable: {n_unk} of {n_tokens} validation tokens ({n_unk / n_tokens:.2%}) are <unk>, "
                "each standing for text the tokenizer cannot spell")
    return {
        "val_nats_per_token": nats_per_token(total_nats, n_tokens),
        "val_perplexity": perplexity(total_nats, n_tokens),
        "val_bits_per_char": val_bits_per_char,
        "floor_bits_per_char": floor_bits_per_char,
        "gap_to_floor_bits_per_char": None if floor_bits_per_char is None or val_bits_per_char is None
        else val_bits_per_char - floor_bits_per_char,
        "val_unk_rate": n_unk / n_tokens,
        "val_bits_per_char_note": note,
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


# every family storylab.lm.LanguageModel knows (`model.family`); lm re-exports it as FAMILIES
MODEL_FAMILIES = ("unigram", "bigram", "neural bigram", "kneser-ney", "hmm", "transformer", "rnn")


def model_record(model, score, *, tokenizer: str, corpus: dict[str, Any], elapsed_s: float, **extra: Any) -> dict[str, Any]:
    """One language model's row for 05_compare: what it is, what it cost, how well it does.

    `model` is a fitted `storylab.lm.LanguageModel` (family, label, vocabulary, parameter
    count, training tokens and FLOPs are read from it) and `score` its `storylab.lm.Score`
    on the validation split. Runs list these under `metrics.json["models"]`; `train_flops`
    is the family's estimate of the arithmetic spent training, for a bits/char-vs-compute plot.
    """
    if model.family not in MODEL_FAMILIES:
        raise ValueError(f"model.family: expected one of {MODEL_FAMILIES}, got {model.family!r}")
    return {
        "family": model.family, "model": model.label, "tokenizer": tokenizer, "vocab_size": int(model.vocab_size),
        "corpus": corpus, "params": int(model.n_params), "train_tokens": int(model.train_tokens),
        "train_flops": float(model.train_flops), "elapsed_s": float(elapsed_s), "peak_rss_mb": peak_rss_mb(),
        **score.to_metrics(),
        **extra,
    }
