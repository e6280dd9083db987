"""Interpolated modified Kneser–Ney n-grams over token ids: the classical baseline an HMM must beat.

    kn = KneserNey(vocab_size=len(tok), eot_id=tok.eos_token_id, order=5).fit(exp.train)
    score(kn, exp.validation)                # a storylab.lm.LanguageModel like every other family

Chen & Goodman's (1998) modified Kneser–Ney, interpolated at every order:

    p_k(w | h) = (max(c_k(h w) − D_k(c_k(h w)), 0) + γ_k(h) · p_{k−1}(w | h')) / c_k(h ·)
    γ_k(h)     = D_k1 · N1(h ·) + D_k2 · N2(h ·) + D_k3+ · N3+(h ·)

where h' drops the oldest token of h, c_k is the raw count at the highest order and the
continuation count N1+(· h w) (how many distinct tokens precede h w) at lower orders,
N_i(h ·) counts the tokens following h exactly i times (3 or more for N3+), and the three
discounts of each order come from its count-of-counts n_1..n_4:
Y = n1 / (n1 + 2 n2), D1 = 1 − 2Y n2/n1, D2 = 2 − 3Y n3/n2, D3+ = 3 − 4Y n4/n3.
The unigram level interpolates with the uniform distribution over the vocabulary, so every
token has a nonzero probability; a context never seen backs off entirely (γ = 1).

Sequences follow the storylab convention (each story ends with the end-of-text token and
is preceded by one): the first n−1 context positions of a story are end-of-text tokens.
N-grams are stored as integer keys (token ids in base `vocab_size`), sorted, and looked up
with binary search, so fitting and scoring are vectorised NumPy over all positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from storylab.checks import check_int
from storylab.lm import EOT
from storylab.sampling import generate_tokens
from storylab.token_sequences import as_token_prefix, as_token_sequences

MAX_KEY = 2**62  # n-gram keys are int64: vocab_size ** order must stay below this


@dataclass
class _Order:
    """The tables of one order k: k-gram keys and their (continuation) counts, and per context
    (its (k−1)-gram key) the total count and the numerator of the back-off weight γ."""

    keys: np.ndarray           # (G,) sorted k-gram keys
    counts: np.ndarray         # (G,) float64 counts used at this order
    context_keys: np.ndarray   # (C,) sorted (k−1)-gram keys
    context_totals: np.ndarray  # (C,) c_k(h ·)
    context_gamma: np.ndarray   # (C,) D1 N1(h·) + D2 N2(h·) + D3+ N3+(h·)
    discounts: np.ndarray       # (4,) D(0)=0, D1, D2, D3+


MIN_DISCOUNT = 0.05  # a discount estimated at or below 0 would give a context no mass for unseen tokens


def _discounts(counts: np.ndarray) -> np.ndarray:
    """[0, D1, D2, D3+] from the count-of-counts of `counts` (Chen & Goodman), each kept in
    [MIN_DISCOUNT, i]: positive, so every context keeps some mass for the lower order."""
    n = [int(np.sum(counts == i)) for i in range(1, 5)]
    if n[0] == 0 or n[1] == 0:
        return np.array([0.0, 0.5, 1.0, 1.5])  # too little data for the estimate: a plain choice
    y = n[0] / (n[0] + 2 * n[1])
    d1 = 1 - 2 * y * n[1] / n[0]
    d2 = 2 - 3 * y * n[2] / n[1]
    d3 = 3 - 4 * y * n[3] / n[2] if n[2] else 1.5
    return np.array([0.0, *(float(np.clip(d, MIN_DISCOUNT, i)) for i, d in enumerate((d1, d2, d3), start=1))])


def _lookup(sorted_keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values[key] for each query key, 0 where the key is absent."""
    if len(sorted_keys) == 0:
        return np.zeros(len(query), dtype=np.float64)
    at = np.searchsorted(sorted_keys, query).clip(max=len(sorted_keys) - 1)
    return np.where(sorted_keys[at] == query, values[at], 0.0)


