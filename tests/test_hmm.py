"""CategoricalHMM: exact likelihoods, EM, inference, files, pomegranate interop, errors."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from storylab import hmm as hmm_module
from storylab import hmm_engine as engine
from storylab.hmm import CategoricalHMM
from storylab.token_sequences import as_token_source
from storylab.tracking import Tracker


def random_hmm(n_states=3, vocab_size=4, seed=0, concentration=1.0):
    return CategoricalHMM(n_states, vocab_size, seed=seed, device="cpu", concentration=concentration)


def tables(hmm):
    return tuple(p.cpu() for p in (hmm.start, hmm.trans, hmm.emit))


def params64(hmm):
    return tuple(p.double().cpu().numpy() for p in (hmm.start, hmm.trans, hmm.emit))


def brute_force_joint(hmm, tokens):
    """p(x, path) for every state path: {path: probability}."""
    start, trans, emit = params64(hmm)
    joint = {}
    for path in itertools.product(range(hmm.n_states), repeat=len(tokens)):
        p = start[path[0]] * emit[path[0], tokens[0]]
        for t in range(1, len(tokens)):
            p *= trans[path[t - 1], path[t]] * emit[path[t], tokens[t]]
        joint[path] = p
    return joint


def varied_sequences(hmm, n=12, max_length=20, seed=0):
    tokens, _ = hmm.sample(n, max_length, seed=seed)
    lengths = np.random.default_rng(seed).integers(1, max_length + 1, size=n)
    return [tokens[i, :length] for i, length in enumerate(lengths)]


def reference_counts(hmm, seqs):
    """Expected start, transition and emission counts and the total log-likelihood, by a plain
    NumPy forward-backward (unscaled, float64) for short sequences, written independently of the engine."""
    start, trans, emit = params64(hmm)
    start_counts, trans_counts, emit_counts = np.zeros_like(start), np.zeros_like(trans), np.zeros_like(emit)
    log_likelihood = 0.0
    for x in seqs:
        T = len(x)
        alpha, beta = np.zeros((T, hmm.n_states)), np.ones((T, hmm.n_states))
        alpha[0] = start * emit[:, x[0]]
        for t in range(1, T):
            alpha[t] = alpha[t - 1] @ trans * emit[:, x[t]]
        for t in range(T - 2, -1, -1):
            beta[t] = trans @ (emit[:, x[t + 1]] * beta[t + 1])
        likelihood = alpha[-1].sum()
        log_likelihood += np.log(likelihood)
        gamma = alpha * beta / likelihood
        start_counts += gamma[0]
        for t in range(T - 1):
            trans_counts += np.outer(alpha[t], emit[:, x[t + 1]] * beta[t + 1]) * trans / likelihood
        for t in range(T):
            emit_counts[:, x[t]] += gamma[t]
    return start_counts, trans_counts, emit_counts, log_likelihood


def reference_em_step(hmm, seqs, smoothing=0.0, emit_allowed=None):
    """A plain NumPy Baum-Welch step from `reference_counts`: `smoothing` is added as a pseudo-count to
    every entry of all three tables before normalising (to the emissions only where `emit_allowed`
    (K, V) is True, if given)."""
    start_counts, trans_counts, emit_counts, _ = reference_counts(hmm, seqs)
    normalise = lambda c: c / c.sum(axis=-1, keepdims=True)  # noqa: E731
    emit_pseudo = smoothing if emit_allowed is None else smoothing * np.asarray(emit_allowed, dtype=np.float64)
    return normalise(start_counts + smoothing), normalise(trans_counts + smoothing), normalise(emit_counts + emit_pseudo)


# ----------------------------------------------------------------------------- likelihood
@pytest.mark.parametrize("tokens", [[2], [0, 1], [3, 3, 0, 1], [1, 0, 2, 2, 3]])
def test_log_likelihood_equals_brute_force_enumeration(tokens):
    hmm = random_hmm(n_states=3, vocab_size=4, seed=1)
    expected = np.log(sum(brute_force_joint(hmm, tokens).values()))
    assert hmm.log_likelihood([np.array(tokens)])[0] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_likelihood_matches_hmmlearn_score(seed):
    from hmmlearn.hmm import CategoricalHMM as HmmlearnHMM

    hmm = random_hmm(n_states=5, vocab_size=7, seed=seed, concentration=0.5)
    seqs = varied_sequences(hmm, n=15, max_length=60, seed=seed)
    reference = HmmlearnHMM(n_components=5, n_features=7)  # n_features explicit: never inferred from data
    reference.startprob_, reference.transmat_, reference.emissionprob_ = params64(hmm)
    expected = np.array([reference.score(s.reshape(-1, 1)) for s in seqs])
    got = hmm.log_likelihood(seqs)
    assert np.max(np.abs(got - expected) / np.abs(expected)) < 1e-5


def test_no_underflow_at_length_4096():
    from hmmlearn.hmm import CategoricalHMM as HmmlearnHMM

    hmm = random_hmm(n_states=8, vocab_size=50, seed=3)
    tokens, _ = hmm.sample(1, 4096, seed=0)
    got = hmm.log_likelihood(tokens)[0]
    reference = HmmlearnHMM(n_components=8, n_features=50)
    reference.startprob_, reference.transmat_, reference.emissionprob_ = params64(hmm)
    expected = reference.score(tokens[0].reshape(-1, 1))
    assert np.isfinite(got) and got < -4096  # far below float32's smallest probability
    assert abs(got - expected) / abs(expected) < 1e-5


def test_batching_does_not_change_results():
    hmm = random_hmm(n_states=4, vocab_size=6, seed=2)
    seqs = varied_sequences(hmm, n=30, max_length=40, seed=1)
    whole = hmm.log_likelihood(seqs)
    assert np.allclose(hmm.log_likelihood(seqs, batch_tokens=37), whole, rtol=1e-6)
    one = random_hmm(n_states=4, vocab_size=6, seed=5)
    other = random_hmm(n_states=4, vocab_size=6, seed=5)
    one.fit(seqs, n_iter=1, progress=False)
    other.fit(seqs, n_iter=1, progress=False, batch_tokens=25)
    for a, b in zip(params64(one), params64(other)):
        assert np.allclose(a, b, atol=1e-6)


def test_zero_probability_sequence_gives_minus_infinity():
    emit = np.array([[1.0, 0.0], [1.0, 0.0]])
    hmm = CategoricalHMM.from_params([0.5, 0.5], [[0.5, 0.5], [0.5, 0.5]], emit, device="cpu")
    assert hmm.log_likelihood([np.array([0, 1, 0])])[0] == -np.inf
    assert hmm.log_likelihood([np.array([0, 0])])[0] == pytest.approx(0.0, abs=1e-6)


# ----------------------------------------------------------------------------- EM
@pytest.mark.filterwarnings("error")  # e.g. torch resizing an `out=` buffer of the wrong shape
@pytest.mark.parametrize("smoothing", [0.0, 0.7])
def test_one_em_step_equals_numpy_reference(smoothing):
    # 10 short sequences: pseudo-counts of 0.7 move every table far beyond the tolerance,
    # so smoothing left out of one table, or scaled by the vocabulary size, fails here
    hmm = random_hmm(n_states=3, vocab_size=5, seed=4)
    seqs = varied_sequences(hmm, n=10, max_length=25, seed=2)
    expected = reference_em_step(hmm, seqs, smoothing)
    hmm.fit(seqs, n_iter=1, progress=False, smoothing=smoothing)
    for name, got, want in zip(("start", "trans", "emit"), params64(hmm), expected):
        assert np.allclose(got, want, atol=2e-6), name


@pytest.mark.filterwarnings("error")  # e.g. torch resizing an `out=` buffer of the wrong shape
def test_a_float64_em_step_equals_numpy_reference_to_float64_precision():
    # every table and count of a float64 model is float64: a float32 one anywhere costs ~1e-7
    hmm = CategoricalHMM(3, 5, seed=4, device="cpu", dtype="float64")
    seqs = varied_sequences(random_hmm(n_states=3, vocab_size=5, seed=4), n=10, max_length=25, seed=2)
    expected = reference_em_step(hmm, seqs, smoothing=0.7)
    hmm.fit(seqs, n_iter=1, progress=False, smoothing=0.7, batch_tokens=60)
    for name, table, want in zip(("start", "trans", "emit"), (hmm.start, hmm.trans, hmm.emit), expected):
        assert table.dtype == torch.float64, name
        assert np.allclose(table.numpy(), want, rtol=0, atol=1e-13), name


def test_expected_counts_are_the_e_step_statistics_and_leave_the_model_alone():
    hmm = random_hmm(n_states=3, vocab_size=5, seed=4)
    seqs = varied_sequences(hmm, n=10, max_length=25, seed=2)
    before = [t.clone() for t in tables(hmm)]
    start_counts, trans_counts, emit_counts, log_likelihood = reference_counts(hmm, seqs)
    stats = hmm.expected_counts(seqs, batch_tokens=60)  # several batches
    assert np.allclose(stats.start.numpy(), start_counts, atol=1e-5)
    assert np.allclose((stats.pairs[0] * hmm.trans).numpy(), trans_counts, atol=1e-5)  # pairs are counts before `* trans`
    assert np.allclose(stats.emit.numpy().T, emit_counts, atol=1e-5)
    assert stats.log_likelihood == pytest.approx(log_likelihood, rel=1e-6)
    assert stats.n_tokens == sum(map(len, seqs))
    assert all(torch.equal(a, b) for a, b in zip(before, tables(hmm))) and hmm.history == []


def test_expected_counts_name_their_argument_and_read_no_launcher_unless_asked(monkeypatch):
    hmm = random_hmm(n_states=3, vocab_size=5)
    with pytest.raises(ValueError, match=r"^sequences: token id 9"):
        hmm.expected_counts([np.array([1, 9])])
    monkeypatch.setenv("WORLD_SIZE", "2")  # a launcher that did not finish its set-up
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert hmm.expected_counts([np.array([1, 2])]).n_tokens == 2
    with pytest.raises(ValueError, match=r"^distributed: WORLD_SIZE > 1"):
        hmm.expected_counts([np.array([1, 2])], distributed=True)


def test_repr_names_the_sizes_and_only_the_settings_that_differ_from_the_defaults():
    assert repr(random_hmm(n_states=3, vocab_size=5)) == "CategoricalHMM(n_states=3, vocab_size=5, device='cpu', iterations=0)"
    blocked = CategoricalHMM(4, 6, device="cpu", emission_blocks=2, dtype="float64")
    blocked.fit([np.arange(6)], n_iter=2, tol=0.0, progress=False)
    assert repr(blocked) == ("CategoricalHMM(n_states=4, vocab_size=6, emission_blocks=2, dtype='float64', device='cpu', "
                             "iterations=2)")


def test_the_random_init_draws_dirichlet_rows_from_the_seed_in_order_whatever_the_chunking(monkeypatch):
    # start, then the K transition rows, then the K emission rows, one Dirichlet(concentration) stream
    rng = np.random.default_rng(7)
    expected = rng.dirichlet(np.full(3, 0.5), size=1)[0], rng.dirichlet(np.full(3, 0.5), size=3), rng.dirichlet(np.full(5, 0.5), size=3)
    whole = CategoricalHMM(3, 5, seed=7, device="cpu", concentration=0.5)
    monkeypatch.setattr(hmm_module, "ROWS_BYTES", 8 * 5)  # one row per chunk (the start vector stays whole): the same draws
    chunked = CategoricalHMM(3, 5, seed=7, device="cpu", concentration=0.5)
    for name, want, got, again in zip(("start", "trans", "emit"), expected, params64(whole), params64(chunked)):
        assert np.allclose(got, want, rtol=0, atol=1e-7) and np.array_equal(got, again), name
    monkeypatch.undo()
    assert all(torch.equal(a, b) for a, b in zip(tables(CategoricalHMM(3, 5, device="cpu")),
                                                 tables(CategoricalHMM(3, 5, seed=0, device="cpu", concentration=1.0))))
    # a tiny concentration draws exact zeros, which EM could never move: every entry is lifted above 0
    sparse = CategoricalHMM(4, 50, seed=0, device="cpu", concentration=1e-3)
    assert all((table > 0).all() for table in tables(sparse))
    assert CategoricalHMM(3, 5, device="cpu", eot_id=4).eot_id == 4


def test_sampling_a_deterministic_hmm_gives_its_one_path_and_bad_sizes_are_named():
    # one start state, a cycle 0 -> 2 -> 1 -> 0, each state emitting one token of its own
    hmm = CategoricalHMM.from_params([1.0, 0, 0], [[0, 0, 1.0], [1.0, 0, 0], [0, 1.0, 0]], [[0, 0, 0, 1.0], [0, 1.0, 0, 0], [1.0, 0, 0, 0]],
                                     device="cpu")
    tokens, states = hmm.sample(2, 5, seed=3)
    assert states.tolist() == [[0, 2, 1, 0, 2]] * 2 and tokens.tolist() == [[3, 0, 1, 3, 0]] * 2
    assert hmm.sample(1, 1)[0].shape == (1, 1)
    for args, message in [((0, 5), "n: expected an integer >= 1, got 0"), ((2, 0), "length: expected an integer >= 1, got 0"),
                          ((2, 5, -1), "seed: expected an integer >= 0, got -1")]:
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            hmm.sample(*args)


def test_constructor_arguments_are_checked_by_name_at_their_bounds_and_defaults_hold(tmp_path):
    from safetensors import safe_open

    base = {"n_states": 3, "vocab_size": 5, "device": "cpu"}
    for kwargs, message in [({"n_states": 0}, "n_states: expected an integer >= 1, got 0"),
                            ({"vocab_size": 0}, "vocab_size: expected an integer >= 1, got 0"),
                            ({"eot_id": 5}, "eot_id: expected an integer in [0, 5), got 5"),
                            ({"seed": -1}, "seed: expected an integer >= 0, got -1"),
                            ({"concentration": 0.0}, "concentration: expected a number > 0, got 0.0"),
                            ({"n_states": 6, "emission_blocks": 6}, "emission_blocks: 6 blocks need at least one token each, vocab_size is 5")]:
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            CategoricalHMM(**{**base, **kwargs})
    CategoricalHMM(3, 1, device="cpu")  # one token is enough
    assert CategoricalHMM(5, 5, device="cpu", emission_blocks=5, token_blocks=np.arange(5)).emission_blocks == 5  # a token per block
    hmm = CategoricalHMM(3, 5)
    assert (hmm.seed, hmm.concentration, hmm.dtype, hmm.device.type, hmm.eot_id) == (0, 1.0, torch.float32, "cpu", None)
    assert CategoricalHMM.from_params([1.0], [[1.0]], [[1.0]], device="cpu").seed == 0  # settings not given take the defaults
    hmm.save(tmp_path / "unfitted")  # nothing fitted yet: the header says so with nulls
    with safe_open(str(tmp_path / "unfitted" / "hmm.safetensors"), "np") as file:
        meta = json.loads(file.metadata()["meta"])
    assert meta["data_fingerprint"] is None and meta["fit_settings"] is None


def test_an_em_step_keeps_an_unvisited_state_and_normalises_a_rarely_visited_one():
    # one sequence (start counts total exactly 1); state 2 expects well under one visit;
    # state 3 is unreachable, so without smoothing its rows have no counts and keep their values
    start = [0.7, 0.25, 0.05, 0.0]
    trans = [[0.6, 0.35, 0.05, 0.0], [0.3, 0.65, 0.05, 0.0], [0.4, 0.4, 0.2, 0.0], [0.1, 0.2, 0.3, 0.4]]
    emit = [[0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.3, 0.4, 0.3], [0.6, 0.2, 0.2]]
    hmm = CategoricalHMM.from_params(start, trans, emit, device="cpu")
    seqs = [np.array([0, 2, 1])]
    gamma = hmm.posteriors(seqs[0])
    assert 0 < gamma[:, 2].sum() < 1 and gamma[:, 3].sum() == 0
    with np.errstate(invalid="ignore"):  # the reference divides state 3's empty rows by zero
        expected = reference_em_step(hmm, seqs)
    hmm.fit(seqs, n_iter=1, progress=False)
    got_start, got_trans, got_emit = params64(hmm)
    assert np.allclose(got_start, expected[0], atol=2e-7)
    assert np.allclose(got_trans[:3], expected[1][:3], atol=2e-7) and np.allclose(got_emit[:3], expected[2][:3], atol=2e-7)
    assert np.array_equal(got_trans[3], np.float32(trans[3])) and np.array_equal(got_emit[3], np.float32(emit[3]))


def test_one_em_step_on_a_single_sequence_equals_numpy_reference():
    # one sequence: its start counts total 1 (a hair below it in float32 for this model here)
    hmm = random_hmm(n_states=3, vocab_size=5, seed=1)
    seqs = [np.array([0, 2, 1, 3])]
    expected = reference_em_step(hmm, seqs)
    hmm.fit(seqs, n_iter=1, progress=False)
    for name, got, want in zip(("start", "trans", "emit"), params64(hmm), expected):
        assert np.allclose(got, want, atol=2e-6), name


def test_em_never_decreases_training_log_likelihood():
    truth = random_hmm(n_states=4, vocab_size=8, seed=7, concentration=0.3)
    seqs = varied_sequences(truth, n=40, max_length=50, seed=3)
    history = random_hmm(n_states=4, vocab_size=8, seed=0).fit(seqs, n_iter=15, tol=0.0, progress=False)
    lls = [row["train_log_likelihood"] for row in history]
    assert len(lls) == 15
    assert all(b >= a - 1e-6 * abs(a) for a, b in zip(lls, lls[1:]))
    assert lls[-1] > lls[0]


def test_fit_recovers_planted_hmm_likelihood():
    emit = np.full((3, 6), 0.025)
    for k in range(3):  # each state has two tokens of its own
        emit[k, 2 * k], emit[k, 2 * k + 1] = 0.5, 0.4
    truth = CategoricalHMM.from_params([0.6, 0.3, 0.1], [[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.2, 0.1, 0.7]], emit, device="cpu")
    train, _ = truth.sample(200, 60, seed=1)
    fresh, _ = truth.sample(200, 60, seed=2)
    # EM finds local optima (two states sharing one token pair); keep the best of a few restarts
    fits = []
    for seed in range(4):
        model = CategoricalHMM(3, 6, seed=seed, device="cpu")
        history = model.fit(train, n_iter=60, tol=1e-6, progress=False)
        fits.append((history[-1]["train_log_likelihood"], seed, model))
    best = max(fits, key=lambda fit: fit[0])[2]
    true_nats = -truth.log_likelihood(fresh).sum() / fresh.size
    fitted_nats = -best.log_likelihood(fresh).sum() / fresh.size
    assert fitted_nats == pytest.approx(true_nats, abs=0.01)


def test_history_has_per_iteration_metrics_and_validation():
    hmm = random_hmm(n_states=3, vocab_size=5, seed=0)
    seqs = varied_sequences(hmm, n=20, max_length=30, seed=0)
    history = random_hmm(n_states=3, vocab_size=5, seed=9).fit(seqs[:15], n_iter=3, tol=0.0, val=seqs[15:], progress=False)
    frame = history.to_dataframe()
    for column in ("iteration", "train_log_likelihood", "train_nats_per_token", "val_log_likelihood", "val_nats_per_token", "elapsed_s", "tokens_per_s"):
        assert column in frame.columns
    assert list(frame["iteration"]) == [1, 2, 3]
    n_val_tokens = sum(len(s) for s in seqs[15:])
    assert frame["val_nats_per_token"].iloc[0] == pytest.approx(-frame["val_log_likelihood"].iloc[0] / n_val_tokens)


def test_each_history_row_scores_the_parameters_before_its_step():
    truth = random_hmm(n_states=3, vocab_size=5, seed=0)
    seqs = varied_sequences(truth, n=20, max_length=30, seed=0)
    train, val = seqs[:15], seqs[15:]
    unbroken = random_hmm(n_states=3, vocab_size=5, seed=9)
    history = unbroken.fit(train, n_iter=3, tol=0.0, val=val, progress=False, batch_tokens=40)  # several batches
    stepped = random_hmm(n_states=3, vocab_size=5, seed=9)
    before = []
    for _ in range(3):  # the same fit one step at a time, scoring each step's starting parameters
        before.append((stepped.log_likelihood(train, batch_tokens=40).sum(), stepped.log_likelihood(val).sum()))
        stepped.fit(train, n_iter=1, tol=0.0, val=val, progress=False, batch_tokens=40)
    for row, (train_ll, val_ll) in zip(history, before):
        assert row["train_log_likelihood"] == pytest.approx(train_ll, rel=1e-9)
        assert row["val_log_likelihood"] == pytest.approx(val_ll, rel=1e-9)
        assert row["train_nats_per_token"] == pytest.approx(-train_ll / sum(map(len, train)), rel=1e-9)
    assert history[-1]["val_log_likelihood"] != pytest.approx(unbroken.log_likelihood(val).sum(), rel=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(tables(unbroken), tables(stepped)))


def test_tol_stops_early():
    hmm = random_hmm(n_states=2, vocab_size=3, seed=0)
    seqs = varied_sequences(hmm, n=20, max_length=30)
    history = random_hmm(n_states=2, vocab_size=3, seed=1).fit(seqs, n_iter=500, tol=1e-3, progress=False)
    assert len(history) < 500 and history[-1]["converged"]


def test_smoothing_makes_every_zero_probability_positive_again():
    # zeros in all three tables stay exactly zero under EM; pseudo-counts are what lift them
    start, trans = [1.0, 0.0], [[0.5, 0.5], [0.0, 1.0]]
    emit = [[0.5, 0.5, 0, 0, 0, 0], [0.25, 0.25, 0.5, 0, 0, 0]]
    seqs = [np.array([0, 1, 0, 1, 2]), np.array([1, 1, 0])]
    plain = CategoricalHMM.from_params(start, trans, emit, device="cpu")
    plain.fit(seqs, n_iter=3, progress=False)
    assert plain.start[1] == 0 and plain.trans[1, 0] == 0 and (plain.emit[:, 3:] == 0).all()
    assert plain.log_likelihood([np.array([5, 4, 3])])[0] == -np.inf
    smoothed = CategoricalHMM.from_params(start, trans, emit, device="cpu")
    smoothed.fit(seqs, n_iter=3, smoothing=0.1, progress=False)
    assert (smoothed.start > 0).all() and (smoothed.trans > 0).all() and (smoothed.emit > 0).all()
    assert np.isfinite(smoothed.log_likelihood([np.array([5, 4, 3])])[0])


def test_unigram_init_is_deterministic_and_data_informed():
    seqs = [np.array([0, 0, 0, 1, 0, 0, 2, 0])] * 5
    a, b = (CategoricalHMM(3, 4, seed=3, init="unigram", device="cpu") for _ in range(2))
    a.fit(seqs, n_iter=1, progress=False)
    b.fit(seqs, n_iter=1, progress=False)
    assert torch.equal(a.emit, b.emit)
    assert (a.emit[:, 0] > 0.5).all()  # the frequent token dominates every state's emissions


def test_encoded_split_is_accepted_duck_typed():
    class FakeSplit:
        def sequences(self, append_eot=True, max_len=None):
            return [np.array([0, 1, 2, 3]), np.array([2, 3])]

    hmm = random_hmm()
    assert np.allclose(hmm.log_likelihood(FakeSplit()), hmm.log_likelihood(FakeSplit().sequences()))


# ----------------------------------------------------------------------------- inference
def test_posteriors_beliefs_and_viterbi_match_brute_force():
    hmm = random_hmm(n_states=3, vocab_size=4, seed=6)
    tokens = [1, 3, 0, 0, 2]
    joint = brute_force_joint(hmm, tokens)
    total = sum(joint.values())
    marginals = np.zeros((len(tokens), 3))
    for path, p in joint.items():
        marginals[np.arange(len(tokens)), path] += p / total
    posteriors = hmm.posteriors(np.array(tokens))
    assert np.allclose(posteriors.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(posteriors, marginals, atol=1e-5)
    for t in range(len(tokens)):  # filtered beliefs: the same enumeration on the prefix
        prefix = brute_force_joint(hmm, tokens[: t + 1])
        filtered = np.zeros(3)
        for path, p in prefix.items():
            filtered[path[-1]] += p
        assert np.allclose(hmm.beliefs(np.array(tokens))[t], filtered / filtered.sum(), atol=1e-5)
    assert list(hmm.viterbi(np.array(tokens))) == list(max(joint, key=joint.get))


def test_interface_next_token_probs_is_the_likelihood_ratio():
    hmm = random_hmm(n_states=3, vocab_size=5, seed=2)
    prompt = np.array([4, 1, 1])
    probs = hmm.next_token_probs(prompt)
    assert probs.shape == (5,) and probs.sum() == pytest.approx(1.0, abs=1e-12)
    base = hmm.log_likelihood([prompt])[0]
    for token in range(5):
        extended = hmm.log_likelihood([np.append(prompt, token)])[0]
        assert probs[token] == pytest.approx(np.exp(extended - base), rel=1e-4)
    assert np.allclose(hmm.next_token_probs([]), hmm.start.double().numpy() @ hmm.emit.double().numpy())


def test_interface_token_nats_are_the_forward_normalisers():
    hmm = random_hmm(n_states=3, vocab_size=4, seed=6)
    seqs = varied_sequences(hmm, n=9, max_length=12, seed=1)
    nats = hmm.token_nats(seqs, batch_tokens=20)  # several packed batches
    assert [len(n) for n in nats] == [len(s) for s in seqs]
    assert np.allclose([-n.sum() for n in nats], hmm.log_likelihood(seqs), rtol=1e-9)
    tokens = [1, 3, 0, 0, 2]  # each token's cost is the ratio of brute-force prefix likelihoods
    prefix_probs = [sum(brute_force_joint(hmm, tokens[: t + 1]).values()) for t in range(len(tokens))]
    expected = -np.log(np.array(prefix_probs) / np.array([1.0, *prefix_probs[:-1]]))
    assert np.allclose(hmm.token_nats([np.array(tokens)])[0], expected, rtol=1e-5)


def test_interface_sizes():
    hmm = random_hmm(n_states=3, vocab_size=6, seed=0)
    assert (hmm.family, hmm.label, hmm.n_params, hmm.train_tokens, hmm.train_flops) == ("hmm", "HMM K=3", 2 + 6 + 15, 0, 0.0)
    seqs = varied_sequences(hmm, n=5, max_length=8)
    hmm.fit(seqs, n_iter=2, tol=0, progress=False)
    n_tokens = sum(len(s) for s in seqs)
    assert hmm.train_tokens == n_tokens and hmm.train_flops == 6.0 * 9 * n_tokens * len(hmm.history)


def test_sample_is_deterministic_for_a_seed():
    hmm = random_hmm(n_states=3, vocab_size=6, seed=0)
    tokens, states = hmm.sample(4, 7, seed=5)
    assert tokens.shape == states.shape == (4, 7)
    again, _ = hmm.sample(4, 7, seed=5)
    assert np.array_equal(tokens, again)


def test_interface_generate_is_deterministic_and_stops_at_stop_id():
    hmm = random_hmm(n_states=3, vocab_size=6, seed=0)
    out = hmm.generate([1, 2], max_new_tokens=6, seed=3)  # no eot_id: never stops early
    assert len(out) == 6 and np.array_equal(out, hmm.generate([1, 2], max_new_tokens=6, seed=3))
    greedy = hmm.generate([1], max_new_tokens=1, greedy=True)
    assert greedy[-1] == np.argmax(hmm.next_token_probs([1]))
    assert len(hmm.generate([1], max_new_tokens=50, stop_id=int(greedy[-1]), greedy=True)) == 1
    hmm.eot_id = int(greedy[-1])  # the end-of-text token is the default stop
    assert list(hmm.generate([1], max_new_tokens=50, greedy=True)) == [greedy[-1]]


# ----------------------------------------------------------------------------- files
TIMING_COLUMNS = ("elapsed_s", "tokens_per_s")


def fit_bytes(hmm):
    """What a fit leaves behind: table bytes and history rows without timings."""
    return (
        [t.numpy().tobytes() for t in tables(hmm)],
        [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in hmm.history],
    )


def test_save_load_round_trip_is_exact(tmp_path):
    hmm = random_hmm(n_states=4, vocab_size=9, seed=1)
    hmm.fit(varied_sequences(hmm), n_iter=2, progress=False)
    hmm.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["hmm.safetensors"]  # one file: one atomic rename
    loaded = CategoricalHMM.load(tmp_path / "model", device="cpu")
    assert fit_bytes(loaded) == fit_bytes(hmm)
    assert loaded.history == hmm.history


def write_tables(path, tensors, meta=None):
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=None if meta is None else {"format": "storylab.CategoricalHMM/2", "meta": json.dumps(meta)})


def test_corrupted_truncated_or_wrong_files_are_one_line_errors_naming_the_file(tmp_path):
    random_hmm().save(tmp_path / "ok")
    weights = (tmp_path / "ok" / "hmm.safetensors").read_bytes()
    for name, content in (("garbage", b"not a safetensors file"), ("truncated", weights[:-10]), ("header_only", weights[:40])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "hmm.safetensors").write_bytes(content)
        with pytest.raises(ValueError, match=rf"{name}/hmm.safetensors is truncated or corrupted") as error:
            CategoricalHMM.load(tmp_path / name)
        assert "\n" not in str(error.value)
    meta = {"n_states": 3, "vocab_size": 4, "history": []}
    good = {"start": torch.ones(3) / 3, "trans": torch.ones(3, 3) / 3, "emit": torch.ones(3, 4) / 4}
    cases = {
        "shapes": ({**good, "trans": torch.ones(3, 2) / 2}, meta, "shapes"),
        "dtype": ({**good, "emit": torch.ones(3, 4, dtype=torch.float64) / 4}, meta, r"emit as float64, expected float32"),
        "says": (good, {**meta, "vocab_size": 99}, r"3 states x 4 tokens but its header says 3 x 99"),
        "foreign": (good, None, "not a saved CategoricalHMM"),
    }
    for name, (tensors, header, message) in cases.items():
        (tmp_path / name).mkdir()
        write_tables(tmp_path / name / "hmm.safetensors", tensors, header)
        with pytest.raises(ValueError, match=rf"{name}/hmm.safetensors.*{message}"):
            CategoricalHMM.load(tmp_path / name)
    with pytest.raises(ValueError, match="not a saved CategoricalHMM"):
        CategoricalHMM.load(tmp_path / "missing")


def test_files_of_the_old_two_file_format_load_but_do_not_resume(tmp_path):
    from safetensors.torch import save_file

    hmm = random_hmm(n_states=3, vocab_size=4, seed=2)
    seqs = varied_sequences(hmm, n=5, max_length=10)
    hmm.fit(seqs, n_iter=2, progress=False)
    old = tmp_path / "old"
    old.mkdir()
    save_file(dict(zip(("start", "trans", "emit"), tables(hmm))), str(old / "hmm.safetensors"))
    (old / "hmm.json").write_text(json.dumps({"format": "storylab.CategoricalHMM/1", "n_states": 3, "vocab_size": 4, "history": list(hmm.history)}))
    assert fit_bytes(CategoricalHMM.load(old, device="cpu")) == fit_bytes(hmm)
    with pytest.raises(ValueError, match="old two-file format"):
        random_hmm(n_states=3, vocab_size=4).fit(seqs, n_iter=3, progress=False, checkpoint=old)


def test_resumed_fit_gives_the_same_bytes_as_an_unbroken_one(tmp_path):
    # 16 states x 200 tokens: big enough that renormalising the saved float32 tables on
    # resume changes their last bits (it did, and the fits drifted apart)
    truth = random_hmm(n_states=16, vocab_size=200, seed=8)
    seqs = varied_sequences(truth, n=30, max_length=40, seed=1)
    unbroken = random_hmm(n_states=16, vocab_size=200, seed=0)
    unbroken.fit(seqs, n_iter=8, tol=0.0, val=seqs[:5], progress=False)
    random_hmm(n_states=16, vocab_size=200, seed=0).fit(seqs, n_iter=5, tol=0.0, val=seqs[:5], progress=False, checkpoint=tmp_path / "ckpt")
    resumed = random_hmm(n_states=16, vocab_size=200, seed=0)
    history = resumed.fit(seqs, n_iter=8, tol=0.0, val=seqs[:5], progress=False, checkpoint=tmp_path / "ckpt")
    assert [row["iteration"] for row in history] == list(range(1, 9))
    assert fit_bytes(resumed) == fit_bytes(unbroken)
    with pytest.raises(ValueError, match="checkpoint.*other training data"):
        random_hmm(n_states=16, vocab_size=200).fit(seqs[:5], n_iter=9, progress=False, checkpoint=tmp_path / "ckpt")
    with pytest.raises(ValueError, match="checkpoint.*smoothing"):
        random_hmm(n_states=16, vocab_size=200).fit(seqs, n_iter=9, smoothing=0.5, progress=False, checkpoint=tmp_path / "ckpt")


KILLED_FIT = """
import os, signal, sys
import numpy as np
from storylab.hmm import CategoricalHMM

