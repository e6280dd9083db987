"""Interpolated modified Kneser–Ney: a distribution at every context, equal to a plain
dictionary implementation of Chen & Goodman's formulas, and the language-model interface."""

from collections import Counter, defaultdict

import numpy as np
import pytest

from storylab.kneser_ney import KneserNey


def reference_kn(seqs, vocab_size, eot, order):
    """Chen & Goodman's interpolated modified KN, written with dictionaries and loops."""
    padded = [[eot] * (order - 1) + list(s) for s in seqs]
    top = Counter(tuple(p[i:i + order]) for p in padded for i in range(len(p) - order + 1))
    counts = {order: top}
    for k in range(order - 1, 0, -1):
        longer = {g[-(k + 1):] for g in top}
        counts[k] = Counter(g[1:] for g in longer)

    def discounts(table):
        n = [sum(1 for c in table.values() if c == i) for i in range(1, 5)]
        if n[0] == 0 or n[1] == 0:
            return [0.0, 0.5, 1.0, 1.5]
        y = n[0] / (n[0] + 2 * n[1])
        raw = [1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2] if n[2] else 1.5]
        return [0.0] + [min(max(d, 0.05), i) for i, d in enumerate(raw, start=1)]

    tables = {}
    for k, table in counts.items():
        d = discounts(table)
        totals, gammas = defaultdict(float), defaultdict(float)
        for gram, c in table.items():
            totals[gram[:-1]] += c
            gammas[gram[:-1]] += d[min(c, 3)]
        tables[k] = (table, d, totals, gammas)

    def prob(history, w):
        p = 1.0 / vocab_size
        for k in range(1, order + 1):
            table, d, totals, gammas = tables[k]
            h = tuple(history[len(history) - (k - 1):]) if k > 1 else ()
            if totals.get(h, 0) > 0:
                c = table.get(h + (w,), 0)
                p = (max(c - d[min(c, 3)], 0) + gammas[h] * p) / totals[h]
        return p

    return prob


def toy_sequences(seed=0, n=40, vocab=7, eot=0):
    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(n):
        body = [1]
        for _ in range(rng.integers(2, 9)):
            body.append(int((body[-1] * 3 + rng.integers(0, 3)) % (vocab - 1) + 1))
        seqs.append(np.array(body + [eot]))
    return seqs


@pytest.mark.parametrize("order", [2, 3, 5])
def test_equals_the_dictionary_implementation(order):
    seqs, vocab, eot = toy_sequences(), 7, 0
    kn = KneserNey(vocab, eot, order).fit(seqs)
    prob = reference_kn(seqs, vocab, eot, order)
    held_out = toy_sequences(seed=1, n=8)
    nats = kn.token_nats(held_out)
    for seq, seq_nats in zip(held_out, nats):
        history = [eot] * (order - 1)
        for token, got in zip(seq, seq_nats):
            assert got == pytest.approx(-np.log(prob(history, int(token))), rel=1e-12)
            history.append(int(token))


def test_probabilities_sum_to_one_for_random_contexts():
    kn = KneserNey(7, 0, 4).fit(toy_sequences())
    rng = np.random.default_rng(3)
    for _ in range(20):
        prefix = rng.integers(0, 7, size=rng.integers(0, 6))
        probs = kn.next_token_probs(prefix)
        assert probs.shape == (7,) and (probs > 0).all() and probs.sum() == pytest.approx(1.0, abs=1e-12)


def test_interface_next_token_probs_agree_with_token_nats_and_generate_stops():
    seqs = toy_sequences()
    kn = KneserNey(7, 0, 3).fit(seqs)
    seq = seqs[5]
    nats = kn.token_nats([seq])[0]
    for t in range(len(seq)):
        assert nats[t] == pytest.approx(-np.log(kn.next_token_probs(seq[:t])[seq[t]]), rel=1e-12)
    assert -nats.sum() == pytest.approx(kn.log_likelihood([seq])[0])
    out = kn.generate([1], 50, seed=4)
    assert np.array_equal(out, kn.generate([1], 50, seed=4)) and (out[-1] == 0 or len(out) == 50)
    assert kn.family == "kneser-ney" and kn.label == "KN 3-gram" and kn.n_params > 0 and kn.train_tokens == sum(map(len, seqs))


def test_more_order_fits_the_training_text_better():
    seqs = toy_sequences(n=200)
    train_nats = [sum(n.sum() for n in KneserNey(7, 0, k).fit(seqs).token_nats(seqs)) for k in (2, 3, 5)]
    assert train_nats[0] > train_nats[1] > train_nats[2]


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(ValueError, match="order: expected an integer in \\[2, 6\\)"):
        KneserNey(7, 0, order=6)
    with pytest.raises(ValueError, match="do not fit 64-bit keys"):
        KneserNey(70000, 0, order=5)
    with pytest.raises(ValueError, match="fit the KneserNey model"):
        KneserNey(7, 0).next_token_probs([1])


