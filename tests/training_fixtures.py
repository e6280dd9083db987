"""Shared by the transformer and RNN training tests: a tiny character corpus, its streams, a quick recipe."""

import numpy as np
import pytest

from storylab.tokenizers import train_tokenizer
from storylab.transformer import TrainConfig

TEXTS = ["12 + 30 = 42;", "7 + 8 = 15;", "Once upon a time, Lily ran.", "Tim sat."] * 3


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer("char", TEXTS)


@pytest.fixture(scope="module")
def streams(tokenizer):
    """(train stream, validation stream): the texts shuffled, each followed by end-of-text."""
    rng = np.random.default_rng(0)
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for t in TEXTS]
    stream = np.concatenate([ids[i] for i in rng.permutation(len(ids))]).astype(np.uint16)
    return stream, stream[:40]


def quick_config(**overrides) -> TrainConfig:
    defaults = dict(batch_size=4, base_lr=1e-2, min_lr=1e-3, warmup_steps=2, decay_steps=4, max_steps=6,
                    eval_every=3, eval_tokens=32, save_every=3, seed=1)
    return TrainConfig(**{**defaults, **overrides})
