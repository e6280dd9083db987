"""Unigram, bigram and neural bigram baselines: exact counts, proper distributions, smoothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from storylab.ngram import BigramModel, NeuralBigram, UnigramModel

EOT = 0
# two tiny "stories" over vocab {0: eot, 1: a, 2: b, 3: c, 4: never seen}; each ends with eot
STORIES = [np.array([1, 2, 1, 0]), np.array([2, 2, 0])]


def test_unigram_counts_and_probabilities_are_exact():
    model = UnigramModel(vocab_size=5, eot_id=EOT, k=0).fit(STORIES)
    assert model.counts.tolist() == [2, 2, 3, 0, 0]
    assert np.allclose(model.probs, [2 / 7, 2 / 7, 3 / 7, 0, 0])
    expected = np.log([2 / 7 * 3 / 7 * 2 / 7 * 2 / 7, 3 / 7 * 3 / 7 * 2 / 7])
    assert np.allclose(model.log_likelihood(STORIES), expected)


def test_bigram_counts_condition_the_first_token_on_eot():
    model = BigramModel(vocab_size=5, eot_id=EOT, k=0).fit(STORIES)
    expected = np.zeros((5, 5), dtype=int)
    for prev, nxt in [(0, 1), (1, 2), (2, 1), (1, 0), (0, 2), (2, 2), (2, 0)]:
        expected[prev, nxt] += 1
    assert np.array_equal(model.counts, expected)
    # p(story 2) = p(2|eot) p(2|2) p(0|2) = 1/2 * 1/3 * 1/3
    assert model.log_likelihood([STORIES[1]])[0] == pytest.approx(np.log(1 / 18))


@pytest.mark.parametrize("make", [lambda: UnigramModel(5, EOT, k=0.5), lambda: BigramModel(5, EOT, k=0.5), lambda: NeuralBigram(5, EOT, steps=50)])
def test_next_token_probs_sum_to_one_and_match_token_nats(make):
    model = make().fit(STORIES)
    for prompt in ([], [1], [2, 2]):
        probs = model.next_token_probs(prompt)
        assert probs.shape == (5,) and probs.sum() == pytest.approx(1.0)
        nats = model.token_nats([np.array([*prompt, token]) for token in range(5)])
        assert np.allclose([n[-1] for n in nats], -np.log(probs))
    assert np.allclose(-np.array([n.sum() for n in model.token_nats(STORIES)]), model.log_likelihood(STORIES))


def test_sizes_follow_the_tables():
    assert UnigramModel(5, EOT).fit(STORIES).n_params == 4
    bigram = BigramModel(5, EOT).fit(STORIES)
    assert (bigram.n_params, bigram.train_tokens, bigram.train_flops) == (20, 7, 7.0)
    neural = NeuralBigram(5, EOT, steps=3).fit(STORIES)
    assert (neural.n_params, neural.train_tokens, neural.train_flops) == (25, 7, 6.0 * 25 * 3)
    assert (neural.family, neural.label) == ("neural bigram", "neural bigram")


@pytest.mark.filterwarnings("error")  # log(0) of an unsmoothed count is a deliberate -inf, not a warning
def test_smoothing_gives_unseen_tokens_nonzero_probability():
    unseen = [np.array([3, 4, 0])]
    assert np.isneginf(BigramModel(5, EOT, k=0).fit(STORIES).log_likelihood(unseen)[0])
    assert np.isfinite(BigramModel(5, EOT, k=0.1).fit(STORIES).log_likelihood(unseen)[0])
    assert np.isfinite(UnigramModel(5, EOT, k=0.1).fit(STORIES).log_likelihood(unseen)[0])
    assert BigramModel(5, EOT, k=0.1).fit(STORIES).next_token_probs([4]).min() > 0


def test_neural_bigram_approaches_the_count_bigram():
    rng = np.random.default_rng(0)
    table = rng.dirichlet(np.full(8, 0.3), size=8)
    seqs = []
    for _ in range(60):  # a random bigram source, each sequence ending in eot
        seq = [int(rng.choice(8, p=table[EOT]))]
        while seq[-1] != EOT and len(seq) < 30:
            seq.append(int(rng.choice(8, p=table[seq[-1]])))
        seqs.append(np.array(seq[:-1] + [EOT]))
    n_tokens = sum(len(s) for s in seqs)
    counted = -BigramModel(8, EOT, k=0).fit(seqs).log_likelihood(seqs).sum() / n_tokens
    neural = NeuralBigram(8, EOT, steps=300, lr=0.3).fit(seqs)
    learned = -neural.log_likelihood(seqs).sum() / n_tokens
    assert learned == pytest.approx(counted, rel=0.02)  # the count bigram is the training optimum
    assert neural.history[-1]["train_nats_per_token"] < neural.history[0]["train_nats_per_token"]
    minibatch = NeuralBigram(8, EOT, steps=300, lr=0.3, batch_size=256).fit(seqs)
    assert -minibatch.log_likelihood(seqs).sum() / n_tokens == pytest.approx(counted, rel=0.05)


def test_generate_is_deterministic_and_stops_at_eot():
    model = BigramModel(5, EOT, k=0.1).fit(STORIES)
    out = model.generate([1], max_new_tokens=10, seed=4, stop_id=None)
    assert len(out) == 10 and np.array_equal(out, model.generate([1], max_new_tokens=10, seed=4, stop_id=None))
    greedy = model.generate([2], max_new_tokens=10, greedy=True)  # stops after the model's eot by default
    expected = [2]
    while len(expected) < 11 and (len(expected) == 1 or expected[-1] != EOT):
        expected.append(int(np.argmax(model.probs[expected[-1]])))
    assert list(greedy) == expected[1:] and greedy[-1] == EOT


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="sequences: token id 7"):
        BigramModel(5, EOT).fit([np.array([1, 7])])
    with pytest.raises(ValueError, match="eot_id"):
        BigramModel(5, eot_id=5)
    with pytest.raises(ValueError, match="k:"):
        UnigramModel(5, EOT, k=-1)
    with pytest.raises(ValueError, match="prefix_ids: token id 9"):
        UnigramModel(5, EOT).fit(STORIES).next_token_probs([9])
    with pytest.raises(ValueError, match="prefix_ids: expected a 1-D list of token ids"):
        BigramModel(5, EOT).fit(STORIES).generate("hello", 3)
    with pytest.raises(ValueError, match="stop_id"):
        BigramModel(5, EOT).fit(STORIES).generate([1], 3, stop_id=5)


BAD_ARGUMENTS = {  # argument: (a value refused, a boundary value accepted)
    "vocab_size": (0, 1),
    "eot_id": (3, 2),  # with vocab_size 3
    "k": (-0.5, 0.0),
    "steps": (-1, 0),
    "seed": (-1, 0),
    "lr": (0.0, 1e-3),
    "weight_decay": (-1.0, 0.0),
    "batch_size": (0, 1),
}
ARGUMENTS_OF = {UnigramModel: ("vocab_size", "eot_id", "k"), BigramModel: ("vocab_size", "eot_id", "k"),
                NeuralBigram: ("vocab_size", "eot_id", "steps", "seed", "lr", "weight_decay", "batch_size")}


@pytest.mark.parametrize("family, name", [(f, n) for f, names in ARGUMENTS_OF.items() for n in names])
def test_each_argument_is_checked_by_name_at_its_boundary(family, name):
    base = {"vocab_size": 3, "eot_id": 0} | ({"device": "cpu"} if family is NeuralBigram else {})
    refused, accepted = BAD_ARGUMENTS[name]
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        family(**{**base, name: refused})
    family(**{**base, name: accepted})


@pytest.mark.parametrize("family", [UnigramModel, BigramModel, NeuralBigram])
def test_a_new_model_has_seen_no_tokens(family):
    model = family(vocab_size=3, eot_id=0, **({"device": "cpu"} if family is NeuralBigram else {}))
    assert model.train_tokens == 0


@pytest.mark.parametrize("family", [UnigramModel, BigramModel, NeuralBigram])
def test_token_ids_out_of_range_are_named_as_sequences(family):
    model = family(5, EOT, **({"device": "cpu", "steps": 2} if family is NeuralBigram else {}))
    with pytest.raises(ValueError, match=r"^sequences: token id 7"):
        model.fit([np.array([1, 7])])
    with pytest.raises(ValueError, match=r"^sequences: token id 9"):
        model.fit(STORIES).token_nats([np.array([9])])


def test_defaults_and_counts_are_integers():
    for family in (UnigramModel, BigramModel):
        assert family(5, EOT).k == 1.0
        assert family(5, EOT).counts.dtype == np.int64 and family(5, EOT).fit(STORIES).counts.dtype == np.int64
    neural = NeuralBigram(5, EOT, device="cpu")
    assert (neural.steps, neural.lr, neural.weight_decay, neural.batch_size, neural.seed) == (300, 0.5, 0.0, None, 0)


def test_a_new_neural_bigram_is_uniform_and_its_history_counts_steps_from_one():
    model = NeuralBigram(5, EOT, steps=2, device="cpu")
    assert model.history == [] and np.allclose(model.probs, np.full((5, 5), 0.2))
    model.fit(STORIES)
    # the first step's loss is at all-zero logits: ln V nats per token, whatever the counts
    assert model.history[0] == {"step": 1, "train_nats_per_token": pytest.approx(np.log(5))}
    assert [row["step"] for row in model.history] == [1, 2]


def test_neural_bigram_minibatches_follow_its_seed_and_weight_decay_is_applied():
    def fit(**options):
        return NeuralBigram(5, EOT, steps=5, device="cpu", **options).fit(STORIES).logits

    assert torch.equal(fit(batch_size=3, seed=3), fit(batch_size=3, seed=3))
    assert not torch.equal(fit(batch_size=3, seed=3), fit(batch_size=3, seed=4))
    assert not torch.equal(fit(weight_decay=0.5), fit(weight_decay=0.0))


@pytest.mark.parametrize("family", [UnigramModel, BigramModel])
def test_generate_draws_each_token_from_next_token_probs(family):
    from storylab.sampling import generate_tokens

    model = family(5, EOT, k=0.5).fit(STORIES)
    for prefix, options in (([], {}), ([1, 2], {"top_k": 2}), ([2], {"temperature": 0.7, "seed": 3})):
        def predict(new_ids, prefix=prefix):
            return model.next_token_probs([*prefix, *new_ids])

        # defaults as in storylab.lm: temperature 1, seed 0, no top_k
        expected = generate_tokens(predict, 20, vocab_size=5, eot_id=EOT, stop_id=None, **{"temperature": 1.0, "seed": 0, **options})
        assert list(model.generate(prefix, 20, stop_id=None, **options)) == list(expected), (prefix, options)
