"""Belief-state accuracy: how far a model's next-symbol distribution is from the true one, position by position.

On a corpus sampled from a known HMM the best possible prediction of symbol x_t is
p(x_t | x_<t) = belief_{t−1} · trans · emit (start · emit for the first symbol), the exact
filtered belief state carried one step forward. `belief_kl` compares a model's
distribution q with it at every position of every sequence:

    KL(p ‖ q) = Σ_x p(x) log2 (p(x) / q(x))      bits, per symbol position

Its mean over sequences, as a curve against the position t, shows where a model stops
tracking the belief ("learns short sequences, fails on long ones"); its mean over all
positions is bits per symbol. By the chain rule of KL its expectation is the model's
expected excess code length over the exact floor, per symbol, but it compares whole
distributions instead of one sampled symbol, so it is far less noisy than the sampled gap.

Token ids. Models see tokenizer ids, the HMM its own symbol ids. `token_map[i]` gives the
HMM id of model token i: a symbol (< V), a CoT state (V + s), or −1 for anything else
(end-of-text, `<unk>`); `storylab.interp.tokens.alphabet_id_map(tokenizer, alphabet +
state_alphabet)` builds it for a `char` tokenizer, `None` means the ids are the same.

Mass off the alphabet. q is NOT renormalised over the symbols: what a model puts on other
tokens (end-of-text, `<unk>`, a state at a symbol position) is an outcome of its own
that never happens, so it is lost — exact predictions with mass m elsewhere score
−log2(1 − m) bits, as they would in the model's bits/char. `other_mass` records that mass
per position and `kl_bits_within_alphabet` the KL of q renormalised over the symbols, so
the two parts can be told apart (e.g. an HMM fitted with end-of-text as a token spends
about 1/(L+1) of every prediction on it, where a transformer learns the length exactly).
Model probabilities are floored at `MIN_PROB` before the log, so a zero (a float32
softmax underflow) costs at most log2(1/MIN_PROB) ≈ 40 bits instead of infinity.

Speed. A sequence needs the model's distribution after each of its prefixes. A model with
`next_token_probs_all(ids) -> (len(ids) + 1, vocab_size)` (row t: after `ids[:t]`, the
implicit leading end-of-text as in `next_token_probs`) gives them in one forward pass;
otherwise `next_token_probs(prefix)` is called once per prefix. Families should provide
the fast path (a transformer's one forward, an HMM's one filtering pass).

Block chain-of-thought. With `cot_every=k` (a model trained on `cot_every` texts, see
`storylab.corpora.hmm_cot`) the model writes its own state token after every k-th symbol,
greedily (the most probable state token), and only the symbols are scored; the true
states are never shown. Greedy decoding of the state is an approximation of the model's
mixture over states; it is exact where the model is sure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from storylab.checks import check_int
from storylab.corpora.hmm_cot import state_after
from storylab.progress import progress_bar
from storylab.token_sequences import as_token_sequences

MIN_PROB = 1e-12


@dataclass
class BeliefKL:
    """Per-position results, (n_sequences, longest length) arrays, NaN past a sequence's end."""

    kl_bits: np.ndarray                   # KL(true ‖ model) in bits, mass off the alphabet lost
    kl_bits_within_alphabet: np.ndarray   # the same with the model renormalised over the symbols
    other_mass: np.ndarray                # the model's probability on tokens that are not symbols

    @property
    def mean_bits_per_symbol(self) -> float:
        return float(np.nanmean(self.kl_bits))

    def by_position(self):
        """A DataFrame: position t (1 = the first symbol) and the means over the sequences that reach it."""
        import pandas as pd

        return pd.DataFrame({
            "position": np.arange(1, self.kl_bits.shape[1] + 1),
            "kl_bits": np.nanmean(self.kl_bits, axis=0),
            "kl_bits_within_alphabet": np.nanmean(self.kl_bits_within_alphabet, axis=0),
            "other_mass": np.nanmean(self.other_mass, axis=0),
            "n_sequences": np.sum(~np.isnan(self.kl_bits), axis=0),
        })

    def summary(self) -> dict[str, Any]:
        """Plain numbers for metrics.json."""
        return {
            "belief_kl_bits_per_symbol": self.mean_bits_per_symbol,
            "belief_kl_within_alphabet_bits_per_symbol": float(np.nanmean(self.kl_bits_within_alphabet)),
            "belief_other_mass": float(np.nanmean(self.other_mass)),
            "belief_kl_sequences": int(self.kl_bits.shape[0]),
            "belief_kl_bits_by_position": [float(v) for v in np.nanmean(self.kl_bits, axis=0)],
        }


