"""The `hmm` corpus source: text sampled from a known hidden Markov model.

Four kinds of model:

- `random`: a `CategoricalHMM` with Dirichlet(`concentration`) rows, `n_states` x `vocab_size`, from `seed`
  (fast mixing);
- `cyclic`: `n_states` on a cycle left with probability `epsilon` (0: never mixes), emitting
  by a fixed labelling (`emission: deterministic`) or from Dirichlet rows (`stochastic`);
  see `storylab.hmm_processes.cyclic_params`;
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
so where a sequence ends carries no information. Beside the floor, the metadata records
how fast the process mixes: `second_eigenvalue_modulus` of the transition matrix and
`mixing_time_steps` = 1 / (1 − |λ₂|), the relaxation time (null for a chain that never
mixes; see `storylab.hmm_processes`), and the true `n_states`.

`cot_every: k` writes the true hidden state into the training texts after every k-th
symbol (block chain-of-thought; see `storylab.corpora.hmm_cot`); validation texts stay
plain, and the metadata then adds `cot_every` and `state_alphabet`.
"""

from __future__ import annotations

import math
import string
from typing import Any

import numpy as np

from storylab.checks import check_int
from storylab.corpora.hmm_cot import interleave_states
from storylab.corpora.options import SOURCE_DEFAULTS, canonical_hmm_spec
from storylab.hmm import CategoricalHMM
from storylab.hmm_processes import cyclic_params, mess3_params, mixing_time_steps, second_eigenvalue_modulus

# no whitespace (a sequence stays one "word") and none of <|> (so text never spells a special token)
ALPHABET = string.ascii_lowercase + string.ascii_uppercase + string.digits + "!#$%&()*+,-./:;=?@[]^_{}~"
KINDS = ("random", "cyclic", "mess3", "saved")
DEFAULTS = SOURCE_DEFAULTS["hmm"]  # the defaults every kind shares (`hmm_options` adds the kind's own)


def hmm_options(options: dict[str, Any]) -> dict[str, Any]:
    """Every option of an `hmm` process: `options` (None values left out) over the defaults, its kind's
    own included: the one merge for load_corpus, build_hmm_corpus and rebuilding the true model."""
    return canonical_hmm_spec({**DEFAULTS, **{k: v for k, v in options.items() if v is not None}})


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


def exact_params(options: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """float64 (start, trans, emit) of a structured kind (cyclic, mess3); None for random and saved."""
    kind = options["kind"]
    if kind not in KINDS:
        raise ValueError(f"corpus: hmm option 'kind' must be one of {KINDS}, got {kind!r}")
    if kind == "mess3":
        return mess3_params(options["x"], options["a"])
    if kind == "cyclic":
        return cyclic_params(
            check_int("corpus: hmm option 'n_states'", options["n_states"], minimum=1),
            check_int("corpus: hmm option 'vocab_size'", options["vocab_size"], minimum=1),
            options["epsilon"], options["emission"], options["seed"], options["concentration"],
        )
    return None


def source_model(options: dict[str, Any]) -> CategoricalHMM:
    """The true HMM an `hmm` corpus spec describes."""
    params = exact_params(options)
    if params is not None:
        return CategoricalHMM.from_params(*params, device="cpu")
    if options["kind"] == "saved":
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


def mixing_meta(options: dict[str, Any], model: CategoricalHMM) -> dict[str, Any]:
    """The true `n_states`, |λ₂| and the relaxation time of the process, from its exact tables where known."""
    params = exact_params(options)
    trans = params[1] if params is not None else model.trans.double().cpu().numpy()
    return {"n_states": model.n_states, "second_eigenvalue_modulus": second_eigenvalue_modulus(trans),
            "mixing_time_steps": mixing_time_steps(trans)}


def build_hmm_corpus(options: dict[str, Any]) -> dict[str, Any]:
    """Train and validation texts (+ true states) sampled from the HMM `options` describe.

    Options: kind, n_states, vocab_size, concentration, seed, path, x, a, epsilon, emission
    (the model), n_sequences, validation, length (the samples) and cot_every. Other keys
    (e.g. `source`) are ignored. Returns the splits, `floor_bits_per_char`, `alphabet`, the
    true `model` and `meta` (what the corpus metadata records).
    """
    options = hmm_options(options)
    n_train, n_val, length = (check_int(f"corpus: hmm option {name!r}", options[name], minimum=1) for name in ("n_sequences", "validation", "length"))
    seed = options["seed"]
    check_int("corpus: hmm option 'seed'", seed)
    cot_every = options.get("cot_every")
    if cot_every is not None:
        check_int("corpus: hmm option 'cot_every'", cot_every, minimum=1)
    model = source_model(options)
    n_chars = model.vocab_size + (model.n_states if cot_every else 0)
    if n_chars > len(ALPHABET):
        wanted = f"vocab_size {model.vocab_size}" + (f" + n_states {model.n_states} (cot_every)" if cot_every else "")
        raise ValueError(f"corpus: hmm {wanted} is larger than the {len(ALPHABET)} printable characters available")
    alphabet = ALPHABET[: model.vocab_size]
    splits = {}
    for split, n, sample_seed in (("train", n_train, 2 * seed + 1), ("validation", n_val, 2 * seed + 2)):
        tokens, states = model.sample(n, length, seed=sample_seed)
        splits[split] = {"text": [ids_to_text(row, alphabet) for row in tokens], "states": states.tolist(), "tokens": tokens}
    val_nats = -model.log_likelihood(splits["validation"].pop("tokens")).sum()
    train_tokens = splits["train"].pop("tokens")
    floor = float(val_nats / math.log(2) / (n_val * length))
    meta = {"floor_bits_per_char": floor, "alphabet": alphabet, **mixing_meta(options, model)}
    if cot_every:
        # the same samples, states written in: a CoT run and a plain run see the same symbols
        splits["train"] = _with_states(train_tokens, splits["train"]["states"], cot_every, model.vocab_size)
        meta.update(cot_every=cot_every, state_alphabet=ALPHABET[model.vocab_size : n_chars])
    return {**splits, "floor_bits_per_char": floor, "alphabet": alphabet, "model": model, "meta": meta}


def _with_states(tokens: np.ndarray, states: list[list[int]], every: int, vocab_size: int) -> dict[str, list]:
    texts, aligned = [], []
    for row_tokens, row_states in zip(tokens, states):
        ids, row_aligned = interleave_states(row_tokens, row_states, every, vocab_size)
        texts.append(ids_to_text(ids))  # symbol k is ALPHABET[k], state s is ALPHABET[V + s]
        aligned.append(row_aligned.tolist())
    return {"text": texts, "states": aligned}