class KneserNey:
    """An interpolated modified Kneser–Ney n-gram model of `order` (2 to 5) over token ids."""

    family = "kneser-ney"

    def __init__(self, vocab_size: int, eot_id: int, order: int = 5):
        self.vocab_size = check_int("vocab_size", vocab_size, minimum=1)
        self.eot_id = check_int("eot_id", eot_id, below=self.vocab_size)
        self.order = check_int("order", order, minimum=2, below=6)
        if self.vocab_size ** self.order >= MAX_KEY:
            raise ValueError(f"order: {self.order}-grams over {self.vocab_size} tokens do not fit 64-bit keys; "
                             f"use a lower order or a smaller vocabulary")
        self._orders: list[_Order] = []
        self._train_tokens = 0

    @property
    def label(self) -> str:
        return f"KN {self.order}-gram"

    # ----------------------------------------------------------------- fitting
    def _contexts(self, seqs: list[np.ndarray]) -> np.ndarray:
        """(N, order) windows: each row is the order−1 tokens before a position, then its token."""
        pad = self.order - 1
        rows = []
        for seq in seqs:
            padded = np.concatenate([np.full(pad, self.eot_id, dtype=np.int64), seq])
            rows.append(np.lib.stride_tricks.sliding_window_view(padded, self.order))
        return np.concatenate(rows)

    def _keys(self, windows: np.ndarray) -> np.ndarray:
        """Base-V integer key of each row of token ids."""
        keys = np.zeros(len(windows), dtype=np.int64)
        for column in range(windows.shape[1]):
            keys = keys * self.vocab_size + windows[:, column]
        return keys

    def fit(self, sequences) -> "KneserNey":
        seqs = as_token_sequences(sequences, self.vocab_size, "sequences")
        windows = self._contexts(seqs)
        self._train_tokens = len(windows)
        keys, counts = np.unique(self._keys(windows), return_counts=True)
        tables = {self.order: (keys, counts)}  # raw counts at the highest order
        for k in range(self.order - 1, 0, -1):
            # continuation count of a k-gram: how many distinct tokens precede it, i.e. in how
            # many distinct (k+1)-grams it is the suffix (a key's last k tokens: key mod V^k)
            longer = np.unique(keys % self.vocab_size ** (k + 1))
            tables[k] = np.unique(longer % self.vocab_size ** k, return_counts=True)
        self._orders = [self._build_order(*tables[k]) for k in range(1, self.order + 1)]
        return self

    def _build_order(self, keys: np.ndarray, counts: np.ndarray) -> _Order:
        counts = counts.astype(np.float64)
        discounts = _discounts(counts)
        contexts = keys // self.vocab_size  # the k−1 tokens before the last; 0 for unigrams
        context_keys, inverse = np.unique(contexts, return_inverse=True)
        totals = np.bincount(inverse, weights=counts)
        per_gram = discounts[np.minimum(counts, 3).astype(np.int64)]
        gamma = np.bincount(inverse, weights=per_gram)
        return _Order(keys, counts, context_keys, totals, gamma, discounts)

    # ----------------------------------------------------------------- probabilities
    def _probs(self, windows: np.ndarray) -> np.ndarray:
        """p(last token | the tokens before it) for each (N, order) window, all orders interpolated."""
        if not self._orders:
            raise ValueError("model: fit the KneserNey model before asking for probabilities")
        probs = np.full(len(windows), 1.0 / self.vocab_size)
        for k, table in enumerate(self._orders, start=1):
            gram_keys = self._keys(windows[:, -k:])
            context_keys = gram_keys // self.vocab_size
            counts = _lookup(table.keys, table.counts, gram_keys)
            totals = _lookup(table.context_keys, table.context_totals, context_keys)
            gamma = _lookup(table.context_keys, table.context_gamma, context_keys)
            discounted = np.maximum(counts - table.discounts[np.minimum(counts, 3).astype(np.int64)], 0.0)
            seen = totals > 0
            probs = np.where(seen, (discounted + gamma * probs) / np.where(seen, totals, 1.0), probs)
        return probs

    def token_nats(self, sequences) -> list[np.ndarray]:
        """−ln p of every token of every sequence (see storylab.lm)."""
        seqs = as_token_sequences(sequences, self.vocab_size, "sequences")
        nats = -np.log(self._probs(self._contexts(seqs)))
        return np.split(nats, np.cumsum([len(s) for s in seqs])[:-1])

    def log_likelihood(self, sequences) -> np.ndarray:
        """Natural-log probability of each sequence."""
        return -np.array([n.sum() for n in self.token_nats(sequences)])

    def next_token_probs(self, prefix_ids) -> np.ndarray:
        return self._next_probs(as_token_prefix(prefix_ids, self.vocab_size))

    def _next_probs(self, prefix: np.ndarray) -> np.ndarray:
        context = np.concatenate([np.full(self.order - 1, self.eot_id, dtype=np.int64), prefix])[-(self.order - 1):]
        windows = np.concatenate([np.tile(context, (self.vocab_size, 1)),
                                  np.arange(self.vocab_size, dtype=np.int64)[:, None]], axis=1)
        return self._probs(windows)

    def generate(self, prefix_ids, max_new_tokens: int, *, greedy: bool = False, temperature: float = 1.0,
                 top_k: int | None = None, seed: int = 0, stop_id=EOT) -> np.ndarray:
        """New token ids after `prefix_ids` (see `storylab.lm`)."""
        prefix = as_token_prefix(prefix_ids, self.vocab_size)

        def predict(new_ids: list[int]) -> np.ndarray:
            return self._next_probs(np.concatenate([prefix, np.asarray(new_ids, dtype=np.int64)]))

        return generate_tokens(predict, max_new_tokens, vocab_size=self.vocab_size, eot_id=self.eot_id, greedy=greedy,
                               temperature=temperature, top_k=top_k, seed=seed, stop_id=stop_id)

    # ----------------------------------------------------------------- sizes
    @property
    def n_params(self) -> int:
        """Stored n-grams (one count each) over every order: the customary size of an n-gram model."""
        return int(sum(len(table.keys) for table in self._orders))

    @property
    def train_tokens(self) -> int:
        return self._train_tokens

    @property
    def train_flops(self) -> float:
        """Counting is a few sorts of the training windows per order: about order · tokens · log(tokens)."""
        return float(self.order * self._train_tokens * max(np.log2(max(self._train_tokens, 2)), 1.0))