folder, kill_after, seqs = sys.argv[1], int(sys.argv[2]), list(np.load(sys.argv[3]))
real_replace, renames = os.replace, []

def replace_then_die(src, dst):  # SIGKILL right after a checkpoint's weights are renamed into place
    real_replace(src, dst)
    renames.append(dst)
    if str(dst).endswith("hmm.safetensors") and len([d for d in renames if str(d).endswith("hmm.safetensors")]) == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)

os.replace = replace_then_die
CategoricalHMM(16, 200, seed=0, device="cpu").fit(seqs, n_iter=8, tol=0.0, progress=False, checkpoint=folder)
"""


@pytest.mark.slow  # its child processes import the installed library, not a mutation run's copy
def test_fit_killed_with_sigkill_resumes_to_the_same_bytes(tmp_path):
    # a real process killed at the worst moment: just after the 5th checkpoint's weights
    # are in place (with the old two-file checkpoint, before its history was)
    import os
    import subprocess
    import sys

    import storylab

    truth = random_hmm(n_states=16, vocab_size=200, seed=8)
    tokens, _ = truth.sample(30, 40, seed=1)
    np.save(tmp_path / "seqs.npy", tokens)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(storylab.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    killed = subprocess.run([sys.executable, "-c", KILLED_FIT, str(tmp_path / "ckpt"), "5", str(tmp_path / "seqs.npy")], env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    resumed = random_hmm(n_states=16, vocab_size=200, seed=0)
    resumed.fit(list(tokens), n_iter=8, tol=0.0, progress=False, checkpoint=tmp_path / "ckpt")
    unbroken = random_hmm(n_states=16, vocab_size=200, seed=0)
    unbroken.fit(list(tokens), n_iter=8, tol=0.0, progress=False)
    assert fit_bytes(resumed) == fit_bytes(unbroken)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("bad", [[np.array([0, 1, 9])], [np.array([0, -1])]])
def test_out_of_range_token_ids_are_clear_errors(bad):
    hmm = random_hmm(vocab_size=4)
    with pytest.raises(ValueError, match=r"sequences: token id -?\d+ in sequence 0 is outside \[0, vocab_size=4\)"):
        hmm.log_likelihood(bad)
    with pytest.raises(ValueError, match="sequences"):
        hmm.fit(bad, progress=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_states": 0, "vocab_size": 3}, "n_states"),
        ({"n_states": 2, "vocab_size": 3, "init": "kmeans"}, "init"),
        ({"n_states": 2, "vocab_size": 3, "concentration": 0}, "concentration"),
    ],
)
def test_bad_constructor_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CategoricalHMM(**kwargs)


def test_empty_or_float_sequences_are_clear_errors():
    hmm = random_hmm()
    with pytest.raises(ValueError, match="non-empty"):
        hmm.log_likelihood([np.array([], dtype=np.int64)])
    with pytest.raises(ValueError, match="integer"):
        hmm.log_likelihood([np.array([0.5, 1.0])])
    with pytest.raises(ValueError, match="smoothing"):
        hmm.fit([np.array([0, 1])], smoothing=-1, progress=False)


def test_from_params_rejects_non_distributions():
    with pytest.raises(ValueError, match="trans"):
        CategoricalHMM.from_params([0.5, 0.5], [[0.9, 0.2], [0.5, 0.5]], [[1.0], [1.0]])


# ----------------------------------------------------------------------------- pomegranate
def test_pomegranate_round_trip_keeps_full_vocabulary_width():
    hmm = random_hmm(n_states=3, vocab_size=50, seed=0)
    model = hmm.to_pomegranate()
    assert model.distributions[0].probs.shape == (1, 50)
    back = CategoricalHMM.from_pomegranate(model, vocab_size=50, device="cpu")
    assert back.emit.shape == (3, 50)
    for a, b in zip(params64(hmm), params64(back)):
        assert np.allclose(a, b, atol=1e-6)
    tokens = np.array([[3, 7, 7, 1, 49]])
    theirs = model.log_probability(torch.as_tensor(tokens[..., None]))
    assert float(theirs[0]) == pytest.approx(hmm.log_likelihood(tokens)[0], rel=1e-5)


def test_from_pomegranate_pads_a_narrow_emission_table():
    from pomegranate.distributions import Categorical
    from pomegranate.hmm import DenseHMM

    narrow = DenseHMM([Categorical([[0.5, 0.5]]), Categorical([[0.1, 0.9]])], edges=[[0.7, 0.3], [0.4, 0.6]], starts=[0.5, 0.5])
    hmm = CategoricalHMM.from_pomegranate(narrow, vocab_size=10, device="cpu")
    assert hmm.emit.shape == (2, 10) and float(hmm.emit[:, 2:].sum()) == 0.0
    with pytest.raises(ValueError, match="vocab_size"):
        CategoricalHMM.from_pomegranate(narrow, vocab_size=1)


# ----------------------------------------------------------------------------- unigram init, inference, generation, files, resume
def test_unigram_init_scales_add_one_counts_by_noise_in_half_to_one_and_a_half():
    # fit(n_iter=0) stops after the init; every emission is (count + 1) x u with u drawn
    # uniformly in [0.5, 1.5] (±50%), so a row's u recovered up to its scale spans a
    # factor of about 3 (not more), with its median about twice its minimum
    counts = np.concatenate([np.arange(1, 51), np.zeros(50, dtype=np.int64)])  # tokens 50..99 never occur
    hmm = CategoricalHMM(4, 100, seed=2, init="unigram", device="cpu")
    hmm.fit([np.repeat(np.arange(100), counts)], n_iter=0, progress=False)
    emit = params64(hmm)[2]
    assert (emit > 0).all()
    u = emit / (counts + 1)
    spread, median = u.max(axis=1) / u.min(axis=1), np.median(u, axis=1) / u.min(axis=1)
    assert ((spread > 2.7) & (spread <= 3 * (1 + 1e-6))).all(), spread
    assert ((median > 1.8) & (median < 2.2)).all(), median  # 1/u, say, has its median at 1.5x its minimum
    assert not np.allclose(emit[0], emit[1], rtol=0.1)  # the noise breaks the symmetry between states


def test_inference_errors_name_the_argument_given():
    hmm = random_hmm(vocab_size=4)
    for method in (hmm.viterbi, hmm.posteriors, hmm.beliefs):
        with pytest.raises(ValueError, match=r"^seq: token id 9 in sequence 0 is outside \[0, vocab_size=4\)"):
            method(np.array([0, 9]))
    with pytest.raises(ValueError, match=r"^sequences: token id 9 in sequence 1 is outside \[0, vocab_size=4\)"):
        hmm.occupancy([np.array([0]), np.array([0, 9])])
    with pytest.raises(ValueError, match=r"^ids: token id 9 in sequence 0 is outside \[0, vocab_size=4\)"):
        hmm.next_token_probs_all([0, 9])


def test_occupancy_is_each_states_share_of_the_posterior_mass():
    hmm = random_hmm(n_states=3, vocab_size=5, seed=3)
    seqs = varied_sequences(hmm, n=12, max_length=20, seed=4)
    mass = sum(hmm.posteriors(s).sum(axis=0) for s in seqs)  # posteriors are checked against brute force above
    np.testing.assert_allclose(hmm.occupancy(seqs, batch_tokens=30), mass / mass.sum(), rtol=1e-5)  # several batches
    long = hmm.sample(1, 600, seed=1)[0][0]
    mass = hmm.posteriors(long).sum(axis=0)
    # summed in float64: a float32 sum of 600 posteriors is off by ~1e-7
    np.testing.assert_allclose(hmm.occupancy([long]), mass / mass.sum(), rtol=1e-13)


def test_next_token_probs_all_rows_are_normalised_next_token_distributions_of_each_prefix():
    hmm = random_hmm(n_states=3, vocab_size=5, seed=2)
    ids = [4, 1, 1, 0]
    rows = hmm.next_token_probs_all(ids)
    assert rows.shape == (5, 5) and rows.dtype == np.float64
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, rtol=0, atol=1e-12)  # float32 tables sum to 1 only to ~1e-7
    for t in range(len(ids) + 1):
        np.testing.assert_allclose(rows[t], hmm.next_token_probs(ids[:t]), rtol=1e-6)


def test_a_prefix_of_probability_zero_costs_infinite_nats_and_has_no_next_token():
    emit = np.array([[1.0, 0.0], [1.0, 0.0]])  # token 1 is never emitted
    hmm = CategoricalHMM.from_params([0.5, 0.5], [[0.5, 0.5], [0.5, 0.5]], emit, device="cpu")
    nats = hmm.token_nats([np.array([0, 1, 0]), np.array([0, 1])])
    assert list(nats[0]) == [0.0, np.inf, np.inf] and list(nats[1]) == [0.0, np.inf]  # inf, not the largest float
    assert list(hmm.log_likelihood([np.array([0, 1, 0]), np.array([0, 1])])) == [-np.inf, -np.inf]
    message = r"^prefix_ids: has probability 0 under this HMM \(a token no state reachable there emits\)$"
    with pytest.raises(ValueError, match=message):
        hmm.next_token_probs([0, 1])
    with pytest.raises(ValueError, match=message):
        hmm.next_token_probs_all([0, 1, 0])


def test_generate_draws_each_token_from_next_token_probs_of_the_prefix_and_the_tokens_so_far():
    from storylab.sampling import generate_tokens

    # the oracle re-filters the whole context for every token; generate updates one belief
    hmm = random_hmm(n_states=3, vocab_size=6, seed=4)
    for prefix, options in (([], {}), ([1, 2], {"top_k": 2}), ([5], {"temperature": 0.7, "seed": 3})):
        def predict(new_ids, prefix=prefix):
            return hmm.next_token_probs([*prefix, *new_ids])

        # defaults as in storylab.lm: temperature 1, seed 0, no top_k
        expected = generate_tokens(predict, 30, vocab_size=6, eot_id=None, **{"temperature": 1.0, "seed": 0, **options})
        assert list(hmm.generate(prefix, 30, **options)) == list(expected), (prefix, options)
    with pytest.raises(ValueError, match=r"^stop_id: expected an integer in \[0, 6\), got 6"):
        hmm.generate([1], 3, stop_id=6)


def test_a_saved_model_keeps_every_setting_and_its_fit_bookkeeping(tmp_path):
    from storylab import hmm_io

    settings = {"seed": 5, "init": "unigram", "concentration": 0.5, "eot_id": 3, "emission_blocks": 2,
                "token_block_method": "random", "dtype": "float64"}
    seqs = varied_sequences(random_hmm(n_states=3, vocab_size=6, seed=1), n=8, max_length=12)
    hmm = CategoricalHMM(4, 6, device="cpu", **settings)
    hmm.fit(seqs, n_iter=2, tol=0.0, progress=False, checkpoint=tmp_path / "ckpt")
    loaded = CategoricalHMM.load(tmp_path / "ckpt", device="cpu")
    assert {name: getattr(loaded, name) for name in settings} == {**settings, "dtype": torch.float64}
    assert loaded.train_tokens == sum(map(len, seqs)) > 0 and loaded.train_flops == hmm.train_flops
    assert hmm_io.load_params(tmp_path / "ckpt")[1]["iteration"] == 2  # the header says how far the fit got
    loaded.save(tmp_path / "copy")  # a loaded checkpoint saved elsewhere is still one its fit resumes from
    resumed = CategoricalHMM(4, 6, device="cpu", **settings)
    resumed.fit(seqs, n_iter=3, tol=0.0, progress=False, checkpoint=tmp_path / "copy")
    assert [row["iteration"] for row in resumed.history] == [1, 2, 3]
    assert resumed.history[:2] == hmm.history


def test_a_header_with_only_the_sizes_loads_with_default_settings(tmp_path):
    # files from before the settings were saved; a setting this version refuses is a one-line error
    uniform = {"start": torch.ones(3) / 3, "trans": torch.ones(3, 3) / 3, "emit": torch.ones(3, 4) / 4}
    (tmp_path / "old").mkdir()
    write_tables(tmp_path / "old" / "hmm.safetensors", uniform, {"n_states": 3, "vocab_size": 4})
    loaded = CategoricalHMM.load(tmp_path / "old", device="cpu")
    got = (loaded.seed, loaded.init, loaded.concentration, loaded.eot_id, loaded.emission_blocks, loaded.token_block_method, loaded.dtype)
    assert got == (0, "random", 1.0, None, 1, "context", torch.float32)
    assert loaded.history == [] and loaded.train_tokens == 0
    (tmp_path / "bad").mkdir()
    write_tables(tmp_path / "bad" / "hmm.safetensors", uniform, {"n_states": 3, "vocab_size": 4, "init": "kmeans"})
    message = r"bad/hmm.safetensors has settings this version cannot use: init: expected one of \('random', 'unigram'\), got 'kmeans'$"
    with pytest.raises(ValueError, match=message):
        CategoricalHMM.load(tmp_path / "bad")


def rewrite_checkpoint(folder, drop=(), **tensors):
    """Rewrite a saved model's file without the header keys `drop` and with the given tables."""
    from storylab import hmm_io

    saved, meta, _ = hmm_io.load_params(folder)
    write_tables(folder / "hmm.safetensors", {**saved, **tensors}, {k: v for k, v in meta.items() if k not in drop})


