"""Blocked emissions (Chiu & Rush 2020): equal to the dense expansion, to brute force, through EM and files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_hmm import brute_force_joint, fit_bytes, params64, reference_em_step, varied_sequences

from storylab import hmm_engine as engine
from storylab.hmm import CategoricalHMM
from storylab.token_blocks import assign_token_blocks

# 12 states in 3 blocks of 4; 10 tokens, block 2 holds four of them (blocks need not be equal)
TOKEN_BLOCKS = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 2])


def blocked_hmm(n_states=12, vocab_size=10, n_blocks=3, token_blocks=TOKEN_BLOCKS, seed=1, device="cpu", **kwargs):
    return CategoricalHMM(n_states, vocab_size, seed=seed, device=device, emission_blocks=n_blocks, token_blocks=token_blocks, **kwargs)


def dense_expansion(hmm):
    """The same model as an ordinary dense CategoricalHMM (zeros outside the blocks)."""
    return CategoricalHMM.from_params(hmm.start, hmm.trans, hmm.emit, device="cpu")


def corpus(vocab_size=10, n=25, max_length=60, seed=0):
    return varied_sequences(CategoricalHMM(5, vocab_size, seed=seed + 3, device="cpu"), n=n, max_length=max_length, seed=seed)


def next_token_probs(hmm, prefix):
    return np.asarray(hmm.next_token_probs(np.asarray(prefix)))


def test_blocked_model_emits_only_inside_its_blocks():
    hmm = blocked_hmm()
    allowed = (np.arange(12) // 4)[:, None] == TOKEN_BLOCKS[None, :]
    assert (hmm.emit.numpy()[~allowed] == 0).all() and (hmm.emit.numpy()[allowed] > 0).all()
    assert np.array_equal(hmm.token_blocks, TOKEN_BLOCKS)
    tokens, states = hmm.sample(20, 15, seed=2)
    assert np.array_equal(TOKEN_BLOCKS[tokens], states // 4)


@pytest.mark.parametrize("tokens", [[2], [0, 1], [3, 9, 0, 5], [1, 0, 2, 2, 8]])
def test_blocked_likelihood_posteriors_and_viterbi_equal_brute_force(tokens):
    hmm = blocked_hmm(n_states=6, n_blocks=3)
    joint = brute_force_joint(hmm, tokens)
    total = sum(joint.values())
    assert hmm.log_likelihood([np.array(tokens)])[0] == pytest.approx(np.log(total), rel=1e-6)
    marginals = np.zeros((len(tokens), 6))
    for path, p in joint.items():
        marginals[np.arange(len(tokens)), path] += p / total
    assert np.allclose(hmm.posteriors(np.array(tokens)), marginals, atol=1e-6)
    assert list(hmm.viterbi(np.array(tokens))) == list(max(joint, key=joint.get))


def test_blocked_model_equals_its_dense_expansion_in_every_inference():
    hmm = blocked_hmm()
    dense = dense_expansion(hmm)
    seqs = corpus()
    blocked_ll, dense_ll = hmm.log_likelihood(seqs), dense.log_likelihood(seqs)
    assert np.max(np.abs(blocked_ll - dense_ll) / np.abs(dense_ll)) < 1e-5
    assert np.allclose(hmm.log_likelihood(seqs, batch_tokens=50), blocked_ll, rtol=1e-6)  # several batches
    for seq in seqs[:4]:
        assert np.allclose(hmm.posteriors(seq), dense.posteriors(seq), atol=1e-6)
        assert np.allclose(hmm.beliefs(seq), dense.beliefs(seq), atol=1e-6)
        assert np.array_equal(hmm.viterbi(seq), dense.viterbi(seq))
        assert np.allclose(next_token_probs(hmm, seq), next_token_probs(dense, seq), atol=1e-6)
    assert np.allclose(next_token_probs(hmm, []), next_token_probs(dense, []), atol=1e-7)
    nats = hmm.token_nats(seqs)  # the language-model interface through the blocked forward pass
    assert np.allclose([n.sum() for n in nats], -blocked_ll, rtol=1e-9)
    assert np.allclose(np.concatenate(nats), np.concatenate(dense.token_nats(seqs)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_one_blocked_em_step_equals_the_dense_expansion_and_numpy(smoothing):
    # sequences of up to 60 tokens: some block pairs have more than one 32-row chunk
    hmm = blocked_hmm()
    seqs = corpus()
    allowed = (np.arange(12) // 4)[:, None] == TOKEN_BLOCKS[None, :]
    expected = reference_em_step(hmm, seqs, smoothing, emit_allowed=allowed)
    dense = dense_expansion(hmm)
    hmm.fit(seqs, n_iter=1, progress=False, smoothing=smoothing)
    for name, got, want in zip(("start", "trans", "emit"), params64(hmm), expected):
        assert np.allclose(got, want, atol=2e-6), name
    if smoothing == 0:  # dense EM keeps zero emissions at zero, so it is the same step
        dense.fit(seqs, n_iter=1, progress=False)
        for name, got, want in zip(("start", "trans", "emit"), params64(hmm), params64(dense)):
            assert np.allclose(got, want, atol=1e-6), name
        assert hmm.history[0]["train_log_likelihood"] == pytest.approx(dense.history[0]["train_log_likelihood"], rel=1e-6)


def test_a_block_whose_tokens_never_occur_keeps_its_transition_and_emission_rows():
    # without smoothing the states of block 2 get no counts (none of its tokens occur): their rows stay
    hmm = blocked_hmm()
    seqs = [seq[TOKEN_BLOCKS[seq] != 2] for seq in corpus()]
    seqs = [seq for seq in seqs if len(seq)]
    old_trans, old_emit = hmm.trans.clone(), hmm.emit.clone()
    dense = dense_expansion(hmm)
    hmm.fit(seqs, n_iter=1, progress=False)
    dense.fit(seqs, n_iter=1, progress=False)
    assert torch.equal(hmm.trans[8:], old_trans[8:]) and torch.equal(hmm.emit[8:], old_emit[8:])
    assert np.allclose(params64(hmm)[1][:8], params64(dense)[1][:8], atol=1e-6)


@pytest.mark.filterwarnings("error")
def test_a_float64_blocked_em_step_equals_numpy_to_float64_precision():
    hmm = blocked_hmm(dtype="float64")
    seqs = corpus()
    allowed = (np.arange(12) // 4)[:, None] == TOKEN_BLOCKS[None, :]
    expected = reference_em_step(hmm, seqs, 0.3, emit_allowed=allowed)
    hmm.fit(seqs, n_iter=1, progress=False, smoothing=0.3, batch_tokens=200)
    for name, table, want in zip(("start", "trans", "emit"), (hmm.start, hmm.trans, hmm.emit), expected):
        assert table.dtype == torch.float64, name
        assert np.allclose(table.numpy(), want, rtol=0, atol=1e-13), name


@pytest.mark.filterwarnings("error")  # e.g. torch resizing an `out=` buffer of the wrong shape
def test_pair_counts_gathered_in_groups_of_any_size_give_the_same_step(monkeypatch):
    # a tiny group budget puts every 32-row chunk of block pairs in a group of its own
    seqs = corpus()
    whole, grouped = blocked_hmm(), blocked_hmm()
    whole.fit(seqs, n_iter=1, progress=False, smoothing=0.1)
    monkeypatch.setattr(engine, "PAIR_GROUP_VALUES", 1)
    grouped.fit(seqs, n_iter=1, progress=False, smoothing=0.1)
    for name, a, b in zip(("start", "trans", "emit"), params64(whole), params64(grouped)):
        assert np.allclose(a, b, atol=1e-7), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the same code runs there with device='auto')")
def test_blocked_model_on_cuda_matches_cpu():
    cpu, gpu = blocked_hmm(), blocked_hmm(device="cuda")
    seqs = corpus()
    assert np.allclose(gpu.log_likelihood(seqs), cpu.log_likelihood(seqs), rtol=1e-5)
    for seq in seqs[:3]:
        assert np.allclose(gpu.posteriors(seq), cpu.posteriors(seq), atol=1e-5)
        assert np.array_equal(gpu.viterbi(seq), cpu.viterbi(seq))
    cpu.fit(seqs, n_iter=3, tol=0.0, smoothing=0.1, progress=False)
    gpu.fit(seqs, n_iter=3, tol=0.0, smoothing=0.1, progress=False)
    for name, on_cpu, on_gpu in zip(("start", "trans", "emit"), params64(cpu), params64(gpu)):
        assert np.allclose(on_gpu, on_cpu, atol=1e-5), name
    assert (gpu.emit.cpu().numpy()[params64(cpu)[2] == 0] == 0).all()


def test_emissions_outside_the_blocks_stay_exactly_zero_through_em():
    hmm = blocked_hmm()
    seqs = corpus()
    history = hmm.fit(seqs, n_iter=6, tol=0.0, smoothing=0.1, progress=False)
    allowed = (np.arange(12) // 4)[:, None] == TOKEN_BLOCKS[None, :]
    assert (hmm.emit.numpy()[~allowed] == 0).all() and (hmm.emit.numpy()[allowed] > 0).all()
    lls = [row["train_log_likelihood"] for row in history]
    assert lls[-1] > lls[0]


def test_a_first_fit_deals_the_tokens_into_blocks_by_the_models_method_and_seed():
    seqs = corpus(n=10)
    expected = assign_token_blocks(seqs, 10, 2, "random", seed=3)
    assert not np.array_equal(expected, assign_token_blocks(seqs, 10, 2, "random", seed=0))  # the seed matters for this data
    hmm = CategoricalHMM(4, 10, seed=3, device="cpu", emission_blocks=2, token_block_method="random")
    hmm.fit(seqs, n_iter=1, progress=False)
    allowed = (np.arange(4) // 2)[:, None] == expected[None, :]
    assert np.array_equal(hmm.token_blocks, expected) and (hmm.emit.numpy()[~allowed] == 0).all()
    given = CategoricalHMM(4, 10, seed=0, device="cpu", emission_blocks=2, token_blocks=expected)
    assert np.array_equal(given.token_blocks, expected) and (given.emit.numpy()[~allowed] == 0).all()


def test_blocks_from_the_data_save_load_and_resume_to_the_same_bytes(tmp_path):
    seqs = corpus(n=30)
    unbroken = CategoricalHMM(12, 10, seed=0, device="cpu", emission_blocks=3)
    assert unbroken.token_blocks is None  # fixed by the first fit, from its data
    unbroken.fit(seqs, n_iter=6, tol=0.0, progress=False)
    assert np.array_equal(unbroken.token_blocks, assign_token_blocks(seqs, 10, 3, "context", seed=0))
    CategoricalHMM(12, 10, seed=0, device="cpu", emission_blocks=3).fit(seqs, n_iter=3, tol=0.0, progress=False, checkpoint=tmp_path / "ckpt")
    resumed = CategoricalHMM(12, 10, seed=0, device="cpu", emission_blocks=3, token_blocks=unbroken.token_blocks)
    resumed.log_likelihood(seqs)  # lays out its own (initial) transitions, which the resume must not reuse
    resumed.fit(seqs, n_iter=6, tol=0.0, progress=False, checkpoint=tmp_path / "ckpt")
    assert fit_bytes(resumed) == fit_bytes(unbroken) and np.array_equal(resumed.token_blocks, unbroken.token_blocks)
    unbroken.save(tmp_path / "model")
    loaded = CategoricalHMM.load(tmp_path / "model", device="cpu")
    assert fit_bytes(loaded) == fit_bytes(unbroken) and np.array_equal(loaded.token_blocks, unbroken.token_blocks)
    assert loaded.emission_blocks == 3 and np.allclose(loaded.log_likelihood(seqs), unbroken.log_likelihood(seqs))
    with pytest.raises(ValueError, match="checkpoint.*emission_blocks=3"):
        CategoricalHMM(12, 10, seed=0, device="cpu", emission_blocks=2).fit(seqs, n_iter=7, progress=False, checkpoint=tmp_path / "ckpt")
    with pytest.raises(ValueError, match="checkpoint.*other token_blocks"):
        blocked_hmm(seed=0).fit(seqs, n_iter=7, progress=False, checkpoint=tmp_path / "ckpt")


def test_a_file_with_emissions_outside_its_blocks_is_refused(tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    blocked_hmm().save(tmp_path / "model")
    path = tmp_path / "model" / "hmm.safetensors"
    with safe_open(str(path), framework="pt") as file:
        header, tensors = file.metadata(), {name: file.get_tensor(name) for name in file.keys()}
    tensors["emit"] = torch.full((12, 10), 0.1)  # valid distributions, but outside the blocks
    save_file(tensors, str(path), metadata=header)
    with pytest.raises(ValueError, match=r"model/hmm.safetensors: emit has probability outside the token blocks"):
        CategoricalHMM.load(tmp_path / "model")
    tensors["token_blocks"] = torch.zeros(10, dtype=torch.int64)
    save_file(tensors, str(path), metadata=header)
    with pytest.raises(ValueError, match=r"model/hmm.safetensors: every block needs at least one token"):
        CategoricalHMM.load(tmp_path / "model")
    assert json.loads(header["meta"])["emission_blocks"] == 3


def test_token_nats_and_validation_scores_run_the_same_blocked_forward_pass_as_log_likelihood():
    # 64 states in blocks of 16: the blocked pass sums in another order than a dense one
    # over the same tables (they differ by ~1e-10), so these agree to float64 rounding
    # only when every pass uses the blocks
    hmm = blocked_hmm(n_states=64, vocab_size=40, n_blocks=4, token_blocks=np.arange(40) % 4)
    seqs = corpus(vocab_size=40, n=10)
    log_likelihood = hmm.log_likelihood(seqs)
    np.testing.assert_allclose([-n.sum() for n in hmm.token_nats(seqs)], log_likelihood, rtol=1e-13)
    assert hmm.expected_counts(seqs).log_likelihood == pytest.approx(log_likelihood.sum(), rel=1e-13)  # the E-step's pass
    history = hmm.fit(seqs[:2], n_iter=1, val=seqs, progress=False)  # validation scored with the tables before the step
    assert history[0]["val_log_likelihood"] == pytest.approx(log_likelihood.sum(), rel=1e-13)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_states": 10, "emission_blocks": 3}, r"emission_blocks: n_states=10 must be a multiple of emission_blocks=3"),
        ({"n_states": 12, "emission_blocks": 12, "vocab_size": 5}, r"emission_blocks: 12 blocks need at least one token each, vocab_size is 5"),
        ({"emission_blocks": 0}, "emission_blocks: expected an integer >= 1"),
        ({"token_block_method": "brown"}, "token_block_method: expected one of"),
        ({"emission_blocks": 3, "token_blocks": [0, 1, 2]}, r"token_blocks: expected 10 integer block ids"),
        ({"emission_blocks": 3, "token_blocks": [0, 1, 3, 0, 1, 2, 0, 1, 2, 2]}, r"token_blocks: block ids must lie in \[0, emission_blocks=3\)"),
        ({"emission_blocks": 3, "token_blocks": [0, 1, 1, 0, 1, 0, 0, 1, 1, 1]}, "token_blocks: every block needs at least one token; block 2 has none"),
    ],
)
def test_bad_block_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CategoricalHMM(**{"n_states": 12, "vocab_size": 10, **kwargs})


# ----------------------------------------------------------------------------- token blocks
def two_class_corpus(n=60, seed=0):
    """Tokens 0-3 only ever follow and precede each other, tokens 4-7 likewise; 8 and 9 never occur."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 4, size=12) + 4 * (i % 2) for i in range(n)]


