"""Notebook 04's results as plain numbers for metrics.json, which 05_compare and the dashboard read."""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd


def interp_summary(lens: pd.DataFrame, scores: pd.DataFrame, repeated: dict[str, Any], circuits: pd.DataFrame,
                   pcas: Sequence[Any], belief_table: pd.DataFrame | None = None,
                   story_table: pd.DataFrame | None = None, state_table: pd.DataFrame | None = None) -> dict[str, Any]:
    """Head scores, circuit and residual figures, and each probe's best layer when it was run."""
    summary: dict[str, Any] = {
        "logit_lens_loss_nats": lens["loss_nats"].tolist(),
        "prev_token_score_max": float(scores["prev_token_score"].max()),
        "first_token_score_max": float(scores["first_token_score"].max()),
        "induction_score_max": float(scores["induction_score"].max()),
        "repeated_loss_first_half_nats": float(repeated["first_half"]),
        "repeated_loss_second_half_nats": float(repeated["second_half"]),
        "ov_copying_score_max": float(circuits["ov_copying_score"].max()),
        "residual_top2_variance": [float(p.explained_variance_ratio[:2].sum()) for p in pcas],
    }
    if belief_table is not None:
        summary.update(belief_probe_r2=belief_table["r2"].tolist(), belief_probe_r2_shuffled=belief_table["r2_shuffled"].tolist(),
                       belief_probe_r2_best=float(belief_table["r2"].max()))
    if story_table is not None and len(story_table):
        best = story_table.loc[story_table.groupby("variable")["accuracy"].idxmax()]
        summary["story_probe_accuracy"] = {
            row.variable: {"accuracy": float(row.accuracy), "layer": row.label, "majority": float(row.majority_baseline),
                           "shuffled": float(row.shuffled_accuracy)} for row in best.itertuples()}
    if state_table is not None:
        summary.update(hmm_state_probe_accuracy=state_table["accuracy"].tolist(),
                       hmm_state_majority_baseline=float(state_table["majority_baseline"].iloc[0]))
    return summary