def test_a_checkpoint_the_fit_cannot_continue_is_refused_naming_what_differs(tmp_path):
    seqs = varied_sequences(random_hmm(n_states=3, vocab_size=4, seed=2), n=5, max_length=10)
    folder, folder64 = tmp_path / "ckpt", tmp_path / "ckpt64"
    CategoricalHMM(4, 4, seed=0, device="cpu").fit(seqs, n_iter=1, progress=False, checkpoint=folder)
    CategoricalHMM(4, 4, seed=0, device="cpu", dtype="float64").fit(seqs, n_iter=1, progress=False, checkpoint=folder64)
    where = re.escape(f"checkpoint: {folder}")

    def refused(message, *args, checkpoint=folder, data=seqs, smoothing=0.0, **kwargs):
        with pytest.raises(ValueError, match=message):
            CategoricalHMM(*args, seed=0, device="cpu", **kwargs).fit(data, n_iter=2, smoothing=smoothing, progress=False, checkpoint=checkpoint)

    refused(rf"^{where} holds 4 states x 4 tokens, this model is 2 x 4$", 2, 4)
    n_tokens = sum(map(len, seqs))
    refused(rf"^{where} was written for other training data \({{'n_sequences': 5, 'n_tokens': {n_tokens}, 'sha256': '[0-9a-f]{{16}}'}}, "
            rf"now {{'n_sequences': 4, 'n_tokens': {n_tokens - len(seqs[4])}, ", 4, 4, data=seqs[:4])
    refused(rf"^{where} " + re.escape("was written by a fit with other settings ({'smoothing': 0.0}, now {'smoothing': 0.5}); smoothing must match"),
            4, 4, smoothing=0.5)
    refused(rf"^{where} holds float32 tables, this model computes in float64$", 4, 4, dtype="float64")
    refused(rf"^{re.escape(f'checkpoint: {folder64}')} holds float64 tables, this model computes in float32$", 4, 4, checkpoint=folder64)
    # a header from before dtype and emission_blocks were saved: a float32 dense model's
    rewrite_checkpoint(folder, drop=("dtype", "emission_blocks"))
    refused(rf"^{where} holds float32 tables, this model computes in float64$", 4, 4, dtype="float64")
    refused(rf"^{where} holds a model with emission_blocks=1, this model has 2$", 4, 4, emission_blocks=2)
    resumed = CategoricalHMM(4, 4, seed=0, device="cpu")
    assert len(resumed.fit(seqs, n_iter=2, tol=0.0, progress=False, checkpoint=folder)) == 2


