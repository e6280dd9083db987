"""Belief-state KL: zero for the true model through the language-model interface, the chain rule,
mass off the alphabet, the fast path, token-id maps and the chain-of-thought evaluation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from storylab.belief_metrics import belief_kl, corpus_belief_kl, model_next_symbol_probs, true_next_symbol_probs
from storylab.corpora.hmm_cot import strip_states
from storylab.hmm import CategoricalHMM
from storylab.hmm_processes import cyclic_params, mess3_params

EOT = 0  # the adapters' end-of-text id; symbols follow in a shuffled order, as a char tokenizer's do


def numpy_predictions(start, trans, emit, symbols):
    """p(next symbol | symbols so far) after every prefix, by a plain float64 forward pass."""
    rows, state = [], start.copy()
    for symbol in symbols:
        rows.append(state @ emit)
        belief = state * emit[:, symbol]
        state = (belief / belief.sum()) @ trans
    rows.append(state @ emit)
    return np.array(rows)


class HMMThroughInterface:
    """A CategoricalHMM seen as a LanguageModel over tokenizer-like ids: end-of-text, then the symbols
    in a shuffled order (and, for chain-of-thought, the states); `eot_mass` is put on end-of-text."""

    def __init__(self, hmm, eot_mass=0.0, fast=False, cot_every=None, seed=0):
        self.hmm, self.eot_mass, self.cot_every = hmm, eot_mass, cot_every
        self.start, self.trans, self.emit = (p.double().numpy() for p in (hmm.start, hmm.trans, hmm.emit))
        n_extra = hmm.n_states if cot_every else 0
        self.hmm_ids = np.random.default_rng(seed).permutation(hmm.vocab_size + n_extra)  # model id i + 1 → HMM id
        self.token_map = np.concatenate([[-1], self.hmm_ids])
        self.vocab_size = len(self.token_map)
        self.calls = []
        if fast:
            self.next_token_probs_all = self._all

    def model_ids(self, hmm_ids):
        inverse = np.argsort(self.hmm_ids) + 1
        return inverse[np.asarray(hmm_ids)]

    def next_token_probs(self, prefix_ids):
        self.calls.append(np.asarray(prefix_ids).copy())
        return self._probs_after(np.asarray(prefix_ids))

    def _all(self, ids):
        self.calls.append(np.asarray(ids).copy())
        return np.stack([self._probs_after(np.asarray(ids[:t])) for t in range(len(ids) + 1)])

    def _probs_after(self, prefix):
        hmm_prefix = self.token_map[prefix] if len(prefix) else np.zeros(0, dtype=np.int64)
        symbols = strip_states(hmm_prefix, self.hmm.vocab_size)
        out = np.zeros(self.vocab_size)
        state_slot = (self.cot_every and len(symbols) and len(symbols) % self.cot_every == 0
                      and hmm_prefix[-1] < self.hmm.vocab_size)
        if state_slot:  # the model's belief about the state of the last symbol, on the state tokens
            belief = self.start * self.emit[:, symbols[0]]
            for symbol in symbols[1:]:
                belief = (belief / belief.sum()) @ self.trans * self.emit[:, symbol]
            out[self.model_ids(self.hmm.vocab_size + np.arange(self.hmm.n_states))] = belief / belief.sum()
            return out
        out[self.model_ids(np.arange(self.hmm.vocab_size))] = (1 - self.eot_mass) * numpy_predictions(
            self.start, self.trans, self.emit, symbols)[-1]
        out[EOT] = self.eot_mass
        return out


@pytest.fixture
def mess3():
    return CategoricalHMM.from_params(*mess3_params(), device="cpu")


def perturbed(hmm, amount=0.3, seed=1):
    rng = np.random.default_rng(seed)
    start, trans, emit = (p.double().numpy() for p in (hmm.start, hmm.trans, hmm.emit))
    trans = trans * np.exp(amount * rng.normal(size=trans.shape))
    emit = emit * np.exp(amount * rng.normal(size=emit.shape))
    return CategoricalHMM.from_params(start, trans / trans.sum(1, keepdims=True), emit / emit.sum(1, keepdims=True), device="cpu")


def test_true_next_symbol_probs_match_a_plain_forward_pass(mess3):
    symbols = np.array([0, 2, 2, 1, 0, 0])
    start, trans, emit = (p.double().numpy() for p in (mess3.start, mess3.trans, mess3.emit))
    assert np.allclose(true_next_symbol_probs(mess3, symbols), numpy_predictions(start, trans, emit, symbols)[:-1], atol=1e-6)


@pytest.mark.parametrize("fast", [False, True])
def test_the_true_model_through_the_interface_scores_zero(mess3, fast):
    model = HMMThroughInterface(mess3, fast=fast)
    tokens, _ = mess3.sample(5, 12, seed=0)
    result = belief_kl(model, mess3, tokens, model.token_map)
    assert result.kl_bits.shape == (5, 12)
    assert np.abs(result.kl_bits).max() < 1e-9 and result.mean_bits_per_symbol == pytest.approx(0, abs=1e-9)
    assert np.abs(result.other_mass).max() == 0
    assert len(model.calls) == (5 if fast else 5 * 12)  # one forward per sequence on the fast path


def test_a_perturbed_model_scores_positive_and_the_fast_path_agrees(mess3):
    tokens, _ = mess3.sample(4, 10, seed=1)
    wrong = perturbed(mess3)
    slow = belief_kl(HMMThroughInterface(wrong), mess3, tokens, HMMThroughInterface(wrong).token_map)
    fast = belief_kl(HMMThroughInterface(wrong, fast=True), mess3, tokens, HMMThroughInterface(wrong).token_map)
    assert (slow.kl_bits > 0).all() and slow.mean_bits_per_symbol > 1e-3
    assert np.allclose(slow.kl_bits, fast.kl_bits, atol=1e-12)
    curve = slow.by_position()
    assert list(curve["position"]) == list(range(1, 11)) and (curve["n_sequences"] == 4).all()
    assert np.allclose(curve["kl_bits"], slow.kl_bits.mean(axis=0))


def test_kl_summed_over_positions_is_the_kl_of_whole_sequences(mess3):
    # chain rule: Σ_x p(x) Σ_t KL(p(·|x_<t) ‖ q(·|x_<t)) = Σ_x p(x) log2 p(x)/q(x), over all x of length 3
    wrong = perturbed(mess3, amount=0.5, seed=2)
    sequences = np.array(list(itertools.product(range(3), repeat=3)))
    p, q = np.exp(mess3.log_likelihood(sequences)), np.exp(wrong.log_likelihood(sequences))
    per_position = belief_kl(HMMThroughInterface(wrong, fast=True), mess3, sequences, HMMThroughInterface(wrong).token_map)
    assert p.sum() == pytest.approx(1, abs=1e-5)
    assert (p * per_position.kl_bits.sum(axis=1)).sum() == pytest.approx((p * np.log2(p / q)).sum(), rel=1e-4)


def test_mass_off_the_alphabet_is_lost_not_renormalised(mess3):
    tokens, _ = mess3.sample(3, 8, seed=2)
    model = HMMThroughInterface(mess3, eot_mass=0.2, fast=True)
    result = belief_kl(model, mess3, tokens, model.token_map)
    assert np.allclose(result.kl_bits, -math.log2(0.8), atol=1e-9)  # exact but for 20% on end-of-text
    assert np.allclose(result.kl_bits_within_alphabet, 0, atol=1e-9) and np.allclose(result.other_mass, 0.2)
    summary = result.summary()
    assert summary["belief_kl_bits_per_symbol"] == pytest.approx(-math.log2(0.8)) and len(summary["belief_kl_bits_by_position"]) == 8


def test_ragged_sequences_average_over_those_that_reach_a_position(mess3):
    model = HMMThroughInterface(perturbed(mess3), fast=True)
    result = belief_kl(model, mess3, [np.array([0, 1, 2, 0]), np.array([1, 1])], model.token_map)
    assert np.isnan(result.kl_bits[1, 2:]).all() and list(result.by_position()["n_sequences"]) == [2, 2, 1, 1]


def test_chain_of_thought_evaluation_writes_the_models_own_states():
    hmm = CategoricalHMM.from_params(*cyclic_params(4, 3, epsilon=0.1, emission="stochastic", seed=0), device="cpu")
    model = HMMThroughInterface(hmm, fast=True, cot_every=3)
    symbols = hmm.sample(1, 10, seed=3)[0][0]
    probs = model_next_symbol_probs(model, symbols, hmm.vocab_size, model.token_map, cot_every=3)
    assert probs.shape == (10, 4) and np.allclose(probs[:, :3], true_next_symbol_probs(hmm, symbols), atol=1e-6)
    final = model.token_map[model.calls[-1]]  # the last context: symbols with the model's states after 3, 6, 9
    assert np.array_equal(strip_states(final, 3), symbols) and np.array_equal(np.flatnonzero(final >= 3), [3, 7, 11])
    beliefs = hmm.beliefs(symbols)
    assert np.array_equal(final[[3, 7, 11]] - 3, beliefs[[2, 5, 8]].argmax(axis=1))  # greedy: the most likely state
    result = belief_kl(model, hmm, [symbols], model.token_map, cot_every=3)
    assert np.abs(result.kl_bits).max() < 1e-9


def test_corpus_belief_kl_maps_char_tokenizer_ids(tmp_path, monkeypatch):
    from storylab.corpora import load_corpus
    from storylab.interp.tokens import alphabet_id_map
    from storylab.tokenizers import train_tokenizer

    monkeypatch.setenv("STORYLAB_OUTPUTS", str(tmp_path))
    corpus = load_corpus({"source": "hmm", "kind": "mess3", "vocab_size": 3, "n_states": 3, "n_sequences": 8, "validation": 3, "length": 6})
    tokenizer = train_tokenizer("char", corpus.texts("train"))
    hmm = CategoricalHMM.from_params(*mess3_params(), device="cpu")

    class CharModel(HMMThroughInterface):  # the true HMM over the char tokenizer's own ids
        def __init__(self):
            super().__init__(hmm, fast=True)
            self.token_map = alphabet_id_map(tokenizer, corpus.meta["alphabet"])
            self.vocab_size = len(self.token_map)
            self.hmm_ids = self.token_map[self.token_map >= 0]

        def model_ids(self, hmm_ids):
            return np.array([np.flatnonzero(self.token_map == h)[0] for h in np.atleast_1d(hmm_ids)])

    result = corpus_belief_kl(CharModel(), corpus, tokenizer, n_sequences=2)
    assert result.kl_bits.shape == (2, 6) and np.abs(result.kl_bits).max() < 1e-9
    assert result.summary()["belief_kl_sequences"] == 2


@pytest.mark.parametrize("token_map, message", [
    (np.array([-1, 0, 1, 1]), "symbol id 1 must be exactly one model token, found 2"),
    (np.array([-1, 0, 1, 5]), "symbol id 2 must be exactly one model token, found 0"),
    (np.array([-1, 0, 1]), "token_map: expected 4 integer HMM ids"),
])
def test_bad_token_maps_are_clear_errors(mess3, token_map, message):
    with pytest.raises(ValueError, match=message):
        belief_kl(HMMThroughInterface(mess3), mess3, [np.array([0, 1])], token_map)


def test_cot_evaluation_needs_state_tokens(mess3):
    model = HMMThroughInterface(mess3)
    with pytest.raises(ValueError, match="state tokens"):
        belief_kl(model, mess3, [np.array([0, 1])], model.token_map, cot_every=2)


def test_a_fitted_hmm_over_char_tokens_through_its_own_interface(tmp_path, monkeypatch):
    """What 02 runs: a CategoricalHMM fitted on the char tokens (end-of-text included), its fast
    path (`next_token_probs_all`) equal to one `next_token_probs` per prefix."""
    from storylab.corpora import load_corpus
    from storylab.tokenizers import encode_texts, train_tokenizer

    monkeypatch.setenv("STORYLAB_OUTPUTS", str(tmp_path))
    corpus = load_corpus({"source": "hmm", "kind": "mess3", "vocab_size": 3, "n_states": 3, "n_sequences": 40, "validation": 3,
                          "length": 12})
    tokenizer = train_tokenizer("char", corpus.texts("train"))
    eot = tokenizer.eos_token_id
    hmm = CategoricalHMM(3, len(tokenizer), seed=0, device="cpu", eot_id=eot)
    hmm.fit([np.array(ids + [eot]) for ids in encode_texts(tokenizer, corpus.texts("train"))], n_iter=3, progress=False)

    class PerPrefix:  # the same model without its fast path
        vocab_size, eot_id = hmm.vocab_size, hmm.eot_id
        next_token_probs = staticmethod(hmm.next_token_probs)

    fast = corpus_belief_kl(hmm, corpus, tokenizer, n_sequences=2, progress=False)
    slow = corpus_belief_kl(PerPrefix(), corpus, tokenizer, n_sequences=2, progress=False)
    assert np.isfinite(fast.kl_bits).all() and (fast.kl_bits > 0).any()
    assert np.allclose(fast.kl_bits, slow.kl_bits, atol=1e-9)
    assert 0 < fast.summary()["belief_other_mass"] < 1  # the HMM spends mass on end-of-text
