"""The one language-model interface every model family implements.

Unigram, bigram, neural bigram, Kneser–Ney n-grams, `CategoricalHMM` and the transformer
are all a `LanguageModel`, with one meaning per name:

- `token_nats(sequences) -> list[np.ndarray]`: −ln p(x_t | x_<t) of every token of every
  sequence (float64, one array per sequence, same lengths). A sequence is one story's
  token ids followed by its end-of-text token (`EncodedSplit.sequences()`), and every
  sequence is implicitly preceded by an end-of-text token: its first token is predicted
  from the start-of-story context (the HMM's `start`, the bigram's end-of-text row, an
  end-of-text token in a transformer's context). A transformer scores a story longer than
  its context with a sliding window. This is the primitive: totals, bits/char and the
  diagnostics' per-character ledgers all come from it.
- `next_token_probs(prefix_ids) -> np.ndarray`: p(next token | prefix) over all
  `vocab_size` tokens, float64, summing to 1. The prefix leaves out the implicit leading
  end-of-text token: `[]` asks for the first token of a story.
- `generate(prefix_ids, max_new_tokens, *, greedy=False, temperature=1.0, top_k=None,
  seed=0, stop_id=EOT) -> np.ndarray`: the NEW token ids only (int64), drawn by the one
  loop `storylab.sampling.generate_tokens`; generation stops after `stop_id` (the model's
  end-of-text token by default, `None` never), which is then the last id returned.
  Decoding text is the tokenizer's job.
- `vocab_size`, `eot_id` (None only for a model that was never told its end-of-text id,
  such as an HMM loaded from a file that does not record it: `stop_id=EOT` then never
  stops), `family` (one of `FAMILIES`), `label` (a short readable name),
  and, for a fitted model, `n_params`, `train_tokens` and `train_flops` (the estimated
  arithmetic spent fitting), so no notebook writes a parameter-count or FLOPs formula.

Everything built on top of the interface lives in this module and works for every
family alike: `score` (a split's total cost, bits/char and the `<unk>` rule, as a
`Score`), `candidate_probabilities` (strings of any length, by the chain rule) and the
text-level helpers notebooks call (`generate_text`, `next_token_table`).

    lm_score = score(model, encoded.validation, floor_bits_per_char=corpus.floor_bits_per_char)
    lm_score.bits_per_char, lm_score.to_metrics()      # the figures metrics.json records
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Protocol, runtime_checkable

import numpy as np

from storylab.checks import check_int, check_number
from storylab.metrics import MODEL_FAMILIES as FAMILIES
from storylab.metrics import validation_summary
from storylab.prompts import encode_candidates, encode_prompt
from storylab.token_sequences import as_token_sequences


class _EndOfText:
    """The `stop_id` default of `generate`: the model's own end-of-text token."""

    def __repr__(self) -> str:
        return "EOT"


EOT = _EndOfText()