def test_a_blocked_checkpoint_with_emissions_outside_its_blocks_is_refused(tmp_path):
    seqs = varied_sequences(random_hmm(n_states=3, vocab_size=4, seed=2), n=5, max_length=10)
    CategoricalHMM(4, 4, seed=0, device="cpu", emission_blocks=2).fit(seqs, n_iter=1, progress=False, checkpoint=tmp_path / "ckpt")
    rewrite_checkpoint(tmp_path / "ckpt", emit=torch.full((4, 4), 0.25))
    message = re.escape(f"checkpoint: {tmp_path / 'ckpt'}: emit has probability outside the token blocks")
    with pytest.raises(ValueError, match=f"^{message}"):
        CategoricalHMM(4, 4, seed=0, device="cpu", emission_blocks=2).fit(seqs, n_iter=2, progress=False, checkpoint=tmp_path / "ckpt")


# ----------------------------------------------------------------------------- fit settings, convergence, progress, tracking
def one_state_hmm():
    # one state: the first EM step sets the emissions to the token frequencies, and no later step moves them
    return CategoricalHMM.from_params([1.0], [[1.0]], [[0.5, 0.5]], device="cpu")


ONE_STATE_DATA = [np.array([0, 0, 0, 1])]
UNIFORM_NATS = np.log(2)  # per token, under the uniform emissions the fit starts from
FREQUENCY_NATS = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))  # under the frequencies (3/4, 1/4) after one step


