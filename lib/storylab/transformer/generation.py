"""Text-level helpers for a trained model: samples, next-token tables, addition accuracy.

Thin wrappers that encode and decode around the `storylab.lm.LanguageModel` interface
(`storylab.lm.generate_text`, `storylab.lm.next_token_table`). `model` is any
LanguageModel, or a bare `StoryTransformer` / `TransformerBridge`, which is wrapped in a
`TransformerLM` with the tokenizer's end-of-text id. Prompts are encoded without special
tokens; the model puts the end-of-text token before them itself, as every story in
training followed one.
"""

from __future__ import annotations

from typing import Iterable

import pandas as pd

from storylab import lm
from storylab.lm import TokenTable
from storylab.transformer.architectures import as_language_model
from storylab.transformer.output_rules import make_output_rule

__all__ = ["TokenTable", "generate", "next_token_table", "parse_problem", "addition_predictions", "addition_accuracy"]


def next_token_table(model, tokenizer, prompt: str, k: int = 10) -> TokenTable:
    """The `k` most likely next tokens, e.g. `[(' ', 88.8%), ('}', 0.9%), ...]` (see `storylab.lm.next_token_table`)."""
    return lm.next_token_table(as_language_model(model, tokenizer), tokenizer, prompt, k)


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
    output_rule=None,
) -> str:
    """The continuation of `prompt` (without the prompt itself); see `storylab.lm.generate_text`.

    Sampled with `temperature` among the `top_k` most likely (all if None) from a
    generator seeded by `seed` (same seed, same text), or the most likely when `greedy`.
    Stops after `max_new_tokens`, at the end-of-text token (not included) when
    `stop_at_eot`, or after the first `stop` (included). With `output_rule` (a registered
    name such as "addition", or a rule function) only the tokens the rule allows after the
    text so far are candidates (`storylab.transformer.output_rules`).
    """
    options = {"output_rule": make_output_rule(output_rule, tokenizer)} if output_rule is not None else {}
    return lm.generate_text(as_language_model(model, tokenizer), tokenizer, prompt, max_new_tokens, greedy=greedy,
                            temperature=temperature, top_k=top_k, seed=seed, stop=stop, stop_at_eot=stop_at_eot,
                            **options)


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
    output_rule=None,
) -> pd.DataFrame:
    """Greedy answers to arithmetic problems: columns prompt, answer, predicted, correct.

    The model's answer is its greedy continuation of the prompt up to `stop` (or the
    end-of-text token), stripped of spaces; it is correct when it equals the answer
    exactly, so an answer that never stops is wrong. `output_rule` restricts the greedy
    choice as in `generate` (for a model trained with that rule).
    """
    model = as_language_model(model, tokenizer)
    rule = make_output_rule(output_rule, tokenizer)  # built once for all problems
    rows = []
    for problem in problems:
        prompt, answer = parse_problem(problem)
        text = generate(model, tokenizer, prompt, max_new_tokens, greedy=True, stop=stop, output_rule=rule)
        predicted = text.split(stop)[0].strip()
        rows.append({"prompt": prompt, "answer": answer, "predicted": predicted, "correct": predicted == answer})
    if not rows:
        raise ValueError("problems: expected at least one problem, got none")
    return pd.DataFrame(rows)


def addition_accuracy(model, tokenizer, problems: Iterable[str | tuple[str, str]], **kwargs) -> float:
    """Exact-match accuracy of greedy answers (see `addition_predictions`)."""
    return float(addition_predictions(model, tokenizer, problems, **kwargs)["correct"].mean())
