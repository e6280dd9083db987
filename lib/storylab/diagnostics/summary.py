"""The diagnostics of each model as flat figures, for `metrics.json` and 05_compare's columns.

    figures = model_diagnostics(ledger_table(...), pair_accuracy(scored), [break_distance(overall), break_distance(per_phenomenon)])
    # {"transformer": {"excess_bits_per_char/pronoun": 0.02, ..., "pair_accuracy/name recall": 0.93,
    #                  "break_inserted_sentences": 16, "break_median_distance_chars": 780}, ...}
    diagnostics_records(found.models, figures)   # one record per model: run_id + model + figures
    headline_metrics(records)                    # {"pair_accuracy/HMM K=100": 0.61, ...}: flat, for sweep summaries

Figure names (a NaN, e.g. a model that never breaks within the distances tried, is None):
- `excess_bits_per_char/<category>`: model − true bits in that category per character of text;
  `excess_bits_per_char` their sum (the model's gap to the floor on these texts) and
  `model_bits_per_char`, `true_bits_per_char` the totals
- `recall_excess_bits_per_recall_char`: excess bits on characters printed from an earlier
  binding (names recalled, pronouns, details recalled) per such character: what a model
  without that memory pays where a perfect one pays nothing
- `pair_accuracy/<phenomenon>` and `pair_accuracy` (all pairs)
- `break_inserted_sentences`, `break_median_distance_chars` (all fuzzed phenomena pooled), and
  the same with `/<phenomenon>` per phenomenon
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from storylab.corpora.story_categories import RECALL_CATEGORIES


def model_diagnostics(ledger: pd.DataFrame | None = None, accuracy: pd.DataFrame | None = None,
                      breaks: pd.DataFrame | Sequence[pd.DataFrame] | None = None) -> dict[str, dict[str, float]]:
    """{model label: {figure name: value}} from `ledger_table`, `pair_accuracy` (grouped by model and
    phenomenon) and `break_distance` outputs (grouped by model, or by model and phenomenon; one
    table or a list); any of them may be left out."""
    figures: dict[str, dict[str, float]] = {}

    def put(model: str, name: str, value) -> None:
        value = float(value)
        figures.setdefault(str(model), {})[name] = None if math.isnan(value) else value

    if ledger is not None:
        for row in ledger.itertuples():
            put(row.model, f"excess_bits_per_char/{row.category}", row.excess_bits_per_char)
        for model, rows in ledger.groupby("model", sort=False):
            for total in ("excess_bits_per_char", "model_bits_per_char", "true_bits_per_char"):
                put(model, total, rows[total].sum())
            recalls = rows[rows["category"].isin(RECALL_CATEGORIES)]
            n_chars = recalls["n_chars"].sum()
            put(model, "recall_excess_bits_per_recall_char", recalls["excess_bits"].sum() / n_chars if n_chars else math.nan)
    if accuracy is not None:
        if "phenomenon" not in accuracy.columns:
            raise ValueError("accuracy: expected pair_accuracy(..., by=('model', 'phenomenon')) output")
        for row in accuracy.itertuples():
            put(row.model, f"pair_accuracy/{row.phenomenon}", row.accuracy)
        for model, rows in accuracy.groupby("model", sort=False):
            put(model, "pair_accuracy", rows["n_correct"].sum() / rows["n"].sum())
    for table in ([breaks] if isinstance(breaks, pd.DataFrame) else list(breaks or [])):
        by_phenomenon = "phenomenon" in table.columns
        for row in table.to_dict("records"):
            for name, value in row.items():
                if name not in ("model", "phenomenon"):
                    put(row["model"], f"{name}/{row['phenomenon']}" if by_phenomenon else name, value)
    return figures


def diagnostics_records(models, figures: dict[str, dict[str, float]]) -> list[dict]:
    """One record per model (`diagnostics.RunModel`s) for `metrics.json["diagnostics"]`: the run it
    comes from and its name there (`run_id`, `model`: 05_compare's keys), then its figures."""
    return [{"model": m.recorded_as, "run_id": m.run_id, "label": m.label, "family": m.family,
             "tokenizer": m.tokenizer_name, **figures.get(m.label, {})} for m in models]


HEADLINE = ("recall_excess_bits_per_recall_char", "pair_accuracy", "break_inserted_sentences", "break_median_distance_chars")


def headline_metrics(records: Sequence[dict], names: Sequence[str] = HEADLINE) -> dict[str, float | None]:
    """A few figures per model as flat top-level numbers, `<figure>/<model label>`: what a sweep's
    summary table and plots read from metrics.json (they read top-level numbers only)."""
    return {f"{name}/{record['label']}": record.get(name) for name in names for record in records if name in record}
