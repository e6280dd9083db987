"""Pick the next token from a probability vector, and the one generation loop every family uses.

`pick_next_token` gives `temperature`, `top_k` and `greedy` one meaning; `generate_tokens`
is the loop behind every `LanguageModel.generate` (see `storylab.lm`): the same argument
checks, the same seeded torch generator and the same stopping rule for the HMM, the
n-gram baselines and the transformer. A family supplies only `predict(new_ids)`, the
next-token probabilities after its prefix and the tokens generated so far, so it can keep
whatever incremental state makes that cheap (the HMM's belief, nothing for a bigram).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from storylab.checks import check_int, check_number
from storylab.lm import EOT


def check_sampling(temperature: float = 1.0, top_k: int | None = None) -> None:
    """One-line errors for a sampling temperature that is not positive or a top_k below 1."""
    check_number("temperature", temperature, strict=True)
    if top_k is not None:
        check_int("top_k", top_k, minimum=1)


def pick_next_token(probs: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, greedy: bool = False, generator: torch.Generator | None = None) -> int:
    """One token id drawn from `probs` (V,), reshaped by `temperature` and `top_k`.

    Probabilities that sum to 0 or are not finite come from a context the model rules out:
    that is a one-line ValueError, not a silent fallback."""
    check_sampling(temperature, top_k)
    probs = torch.as_tensor(probs).detach().double().cpu().clamp_min(0)
    if not (torch.isfinite(probs).all() and probs.sum() > 0):
        raise ValueError("prefix_ids: the model gives this context probability 0, so it has no next token to draw")
    if greedy:
        return int(probs.argmax())
    # (p / max p) ** (1/T) is softmax(log p / T) without -inf arithmetic for zero-probability tokens,
    # and without underflow at low temperatures: the most likely token keeps weight 1
    weights = (probs / probs.max()) ** (1.0 / temperature)
    if top_k is not None and top_k < weights.shape[0]:
        keep = torch.topk(weights, top_k).indices  # exactly k tokens, ties broken by position
        weights = torch.zeros_like(weights).index_copy_(0, keep, weights[keep])
    return int(torch.multinomial(weights / weights.sum(), 1, generator=generator))


def resolve_stop_id(stop_id, eot_id: int | None, vocab_size: int) -> int | None:
    """`EOT` → the model's end-of-text id (None if it has none); None → never stop; else a checked id."""
    if stop_id is EOT:
        return eot_id
    if stop_id is None:
        return None
    return check_int("stop_id", stop_id, below=vocab_size)


def generate_tokens(
    predict: Callable[[list[int]], np.ndarray | torch.Tensor],
    max_new_tokens: int,
    *,
    vocab_size: int,
    eot_id: int | None,
    greedy: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    stop_id=EOT,
) -> np.ndarray:
    """Up to `max_new_tokens` new ids (int64), each picked from `predict(ids so far)`.

    Stops after `stop_id` (resolved by `resolve_stop_id`), which is then the last id.
    Every argument is checked before the first call to `predict`.
    """
    max_new_tokens = check_int("max_new_tokens", max_new_tokens)
    seed = check_int("seed", seed)
    check_sampling(temperature, top_k)
    stop = resolve_stop_id(stop_id, eot_id, vocab_size)
    generator = torch.Generator().manual_seed(seed)
    new_ids: list[int] = []
    for _ in range(max_new_tokens):
        token = pick_next_token(predict(new_ids), temperature=temperature, top_k=top_k, greedy=greedy, generator=generator)
        new_ids.append(token)
        if token == stop:
            break
    return np.asarray(new_ids, dtype=np.int64)