def true_next_symbol_probs(hmm, symbols) -> np.ndarray:
    """(T, V) float64: row t is p(x_{t+1} | x_1..x_t) of the HMM (row 0 from its start distribution)."""
    (symbols,) = as_token_sequences([symbols], hmm.vocab_size, "symbols")
    start, trans, emit = (p.double().cpu().numpy() for p in (hmm.start, hmm.trans, hmm.emit))
    predictive_states = np.vstack([start[None, :], hmm.beliefs(symbols)[:-1] @ trans])
    probs = predictive_states @ emit
    # rows of float32 tables sum to 1 only to ~1e-7, which would enter the KL at first order
    return probs / probs.sum(axis=1, keepdims=True)


def model_next_symbol_probs(model, symbols, vocab_size: int, token_map=None, cot_every: int | None = None) -> np.ndarray:
    """(T, V + 1) float64: the model's probability of each of the V symbols at every position, then its mass elsewhere."""
    (symbols,) = as_token_sequences([symbols], vocab_size, "symbols")
    return _model_symbol_probs(model, symbols, _TokenIds(model, vocab_size, token_map, cot_every), cot_every)


def _model_symbol_probs(model, symbols: np.ndarray, ids: "_TokenIds", cot_every: int | None) -> np.ndarray:
    every = cot_every or len(symbols)
    context: list[int] = []
    rows = []
    for block_start in range(0, len(symbols), every):
        block = symbols[block_start : block_start + every]
        first = len(context)
        context.extend(int(i) for i in ids.symbol_ids[block])
        writes_state = bool(cot_every) and state_after(block_start + len(block) - 1, len(symbols), every)
        probs = _next_probs(model, context, first, len(context) + writes_state)  # after context[:first], …
        rows.append(probs[: len(block)])
        if writes_state:
            context.append(int(ids.state_ids[np.argmax(probs[-1][ids.state_ids])]))
    probs = np.vstack(rows)
    probs /= probs.sum(axis=1, keepdims=True)  # float32 softmaxes sum to 1 only to ~1e-7: first order in the KL
    return np.hstack([probs[:, ids.symbol_ids], probs[:, ids.other_ids].sum(axis=1, keepdims=True)])


def belief_kl(model, hmm, sequences, token_map=None, cot_every: int | None = None, progress: bool = True) -> BeliefKL:
    """KL(true ‖ model) at every position of every HMM symbol sequence (see the module docstring)."""
    sequences = as_token_sequences(sequences, hmm.vocab_size, "sequences")
    if cot_every is not None:
        check_int("cot_every", cot_every, minimum=1)
    ids = _TokenIds(model, hmm.vocab_size, token_map, cot_every)  # a bad map fails before any compute
    shape = (len(sequences), max(len(s) for s in sequences))
    kl, within, other = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    for row, symbols in enumerate(progress_bar(sequences, desc="belief KL", unit="seq", disable=not progress)):
        true = true_next_symbol_probs(hmm, symbols)
        modelled = _model_symbol_probs(model, symbols, ids, cot_every)
        in_alphabet = modelled[:, :-1]
        kl[row, : len(symbols)] = _kl_bits(true, in_alphabet)
        within[row, : len(symbols)] = _kl_bits(true, in_alphabet / np.maximum(in_alphabet.sum(axis=1, keepdims=True), MIN_PROB))
        other[row, : len(symbols)] = modelled[:, -1]
    return BeliefKL(kl, within, other)