@runtime_checkable
class LanguageModel(Protocol):  # pragma: no mutate block (stubs only; mutmut's trampolines would add members)
    """What every storylab model family provides (see the module docstring)."""

    vocab_size: int
    eot_id: int | None

    @property
    def family(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def n_params(self) -> int: ...

    @property
    def train_tokens(self) -> int: ...

    @property
    def train_flops(self) -> float: ...

    def token_nats(self, sequences) -> list[np.ndarray]: ...

    def next_token_probs(self, prefix_ids) -> np.ndarray: ...

    def generate(self, prefix_ids, max_new_tokens: int, *, greedy: bool = False, temperature: float = 1.0,
                 top_k: int | None = None, seed: int = 0, stop_id=EOT) -> np.ndarray: ...


# ----------------------------------------------------------------------------- scoring
@dataclass(frozen=True)
class Score:
    """What a model's `token_nats` add up to on a split, and the figures derived from it.

    `stride` is the step of a transformer's sliding window (None for families that see
    the whole story). `bits_per_char` is None when the split holds `<unk>` tokens
    (`note` says why); `to_metrics()` gives the `val_*` keys of metrics.json.
    """

    total_nats: float
    n_tokens: int
    n_chars: int
    n_unk: int = 0
    floor_bits_per_char: float | None = None
    stride: int | None = None

    def to_metrics(self) -> dict[str, Any]:
        return {
            **validation_summary(self.total_nats, self.n_tokens, self.n_chars, self.floor_bits_per_char, self.n_unk),
            "val_total_nats": self.total_nats,
            "val_tokens": self.n_tokens,
            "val_chars": self.n_chars,
            "val_stride_tokens": self.stride,
        }

    @property
    def nats_per_token(self) -> float:
        return self.to_metrics()["val_nats_per_token"]

    @property
    def perplexity(self) -> float:
        return self.to_metrics()["val_perplexity"]

    @property
    def bits_per_char(self) -> float | None:
        return self.to_metrics()["val_bits_per_char"]

    @property
    def gap_to_floor_bits_per_char(self) -> float | None:
        return self.to_metrics()["gap_to_floor_bits_per_char"]

    @property
    def unk_rate(self) -> float:
        return self.n_unk / self.n_tokens

    @property
    def note(self) -> str | None:
        return self.to_metrics()["val_bits_per_char_note"]


def score(model: LanguageModel, split, floor_bits_per_char: float | None = None, *, n_chars: int | None = None,
          unk_id: int | None = None) -> Score:
    """The total of `model.token_nats` over `split`'s stories (each with its end-of-text).

    `split` is an `EncodedSplit` (which knows its characters and `<unk>` id) or a list of
    sequences with `n_chars` (and `unk_id`, if the tokenizer has one) given.
    """
    n_chars = n_chars if n_chars is not None else getattr(split, "n_chars", None)
    if n_chars is None:
        raise ValueError("n_chars: expected the character count of the scored text (an EncodedSplit knows it), got None")
    n_chars = check_int("n_chars", n_chars, minimum=1)
    if floor_bits_per_char is not None:
        floor_bits_per_char = check_number("floor_bits_per_char", floor_bits_per_char)
    unk_id = unk_id if unk_id is not None else getattr(split, "unk_id", None)
    sequences = as_token_sequences(split, model.vocab_size, "split")
    nats = model.token_nats(sequences)
    for seq, values in zip(sequences, nats, strict=True):
        if len(values) != len(seq):
            raise ValueError(f"{type(model).__name__}.token_nats: gave {len(values)} values for a sequence of {len(seq)} tokens")
    n_unk = 0 if unk_id is None else int(sum(np.count_nonzero(seq == unk_id) for seq in sequences))
    return Score(
        total_nats=float(np.concatenate(nats).sum()),
        n_tokens=int(sum(len(seq) for seq in sequences)),
        n_chars=n_chars,
        n_unk=n_unk,
        floor_bits_per_char=floor_bits_per_char,
        stride=getattr(model, "stride", None),
    )


# ----------------------------------------------------------------------------- text in, text out
def candidate_probabilities(model: LanguageModel, tokenizer, prompt: str, candidates: Iterable[str]) -> dict[str, float]:
    """p(the text after `prompt` is c | it is one of `candidates`), most likely first.

    A candidate is a string of any length, scored by its full probability: the chain
    rule over its tokens, from `token_nats` of prompt + candidate. The candidate is
    encoded on its own and appended to the prompt's tokens, so a BPE merge across the
    boundary cannot change how the prompt is tokenized, and every candidate follows the
    same prompt tokens; write the space a word needs into the candidate (" Tim"). The
    probability is that of this tokenization of the candidate (the way the tokenizer
    writes it), not of every token sequence spelling the same text. A transformer scores
    prompt + candidate as `token_nats` does, with its sliding window past n_ctx tokens.
    """
    candidates, candidate_ids = encode_candidates(tokenizer, candidates)
    prompt_ids = encode_prompt(tokenizer, prompt)
    nats = model.token_nats([np.asarray(prompt_ids + ids, dtype=np.int64) for ids in candidate_ids])
    log_probs = np.array([-values[len(prompt_ids):].sum() for values in nats])
    if not np.isfinite(log_probs).any():
        raise ValueError(f"candidates: every candidate has probability 0 after {prompt!r} under this model")
    weights = np.exp(log_probs - log_probs.max())
    probs = weights / weights.sum()
    return dict(sorted(zip(candidates, probs.tolist()), key=lambda pair: -pair[1]))


class TokenTable(list):
    """A list of `(token string, probability)` pairs that prints probabilities as percentages."""

    def __repr__(self) -> str:
        return "[" + ", ".join(f"({token!r}, {100 * p:.1f}%)" for token, p in self) + "]"

    __str__ = __repr__


def next_token_table(model: LanguageModel, tokenizer, prompt: str, k: int = 10) -> TokenTable:
    """The `k` most likely next tokens after `prompt`, e.g. `[(' ', 88.8%), ('}', 0.9%), ...]`.

    Tokens are decoded one by one, so a byte-level piece of a multi-byte character may
    show as a replacement character.
    """
    k = check_int("k", k, minimum=1)
    probs = model.next_token_probs(encode_prompt(tokenizer, prompt))
    top = np.argsort(-probs, kind="stable")[:k]
    return TokenTable((tokenizer.decode([int(i)]), float(probs[i])) for i in top)


def generate_text(model: LanguageModel, tokenizer, prompt: str = "", max_new_tokens: int = 200, *, greedy: bool = False,
                  temperature: float = 1.0, top_k: int | None = None, seed: int = 0, stop: str | None = None,
                  stop_at_eot: bool = True, **family_options: Any) -> str:
    """The continuation of `prompt` as text (without the prompt), through `model.generate`.

    Stops after `max_new_tokens`, at the end-of-text token (left out of the text) when
    `stop_at_eot`, and is cut after the first `stop` (included). The tokens are the same
    as an early stop at `stop` would give (generation is sequential, one seeded draw per
    token), so only the text after `stop` is dropped. `family_options` go to the family's
    own `generate` (e.g. a transformer's `output_rule`).
    """
    ids = model.generate(encode_prompt(tokenizer, prompt), max_new_tokens, greedy=greedy, temperature=temperature,
                         top_k=top_k, seed=seed, stop_id=EOT if stop_at_eot else None, **family_options)
    if stop_at_eot and len(ids) and model.eot_id is not None and ids[-1] == model.eot_id:
        ids = ids[:-1]
    text = tokenizer.decode([int(i) for i in ids])
    if stop is not None and stop in text:
        text = text[: text.index(stop) + len(stop)]
    return text
