"""HMM families of the learnability study: cyclic and mess3 tables, mixing times against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from storylab.hmm import CategoricalHMM
from storylab.hmm_processes import (cyclic_labels, cyclic_params, cyclic_transitions, mess3_params, mixing_time_steps,
                                    second_eigenvalue_modulus)


@pytest.mark.parametrize("n_states, epsilon", [(2, 1.0), (3, 0.5), (5, 0.1), (8, 0.01), (12, 0.003)])
def test_cyclic_mixing_time_is_one_over_epsilon(n_states, epsilon):
    # trans = (1-ε)C + εJ/n is circulant: its eigenvalues are the DFT of its first row,
    # λ_0 = 1 and λ_k = (1-ε)ω^k (k ≠ 0), so |λ₂| = 1-ε and t_rel = 1/(1-|λ₂|) = 1/ε
    trans = cyclic_transitions(n_states, epsilon)
    omega = np.exp(2j * np.pi * np.arange(1, n_states) / n_states)
    expected = np.concatenate([[1.0], (1 - epsilon) * omega])
    found = np.linalg.eigvals(trans)
    assert np.allclose(np.sort_complex(np.round(found, 10)), np.sort_complex(np.round(expected, 10)))
    assert second_eigenvalue_modulus(trans) == pytest.approx(1 - epsilon, abs=1e-12)
    assert mixing_time_steps(trans) == pytest.approx(1 / epsilon, rel=1e-9)


def test_a_noiseless_cycle_never_mixes_and_an_iid_chain_mixes_at_once():
    assert second_eigenvalue_modulus(cyclic_transitions(6, 0.0)) == pytest.approx(1.0)
    assert mixing_time_steps(cyclic_transitions(6, 0.0)) is None
    assert mixing_time_steps(np.tile([0.2, 0.3, 0.5], (3, 1))) == pytest.approx(1.0)  # rank one: λ₂ = 0
    assert mixing_time_steps(np.eye(2)) is None  # reducible: two closed classes


def test_mess3_mixing_time_is_one_over_three_x():
    for x in (0.05, 0.15, 0.3):
        assert mixing_time_steps(mess3_params(x)[1]) == pytest.approx(1 / (3 * x), rel=1e-9)


def test_deterministic_cycle_labels_are_balanced_primitive_and_seeded():
    labels = cyclic_labels(12, 4, seed=3)
    assert sorted(np.bincount(labels)) == [3, 3, 3, 3]
    assert all(not np.array_equal(labels, np.roll(labels, shift)) for shift in range(1, 12))
    assert np.array_equal(labels, cyclic_labels(12, 4, seed=3))
    assert any(not np.array_equal(labels, cyclic_labels(12, 4, seed=s)) for s in range(4, 8))
    # two symbols on four states: 0101 is periodic (a 2-cycle in disguise) and must never be chosen
    assert all(not np.array_equal(cyclic_labels(4, 2, seed=s), np.roll(cyclic_labels(4, 2, seed=s), 2)) for s in range(20))


def test_deterministic_noiseless_cycle_emits_its_label_word_in_order():
    start, trans, emit = cyclic_params(6, 3, epsilon=0.0, emission="deterministic", seed=1)
    labels = cyclic_labels(6, 3, seed=1)
    assert np.allclose(start, 1 / 6) and np.array_equal(emit.argmax(axis=1), labels) and np.allclose(emit.max(axis=1), 1)
    tokens, states = CategoricalHMM.from_params(start, trans, emit, device="cpu").sample(4, 15, seed=0)
    for row_tokens, row_states in zip(tokens, states):
        assert np.array_equal(np.diff(row_states) % 6, np.ones(14))  # always the next state
        assert np.array_equal(row_tokens, labels[row_states])


def test_stochastic_cycle_rows_are_distributions_from_the_seed():
    start, trans, emit = cyclic_params(5, 7, epsilon=0.2, emission="stochastic", seed=4, concentration=0.5)
    assert emit.shape == (5, 7) and np.allclose(emit.sum(axis=1), 1) and (emit > 0).all()
    assert np.allclose(trans.sum(axis=1), 1) and np.allclose(trans.sum(axis=0), 1)  # doubly stochastic: uniform start is stationary
    assert np.allclose(start @ trans, start)
    assert not np.allclose(emit, cyclic_params(5, 7, 0.2, "stochastic", seed=5)[2])


@pytest.mark.parametrize("call, message", [
    (lambda: cyclic_transitions(4, 1.5), "epsilon"),
    (lambda: cyclic_transitions(4, -0.1), "epsilon"),
    (lambda: cyclic_params(4, 3, 0.1, emission="noisy"), "emission"),
    (lambda: cyclic_params(4, 6, 0.1, emission="deterministic"), "vocab_size"),
    (lambda: second_eigenvalue_modulus([[0.5, 0.6], [0.5, 0.5]]), "trans"),
])
def test_bad_process_arguments_are_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
