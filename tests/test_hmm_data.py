"""EM on a memory-mapped encoded split, read a batch at a time: the same batches and numbers as on lists."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from storylab import hmm_engine as engine
from storylab.hmm import CategoricalHMM, data_fingerprint
from storylab.memory_maps import read_only_map, release_pages, value_range
from storylab.split_chunks import SplitChunks
from storylab.token_blocks import assign_token_blocks
from storylab.tokenizers import EncodedSplit

VOCAB, EOT_ID = 7, 0


def memory_mapped_split(folder, n_stories=40, seed=0, empty_story=True) -> EncodedSplit:
    """A split saved as .npy and loaded memory-mapped, as the encoded-corpus cache does (story 3 empty)."""
    rng = np.random.default_rng(seed)
    stories = [rng.integers(1, VOCAB, size=n) for n in rng.integers(1, 30, size=n_stories)]
    if empty_story:
        stories[3] = stories[3][:0]
    np.save(folder / "ids.npy", np.concatenate(stories).astype(np.uint16))
    np.save(folder / "offsets.npy", np.cumsum([0] + [len(s) for s in stories]))
    return EncodedSplit(np.load(folder / "ids.npy", mmap_mode="r"), np.load(folder / "offsets.npy"), n_chars=1, eot_id=EOT_ID)


def sliced_sequences(split: EncodedSplit, append_eot=True, max_len=None, mode="split"):
    """What `EncodedSplit.sequences` returned before the lazy view: slices of the int64 ids, story by story."""
    ids, out = np.asarray(split.ids).astype(np.int64), []
    for i in range(split.n_stories):
        seq = ids[split.offsets[i] : split.offsets[i + 1]]
        seq = np.append(seq, split.eot_id) if append_eot else seq
        if max_len is None:
            out.append(seq)
        elif mode == "truncate":
            out.append(seq[:max_len])
        else:
            out.extend(seq[j : j + max_len] for j in range(0, len(seq), max_len))
    return out


def batches_as_cut_before(lengths, batch_tokens):
    """The sequence positions of each batch as `make_batches` cut them before batches were planned apart (verbatim)."""
    order = np.argsort(-lengths, kind="stable")
    share = -(-int(lengths.sum()) // -(-int(lengths.sum()) // batch_tokens))
    batches, first = [], 0
    while first < len(order):
        last = first + 1
        total = int(lengths[order[first]])
        while last < len(order) and total < share and total + lengths[order[last]] <= batch_tokens:
            total += int(lengths[order[last]])
            last += 1
        batches.append(order[first:last].tolist())
        first = last
    return batches


def test_batches_are_planned_as_they_were_cut():
    rng = np.random.default_rng(0)
    for budget in (1, 7, 40, 333, 10**6):
        lengths = rng.integers(1, 60, size=500)
        assert [b.tolist() for b in engine.plan_batches(lengths, budget)] == batches_as_cut_before(lengths, budget)


def listed_em(hmm: CategoricalHMM, seqs, n_iter: int, batch_tokens: int):
    """The EM loop as `fit` ran it before batches were packed lazily: all batches packed up front from lists."""
    batches, workspace = engine.make_batches(seqs, batch_tokens, hmm.device), engine.Workspace(hmm.device)
    log_likelihoods = []
    for _ in range(n_iter):
        stats = engine.SufficientStats.zeros(hmm.n_states, hmm.vocab_size, hmm.device, hmm._blocks)
        emit_t = hmm.emit.T.contiguous()
        for batch in batches:
            engine.accumulate_batch(stats, batch, hmm.start, hmm.trans, emit_t, workspace, hmm._blocks)
        if hmm._blocks is not None:
            hmm._blocks.release_backward()
        hmm._start, hmm._trans, hmm._emit = engine.m_step(stats, 0.0, (hmm.start, hmm.trans, hmm.emit), hmm._blocks)
        log_likelihoods.append(stats.log_likelihood)
    return log_likelihoods


@pytest.mark.parametrize("append_eot", [True, False])
@pytest.mark.parametrize("max_len, mode", [(None, "split"), (5, "split"), (5, "truncate"), (1, "split")])
def test_the_lazy_view_holds_the_sequences_slicing_gave(tmp_path, max_len, mode, append_eot):
    split = memory_mapped_split(tmp_path)
    expected = sliced_sequences(split, append_eot, max_len, mode)
    chunks = split.chunks(max_len, mode, append_eot)
    assert chunks.lengths.tolist() == [len(s) for s in expected]  # without end-of-text, the empty story too
    order = np.random.default_rng(1).permutation(len(chunks))
    assert all(np.array_equal(a, expected[i]) and a.dtype == np.int64 for a, i in zip(chunks.take(order), order))
    listed = split.sequences(append_eot, max_len, mode)
    assert len(listed) == len(expected) and all(np.array_equal(a, b) for a, b in zip(listed, expected))


def test_a_fit_on_the_memory_mapped_split_equals_the_fit_on_lists_before_lazy_batches(tmp_path, monkeypatch):
    split = memory_mapped_split(tmp_path)
    for blocks in (1, 2):
        listed = CategoricalHMM(4, VOCAB, seed=1, emission_blocks=blocks, token_blocks=[0, 0, 1, 1, 0, 1, 0] if blocks > 1 else None)
        log_likelihoods = listed_em(listed, split.sequences(max_len=9), n_iter=3, batch_tokens=40)
        for keep_mb in (engine.KEEP_MB, 0):  # batches kept between iterations, or re-read from the map every time
            monkeypatch.setattr(engine, "KEEP_MB", keep_mb)
            lazy = CategoricalHMM(4, VOCAB, seed=1, emission_blocks=blocks, token_blocks=listed.token_blocks)
            history = lazy.fit(split.chunks(max_len=9), n_iter=3, batch_tokens=40, tol=0, progress=False)
            assert [row["train_log_likelihood"] for row in history] == log_likelihoods
            for name in ("start", "trans", "emit"):
                assert torch.equal(getattr(lazy, name), getattr(listed, name)), (blocks, keep_mb, name)
    assert len(engine.plan_batches(split.chunks(max_len=9).lengths, 40)) > 5  # many batches, cut as before


def test_a_split_is_read_through_the_view_whatever_calls_it(tmp_path):
    split = memory_mapped_split(tmp_path)
    hmm = CategoricalHMM(3, VOCAB, seed=2, init="unigram")
    history = hmm.fit(split, n_iter=2, val=split, progress=False, batch_tokens=50)
    other = CategoricalHMM(3, VOCAB, seed=2, init="unigram")
    same = other.fit(split.sequences(), n_iter=2, val=split.sequences(), progress=False, batch_tokens=50)
    assert [r["train_log_likelihood"] for r in history] == [r["train_log_likelihood"] for r in same]
    assert [r["val_log_likelihood"] for r in history] == [r["val_log_likelihood"] for r in same]
    assert np.array_equal(hmm.log_likelihood(split), other.log_likelihood(split.sequences()))
    nats = hmm.token_nats(split.chunks(max_len=6))
    assert all(np.array_equal(a, b) for a, b in zip(nats, hmm.token_nats(split.sequences(max_len=6))))


def test_the_fingerprint_and_the_token_blocks_do_not_depend_on_how_the_data_is_held(tmp_path):
    split = memory_mapped_split(tmp_path, n_stories=300)
    listed = split.sequences(max_len=11)
    digest = hashlib.sha256()  # the fingerprint as it was computed from lists, one sequence at a time
    for seq in listed:
        digest.update(np.int64(len(seq)).tobytes() + seq.astype(np.int64).tobytes())
    expected = {"n_sequences": len(listed), "n_tokens": sum(map(len, listed)), "sha256": digest.hexdigest()[:16]}
    assert data_fingerprint(split.chunks(max_len=11)) == data_fingerprint(listed) == expected
    for method in ("context", "random"):
        assert np.array_equal(assign_token_blocks(split.chunks(max_len=11), VOCAB, 3, method),
                              assign_token_blocks(listed, VOCAB, 3, method))


def test_bad_ids_in_a_split_are_the_same_one_line_errors_as_in_lists(tmp_path):
    split = memory_mapped_split(tmp_path, empty_story=False)
    hmm = CategoricalHMM(2, VOCAB - 1)
    with pytest.raises(ValueError, match=r"^sequences: token id 6 in sequence \d+ is outside \[0, vocab_size=6\)$") as lazy:
        hmm.fit(split, progress=False)
    with pytest.raises(ValueError, match=r"^sequences: token id 6") as listed:
        hmm.fit(split.sequences(), progress=False)
    assert str(lazy.value) == str(listed.value)
    with pytest.raises(ValueError, match="^val: sequence 3 must be a non-empty 1-D array"):
        CategoricalHMM(2, VOCAB).fit(split, val=memory_mapped_split(tmp_path).chunks(append_eot=False), progress=False)
    with pytest.raises(ValueError, match="^max_len: expected a positive integer or None, got 0$"):
        split.chunks(max_len=0)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the resident file pages from Linux /proc")
def test_a_pass_over_a_map_leaves_no_pages_resident(tmp_path):
    np.save(tmp_path / "big.npy", np.arange(2**23, dtype=np.uint16))  # 16 MiB
    mapped = np.load(tmp_path / "big.npy", mmap_mode="r")
    assert read_only_map(np.asarray(mapped)[5:]) is mapped.base and read_only_map(np.arange(3)) is None

    def resident_mb():
        for line in open("/proc/self/status"):
            if line.startswith("RssFile:"):
                return int(line.split()[1]) / 1024

    before = resident_mb()
    assert value_range(mapped) == (0, 2**16 - 1)
    assert resident_mb() - before < 4  # read chunk by chunk, each chunk's pages released
    assert int(mapped[::2048].sum()) > 0 and resident_mb() - before > 12  # reading touches every page ...
    release_pages(mapped)
    assert resident_mb() - before < 4  # ... and releasing drops them


def test_float64_models_save_load_and_refuse_a_float32_checkpoint(tmp_path):
    seqs = [np.arange(5) % VOCAB, np.array([1, 2, 2, 3])]
    hmm = CategoricalHMM(3, VOCAB, seed=0, dtype="float64")
    hmm.fit(seqs, n_iter=2, progress=False, checkpoint=tmp_path / "fit")
    assert hmm.emit.dtype == torch.float64 and "dtype='float64'" in repr(hmm)
    loaded = CategoricalHMM.load(tmp_path / "fit")
    assert loaded.dtype == torch.float64 and torch.equal(loaded.trans, hmm.trans)
    with pytest.raises(ValueError, match="^checkpoint: .* holds float64 tables, this model computes in float32$"):
        CategoricalHMM(3, VOCAB, seed=0).fit(seqs, n_iter=3, progress=False, checkpoint=tmp_path / "fit")
    with pytest.raises(ValueError, match=r"^dtype: expected one of \('float32', 'float64'\), got 'float16'$"):
        CategoricalHMM(3, VOCAB, dtype="float16")
    single = CategoricalHMM(3, VOCAB, seed=0, dtype="float64")
    assert np.allclose(single.log_likelihood(seqs), CategoricalHMM(3, VOCAB, seed=0).log_likelihood(seqs), rtol=1e-6)
