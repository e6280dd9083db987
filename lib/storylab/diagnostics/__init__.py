"""Where models lose their bits: the exact bits ledger against the story generator, minimal
pairs and distance fuzzing, hard cases across models (notebook 06).

- `ledger`: true ledgers from the generator's parse, per-character model costs from any
  `LanguageModel` and tokenizer, tables per category, recalls and their distances
"""

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

__all__ = [
    "CATEGORY_NAMES", "CharCosts", "Recall", "TrueLedger", "char_costs", "encode_with_offsets", "excess_by_distance",
    "ledger_table", "recall_table", "spread_token_nats", "true_ledger", "true_ledgers",
]