def corpus_belief_kl(model, corpus, tokenizer, n_sequences: int | None = None, progress: bool = True) -> BeliefKL:
    """`belief_kl` on the first `n_sequences` validation texts of an `hmm` corpus (all when None),
    for a model over `tokenizer`'s ids (a character-level tokenizer)."""
    from storylab.corpora.hmm_source import text_to_ids
    from storylab.interp.hmm_link import true_hmm
    from storylab.interp.tokens import alphabet_id_map

    hmm = true_hmm(corpus)
    if hmm is None:
        raise ValueError(f"corpus: belief-state accuracy needs an 'hmm' corpus, got source {corpus.meta.get('source')!r}")
    alphabet = corpus.meta["alphabet"]
    texts = corpus.texts("validation")
    if n_sequences is not None:
        texts = texts[: check_int("n_sequences", n_sequences, minimum=1)]
    token_map = alphabet_id_map(tokenizer, alphabet + corpus.meta.get("state_alphabet", ""))
    return belief_kl(model, hmm, [text_to_ids(t, alphabet) for t in texts], token_map, corpus.meta.get("cot_every"), progress)


class _TokenIds:
    """Model token ids of the symbols, of the CoT states and of everything else, from `token_map`."""

    def __init__(self, model, vocab_size: int, token_map, cot_every: int | None):
        model_vocab = check_int("model.vocab_size", model.vocab_size, minimum=1)
        token_map = np.arange(model_vocab) if token_map is None else np.asarray(token_map)
        if token_map.shape != (model_vocab,) or not np.issubdtype(token_map.dtype, np.integer):
            raise ValueError(f"token_map: expected {model_vocab} integer HMM ids (one per model token, −1 for none), "
                             f"got shape {token_map.shape} {token_map.dtype}")
        self.symbol_ids = self._ids_of(token_map, range(vocab_size), "symbol")
        self.other_ids = np.flatnonzero((token_map < 0) | (token_map >= vocab_size))
        if cot_every:
            n_states = int(token_map.max()) + 1 - vocab_size
            if n_states < 1:
                raise ValueError("token_map: cot_every needs the model's state tokens (HMM ids >= vocab_size), found none")
            self.state_ids = self._ids_of(token_map, range(vocab_size, vocab_size + n_states), "state")

    @staticmethod
    def _ids_of(token_map: np.ndarray, hmm_ids, what: str) -> np.ndarray:
        found = []
        for hmm_id in hmm_ids:
            where = np.flatnonzero(token_map == hmm_id)
            if len(where) != 1:
                raise ValueError(f"token_map: HMM {what} id {hmm_id} must be exactly one model token, found {len(where)}")
            found.append(where[0])
        return np.asarray(found, dtype=np.int64)


def _next_probs(model, context: list[int], first: int, stop: int) -> np.ndarray:
    """(stop − first, vocab) float64: the model's next-token distribution after context[:t] for t in [first, stop)."""
    if hasattr(model, "next_token_probs_all"):
        probs = np.asarray(model.next_token_probs_all(np.asarray(context, dtype=np.int64)), dtype=np.float64)
        if probs.shape[0] != len(context) + 1:
            raise ValueError(f"next_token_probs_all: expected {len(context) + 1} rows for {len(context)} tokens, got {probs.shape[0]}")
        return probs[first:stop]
    return np.stack([np.asarray(model.next_token_probs(np.asarray(context[:t], dtype=np.int64)), dtype=np.float64)
                     for t in range(first, stop)])


def _kl_bits(true: np.ndarray, model: np.ndarray) -> np.ndarray:
    """Σ_x p log2(p / q) per row; terms with p = 0 are 0."""
    log_true = np.zeros_like(true)
    np.log(true, out=log_true, where=true > 0)
    return (true * (log_true - np.log(np.maximum(model, MIN_PROB)))).sum(axis=1) / math.log(2)
