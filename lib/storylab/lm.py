"""The one language-model interface every model family implements.

Unigram, bigram, neural bigram, Kneser–Ney n-grams, `CategoricalHMM` and the transformer
are all a `LanguageModel`, with one meaning per name:

- `token_nats(sequences) -> list[np.ndarray]`: −ln p(x_t | x_<t) of every token of every
  sequence (float64, one array per sequence, same lengths). A sequence is one story's
  token ids followed by its end-of-text token (`EncodedSplit.sequences()`), and every
  sequence is implicitly preceded by an end-of-text token: its first token is predicted
  from the start-of-story context (the HMM's `start`, the bigram's end-of-text row, an
  end-of-text token in a transformer's context). A transformer scores a story longer than
  its context with a sliding window. This is the primitive: totals, bits/char and the
  diagnostics' per-character ledgers all come from it.
- `next_token_probs(prefix_ids) -> np.ndarray`: p(next token | prefix) over all
  `vocab_size` tokens, float64, summing to 1. The prefix leaves out the implicit leading
  end-of-text token: `[]` asks for the first token of a story.
- `generate(prefix_ids, max_new_tokens, *, greedy=False, temperature=1.0, top_k=None,
  seed=0, stop_id=EOT) -> np.ndarray`: the NEW token ids only (int64), drawn by
  `storylab.sampling.pick_next_token`; generation stops after `stop_id` (the model's
  end-of-text token by default, `None` never), which is then the last id returned.
  Decoding text is the tokenizer's job.
- `vocab_size`, `eot_id`, `family` (one of `FAMILIES`), `label` (a short readable name),
  and, for a fitted model, `n_params`, `train_tokens` and `train_flops` (the estimated
  arithmetic spent fitting), so no notebook writes a parameter-count or FLOPs formula.

Everything built on top of the interface (`score`, candidate probabilities) lives in
this module and works for every family alike.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

FAMILIES = ("unigram", "bigram", "neural bigram", "kneser-ney", "hmm", "transformer", "rnn")
EOT = object()  # `stop_id` default of `generate`: the model's own end-of-text token


@runtime_checkable
class LanguageModel(Protocol):
    """What every storylab model family provides (see the module docstring)."""

    vocab_size: int
    eot_id: int

    @property
    def family(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def n_params(self) -> int: ...

    @property
    def train_tokens(self) -> int: ...

    @property
    def train_flops(self) -> float: ...

    def token_nats(self, sequences) -> list[np.ndarray]: ...

    def next_token_probs(self, prefix_ids) -> np.ndarray: ...

    def generate(self, prefix_ids, max_new_tokens: int, *, greedy: bool = False, temperature: float = 1.0,
                 top_k: int | None = None, seed: int = 0, stop_id=EOT) -> np.ndarray: ...
