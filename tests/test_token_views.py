"""Notebook 01's views of its tokenizers."""

import numpy as np

from storylab.token_views import rank_curves, story_lengths, tokenizer_summary
from storylab.tokenizers import describe_tokenizer, train_tokenizer

TEXTS = ["the cat sat on the mat.", "the dog ran to the cat!", "a cat and a dog."] * 5


def test_rank_curves_are_sorted_and_rescaled_to_the_largest_vocabulary():
    tokenizers = {"byte": train_tokenizer("byte", TEXTS), "char": train_tokenizer("char", TEXTS)}
    curves = rank_curves(tokenizers, TEXTS)
    for label, (ranks, counts) in curves.items():
        assert (np.diff(counts) <= 0).all() and (counts > 0).all()
        assert ranks[1] == len(tokenizers["byte"]) / len(tokenizers[label])  # the largest vocabulary: byte
    assert sum(curves["char"][1]) == sum(len(t) for t in TEXTS)
    streamed = rank_curves(tokenizers, iter(TEXTS), batch_size=4)  # read once, a few stories at a time
    assert all(np.array_equal(streamed[k][1], curves[k][1]) for k in curves)


def test_summary_and_lengths():
    tokenizers = {"char": train_tokenizer("char", TEXTS)}
    summary = tokenizer_summary({k: describe_tokenizer(t, TEXTS) for k, t in tokenizers.items()})
    assert summary.loc["validation tokens", "char"] == sum(len(t) for t in TEXTS)
    assert summary.loc["chars per token", "char"] == 1.0
    assert list(story_lengths(tokenizers, TEXTS[:2])["char"]) == [len(TEXTS[0]), len(TEXTS[1])]
