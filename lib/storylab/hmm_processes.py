"""The hidden Markov processes of the learnability study, and how fast each one mixes.

Hu, Liu & Jin (2024, "On Limitation of Transformer for Learning HMMs") contrast fast-mixing
random HMMs with slow-mixing cyclic ones. This module builds the exact float64 tables
`(start, trans, emit)` of the structured families (`CategoricalHMM.from_params` turns them
into a model) and measures mixing from any transition matrix:

- `mess3_params(x, a)`: the 3-state process of Shai et al. 2024 (see `corpora.hmm_source`).
- `cyclic_params(n_states, vocab_size, epsilon, emission, seed, concentration)`: a cycle
  0 → 1 → … → n−1 → 0 taken with probability 1 − ε, and with probability ε a jump to a
  state drawn uniformly from all n (the cycle's successor included), so
  `trans = (1 − ε)·C + ε·J/n` with C the cyclic shift and J the all-ones matrix. ε = 0 is a
  clock that never mixes; ε = 1 forgets the state at every step. Two emission variants:
  `deterministic`: state s always emits `labels[s]`, a seeded labelling that uses every
  symbol about equally often (`vocab_size <= n_states`, so states alias and the phase must
  be inferred from a run of symbols) and whose cyclic word has no shorter period (else the
  process would be a smaller cycle in disguise); `stochastic`: every state emits from its
  own Dirichlet(`concentration`) row — the same emission law as the `random` kind, so
  `random` and cyclic-stochastic differ in their transitions only. The start is uniform,
  which is the stationary distribution (trans is doubly stochastic).
  (The paper's exact cyclic definitions were not at hand; this is our parameterisation of
  "a permutation cycle plus noise ε, deterministic or stochastic emissions". A cycle
  through the states in a random order is the same process with states renamed, so the
  cycle is taken in index order.)

Mixing time here is the relaxation time `t_rel = 1 / (1 − |λ₂|)`, in steps, with |λ₂| the
second-largest eigenvalue modulus of `trans`: distances to the stationary distribution
shrink like |λ₂|^t = exp(−t / t_rel) (up to log factors for a chain that is not reversible).
It is `None` where |λ₂| = 1 (a periodic or reducible chain never mixes). For the cyclic
family the circulant's eigenvalues are (1 − ε)·ω^k for k ≠ 0 (ω = e^{2πi/n}), so t_rel = 1/ε
exactly; for mess3 they are 1 − 3x, so t_rel = 1/(3x).
"""

from __future__ import annotations

import numpy as np

from storylab.checks import check_int, check_number
from storylab.hmm import dirichlet_rows

EMISSIONS = ("deterministic", "stochastic")
NEVER_MIXES_TOL = 1e-12  # |λ₂| this close to 1 counts as a chain that never mixes


def mess3_params(x: float = 0.15, a: float = 0.6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, trans, emit) of mess3 as a state-emitting HMM (see `storylab.corpora.hmm_source`)."""
    if not (isinstance(x, (int, float)) and 0 < x < 0.5):
        raise ValueError(f"x: mess3's switching probability must lie in (0, 0.5), got {x!r}")
    if not (isinstance(a, (int, float)) and 0 < a < 1):
        raise ValueError(f"a: mess3's emission weight must lie in (0, 1), got {a!r}")
    trans = np.full((3, 3), x)
    np.fill_diagonal(trans, 1 - 2 * x)
    emit = np.full((3, 3), (1 - a) / 2)
    np.fill_diagonal(emit, a)
    return np.full(3, 1 / 3), trans, emit


def cyclic_transitions(n_states: int, epsilon: float) -> np.ndarray:
    """(n, n) `(1 − ε)·C + ε/n` with C the cyclic shift s → s + 1 (mod n)."""
    n_states = check_int("n_states", n_states, minimum=1)
    epsilon = check_number("epsilon", epsilon)
    if epsilon > 1:
        raise ValueError(f"epsilon: expected a noise probability in [0, 1], got {epsilon!r}")
    shift = np.roll(np.eye(n_states), 1, axis=1)  # row s has its 1 in column s + 1
    return (1 - epsilon) * shift + epsilon / n_states


def cyclic_labels(n_states: int, vocab_size: int, seed: int = 0) -> np.ndarray:
    """(n,) int64: the symbol each state of a deterministic cycle emits.

    Every symbol labels ⌊n/V⌋ or ⌈n/V⌉ states, in a seeded order whose cyclic word is
    primitive (no rotation but the identity maps it to itself), so that no smaller cycle
    emits the same process.
    """
    n_states = check_int("n_states", n_states, minimum=2)
    vocab_size = check_int("vocab_size", vocab_size, minimum=2)
    if vocab_size > n_states:
        raise ValueError(f"vocab_size: a deterministic cycle emits at most one symbol per state, "
                         f"so expected vocab_size <= n_states={n_states}, got {vocab_size}")
    balanced = np.arange(n_states) % vocab_size
    rng = np.random.default_rng(check_int("seed", seed))
    for _ in range(1000):
        labels = rng.permutation(balanced)
        if _is_primitive(labels):
            return labels
    return np.sort(balanced)  # blocks of equal symbols: primitive whenever two symbols occur


def _is_primitive(word: np.ndarray) -> bool:
    n = len(word)
    return not any(n % shift == 0 and np.array_equal(word, np.roll(word, shift)) for shift in range(1, n))


def cyclic_params(n_states: int, vocab_size: int, epsilon: float, emission: str = "stochastic", seed: int = 0,
                  concentration: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, trans, emit) of a noisy cycle (see the module docstring), float64."""
    if emission not in EMISSIONS:
        raise ValueError(f"emission: expected one of {EMISSIONS}, got {emission!r}")
    trans = cyclic_transitions(n_states, epsilon)
    vocab_size = check_int("vocab_size", vocab_size, minimum=1)
    seed = check_int("seed", seed)
    if emission == "deterministic":
        emit = np.eye(vocab_size)[cyclic_labels(n_states, vocab_size, seed)]
    else:
        concentration = check_number("concentration", concentration, strict=True)
        # the random kind's emission law (the same floored Dirichlet draw), on its own seeded stream
        emit = np.concatenate(list(dirichlet_rows(np.random.default_rng(seed), np.full(vocab_size, concentration), n_states)))
    return np.full(n_states, 1 / n_states), trans, emit


def second_eigenvalue_modulus(trans) -> float:
    """|λ₂|: the second-largest eigenvalue modulus of a row-stochastic matrix (0 for one state)."""
    trans = np.asarray(trans, dtype=np.float64)
    if trans.ndim != 2 or trans.shape[0] != trans.shape[1] or not np.isfinite(trans).all():
        raise ValueError(f"trans: expected a finite square transition matrix, got shape {trans.shape}")
    if (trans < 0).any() or not np.allclose(trans.sum(axis=1), 1, atol=1e-4):
        raise ValueError("trans: expected non-negative rows that each sum to 1")
    moduli = np.sort(np.abs(np.linalg.eigvals(trans)))[::-1]
    return float(min(moduli[1], 1.0)) if len(moduli) > 1 else 0.0


def mixing_time_steps(trans) -> float | None:
    """Relaxation time 1 / (1 − |λ₂|) in steps; None for a chain that never mixes (|λ₂| = 1)."""
    modulus = second_eigenvalue_modulus(trans)
    if modulus >= 1 - NEVER_MIXES_TOL:
        return None
    return 1.0 / (1.0 - modulus)
