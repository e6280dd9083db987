"""Block chain-of-thought data for `hmm` corpora: the hidden state written into the text every k symbols.

Hu, Liu & Jin (2024) help a shallow transformer with intermediate states during training
("block CoT"). The `hmm` source knows the true states, so with the option `cot_every: k`
a training text x_1 … x_L becomes

    x_1 … x_k  S(s_k)  x_{k+1} … x_{2k}  S(s_{2k})  …  x_L

where S(s) is the state's own character `ALPHABET[V + s]` (V = vocab_size): states use
the alphabet range right after the symbols, so `alphabet + state_alphabet` is one
character-level alphabet and a tokenizer id maps to a symbol (< V) or a state (>= V).
The state written after x_t is the state that emitted x_t. None is written after the
last symbol (it would predict nothing), so a text has L + ⌊(L − 1)/k⌋ characters, and its
`states` column stays aligned character by character (a state character's entry is the
state it names).

Evaluation runs without the true states: validation texts are written plain, so
bits/char and the exact floor mean what they mean without CoT (a CoT-trained model is
then scored with no state in its context). `storylab.belief_metrics.belief_kl` with
`cot_every` instead lets the model write its own state at every slot (greedily) and
scores only the symbols — the test-time chain of thought. `strip_states` removes state
ids from anything a model wrote.
"""

from __future__ import annotations

import numpy as np

from storylab.checks import check_int


def state_after(t: int, length: int, every: int) -> bool:
    """Whether a state is written after symbol t (0-based) of a `length`-symbol text."""
    return (t + 1) % every == 0 and t < length - 1


def interleave_states(tokens, states, every: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """`(ids, states)` of one text with its states written in: symbols keep their ids, state s is id V + s."""
    every = check_int("cot_every", every, minimum=1)
    vocab_size = check_int("vocab_size", vocab_size, minimum=1)
    tokens, states = np.asarray(tokens, dtype=np.int64), np.asarray(states, dtype=np.int64)
    if tokens.shape != states.shape or tokens.ndim != 1:
        raise ValueError(f"tokens, states: expected two 1-D arrays of one length, got {tokens.shape} and {states.shape}")
    ids, aligned = [], []
    for t, (token, state) in enumerate(zip(tokens, states)):
        ids.append(token)
        aligned.append(state)
        if state_after(t, len(tokens), every):
            ids.append(vocab_size + state)
            aligned.append(state)
    return np.asarray(ids, dtype=np.int64), np.asarray(aligned, dtype=np.int64)


def strip_states(ids, vocab_size: int) -> np.ndarray:
    """The symbol ids of a CoT sequence (every id >= vocab_size, a state, removed)."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    return ids[ids < check_int("vocab_size", vocab_size, minimum=1)]