def test_a_default_fit_stops_once_the_relative_improvement_per_token_falls_below_1e_4():
    history = one_state_hmm().fit(ONE_STATE_DATA, progress=False)
    assert [row["iteration"] for row in history] == [1, 2, 3]
    assert [row["train_nats_per_token"] for row in history] == pytest.approx([UNIFORM_NATS, FREQUENCY_NATS, FREQUENCY_NATS], rel=1e-6)
    # improvement relative to the previous nats per token (here below 1, so dividing by anything else shows)
    assert history[0]["relative_improvement"] is None
    assert history[1]["relative_improvement"] == pytest.approx((UNIFORM_NATS - FREQUENCY_NATS) / UNIFORM_NATS, rel=1e-5)
    assert history[2]["relative_improvement"] == 0.0  # the same tables score the same bits
    assert [row["converged"] for row in history] == [False, False, True] and all(type(row["converged"]) is bool for row in history)
    assert set(history[0]) == {"iteration", "train_log_likelihood", "train_nats_per_token", "elapsed_s", "tokens_per_s",
                               "relative_improvement", "converged"}


def test_a_default_fit_runs_50_iterations_and_tol_0_stops_only_on_a_decrease():
    history = one_state_hmm().fit(ONE_STATE_DATA, tol=0.0, progress=False)
    assert len(history) == 50  # an improvement of exactly 0 is not below tol=0
    assert not any(row["converged"] for row in history)