def test_every_token_keeps_a_nonzero_probability_when_every_continuation_repeats():
    # each context is always followed by the same token, many times: count-of-counts push D2 and D3+ to 0
    seqs = [np.array([1, 2, 3, 4, 0])] * 30 + [np.array([1, 2, 3, 5, 0])] * 7 + [np.array([6, 0])] * 3
    kn = KneserNey(7, 0, 3).fit(seqs)
    for prefix in ([], [1], [1, 2], [1, 2, 3], [6]):
        probs = kn.next_token_probs(prefix)
        assert (probs > 0).all() and probs.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.isfinite(np.concatenate(kn.token_nats([np.array([6, 6, 6, 1, 0])]))).all()


def test_discounts_stay_positive_where_the_estimate_goes_below_zero():
    from storylab.kneser_ney import MIN_DISCOUNT, _discounts

    # one singleton, one pair and a hundred triples: Chen & Goodman's D2 estimate is 2 - 3·(1/3)·100 < 0
    discounts = _discounts(np.array([1, 2] + [3] * 100 + [4], dtype=np.float64))
    assert discounts[0] == 0 and discounts[2] == MIN_DISCOUNT and (discounts[1:] > 0).all()


def _fitted(order=3, seed=0):
    rng = np.random.default_rng(seed)
    seqs = [np.append(rng.integers(1, 6, size=n), 0) for n in rng.integers(3, 15, size=40)]
    return KneserNey(vocab_size=6, eot_id=0, order=order).fit(seqs)


@pytest.mark.parametrize("order", [2, 3, 5])
def test_next_token_probs_read_the_last_order_minus_one_tokens_of_prefixes_of_any_length(order):
    """p(x | prefix) is the model's own probability of x after that prefix in a story, for prefixes
    shorter than, as long as and longer than the context (padded with end-of-text at the start)."""
    model = _fitted(order)
    story = np.array([3, 1, 4, 1, 5, 2, 3, 4, 5, 1], dtype=np.int64)
    nats = model.token_nats([story])[0]
    for length in range(len(story)):
        probs = model.next_token_probs(story[:length])
        assert probs[story[length]] == pytest.approx(np.exp(-nats[length]), rel=1e-12), length


def test_discounts_fall_back_to_plain_values_where_counts_of_counts_are_missing():
    from storylab.kneser_ney import _discounts

    assert _discounts(np.array([2, 2, 3])).tolist() == [0.0, 0.5, 1.0, 1.5]  # no singletons: no estimate
    d = _discounts(np.array([1, 1, 1, 1, 2, 2, 4]))  # no n-gram seen exactly three times: D3+ is 1.5
    y = 4 / (4 + 2 * 2)
    assert d.tolist() == pytest.approx([0.0, 1 - 2 * y * 2 / 4, 2 - 3 * y * 0 / 2, 1.5])


def test_arguments_and_misuse_are_one_line_errors_naming_what_is_wrong():
    assert KneserNey(vocab_size=1, eot_id=0, order=2).train_tokens == 0  # a one-token vocabulary is allowed
    with pytest.raises(ValueError, match=r"^vocab_size"):
        KneserNey(vocab_size=0, eot_id=0)
    with pytest.raises(ValueError, match=r"^eot_id"):
        KneserNey(vocab_size=6, eot_id=6)
    with pytest.raises(ValueError, match=r"^model: fit the KneserNey model before asking for probabilities"):
        KneserNey(vocab_size=6, eot_id=0).next_token_probs([1])
    with pytest.raises(ValueError, match=r"^sequences"):
        _fitted().token_nats([np.array([1, 9])])


def test_generate_greedy_top_k_and_its_default_seed():
    model = _fitted(order=3, seed=1)
    prefix = [3, 1]
    greedy = model.generate(prefix, 8, greedy=True, stop_id=None)
    context, expected = list(prefix), []
    for _ in range(8):
        expected.append(int(np.argmax(model.next_token_probs(context))))
        context.append(expected[-1])
    assert list(greedy) == expected
    context = list(prefix)
    for token in model.generate(prefix, 8, top_k=1, seed=5, stop_id=None):  # top-1 sampling draws a most likely token
        probs = model.next_token_probs(context)
        assert probs[token] == probs.max()
        context.append(int(token))
    assert list(model.generate(prefix, 8, stop_id=None)) == list(model.generate(prefix, 8, seed=0, stop_id=None))