@pytest.mark.parametrize("method", ["context", "random"])
def test_token_blocks_are_deterministic_and_fill_every_block(method):
    seqs = corpus(n=40)
    for n_blocks in (1, 3, 10):
        blocks = assign_token_blocks(seqs, 10, n_blocks, method, seed=4)
        assert blocks.shape == (10,) and np.bincount(blocks, minlength=n_blocks).min() >= 1 and blocks.max() < n_blocks
        assert np.array_equal(blocks, assign_token_blocks(seqs, 10, n_blocks, method, seed=4))
    with pytest.raises(ValueError, match="emission_blocks: 11 blocks need at least as many tokens"):
        assign_token_blocks(seqs, 10, 11, method)


@pytest.mark.parametrize("method", ["context", "random"])
def test_tokens_never_seen_fill_the_emptiest_blocks(method):
    blocks = assign_token_blocks([np.array([0, 1, 0, 1])], 6, 4, method, seed=0)
    assert sorted(np.bincount(blocks, minlength=4)) == [1, 1, 2, 2] and blocks[0] != blocks[1]


def test_context_blocks_separate_tokens_of_different_contexts():
    blocks = assign_token_blocks(two_class_corpus(), 10, 2, "context", seed=0)
    assert len(set(blocks[:4])) == 1 and len(set(blocks[4:8])) == 1 and blocks[0] != blocks[4]
    assert set(blocks[8:]) <= {0, 1}  # unseen tokens still get a block


