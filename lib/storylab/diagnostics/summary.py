"""The diagnostics of each model as flat figures, for `metrics.json` and 05_compare's columns.

    model_diagnostics(ledger_table(...), pair_accuracy(scored), break_distance(fuzz_accuracy))
    # {"transformer": {"excess_bits_per_char/pronoun": 0.02, ..., "pair_accuracy/name recall": 0.93,
    #                  "break_inserted_sentences": 16, "break_median_distance_chars": 780}, ...}
"""

from __future__ import annotations

import math

import pandas as pd


def model_diagnostics(ledger: pd.DataFrame | None = None, accuracy: pd.DataFrame | None = None,
                      breaks: pd.DataFrame | None = None) -> dict[str, dict[str, float]]:
    """{model label: {figure name: value}} from `ledger_table`, `pair_accuracy` (grouped by model and
    phenomenon) and `break_distance` (grouped by model alone) outputs; any of them may be left out."""
    figures: dict[str, dict[str, float]] = {}

    def put(model: str, name: str, value) -> None:
        value = float(value)
        figures.setdefault(str(model), {})[name] = None if math.isnan(value) else value

    if ledger is not None:
        for row in ledger.itertuples():
            put(row.model, f"excess_bits_per_char/{row.category}", row.excess_bits_per_char)
    if accuracy is not None:
        if "phenomenon" not in accuracy.columns:
            raise ValueError("accuracy: expected pair_accuracy(..., by=('model', 'phenomenon')) output")
        for row in accuracy.itertuples():
            put(row.model, f"pair_accuracy/{row.phenomenon}", row.accuracy)
    if breaks is not None:
        if "phenomenon" in breaks.columns:
            raise ValueError("breaks: expected break_distance of accuracy grouped by model alone")
        for row in breaks.to_dict("records"):
            for name, value in row.items():
                if name != "model":
                    put(row["model"], name, value)
    return figures
