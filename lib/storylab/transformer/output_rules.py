"""Restricted output: a rule saying which next tokens are valid, for the loss and for sampling.

A rule is a small function a user writes for their own format. It is registered under a
name by a *factory* that receives the tokenizer and returns the rule itself:

```python
def my_rule(tokenizer):
    digits = allowed_ids(tokenizer, lambda text: text.isdigit())   # a (V,) bool mask
    def rule(ids):                     # ids (B, T) int64 -> allowed (B, T, V) bool
        allowed = torch.ones(*ids.shape, len(tokenizer), dtype=torch.bool, device=ids.device)
        ...                            # allowed[b, t] = the tokens that may FOLLOW ids[b, :t + 1]
        return allowed
    return rule

register_output_rule("mine", my_rule)  # then TrainConfig(output_rule="mine"), generate(..., output_rule="mine")
```

With `TrainConfig(output_rule=name)` the training loss at each position is the
cross-entropy of the softmax over the valid tokens only (`restricted_cross_entropy`):
invalid tokens get no probability and no gradient, so the model is free to put anything
in their logits. `generate(..., output_rule=name)` samples (or picks greedily) among the
valid tokens only. Validation bits/char stays the full-softmax number, so a restricted
run stays comparable with every other model; `restricted_nats` scores validation text
under the rule as well, in the same sliding windows as `scoring.evaluate` (the training
loop logs it as `val_loss_restricted`).

The shipped rule `"addition"` is for the addition corpus (`13 + 29 = 42;`): from the
`=` up to the closing `;` only digits, the space and `;` may follow; everywhere else all
tokens may. A training window that starts inside an answer (after its `=`) is left
unrestricted until the next `=`, which only loosens the rule.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

# the restricted loss lives with the scorer that applies it (scoring imports no rule); re-exported here
from storylab.transformer.scoring import check_targets_allowed, evaluate, restricted_cross_entropy  # noqa: F401

OutputRule = Callable[[torch.Tensor], torch.Tensor]  # ids (B, T) -> allowed next tokens (B, T, V) bool
RuleFactory = Callable[..., OutputRule]  # factory(tokenizer) -> rule
_RULES: dict[str, RuleFactory] = {}


def register_output_rule(name: str, factory: RuleFactory) -> None:
    """Make `factory(tokenizer) -> rule` selectable by `name` (in TrainConfig and generate)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty string, got {name!r}")
    if not callable(factory):
        raise ValueError(f"factory: expected a function factory(tokenizer) -> rule, got {factory!r}")
    _RULES[name] = factory


def output_rule_names() -> list[str]:
    return sorted(_RULES)


def check_rule_name(name) -> str:
    if name not in _RULES:
        raise ValueError(
            f"output_rule: unknown rule {name!r}; expected one of {output_rule_names()} "
            "(or register yours with storylab.transformer.register_output_rule)"
        )
    return name


def make_output_rule(rule: str | OutputRule | None, tokenizer) -> OutputRule | None:
    """The rule function for a registered name (built for `tokenizer`), a rule itself, or None."""
    if rule is None or callable(rule):
        return rule
    factory = _RULES[check_rule_name(rule)]
    if tokenizer is None:
        raise ValueError(f"tokenizer: the output rule {rule!r} needs the tokenizer to find its tokens, got None")
    return factory(tokenizer)


def allowed_ids(tokenizer, keep: Callable[[str], bool]) -> torch.Tensor:
    """(V,) bool: the tokens whose decoded text satisfies `keep` (special tokens never do)."""
    specials = set(tokenizer.all_special_ids)
    return torch.tensor([i not in specials and keep(tokenizer.decode([i])) for i in range(len(tokenizer))])


def addition_rule(tokenizer) -> OutputRule:
    """The rule of the addition corpus: after `a + b =`, only digits and spaces, then `;`."""
    answer_chars = set("0123456789 ;")
    in_answer_tokens = allowed_ids(tokenizer, lambda text: bool(text) and set(text) <= answer_chars)
    opens = allowed_ids(tokenizer, lambda text: "=" in text)  # a token holding '=' starts an answer
    closes = allowed_ids(tokenizer, lambda text: ";" in text)  # ... and one holding ';' ends it
    if not (in_answer_tokens.any() and opens.any() and closes.any()):
        raise ValueError("tokenizer: the 'addition' output rule needs tokens for digits, '=' and ';'; this tokenizer lacks them")

    def rule(ids: torch.Tensor) -> torch.Tensor:
        device = ids.device
        positions = torch.arange(ids.shape[-1], device=device).expand_as(ids)
        never = torch.full_like(ids, -1)
        last_open = torch.where(opens.to(device)[ids], positions, never).cummax(dim=-1).values
        last_close = torch.where(closes.to(device)[ids], positions, never).cummax(dim=-1).values
        in_answer = last_open > last_close  # an '=' so far and no ';' after it
        allowed = torch.ones(*ids.shape, len(in_answer_tokens), dtype=torch.bool, device=device)
        allowed[in_answer] = in_answer_tokens.to(device)
        return allowed

    return rule


register_output_rule("addition", addition_rule)


def check_rule_fits(rule: OutputRule, stream, n_tokens: int = 4096) -> None:
    """Fail before training when the rule forbids tokens the start of `stream` actually has next."""
    ids = torch.as_tensor(np.asarray(stream[: n_tokens + 1]).astype(np.int64))[None]
    check_targets_allowed(rule(ids[:, :-1]), ids[:, 1:])


def restrict_logits(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """`logits` (V,) with the tokens outside `allowed` (V,) bool at −inf (so their softmax is exactly 0).

    Done on logits, not probabilities: a model trained under the rule may give its invalid
    tokens logits so large that the valid ones' probabilities underflow to 0.
    """
    if not bool(allowed.any()):
        raise ValueError("output_rule: the rule allows no token at all after this context")
    return logits.masked_fill(~allowed.to(logits.device), float("-inf"))


def restricted_nats(model, stream, rule: OutputRule, n_ctx: int | None = None, eot_id: int | None = None,
                    max_tokens: int | None = None, batch_size: int = 32, stride: int | None = None) -> tuple[float, int]:
    """`(total_nats, n_tokens)` of `stream` under the rule: `scoring.evaluate` (the same windows, the
    same context per token) with the softmax restricted to the rule's valid tokens."""
    return evaluate(model, stream, n_ctx, eot_id=eot_id, stride=stride, batch_size=batch_size, max_tokens=max_tokens,
                    allowed=rule)
