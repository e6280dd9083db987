"""Where models lose their bits: the exact bits ledger against the story generator, minimal
pairs and distance fuzzing, hard cases across models (notebook 06).

- `ledger`: true ledgers from the generator's parse, per-character model costs from any
  `LanguageModel` and tokenizer, tables per category, recalls and their distances
- `pairs`: minimal pairs (generator stories and plain texts), the distance fuzzer, scoring,
  accuracy with Wilson intervals, break distances, BLiMP-layout JSON lines
- `hard_cases`: stories one model wins by most bits, worst positions, offline HTML
- `summary`: each model's diagnostics as flat figures for metrics.json
"""

from storylab.diagnostics.hard_cases import (
    hard_cases_html,
    hard_stories,
    next_token_tables,
    story_bits,
    story_html,
    worst_positions,
)
from storylab.diagnostics.ledger import (
    CATEGORY_NAMES,
    CharCosts,
    Recall,
    TrueLedger,
    char_costs,
    encode_with_offsets,
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
    corpus_names,
    fuzz_pairs,
    pair_accuracy,
    read_pairs_jsonl,
    score_pairs,
    story_pairs,
    text_name_pairs,
    text_nats,
    wilson_interval,
    write_pairs_jsonl,
)
from storylab.diagnostics.summary import model_diagnostics

__all__ = [
    "CATEGORY_NAMES", "CharCosts", "FUZZ_PHENOMENA", "PHENOMENA", "Recall", "TrueLedger", "break_distance", "char_costs",
    "corpus_names", "encode_with_offsets", "excess_by_distance", "fuzz_pairs", "hard_cases_html", "hard_stories",
    "ledger_table", "model_diagnostics", "next_token_tables", "pair_accuracy", "read_pairs_jsonl", "recall_table",
    "score_pairs", "spread_token_nats", "story_bits", "story_html", "story_pairs", "text_name_pairs", "text_nats",
    "true_ledger", "true_ledgers", "wilson_interval", "worst_positions", "write_pairs_jsonl",
]
