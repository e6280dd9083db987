"""Gather every model of every run with results into one table (notebook 05_compare).

Runs list their models under `metrics.json["models"]` (see `storylab.metrics.model_record`).
Runs with results are finished runs and notebooks run by hand that saved metrics
(`outputs/interactive/<notebook>/`). A run is identified by `run_id`, its folder relative
to `outputs/` (`runs/02_hmm/main`): `run`, the run's name, is not unique (every notebook
of the main job has a run named `main`). Count runs with `table["run_id"].nunique()`.
Run folders that cannot be read are left out with a warning naming each and why, and
listed in `table.attrs["unreadable"]` ({run_id: reason}).

Models are compared only on the same validation set: the corpus spec without the options
that change training data alone (`rows`), so a 1,000-story and a 5,000-story HMM of the
same corpus share a group, while two corpora never do.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd

from storylab.cache import spec_hash
from storylab.runs import Run, find_runs

TRAINING_ONLY_OPTIONS = ("rows", "n_stories", "n_problems", "n_sequences")
COLUMNS = ["corpus_label", "family", "model", "tokenizer", "vocab_size", "params", "train_tokens", "train_flops",
           "elapsed_s", "peak_rss_mb", "val_bits_per_char", "floor_bits_per_char", "gap_to_floor_bits_per_char",
           "val_nats_per_token", "notebook", "run", "run_id", "run_folder"]


def validation_key(corpus_spec: dict[str, Any]) -> str:
    """Same key ⇔ same validation text (training-only options are ignored)."""
    return spec_hash({k: v for k, v in corpus_spec.items() if k not in TRAINING_ONLY_OPTIONS}, 8)


def corpus_label(corpus_spec: dict[str, Any]) -> str:
    source = corpus_spec.get("source", "?")
    detail = corpus_spec.get("kind") or corpus_spec.get("name") or corpus_spec.get("path", "")
    return f"{source}{':' + str(detail) if detail else ''} [{validation_key(corpus_spec)}]"


def model_table(runs: list[Run] | None = None) -> pd.DataFrame:
    """One row per model per run with results, sorted by corpus, then bits/char.

    Columns: the model record's fields (see `storylab.metrics.model_record`), `corpus_label`
    (the validation set: models are comparable only within one), `notebook`, `run` (the
    run's name), `run_id` (unique: `runs/<notebook>/<name>` or `interactive/<notebook>`)
    and `run_folder` (absolute path)."""
    runs = find_runs() if runs is None else runs
    unreadable = {run.run_id: run.problem for run in runs if run.problem}
    for run_id, problem in unreadable.items():
        warnings.warn(f"run {run_id} left out: {problem}", stacklevel=2)
    rows = []
    for run in (r for r in runs if r.has_results):
        for record in run.metrics.get("models", []):
            rows.append({**record, "corpus_label": corpus_label(record.get("corpus", {})),
                         "notebook": run.notebook, "run": run.name, "run_id": run.run_id,
                         "run_folder": str(run.folder)})
    table = pd.DataFrame(rows, columns=None if rows else COLUMNS)
    if rows:
        ordered = [c for c in COLUMNS if c in table.columns] + [c for c in table.columns if c not in COLUMNS]
        table = table[ordered].sort_values(["corpus_label", "val_bits_per_char"]).reset_index(drop=True)
    table.attrs["unreadable"] = unreadable
    return table
