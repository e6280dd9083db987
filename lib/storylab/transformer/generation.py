"""Look at what a trained model predicts: samples, next-token tables, addition accuracy.

Every function takes either a `StoryTransformer` or a `TransformerBridge` (both map
token ids to logits) and a tokenizer. Prompts are encoded without special tokens and,
by default, preceded by the end-of-text token: in training every story follows one, so
that is the context in which the model learned how stories begin.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import pandas as pd
import torch

from storylab.checks import check_int
from storylab.sampling import pick_next_token
from storylab.transformer.data import model_context_length
from storylab.transformer.output_rules import make_output_rule, restrict_logits


def encode_prompt(tokenizer, prompt: str, prepend_eot: bool = True) -> list[int]:
    if not isinstance(prompt, str):
        raise ValueError(f"prompt: expected a string, got {type(prompt).__name__}")
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if prepend_eot:
        ids = [tokenizer.eos_token_id, *ids]
    if not ids:
        raise ValueError("prompt: empty prompt with prepend_eot=False leaves nothing to condition on")
    return ids


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def _last_logits(model, ids: Sequence[int]) -> torch.Tensor:
    """Logits of the token after `ids` (cropped to the model's context), on the CPU, float32."""
    context = list(ids)[-model_context_length(model) :]
    tokens = torch.tensor([context], device=_device(model))
    return model(tokens)[0, -1].float().cpu()


def next_token_probs(model, tokenizer, prompt: str, prepend_eot: bool = True) -> torch.Tensor:
    """p(next token | prompt) over the whole vocabulary, a 1-D CPU tensor."""
    return torch.softmax(_last_logits(model, encode_prompt(tokenizer, prompt, prepend_eot)), dim=-1)


class TokenTable(list):
    """A list of `(token string, probability)` pairs that prints probabilities as percentages."""

    def __repr__(self) -> str:
        return "[" + ", ".join(f"({token!r}, {100 * p:.1f}%)" for token, p in self) + "]"

    __str__ = __repr__


def next_token_table(model, tokenizer, prompt: str, k: int = 10, prepend_eot: bool = True) -> TokenTable:
    """The `k` most likely next tokens, e.g. `[(' ', 0.888), ('}', 0.009), ...]`.

    Shown as `[(' ', 88.8%), ('}', 0.9%), ...]`; tokens are decoded one by one, so a
    byte-level piece of a multi-byte character may show as a replacement character.
    """
    check_int("k", k, minimum=1)
    probs = next_token_probs(model, tokenizer, prompt, prepend_eot)
    top = torch.topk(probs, min(k, len(probs)))
    return TokenTable((tokenizer.decode([i]), float(p)) for p, i in zip(top.values, top.indices.tolist()))


def candidate_token_id(tokenizer, candidate: str | int) -> int:
    """The token id of a candidate given as an id or as a string that is exactly one token."""
    if isinstance(candidate, int) and not isinstance(candidate, bool):
        if not 0 <= candidate < len(tokenizer):
            raise ValueError(f"candidates: token id {candidate} is outside [0, {len(tokenizer)})")
        return candidate
    if not isinstance(candidate, str):
        raise ValueError(f"candidates: expected strings or token ids, got {candidate!r}")
    ids = tokenizer(candidate, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        pieces = [tokenizer.decode([i]) for i in ids]
        raise ValueError(
            f"candidates: {candidate!r} is {len(ids)} tokens {pieces}, expected exactly one "
            f"(with BPE a leading space often makes a word one token)"
        )
    return ids[0]


def next_token_distribution(
    model, tokenizer, prompt: str, candidates: Iterable[str | int], prepend_eot: bool = True
) -> dict[str | int, float]:
    """p(next token = c | prompt, next token is one of `candidates`), most likely first.

    Candidates are strings that are each exactly one token (else a ValueError says how
    they split) or token ids. The model's total probability on the candidates is
    `sum(next_token_probs(...)[ids])` if you need it.
    """
    candidates = list(candidates)
    if not candidates:
        raise ValueError("candidates: expected at least one candidate, got none")
    ids = [candidate_token_id(tokenizer, c) for c in candidates]
    if len(set(ids)) != len(ids):
        raise ValueError(f"candidates: two candidates are the same token: {candidates}")
    probs = next_token_probs(model, tokenizer, prompt, prepend_eot)[ids]
    probs = probs / probs.sum()
    ranked = sorted(zip(candidates, probs.tolist()), key=lambda pair: -pair[1])
    return dict(ranked)


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompt: str = "",
    max_new_tokens: int = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    greedy: bool = False,
    seed: int = 0,
    stop: str | None = None,
    stop_at_eot: bool = True,
    prepend_eot: bool = True,
    output_rule=None,
) -> str:
    """The continuation of `prompt` (without the prompt itself).

    Tokens are picked by `storylab.sampling.pick_next_token`, as for the HMM and n-gram
    models: sampled with `temperature` among the `top_k` most likely (all if None) from a
    generator seeded by `seed` (same seed, same text), or the most likely when `greedy`.
    Stops after `max_new_tokens`, at the end-of-text token (not included) when
    `stop_at_eot`, or once the text contains `stop` (included). With `output_rule` (a
    registered name such as "addition", or a rule function) only the tokens the rule
    allows after the context are candidates (`storylab.transformer.output_rules`).
    """
    check_int("max_new_tokens", max_new_tokens)
    pick_next_token(torch.ones(1), temperature, top_k, greedy)  # checks temperature and top_k before any compute
    rule = make_output_rule(output_rule, tokenizer)
    ids = encode_prompt(tokenizer, prompt, prepend_eot)
    generator = torch.Generator().manual_seed(seed)
    new_ids: list[int] = []
    for _ in range(max_new_tokens):
        logits = _last_logits(model, ids + new_ids)
        if rule is not None:  # the rule reads the whole text so far, even past the model's context
            logits = restrict_logits(logits, rule(torch.tensor([ids + new_ids]))[0, -1])
        probs = torch.softmax(logits, dim=-1)
        next_id = pick_next_token(probs, temperature, top_k, greedy, generator)
        if stop_at_eot and next_id == tokenizer.eos_token_id:
            break
        new_ids.append(next_id)
        if stop is not None and stop in tokenizer.decode(new_ids):
            break
    text = tokenizer.decode(new_ids)
    if stop is not None and stop in text:
        text = text[: text.index(stop) + len(stop)]
    return text


def parse_problem(problem: str | tuple[str, str]) -> tuple[str, str]:
    """`"13 + 29 = 42"` (or `("13 + 29 = ", "42")`) -> `("13 + 29 = ", "42")`."""
    if isinstance(problem, tuple) and len(problem) == 2:
        return problem[0], str(problem[1]).strip()
    if not isinstance(problem, str) or "=" not in problem:
        raise ValueError(f"problems: expected 'a + b = c' strings or (prompt, answer) pairs, got {problem!r}")
    left, _, right = problem.rpartition("=")
    answer = right.strip().rstrip(";").strip()
    prompt = left + "=" + right[: len(right) - len(right.lstrip())]
    return prompt, answer


def addition_predictions(
    model, tokenizer, problems: Iterable[str | tuple[str, str]], stop: str = ";", max_new_tokens: int = 16,
    prepend_eot: bool = True, output_rule=None,
) -> pd.DataFrame:
    """Greedy answers to arithmetic problems: columns prompt, answer, predicted, correct.

    The model's answer is its greedy continuation of the prompt up to `stop` (or the
    end-of-text token), stripped of spaces; it is correct when it equals the answer
    exactly, so an answer that never stops is wrong. `output_rule` restricts the greedy
    choice as in `generate` (for a model trained with that rule).
    """
    rows = []
    output_rule = make_output_rule(output_rule, tokenizer)  # built once for all problems
    for problem in problems:
        prompt, answer = parse_problem(problem)
        text = generate(model, tokenizer, prompt, max_new_tokens, greedy=True, stop=stop, prepend_eot=prepend_eot,
                        output_rule=output_rule)
        predicted = text.split(stop)[0].strip()
        rows.append({"prompt": prompt, "answer": answer, "predicted": predicted, "correct": predicted == answer})
    if not rows:
        raise ValueError("problems: expected at least one problem, got none")
    return pd.DataFrame(rows)


def addition_accuracy(model, tokenizer, problems: Iterable[str | tuple[str, str]], **kwargs) -> float:
    """Exact-match accuracy of greedy answers (see `addition_predictions`)."""
    return float(addition_predictions(model, tokenizer, problems, **kwargs)["correct"].mean())
