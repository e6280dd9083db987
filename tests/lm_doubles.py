"""Small language models behind the `storylab.lm.LanguageModel` interface, for the diagnostics tests.

A fitted count bigram (or unigram) scored through `token_nats` / `next_token_probs` exactly as
the interface documents it: every sequence is implicitly preceded by end-of-text. They stand
in for the real families so the diagnostics tests do not depend on their implementations.
"""

from __future__ import annotations

import numpy as np

from storylab.ngram import BigramModel, UnigramModel


class CountLM:
    """`BigramModel` (order=2) or `UnigramModel` (order=1) as a LanguageModel."""

    def __init__(self, vocab_size: int, eot_id: int, order: int = 2, k: float = 0.1, label: str | None = None):
        self.vocab_size, self.eot_id, self.order = vocab_size, eot_id, order
        self._model = BigramModel(vocab_size, eot_id, k=k) if order == 2 else UnigramModel(vocab_size, k=k)
        self.label = label or ("bigram" if order == 2 else "unigram")
        self.family = self.label
        self.n_params = vocab_size ** order
        self.train_tokens = 0
        self.train_flops = 0.0
        self._table = None

    def fit(self, sequences) -> "CountLM":
        self._model.fit(sequences)
        self.train_tokens = int(sum(len(s) for s in sequences))
        self._table = self._model.probs if self.order == 2 else self._model.probs[None, :]
        return self

    def _rows(self, previous: np.ndarray) -> np.ndarray:
        return self._table[previous] if self.order == 2 else self._table[np.zeros_like(previous)]

    def token_nats(self, sequences) -> list[np.ndarray]:
        out = []
        for seq in sequences:
            seq = np.asarray(seq, dtype=np.int64)
            previous = np.concatenate([[self.eot_id], seq[:-1]])
            out.append(-np.log(self._rows(previous)[np.arange(len(seq)), seq]))
        return out

    def next_token_probs(self, prefix_ids) -> np.ndarray:
        prefix = np.asarray(prefix_ids, dtype=np.int64).reshape(-1)
        previous = np.asarray([prefix[-1] if prefix.size else self.eot_id])
        return np.asarray(self._rows(previous)[0], dtype=np.float64)

    def generate(self, prefix_ids, max_new_tokens, **kwargs):  # not needed by the diagnostics
        raise NotImplementedError