def test_random_blocks_balance_token_frequency():
    counts = np.array([1000, 900, 500, 400, 300, 300, 200, 100, 50, 50, 10, 5, 3])
    seqs = [np.repeat(np.arange(13), counts)]
    blocks = assign_token_blocks(seqs, 13, 3, "random", seed=1)
    for stratum in (slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 12)):  # one token of each frequency stratum per block
        assert sorted(blocks[stratum]) == [0, 1, 2]
    assert np.bincount(blocks).tolist() in ([5, 4, 4], [4, 5, 4], [4, 4, 5])
    assert not np.array_equal(blocks, assign_token_blocks(seqs, 13, 3, "random", seed=2))


def test_block_ordered_transitions_follow_the_table_they_were_made_from():
    from storylab.hmm_blocks import Blocks

    blocks = Blocks(TOKEN_BLOCKS, 3, 12, torch.device("cpu"))
    trans = torch.rand(12, 12)
    forward, backward = blocks.forward_rows(trans), blocks.backward_rows(trans)
    assert torch.equal(forward.view(3, 3, 4, 4)[1, 2], trans[4:8, 8:12])
    assert torch.equal(backward.view(3, 3, 4, 4)[1, 2], trans[4:8, 8:12].T)
    assert blocks.forward_rows(trans).data_ptr() == forward.data_ptr()  # reused while the table is unchanged
    trans.mul_(2)  # changed in place
    assert torch.equal(blocks.forward_rows(trans).view(3, 3, 4, 4)[1, 2], trans[4:8, 8:12])
    assert torch.equal(blocks.backward_rows(trans).view(3, 3, 4, 4)[1, 2], trans[4:8, 8:12].T)
    other = torch.rand(12, 12)
    assert torch.equal(blocks.forward_rows(other).view(3, 3, 4, 4)[0, 1], other[0:4, 4:8])


def test_blocked_occupancy_and_label():
    hmm = blocked_hmm()
    dense = dense_expansion(hmm)
    seqs = corpus()
    assert np.allclose(hmm.occupancy(seqs), dense.occupancy(seqs), atol=1e-6)
    assert hmm.label == "HMM K=12 M=3" and dense.label == "HMM K=12"
