"""The `hmm` corpus source: samples, true states, exact floors, mess3, alphabet mapping."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from storylab.corpora.hmm_cot import strip_states
from storylab.corpora.hmm_source import ALPHABET, build_hmm_corpus, ids_to_text, mess3_params, text_to_ids
from storylab.hmm import CategoricalHMM
from storylab.hmm_processes import cyclic_labels

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


@pytest.mark.parametrize("emission", ["deterministic", "stochastic"])
def test_cyclic_source_exact_floor_and_mixing_time(emission):
    built = build_hmm_corpus({"kind": "cyclic", "emission": emission, "n_states": 6, "vocab_size": 3, "epsilon": 0.1,
                              "seed": 2, **SMALL})
    model = built["model"]
    start, trans, emit = (p.double().numpy() for p in (model.start, model.trans, model.emit))
    bits = -sum(numpy_log2_prob(start, trans, emit, text_to_ids(t, built["alphabet"])) for t in built["validation"]["text"])
    assert built["floor_bits_per_char"] == pytest.approx(bits / (6 * 25), rel=1e-6)
    assert built["meta"]["mixing_time_steps"] == pytest.approx(10.0, rel=1e-9)  # 1/ε
    assert built["meta"]["second_eigenvalue_modulus"] == pytest.approx(0.9) and built["meta"]["n_states"] == 6
    if emission == "deterministic":  # every symbol is its state's label
        labels = cyclic_labels(6, 3, seed=2)
        for text, states in zip(built["train"]["text"], built["train"]["states"]):
            assert np.array_equal(text_to_ids(text, built["alphabet"]), labels[states])


def test_slower_mixing_lowers_the_floor_of_a_deterministic_cycle():
    floors = [build_hmm_corpus({"kind": "cyclic", "emission": "deterministic", "n_states": 6, "vocab_size": 3,
                                "epsilon": eps, **SMALL})["floor_bits_per_char"] for eps in (0.5, 0.05, 0.0)]
    assert floors[0] > floors[1] > floors[2]
    assert floors[2] == pytest.approx(math.log2(6) / 25, rel=1e-5)  # only the starting phase is random


def test_mess3_and_random_sources_record_their_mixing_times():
    mess3 = build_hmm_corpus({"kind": "mess3", "x": 0.1, **SMALL})["meta"]
    assert mess3["mixing_time_steps"] == pytest.approx(1 / 0.3) and mess3["n_states"] == 3
    built = build_hmm_corpus({"kind": "random", "n_states": 4, "vocab_size": 5, **SMALL})
    eigenvalues = np.sort(np.abs(np.linalg.eigvals(built["model"].trans.double().numpy())))
    assert built["meta"]["mixing_time_steps"] == pytest.approx(1 / (1 - eigenvalues[-2]))


def test_cot_every_writes_states_into_training_texts_only():
    options = {"kind": "cyclic", "n_states": 5, "vocab_size": 4, "epsilon": 0.2, "seed": 1, **SMALL}
    plain, cot = build_hmm_corpus(options), build_hmm_corpus({**options, "cot_every": 4})
    assert cot["validation"] == plain["validation"] and cot["floor_bits_per_char"] == plain["floor_bits_per_char"]
    assert cot["meta"]["cot_every"] == 4 and cot["meta"]["state_alphabet"] == ALPHABET[4:9]
    for text, states, plain_text, plain_states in zip(cot["train"]["text"], cot["train"]["states"],
                                                      plain["train"]["text"], plain["train"]["states"]):
        ids = text_to_ids(text)
        assert len(text) == len(states) == 25 + 24 // 4  # a state after symbols 4, 8, …, 24, none after the last
        assert ids_to_text(strip_states(ids, 4), plain["alphabet"]) == plain_text
        written = np.flatnonzero(ids >= 4)
        assert np.array_equal(written, np.arange(4, 30, 5))  # every fifth character
        assert np.array_equal(ids[written] - 4, np.asarray(plain_states)[3:24:4])  # the state of the symbol before
        assert np.array_equal(np.asarray(states)[ids < 4], plain_states)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"vocab_size": 200}, "vocab_size 200 is larger"),
        ({"kind": "hidden"}, "kind"),
        ({"kind": "mess3", "x": 0.7}, "x:"),
        ({"kind": "saved"}, "path"),
        ({"length": 0}, "length"),
        ({"kind": "cyclic", "epsilon": 2}, "epsilon"),
        ({"kind": "cyclic", "emission": "noisy"}, "emission"),
        ({"kind": "cyclic", "emission": "deterministic", "n_states": 4, "vocab_size": 8}, "vocab_size"),
        ({"cot_every": 0}, "cot_every"),
        ({"n_states": 80, "vocab_size": 10, "cot_every": 4}, r"vocab_size 10 \+ n_states 80"),
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
    cyclic = load_corpus({"source": "hmm", "kind": "cyclic", "epsilon": 0.0, "n_states": 3, "vocab_size": 2, **SMALL})
    assert cyclic.meta["mixing_time_steps"] is None and cyclic.meta["n_states"] == 3  # never mixes: null in meta.json


def test_an_hmm_spec_holds_the_options_of_its_own_kind_only():
    from storylab.compare import learnability_table, validation_key
    from storylab.corpora import normalize_spec

    random, mess3, cyclic = normalize_spec("hmm"), normalize_spec("mess3"), normalize_spec({"source": "hmm", "kind": "cyclic"})
    assert not {"x", "a", "epsilon", "emission"} & set(random)
    assert (mess3["x"], mess3["a"]) == (0.15, 0.6) and not {"epsilon", "emission"} & set(mess3)
    assert (cyclic["epsilon"], cyclic["emission"]) == (0.05, "stochastic") and not {"x", "a"} & set(cyclic)
    # a spec recorded when every hmm spec carried all four is the same corpus and validation set
    recorded = {**random, "x": 0.15, "a": 0.6, "epsilon": 0.05, "emission": "stochastic"}
    assert normalize_spec(recorded) == random and validation_key(recorded) == validation_key(random)
    table = learnability_table(pd.DataFrame([{"corpus": recorded, "family": "hmm", "model": "HMM"}]))
    assert table["emission"].isna().all() and table["epsilon"].isna().all()  # nothing cyclic about a random process
    with pytest.raises(ValueError, match=r"^corpus: hmm option 'epsilon' is read only by kind 'cyclic'; leave it out"):
        normalize_spec({"source": "hmm", "kind": "mess3", "epsilon": 0.2})
