"""Gather every model of every finished run into one table (notebook 05_compare).

Runs list their models under `metrics.json["models"]` (see `storylab.metrics.model_record`).
Models are compared only on the same validation set: the corpus spec without the options
that change training data alone (`rows`), so a 1,000-story and a 5,000-story HMM of the
same corpus share a group, while two corpora never do.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from storylab.cache import spec_hash
from storylab.runs import Run, find_runs

TRAINING_ONLY_OPTIONS = ("rows", "n_stories", "n_problems", "n_sequences")
COLUMNS = ["corpus_label", "family", "model", "tokenizer", "vocab_size", "params", "train_tokens", "train_flops",
           "elapsed_s", "peak_rss_mb", "val_bits_per_char", "floor_bits_per_char", "gap_to_floor_bits_per_char",
           "val_nats_per_token", "notebook", "run"]


def validation_key(corpus_spec: dict[str, Any]) -> str:
    """Same key ⇔ same validation text (training-only options are ignored)."""
    return spec_hash({k: v for k, v in corpus_spec.items() if k not in TRAINING_ONLY_OPTIONS}, 8)


def corpus_label(corpus_spec: dict[str, Any]) -> str:
    source = corpus_spec.get("source", "?")
    detail = corpus_spec.get("kind") or corpus_spec.get("name") or corpus_spec.get("path", "")
    return f"{source}{':' + str(detail) if detail else ''} [{validation_key(corpus_spec)}]"


def model_table(runs: list[Run] | None = None) -> pd.DataFrame:
    """One row per model per finished run, sorted by corpus, then bits/char."""
    runs = find_runs(finished_only=True) if runs is None else runs
    rows = []
    for run in runs:
        for record in run.metrics.get("models", []):
            rows.append({**record, "corpus_label": corpus_label(record.get("corpus", {})),
                         "notebook": run.notebook, "run": run.name, "run_folder": str(run.folder)})
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    table = pd.DataFrame(rows)
    ordered = [c for c in COLUMNS if c in table.columns] + [c for c in table.columns if c not in COLUMNS]
    return table[ordered].sort_values(["corpus_label", "val_bits_per_char"]).reset_index(drop=True)
