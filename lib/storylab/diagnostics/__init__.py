"""Where models lose their bits: the exact bits ledger against the story generator, minimal
pairs and distance fuzzing, hard cases across models (notebook 06).

- `ledger`: true ledgers from the generator's parse, per-character model costs from any
  `LanguageModel` and tokenizer, tables per category, recalls and their distances
- `pairs`: minimal pairs (generator stories and plain texts), the distance fuzzer, scoring,
  accuracy with Wilson intervals, break distances, BLiMP-layout JSON lines
- `hard_cases`: stories one model wins by most bits, worst positions, offline HTML
- `summary`: each model's diagnostics as flat figures for metrics.json
- `run_models`: the models of finished 02_hmm / 03_transformer runs on one validation set
- `figures`: the notebook's figures (ledger bars, distance curves, pair accuracy, fuzzing)
- `checks`: the value checks of the notebook's parameters (for `runner.notebook_checks.CHECKS`)
"""

from storylab.diagnostics.figures import accuracy_bars, distance_curves, excess_bars, fuzz_curves, ledger_bars
from storylab.diagnostics.hard_cases import (
    hard_case_tables,
    hard_cases_html,
    hard_cases_page,
    hard_stories,
    next_token_tables,
    story_bits,
    story_html,
    worst_positions,
    worst_tokens,
)
from storylab.diagnostics.ledger import (
    CATEGORY_NAMES,
    CharCosts,
    Recall,
    TrueLedger,
    char_costs,
    excess_by_distance,
    ledger_table,
    recall_table,
    spread_token_nats,
    true_ledger,
    true_ledgers,
)
from storylab.diagnostics.pairs import (
    FUZZ_PHENOMENA,
    PHENOMENA,
    break_distance,
    cap_pairs,
    corpus_names,
    fuzz_pairs,
    pair_accuracy,
    pair_prefixes,
    read_pairs_jsonl,
    score_pairs,
    story_pairs,
    text_name_pairs,
    text_nats,
    wilson_interval,
    write_pairs_jsonl,
)
from storylab.diagnostics.run_models import BASELINE_FAMILIES, RunModel, RunModels, models_from_runs, resolve_runs
from storylab.diagnostics.summary import diagnostics_records, headline_metrics, model_diagnostics

__all__ = [
    "BASELINE_FAMILIES", "CATEGORY_NAMES", "CharCosts", "FUZZ_PHENOMENA", "PHENOMENA", "Recall", "RunModel",
    "RunModels", "TrueLedger", "accuracy_bars", "break_distance", "cap_pairs", "char_costs",
    "corpus_names", "diagnostics_records", "distance_curves", "excess_bars",
    "excess_by_distance", "fuzz_curves", "fuzz_pairs", "hard_case_tables", "hard_cases_html", "hard_cases_page", "hard_stories",
    "headline_metrics", "ledger_bars", "ledger_table", "model_diagnostics", "models_from_runs", "next_token_tables",
    "pair_accuracy", "pair_prefixes", "read_pairs_jsonl", "recall_table", "resolve_runs", "score_pairs",
    "spread_token_nats", "story_bits", "story_html", "story_pairs", "text_name_pairs", "text_nats", "true_ledger",
    "true_ledgers", "wilson_interval", "worst_positions", "worst_tokens", "write_pairs_jsonl",
]
