"""The figures of notebook 06, from the diagnostics' tables, drawn through `storylab.plots`.

    ledger_bars(ledger)                          # per model: the true bits, then the excess per category
    excess_bars(ledger)                          # the excess per category, models side by side
    distance_curves(excess_by_distance(...), "tokens", contexts, "pronoun")   # excess at recalls vs distance back
    accuracy_bars(pair_accuracy(scored))         # minimal-pair accuracy per phenomenon, Wilson intervals
    fuzz_curves(pair_accuracy(fuzzed, by=("model", "inserted_sentences")), breaks)

`contexts` marks each model's context window on a distance axis: {label: (always seen,
at most seen)} in the axis's unit, e.g. a transformer scored with sliding windows of
n_ctx tokens moved by `stride` always sees n_ctx − stride tokens back and never more than n_ctx.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from storylab import plots
from storylab.diagnostics.ledger import CATEGORY_NAMES

CHANCE = 0.5


def _categories(ledger: pd.DataFrame) -> list[str]:
    return [c for c in CATEGORY_NAMES if c in set(ledger["category"])]


def ledger_bars(ledger: pd.DataFrame, title: str = "Where each model's bits go") -> go.Figure:
    """One bar per model: the text's true bits per character (the floor), then the model's excess in
    each category stacked on top (negative where it pays less than the truth there); the top of
    the bar is the model's bits per character."""
    models = list(dict.fromkeys(ledger["model"]))
    table = ledger.pivot_table(index="model", columns="category", values="excess_bits_per_char", sort=False, dropna=False)
    true = ledger.groupby("model", sort=False)["true_bits_per_char"].sum()
    series = {"true bits (floor)": true.loc[models].to_numpy()}
    series.update({f"excess: {c}": table.loc[models, c].to_numpy() for c in _categories(ledger)})
    return plots.bars(series, models, mode="relative", title=title, yaxis_title="bits per character of text")


def excess_bars(ledger: pd.DataFrame, per_category_char: bool = False) -> go.Figure:
    """The excess bits per category, one bar per model side by side: per character of the text (the
    bars of a model sum to its gap to the floor), or per character of that category."""
    column = "excess_bits_per_category_char" if per_category_char else "excess_bits_per_char"
    categories = _categories(ledger)
    table = ledger.pivot_table(index="category", columns="model", values=column, sort=False, dropna=False)
    series = {model: table.loc[categories, model].to_numpy() for model in dict.fromkeys(ledger["model"])}
    unit = "character of the category" if per_category_char else "character of text"
    return plots.bars(series, categories, title=f"Excess bits per category (model − true), per {unit}",
                      yaxis_title=f"excess bits per {unit}")


def _mark_contexts(fig: go.Figure, contexts: dict[str, tuple[float, float]] | None) -> go.Figure:
    for label, (always, at_most) in (contexts or {}).items():
        plots.vline(fig, at_most, f"{label}: context")
        if always and always != at_most:
            plots.vline(fig, always, f"{label}: context always seen", dash="dash")
    return fig


def distance_curves(binned: pd.DataFrame, unit: str, contexts: dict[str, tuple[float, float]] | None = None,
                    category: str | None = None) -> go.Figure:
    """Mean excess bits per recall against the distance back to its binding (bins doubling in width,
    each point at its bin's upper edge), one line per model, with each model's context marked.
    `binned` is `excess_by_distance` output; with `category`, only that recall category's rows (one
    figure per category: names cost far more than pronouns, so pooling them mixes what is recalled
    with how far back)."""
    if category is not None:
        if "category" not in binned.columns or category not in set(binned["category"]):
            raise ValueError(f"category: expected one of the table's categories, got {category!r}")
        binned = binned[binned["category"] == category]
    elif "category" in binned.columns and binned["category"].nunique() > 1:
        raise ValueError("binned: several categories; pick one (category=...) or pool them (by=('model',))")
    models = list(dict.fromkeys(binned["model"]))
    rows = {m: binned[binned["model"] == m].sort_values("distance_to") for m in models}
    sem = {m: (r["mean_excess_bits"] - r["sem"].fillna(0), r["mean_excess_bits"] + r["sem"].fillna(0)) for m, r in rows.items()}
    fig = plots.line({m: r["mean_excess_bits"] for m, r in rows.items()}, x={m: r["distance_to"] for m, r in rows.items()},
                     errors=sem, markers=True, log_x=True,
                     title=f"Excess bits at {'a recall' if category is None else category} vs the distance back to "
                           f"its binding ({unit})",
                     xaxis_title=f"distance back ({unit}, upper edge of a doubling bin)",
                     yaxis_title="mean excess bits per recall (± s.e.)")
    return _mark_contexts(fig, contexts)


def accuracy_bars(accuracy: pd.DataFrame, title: str = "Minimal pairs: accuracy per phenomenon (95% Wilson intervals)") -> go.Figure:
    """Accuracy per phenomenon, models side by side, with their intervals; chance is the dashed line."""
    phenomena = list(dict.fromkeys(accuracy["phenomenon"]))
    series, errors = {}, {}
    for model, rows in accuracy.groupby("model", sort=False):
        rows = rows.set_index("phenomenon").reindex(phenomena)
        series[model] = rows["accuracy"].to_numpy()
        errors[model] = (rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy())
    fig = plots.bars(series, phenomena, errors=errors, title=title, yaxis_title="share of pairs preferring the original",
                     yaxis_range=[0, 1.05])
    return plots.hline(fig, CHANCE, "chance")


def fuzz_curves(accuracy: pd.DataFrame, breaks: pd.DataFrame | None = None, x: str = "inserted_sentences",
                contexts: dict[str, tuple[float, float]] | None = None) -> go.Figure:
    """Accuracy against distance (`x`: "inserted_sentences" or "median_distance_chars"), one line per
    model with its intervals, chance dashed; with `breaks`, each model's break marked on its line."""
    if x not in ("inserted_sentences", "median_distance_chars"):
        raise ValueError(f"x: expected 'inserted_sentences' or 'median_distance_chars', got {x!r}")
    rows = {m: r.sort_values(x) for m, r in accuracy.groupby("model", sort=False)}
    chars = x == "median_distance_chars"
    fig = plots.line({m: r["accuracy"] for m, r in rows.items()}, x={m: r[x] for m, r in rows.items()},
                     errors={m: (r["ci_low"], r["ci_high"]) for m, r in rows.items()}, markers=True, log_x=chars,
                     title="Distance fuzzing: accuracy as filler sentences move the binding away",
                     xaxis_title="median distance from binding to recall (characters)" if chars else "filler sentences inserted",
                     yaxis_title="accuracy (95% Wilson interval)", yaxis_range=[0, 1.05])
    plots.hline(fig, CHANCE, "chance")
    if breaks is not None and len(breaks):
        column = "break_median_distance_chars" if chars else "break_inserted_sentences"
        hit = breaks.dropna(subset=[column])
        at = [rows[m].set_index(x)["accuracy"].get(v, np.nan) for m, v in zip(hit["model"], hit[column])]
        fig.add_trace(go.Scatter(x=hit[column], y=at, mode="markers", name="break (at chance)",
                                 marker={"symbol": "x", "size": 14, "color": "black"}, text=hit["model"]))
    return _mark_contexts(fig, contexts) if chars else fig
