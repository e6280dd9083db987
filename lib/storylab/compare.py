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
from storylab.corpora.options import canonical_hmm_spec
from storylab.runs import Run, find_runs

TRAINING_ONLY_OPTIONS = ("rows", "n_stories", "n_problems", "n_sequences")
COLUMNS = ["corpus_label", "family", "model", "tokenizer", "vocab_size", "params", "train_tokens", "train_flops",
           "elapsed_s", "peak_rss_mb", "val_bits_per_char", "floor_bits_per_char", "gap_to_floor_bits_per_char",
           "val_nats_per_token", "notebook", "run", "run_id", "run_folder"]


def validation_key(corpus_spec: dict[str, Any]) -> str:
    """Same key ⇔ same validation text (training-only options are ignored)."""
    spec = canonical_hmm_spec(corpus_spec)  # a spec recorded with every hmm kind's defaults is the same set
    return spec_hash({k: v for k, v in spec.items() if k not in TRAINING_ONLY_OPTIONS}, 8)


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


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    """The rows with a bits/char (a model whose validation text held `<unk>` has none: see its note)."""
    return table[table["val_bits_per_char"].notna()] if len(table) else table


def best_per_family(group: pd.DataFrame, families: tuple[str, ...]) -> dict[str, float]:
    """{"<model> (<run_id>)": bits/char} of the best model of each family in one validation set."""
    lines = {}
    for family in families:
        of_family = comparable(group[group["family"] == family])
        if len(of_family):
            best = of_family.sort_values("val_bits_per_char").iloc[0]
            lines[f"{best['model']} ({best['run_id']})"] = float(best["val_bits_per_char"])
    return lines


def hmm_state_curves(table: pd.DataFrame) -> dict[str, dict[str, pd.DataFrame]]:
    """{validation set: {"<tokenizer>, <N> training tokens": HMM rows sorted by n_states}}.

    An HMM's bits/char against its number of states is one line per tokenizer AND training
    size: runs with more training data are another experiment, not another point of this one.
    """
    if "n_states" not in table.columns:
        return {}
    hmms = comparable(table[table["family"] == "hmm"])
    curves: dict[str, dict[str, pd.DataFrame]] = {}
    for label, group in hmms.groupby("corpus_label"):
        curves[label] = {f"{tok}, {int(tokens):,} training tokens": rows.sort_values("n_states")
                         for (tok, tokens), rows in group.groupby(["tokenizer", "train_tokens"])}
    return curves


LEARNABILITY_COLUMNS = ["corpus_kind", "emission", "epsilon", "length", "mixing_time_steps", "family", "model",
                        "n_layers", "gap_to_floor_bits_per_char", "belief_kl_bits_per_symbol", "train_tokens", "run_id"]


def learnability_table(table: pd.DataFrame) -> pd.DataFrame:
    """The models trained on sequences of known HMMs (the `hmm` corpus), with the process's kind,
    mixing and sequence length beside each model's gap to the floor and belief-state KL."""
    if not len(table):
        return pd.DataFrame(columns=LEARNABILITY_COLUMNS)
    on_hmm = table[table["corpus"].map(lambda spec: isinstance(spec, dict) and spec.get("source") == "hmm")].copy()
    for column, key in (("corpus_kind", "kind"), ("emission", "emission"), ("epsilon", "epsilon"), ("length", "length")):
        on_hmm[column] = on_hmm["corpus"].map(lambda spec, key=key: canonical_hmm_spec(spec).get(key))
    for column in LEARNABILITY_COLUMNS:
        if column not in on_hmm.columns:
            on_hmm[column] = None
    return on_hmm[LEARNABILITY_COLUMNS].reset_index(drop=True)


DIAGNOSTIC_COLUMNS = ["excess_bits_per_char", "recall_excess_bits_per_recall_char", "pair_accuracy",
                      "break_inserted_sentences", "break_median_distance_chars"]


def diagnostics_table(table: pd.DataFrame, runs: list[Run] | None = None) -> pd.DataFrame:
    """The model table joined with what 06_diagnostics measured of each model (its latest 06 run):
    excess bits per character per category, minimal-pair accuracy per phenomenon, break distances."""
    runs = find_runs("06", finished_only=True) if runs is None else runs
    measured = [pd.DataFrame(r.metrics["diagnostics"]) for r in runs if r.metrics.get("diagnostics")]
    if not measured or not len(table):
        return pd.DataFrame()
    latest = pd.concat(measured).drop_duplicates(["run_id", "model"], keep="last")
    figures = [c for c in latest.columns if c.split("/")[0] in DIAGNOSTIC_COLUMNS]
    joined = table.merge(latest[["run_id", "model", *figures]], on=["run_id", "model"], how="inner")
    return joined[["corpus_label", "model", "val_bits_per_char", *figures, "run_id"]]
