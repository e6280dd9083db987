"""CategoricalHMM: exact likelihoods, EM, inference, files, pomegranate interop, errors."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from storylab.hmm import CategoricalHMM


def random_hmm(n_states=3, vocab_size=4, seed=0, concentration=1.0):
    return CategoricalHMM(n_states, vocab_size, seed=seed, device="cpu", concentration=concentration)


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


def reference_em_step(hmm, seqs):
    """A plain NumPy Baum-Welch step (unscaled, float64) for short sequences."""
    start, trans, emit = params64(hmm)
    start_counts, trans_counts, emit_counts = np.zeros_like(start), np.zeros_like(trans), np.zeros_like(emit)
    for x in seqs:
        T = len(x)
        alpha, beta = np.zeros((T, hmm.n_states)), np.ones((T, hmm.n_states))
        alpha[0] = start * emit[:, x[0]]
        for t in range(1, T):
            alpha[t] = alpha[t - 1] @ trans * emit[:, x[t]]
        for t in range(T - 2, -1, -1):
            beta[t] = trans @ (emit[:, x[t + 1]] * beta[t + 1])
        likelihood = alpha[-1].sum()
        gamma = alpha * beta / likelihood
        start_counts += gamma[0]
        for t in range(T - 1):
            trans_counts += np.outer(alpha[t], emit[:, x[t + 1]] * beta[t + 1]) * trans / likelihood
        for t in range(T):
            emit_counts[:, x[t]] += gamma[t]
    normalise = lambda c: c / c.sum(axis=-1, keepdims=True)  # noqa: E731
    return normalise(start_counts), normalise(trans_counts), normalise(emit_counts)


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
def test_one_em_step_equals_numpy_reference():
    hmm = random_hmm(n_states=3, vocab_size=5, seed=4)
    seqs = varied_sequences(hmm, n=10, max_length=25, seed=2)
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


def test_tol_stops_early():
    hmm = random_hmm(n_states=2, vocab_size=3, seed=0)
    seqs = varied_sequences(hmm, n=20, max_length=30)
    history = random_hmm(n_states=2, vocab_size=3, seed=1).fit(seqs, n_iter=500, tol=1e-3, progress=False)
    assert len(history) < 500 and history[-1]["converged"]


def test_smoothing_keeps_unseen_tokens_possible():
    seqs = [np.array([0, 1, 0, 1, 2]), np.array([1, 1, 0])]
    hmm = CategoricalHMM(2, 6, seed=0, device="cpu")
    hmm.fit(seqs, n_iter=5, smoothing=0.1, progress=False)
    assert (hmm.emit > 0).all() and (hmm.trans > 0).all()
    assert np.isfinite(hmm.log_likelihood([np.array([5, 4, 3])])[0])


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
def test_save_load_round_trip_is_exact(tmp_path):
    hmm = random_hmm(n_states=4, vocab_size=9, seed=1)
    hmm.fit(varied_sequences(hmm), n_iter=2, progress=False)
    hmm.save(tmp_path / "model")
    loaded = CategoricalHMM.load(tmp_path / "model", device="cpu")
    for a, b in zip((hmm.start, hmm.trans, hmm.emit), (loaded.start, loaded.trans, loaded.emit)):
        assert torch.equal(a.cpu(), b.cpu())
    assert loaded.history == hmm.history


def test_corrupted_or_wrong_shaped_files_are_clear_errors(tmp_path):
    from safetensors.torch import save_file

    random_hmm().save(tmp_path / "ok")
    corrupted = tmp_path / "corrupted"
    random_hmm().save(corrupted)
    (corrupted / "hmm.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="corrupted"):
        CategoricalHMM.load(corrupted)
    wrong = tmp_path / "wrong"
    random_hmm().save(wrong)
    save_file({"start": torch.ones(3) / 3, "trans": torch.ones(3, 2) / 2, "emit": torch.ones(3, 4) / 4}, str(wrong / "hmm.safetensors"))
    with pytest.raises(ValueError, match="shapes"):
        CategoricalHMM.load(wrong)
    mismatch = tmp_path / "mismatch"
    random_hmm().save(mismatch)
    meta = json.loads((mismatch / "hmm.json").read_text())
    meta["vocab_size"] = 99
    (mismatch / "hmm.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="says"):
        CategoricalHMM.load(mismatch)
    with pytest.raises(ValueError, match="not a saved CategoricalHMM"):
        CategoricalHMM.load(tmp_path / "missing")


def test_checkpoint_resume_ends_with_the_same_parameters(tmp_path):
    truth = random_hmm(n_states=3, vocab_size=6, seed=8)
    seqs = varied_sequences(truth, n=20, max_length=30)
    unbroken = random_hmm(n_states=3, vocab_size=6, seed=0)
    unbroken.fit(seqs, n_iter=5, tol=0.0, progress=False)
    interrupted = random_hmm(n_states=3, vocab_size=6, seed=0)
    interrupted.fit(seqs, n_iter=2, tol=0.0, progress=False, checkpoint=tmp_path / "ckpt")
    resumed = random_hmm(n_states=3, vocab_size=6, seed=0)
    history = resumed.fit(seqs, n_iter=5, tol=0.0, progress=False, checkpoint=tmp_path / "ckpt")
    assert [row["iteration"] for row in history] == [1, 2, 3, 4, 5]
    for a, b in zip((unbroken.start, unbroken.trans, unbroken.emit), (resumed.start, resumed.trans, resumed.emit)):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="checkpoint"):
        random_hmm(n_states=3, vocab_size=6).fit(seqs[:5], n_iter=5, progress=False, checkpoint=tmp_path / "ckpt")


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
