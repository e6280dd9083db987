"""The `hmm` corpus source: text sampled from a known hidden Markov model.

Three kinds of model:

- `random`: a `CategoricalHMM` with Dirichlet(`concentration`) rows, `n_states` x `vocab_size`, from `seed`;
- `saved`: a `CategoricalHMM` folder at `path` (e.g. one fitted in 02_hmm);
- `mess3`: the 3-state, 3-token process of Shai et al. 2024 ("Transformers represent
  belief state geometry in their residual stream"), with parameters `x` (0.15) and `a`
  (0.6). Its edge-emitting definition T^(tok)[i, j] = P(tok, next state j | state i)
  factorises as trans[i, j] * emit[j, tok] with trans = (1-2x on the diagonal, x
  elsewhere) and emit = (a for tok == j, (1-a)/2 elsewhere), so it is a CategoricalHMM
  whose state at step t is the state the paper's belief over "the current state" is
  about; `CategoricalHMM.beliefs` gives exactly its belief-state geometry. The start
  distribution is the stationary (uniform) one.

Each token id is one printable character of `ALPHABET` (no whitespace), so texts go
through the ordinary text pipeline and the `char` tokenizer unchanged. The true hidden
states are kept per character for probes. The floor is exact: the forward algorithm on
the true model gives Σ −log2 p(x) over the validation sequences divided by their
characters. It does not count an end-of-text token: every sequence has the same length,
so where a sequence ends carries no information.
"""

from __future__ import annotations

import math
import string
from typing import Any

import numpy as np

from storylab.checks import check_int
from storylab.corpora.options import SOURCE_DEFAULTS
from storylab.hmm import CategoricalHMM

# no whitespace (a sequence stays one "word") and none of <|> (so text never spells a special token)
ALPHABET = string.ascii_lowercase + string.ascii_uppercase + string.digits + "!#$%&()*+,-./:;=?@[]^_{}~"
KINDS = ("random", "mess3", "saved")
DEFAULTS = SOURCE_DEFAULTS["hmm"]  # one set of defaults for load_corpus and for rebuilding the true model


def text_to_ids(text: str, alphabet: str = ALPHABET) -> np.ndarray:
    """Token ids of a text written in `alphabet` (one character per token)."""
    lookup = {char: i for i, char in enumerate(alphabet)}
    try:
        return np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))
    except KeyError as error:
        raise ValueError(f"text: character {error.args[0]!r} is not in the alphabet {alphabet!r}") from None


def ids_to_text(ids, alphabet: str = ALPHABET) -> str:
    """The text of token ids (one character per token)."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= len(alphabet)):
        raise ValueError(f"ids: token ids must lie in [0, {len(alphabet)}) for this alphabet, got {int(ids.min())}..{int(ids.max())}")
    return "".join(alphabet[i] for i in ids)


def mess3_params(x: float = 0.15, a: float = 0.6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, trans, emit) of mess3 as a state-emitting HMM (see the module docstring)."""
    if not (isinstance(x, (int, float)) and 0 < x < 0.5):
        raise ValueError(f"x: mess3's switching probability must lie in (0, 0.5), got {x!r}")
    if not (isinstance(a, (int, float)) and 0 < a < 1):
        raise ValueError(f"a: mess3's emission weight must lie in (0, 1), got {a!r}")
    trans = np.full((3, 3), x)
    np.fill_diagonal(trans, 1 - 2 * x)
    emit = np.full((3, 3), (1 - a) / 2)
    np.fill_diagonal(emit, a)
    return np.full(3, 1 / 3), trans, emit


def source_model(options: dict[str, Any]) -> CategoricalHMM:
    """The true HMM an `hmm` corpus spec describes."""
    kind = options["kind"]
    if kind not in KINDS:
        raise ValueError(f"corpus: hmm option 'kind' must be one of {KINDS}, got {kind!r}")
    if kind == "mess3":
        return CategoricalHMM.from_params(*mess3_params(options["x"], options["a"]), device="cpu")
    if kind == "saved":
        if not options.get("path"):
            raise ValueError("corpus: hmm kind 'saved' needs a 'path' to a saved CategoricalHMM folder")
        return CategoricalHMM.load(options["path"], device="cpu")
    return CategoricalHMM(
        n_states=check_int("corpus: hmm option 'n_states'", options["n_states"], minimum=1),
        vocab_size=check_int("corpus: hmm option 'vocab_size'", options["vocab_size"], minimum=1),
        seed=options["seed"],
        concentration=options["concentration"],
        device="cpu",
    )


def build_hmm_corpus(options: dict[str, Any]) -> dict[str, Any]:
    """Train and validation texts (+ true states) sampled from the HMM `options` describe.

    Options: kind, n_states, vocab_size, concentration, seed, path, x, a (the model) and
    n_sequences, validation, length (the samples). Other keys (e.g. `source`) are ignored.
    """
    options = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    n_train, n_val, length = (check_int(f"corpus: hmm option {name!r}", options[name], minimum=1) for name in ("n_sequences", "validation", "length"))
    seed = options["seed"]
    check_int("corpus: hmm option 'seed'", seed)
    model = source_model(options)
    if model.vocab_size > len(ALPHABET):
        raise ValueError(f"corpus: hmm vocab_size {model.vocab_size} is larger than the {len(ALPHABET)} printable characters available")
    alphabet = ALPHABET[: model.vocab_size]
    splits = {}
    for split, n, sample_seed in (("train", n_train, 2 * seed + 1), ("validation", n_val, 2 * seed + 2)):
        tokens, states = model.sample(n, length, seed=sample_seed)
        splits[split] = {"text": [ids_to_text(row, alphabet) for row in tokens], "states": states.tolist(), "tokens": tokens}
    val_nats = -model.log_likelihood(splits["validation"].pop("tokens")).sum()
    splits["train"].pop("tokens")
    return {
        **splits,
        "floor_bits_per_char": float(val_nats / math.log(2) / (n_val * length)),
        "alphabet": alphabet,
        "model": model,
    }