def test_a_converged_fit_is_not_continued_but_a_row_without_the_flag_does_not_stop_it(tmp_path):
    from storylab import hmm_io

    hmm = one_state_hmm()
    hmm.fit(ONE_STATE_DATA, progress=False)
    assert len(hmm.fit(ONE_STATE_DATA, n_iter=5, progress=False)) == 3
    # a history from a file whose rows carry no convergence flag (hand-made or foreign) counts as not converged
    hmm.save(tmp_path / "model")
    tensors, meta, _ = hmm_io.load_params(tmp_path / "model")
    rows = [{k: v for k, v in row.items() if k not in ("converged", "relative_improvement")} for row in meta["history"]]
    write_tables(tmp_path / "model" / "hmm.safetensors", tensors, {**meta, "history": rows})
    loaded = CategoricalHMM.load(tmp_path / "model", device="cpu")
    assert len(loaded.fit(ONE_STATE_DATA, n_iter=1, progress=False)) == 4


def test_bad_fit_arguments_are_one_line_errors_naming_the_argument():
    hmm = random_hmm(vocab_size=4)
    seqs = [np.array([0, 1, 2])]
    cases = [
        ({"n_iter": -1}, r"^n_iter: expected an integer >= 0, got -1$"),
        ({"tol": -0.5}, r"^tol: expected a number >= 0, got -0.5$"),
        ({"smoothing": -1}, r"^smoothing: expected a number >= 0, got -1$"),
        ({"batch_tokens": 0}, r"^batch_tokens: expected an integer >= 1, got 0$"),
        ({"batch_tokens": 2.5}, r"^batch_tokens: expected an integer >= 1, got 2.5$"),
        ({"val": [np.array([0, 7])]}, r"^val: token id 7 in sequence 0 is outside \[0, vocab_size=4\)$"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            hmm.fit(seqs, progress=False, **kwargs)
    with pytest.raises(ValueError, match=r"^sequences: token id 7 in sequence 1 is outside \[0, vocab_size=4\)$"):
        hmm.fit([np.array([0]), np.array([7])], progress=False)
    assert hmm.history == []


def test_fit_packs_at_most_batch_tokens_tokens_into_each_e_step_batch(monkeypatch):
    sizes = []
    accumulate = engine.accumulate_batch

    def recording(stats, batch, *args, **kwargs):
        sizes.append(batch.n_tokens)
        return accumulate(stats, batch, *args, **kwargs)

    monkeypatch.setattr(engine, "accumulate_batch", recording)
    seqs = [np.array([0, 1, 2, 3, 0])] * 6
    random_hmm().fit(seqs, n_iter=1, progress=False, batch_tokens=10)
    assert sizes == [10, 10, 10]
    sizes.clear()
    random_hmm().fit(seqs, n_iter=1, progress=False, batch_tokens=1)  # the smallest budget: one sequence a batch
    assert sizes == [5] * 6


def test_the_iteration_time_is_the_e_and_m_step_without_the_validation_scoring(monkeypatch):
    import types

    # read at the step's start, around the validation scoring, and at the M-step's end
    clock = iter([100.0, 101.0, 104.0, 111.0])
    monkeypatch.setattr(hmm_module, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    seqs = [np.array([0, 1, 2]), np.array([3, 0])]
    (row,) = random_hmm().fit(seqs, n_iter=1, val=seqs, progress=False)
    assert row["elapsed_s"] == 8.0  # 11 s in all, less the 3 s of validation
    assert row["tokens_per_s"] == 5 / 8.0


def test_distributed_true_without_a_launcher_is_a_plain_fit_and_false_ignores_the_launchers_variables(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_JOB_ID", "SUBMITIT_LOCAL_JOB_ID"):
        monkeypatch.delenv(name, raising=False)
    seqs = varied_sequences(random_hmm(seed=1), n=6, max_length=10)
    plain, joined = random_hmm(seed=2), random_hmm(seed=2)
    plain.fit(seqs, n_iter=2, tol=0.0, progress=False)
    joined.fit(seqs, n_iter=2, tol=0.0, progress=False, distributed=True)
    assert fit_bytes(joined) == fit_bytes(plain)
    # under a launcher that did not finish its set-up, only a fit asked to be distributed reads its variables
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match=r"^distributed: WORLD_SIZE > 1 but RANK, MASTER_ADDR, MASTER_PORT not set"):
        random_hmm().fit(seqs, n_iter=1, progress=False, distributed=True)
    assert len(random_hmm().fit(seqs, n_iter=1, progress=False)) == 1


def final_bar_line(total_done, total, nats):
    """The one line a headless (STORYLAB_HEADLESS) EM bar prints when it closes."""
    rate = r"(\?|[0-9.]+)iter/s|[0-9.]+s/iter"
    return rf"\rEM: +\d+%\|[^|]*\| {total_done}/{total} \[[0-9:]+<[0-9:?]+, ({rate}), train_nats_per_token={re.escape(f'{nats:.4f}')}\]\n"


def test_fit_shows_one_em_bar_by_default_and_none_with_progress_false(monkeypatch, capsys):
    monkeypatch.setenv("STORYLAB_HEADLESS", "1")  # the bar prints nothing until it closes, then one line
    history = one_state_hmm().fit(ONE_STATE_DATA)
    assert re.fullmatch(final_bar_line(3, 50, history[-1]["train_nats_per_token"]), capsys.readouterr().err)
    one_state_hmm().fit(ONE_STATE_DATA, progress=False)
    assert capsys.readouterr().err == ""


class RecordingTracker(Tracker):
    """A tracker that keeps what it is given to log (writing nothing)."""

    def __init__(self):
        super().__init__(None)
        self.logged = []

    def log(self, step, scalars):
        self.logged.append((step, dict(scalars)))


def test_a_resumed_fit_replays_its_rows_to_the_tracker_and_its_bar_counts_from_the_checkpoint(tmp_path, monkeypatch, capsys):
    seqs = varied_sequences(random_hmm(seed=1), n=6, max_length=10)
    random_hmm(seed=3).fit(seqs, n_iter=2, tol=0.0, val=seqs[:2], progress=False, checkpoint=tmp_path / "ckpt")
    stale = tmp_path / "ckpt" / ".tmp-hmm.safetensors-0123abcd"  # what a fit killed inside a save leaves
    stale.write_bytes(b"half a file")
    monkeypatch.setenv("STORYLAB_HEADLESS", "1")
    tracker = RecordingTracker()
    history = random_hmm(seed=3).fit(seqs, n_iter=3, tol=0.0, val=seqs[:2], checkpoint=tmp_path / "ckpt", tracker=tracker)
    assert len(history) == 3 and not stale.exists()
    assert tracker.logged == [(row["iteration"], {"em/train_nats_per_token": row["train_nats_per_token"],
                                                  "em/val_nats_per_token": row["val_nats_per_token"],
                                                  "em/tokens_per_s": row["tokens_per_s"], "em/iteration_s": row["elapsed_s"]})
                              for row in history]
    # the bar starts at the checkpoint's 2 iterations and ends at 3 of 3, redrawn once, when it closes
    assert re.fullmatch(final_bar_line(3, 3, history[-1]["train_nats_per_token"]), capsys.readouterr().err)


def test_the_data_fingerprint_is_the_sizes_and_a_hash_of_each_length_then_its_ids():
    import hashlib

    from storylab.hmm import data_fingerprint

    seqs = [np.array([3, 1, 4], dtype=np.int32), np.array([1]), np.array([5, 9])]
    record = np.array([3, 3, 1, 4, 1, 1, 2, 5, 9], dtype=np.int64)
    expected = {"n_sequences": 3, "n_tokens": 6, "sha256": hashlib.sha256(record.tobytes()).hexdigest()[:16]}
    assert data_fingerprint(seqs) == expected
    assert data_fingerprint(as_token_source(seqs, 10)) == expected


def test_sample_defaults_to_seed_0_and_needs_at_least_one_token():
    hmm = random_hmm(n_states=3, vocab_size=4, seed=1)
    tokens, states = hmm.sample(3, 6)
    assert np.array_equal(tokens, hmm.sample(3, 6, seed=0)[0]) and np.array_equal(states, hmm.sample(3, 6, seed=0)[1])
    assert not np.array_equal(tokens, hmm.sample(3, 6, seed=1)[0])
    with pytest.raises(ValueError, match=r"^n: expected an integer >= 1, got 0$"):
        hmm.sample(0, 6)
    with pytest.raises(ValueError, match=r"^length: expected an integer >= 1, got 0$"):
        hmm.sample(3, 0)


def test_from_params_takes_tensors_of_any_float_dtype_or_lists_of_row_tensors_and_keeps_its_settings():
    from storylab.devices import resolve_device

    start, trans, emit = [0.25, 0.75], [[0.5, 0.5], [0.25, 0.75]], [[0.5, 0.25, 0.25], [0.0, 0.5, 0.5]]  # exact in binary
    plain = CategoricalHMM.from_params(start, trans, emit)
    assert (plain.device, plain.eot_id, plain.dtype) == (resolve_device("auto"), None, torch.float32)
    mixed = CategoricalHMM.from_params(torch.tensor(start, dtype=torch.bfloat16), np.array(trans), [torch.tensor(row) for row in emit],
                                       device="cpu", eot_id=2, dtype="float64")
    assert (mixed.eot_id, mixed.dtype) == (2, torch.float64)
    for got, want in zip(tables(mixed), (start, trans, emit)):
        assert got.dtype == torch.float64 and np.array_equal(got.numpy(), np.array(want))
    back = CategoricalHMM.from_pomegranate(mixed.to_pomegranate(), vocab_size=3)
    assert back.device == resolve_device("auto") and np.allclose(params64(back)[2], emit)


# ----------------------------------------------------------------------------- engine bookkeeping
# batch plans, packed batches kept between passes, buffers, memory budgets (storylab.hmm_engine)
CPU = torch.device("cpu")


def plan(lengths, batch_tokens):
    return [list(map(int, index)) for index in engine.plan_batches(np.asarray(lengths), batch_tokens)]


@pytest.mark.parametrize(
    ("lengths", "batch_tokens", "expected"),
    [
        # 20 tokens need 2 batches: about equal shares of 10, not 12 + 8
        ([2] * 10, 12, [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]),
        # 21 tokens, shares of 11: ties keep their given order
        ([1] * 21, 12, [list(range(11)), list(range(11, 21))]),
        # a batch may fill its budget exactly
        ([5, 5], 10, [[0, 1]]),
        # longest first; the longest (over budget) gets a batch of its own
        ([3, 15, 2, 2], 10, [[1], [0, 2, 3]]),
        ([3, 9, 4, 4, 4, 4], 10, [[1], [2, 3], [4, 5], [0]]),
        ([], 10, []),
    ],
)
def test_batch_plans_are_longest_first_in_about_equal_shares(lengths, batch_tokens, expected):
    assert plan(lengths, batch_tokens) == expected


def test_length_order_keeps_ties_in_the_given_order():
    lengths = np.arange(17) % 3  # long enough for NumPy's default sort to reorder ties
    assert list(engine.length_order(lengths)) == [2, 5, 8, 11, 14, 1, 4, 7, 10, 13, 16, 0, 3, 6, 9, 12, 15]


def test_workspace_reuses_a_buffer_while_it_is_big_enough_and_of_the_same_dtype():
    workspace = engine.Workspace(CPU)
    first = workspace.get("a", 2, 3)
    assert first.shape == (2, 3) and first.dtype == torch.float32
    assert workspace.get("a", 3, 2).data_ptr() == first.data_ptr()  # as many values: the same memory
    assert workspace.get("a", 1, 4).data_ptr() == first.data_ptr()  # fewer
    assert workspace.get("b", 2, 3).data_ptr() != first.data_ptr()  # another name, another buffer
    wider = workspace.get("a", 2, 4)
    assert wider.shape == (2, 4) and wider.data_ptr() != first.data_ptr()
    as_float64 = workspace.get("a", 1, 2, torch.float64)
    assert as_float64.dtype == torch.float64


def test_default_batch_budget_counts_three_buffers_per_token():
    assert engine.default_batch_tokens(100, CPU) == 2**30 // (3 * 4 * 100)
    assert engine.default_batch_tokens(100, CPU, dtype=torch.float64) == 2**30 // (3 * 8 * 100)
    assert engine.default_batch_tokens(100, torch.device("cuda")) == 4 * 2**30 // (3 * 4 * 100)  # no CUDA needed: the budget only
    assert engine.default_batch_tokens(100, CPU, memory_budget_mb=3) == 3 * 2**20 // (3 * 4 * 100)
    assert engine.default_batch_tokens(10**6, CPU) == 1024  # never fewer tokens than this
    blocked = CategoricalHMM(12, 10, seed=0, device="cpu", emission_blocks=3, token_blocks=np.arange(10) % 3)
    assert engine.default_batch_tokens(12, CPU, blocks=blocked._blocks) == 2**30 // (3 * 4 * 4)  # k = 4 live states


def test_batches_are_kept_between_passes_while_they_fit_the_budget():
    source = as_token_source([np.arange(n) % 5 for n in (9, 8, 7, 6, 5, 4)], 5, "sequences")
    sizes = [engine.batch_bytes(batch) for batch in engine.Batches(source, 10, CPU, keep_mb=0)]
    assert len(sizes) == 5 and sizes[0] == 2 * 8 * 9  # tokens and their rows, int64 each

    def kept_after_one_pass(keep_bytes):
        batches = engine.Batches(source, 10, CPU, keep_mb=keep_bytes / 2**20)
        first = list(batches)
        return [a is b for a, b in zip(first, batches)]

    assert kept_after_one_pass(0) == [False] * 5
    assert kept_after_one_pass(sizes[0] + sizes[1]) == [True, True, False, False, False]  # exactly full
    assert kept_after_one_pass(sizes[0] + sizes[1] - 1) == [True, False, True, False, False]  # the next that still fits
    assert all(kept_after_one_pass(sum(sizes)))


def test_batch_bytes_count_the_block_index_cached_on_the_batch():
    hmm = CategoricalHMM(12, 10, seed=0, device="cpu", emission_blocks=3, token_blocks=np.arange(10) % 3)
    (batch,) = engine.make_batches([np.arange(7) % 10, np.arange(4)], 100, CPU)
    assert engine.batch_bytes(batch) == 2 * 8 * 11
    index = hmm._blocks.index(batch)
    cached = sum(t.numel() * t.element_size() for t in vars(index).values() if isinstance(t, torch.Tensor))
    assert cached > 0 and engine.batch_bytes(batch) == 2 * 8 * 11 + cached


def test_stats_of_several_batches_add_up():
    hmm = CategoricalHMM(3, 5, seed=0, device="cpu")
    seqs = [np.arange(n) % 5 for n in (6, 5, 4, 3)]
    emit_t, workspace = hmm.emit.T.contiguous(), engine.Workspace(CPU)
    whole = engine.SufficientStats.zeros(3, 5, CPU)
    for batch in engine.make_batches(seqs, 100, CPU):
        engine.accumulate_batch(whole, batch, hmm.start, hmm.trans, emit_t, workspace)
    parts = engine.SufficientStats.zeros(3, 5, CPU)
    batches = engine.make_batches(seqs, 6, CPU)
    assert len(batches) == 4
    for batch in batches:
        engine.accumulate_batch(parts, batch, hmm.start, hmm.trans, emit_t, workspace)
    assert parts.n_tokens == whole.n_tokens == 18
    assert parts.log_likelihood == pytest.approx(whole.log_likelihood, rel=1e-6)
    assert parts.log_likelihood == pytest.approx(hmm.log_likelihood(seqs).sum(), rel=1e-6)
    for name in ("start", "pairs", "emit"):
        assert torch.allclose(getattr(parts, name).double(), getattr(whole, name).double(), atol=1e-5), name
