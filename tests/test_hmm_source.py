"""The `hmm` corpus source: samples, true states, exact floors, mess3, alphabet mapping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from storylab.corpora.hmm_source import ALPHABET, build_hmm_corpus, ids_to_text, mess3_params, text_to_ids
from storylab.hmm import CategoricalHMM

SMALL = {"n_sequences": 12, "validation": 6, "length": 25}


def numpy_log2_prob(start, trans, emit, tokens):
    """log2 p(tokens) by a plain scaled forward pass in float64."""
    belief, total = start * emit[:, tokens[0]], 0.0
    total += math.log2(belief.sum())
    belief = belief / belief.sum()
    for token in tokens[1:]:
        belief = belief @ trans * emit[:, token]
        total += math.log2(belief.sum())
        belief = belief / belief.sum()
    return total


def test_random_source_shapes_states_and_exact_floor():
    built = build_hmm_corpus({"kind": "random", "n_states": 4, "vocab_size": 7, "seed": 3, **SMALL})
    assert built["alphabet"] == ALPHABET[:7]
    assert len(built["train"]["text"]) == 12 and len(built["validation"]["text"]) == 6
    for split in ("train", "validation"):
        for text, states in zip(built[split]["text"], built[split]["states"]):
            assert len(text) == len(states) == 25 and set(text) <= set(built["alphabet"])
            assert all(0 <= s < 4 for s in states)
    model = built["model"]
    start, trans, emit = (p.double().numpy() for p in (model.start, model.trans, model.emit))
    bits = -sum(numpy_log2_prob(start, trans, emit, text_to_ids(t, built["alphabet"])) for t in built["validation"]["text"])
    assert built["floor_bits_per_char"] == pytest.approx(bits / (6 * 25), rel=1e-6)


def test_samples_follow_the_true_states():
    # a model whose state determines its token: text and states must agree position by position
    emit = np.eye(3)
    model = CategoricalHMM.from_params(np.ones(3) / 3, [[0.5, 0.5, 0], [0, 0.5, 0.5], [0.5, 0, 0.5]], emit, device="cpu")
    tokens, states = model.sample(5, 20, seed=0)
    assert np.array_equal(tokens, states)
    assert not any((b - a) % 3 == 2 for row in states for a, b in zip(row, row[1:]))  # never a forbidden move


def test_same_options_give_the_same_corpus_and_validation_differs_from_train():
    options = {"kind": "random", "n_states": 3, "vocab_size": 5, "seed": 1, **SMALL}
    first, second = build_hmm_corpus(options), build_hmm_corpus(dict(options))
    assert first["train"] == second["train"] and first["validation"] == second["validation"]
    assert first["train"]["text"][:6] != first["validation"]["text"]


def test_mess3_matches_the_edge_emitting_definition():
    x, a = 0.15, 0.6
    b, y = (1 - a) / 2, 1 - 2 * x
    paper = np.array([  # T[token][i, j] = P(token, next state j | state i), Shai et al. 2024
        [[a * y, b * x, b * x], [a * x, b * y, b * x], [a * x, b * x, b * y]],
        [[b * y, a * x, b * x], [b * x, a * y, b * x], [b * x, a * x, b * y]],
        [[b * y, b * x, a * x], [b * x, b * y, a * x], [b * x, b * x, a * y]],
    ])
    start, trans, emit = mess3_params(x, a)
    ours = np.stack([trans * emit[:, token][None, :] for token in range(3)])
    assert np.allclose(ours, paper)
    built = build_hmm_corpus({"kind": "mess3", **SMALL})
    assert built["alphabet"] == "abc"
    assert 1.0 < built["floor_bits_per_char"] < math.log2(3)


def test_mess3_beliefs_are_bayesian_updates():
    start, trans, emit = mess3_params()
    model = CategoricalHMM.from_params(start, trans, emit, device="cpu")
    beliefs = model.beliefs(np.array([0, 0, 2]))
    expected = start * emit[:, 0]
    expected /= expected.sum()
    assert np.allclose(beliefs[0], expected, atol=1e-6)
    for t, token in ((1, 0), (2, 2)):
        expected = expected @ trans * emit[:, token]
        expected /= expected.sum()
        assert np.allclose(beliefs[t], expected, atol=1e-6)


def test_saved_model_source(tmp_path):
    CategoricalHMM(5, 9, seed=2, device="cpu").save(tmp_path / "hmm")
    built = build_hmm_corpus({"kind": "saved", "path": str(tmp_path / "hmm"), **SMALL})
    assert built["alphabet"] == ALPHABET[:9] and built["model"].n_states == 5


def test_text_ids_round_trip_and_errors():
    ids = np.arange(len(ALPHABET))
    assert np.array_equal(text_to_ids(ids_to_text(ids)), ids)
    assert len(ALPHABET) == len(set(ALPHABET)) and not any(c.isspace() or c in "<|>" for c in ALPHABET)
    with pytest.raises(ValueError, match="not in the alphabet"):
        text_to_ids("ab d", "abcd")
    with pytest.raises(ValueError, match="ids"):
        ids_to_text([0, 4], "abcd")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"vocab_size": 200}, "vocab_size 200 is larger"),
        ({"kind": "hidden"}, "kind"),
        ({"kind": "mess3", "x": 0.7}, "x:"),
        ({"kind": "saved"}, "path"),
        ({"length": 0}, "length"),
    ],
)
def test_bad_options_are_clear_errors(options, message):
    with pytest.raises(ValueError, match=message):
        build_hmm_corpus({**SMALL, **options})


def test_load_corpus_keeps_states(tmp_path, monkeypatch):
    from storylab.corpora import load_corpus

    monkeypatch.setenv("STORYLAB_OUTPUTS", str(tmp_path))
    corpus = load_corpus({"source": "hmm", "n_states": 3, "vocab_size": 4, **SMALL})
    row = corpus.dataset["validation"][0]
    assert len(row["text"]) == len(row["states"]) == 25
    assert corpus.meta["floor_bits_per_char"] == pytest.approx(build_hmm_corpus({"n_states": 3, "vocab_size": 4, **SMALL})["floor_bits_per_char"])
