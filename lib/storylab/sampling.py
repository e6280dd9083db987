"""Pick the next token from a probability vector: temperature, top-k, greedy.

Shared by the HMM and the n-gram baselines so every model's `generate` means the same
thing by `temperature`, `top_k` and `greedy`.
"""

from __future__ import annotations

import numpy as np
import torch

from storylab.checks import check_int, check_number


def pick_next_token(probs: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, greedy: bool = False, generator: torch.Generator | None = None) -> int:
    """One token id drawn from `probs` (V,), reshaped by `temperature` and `top_k`."""
    check_number("temperature", temperature, strict=True)
    if top_k is not None:
        check_int("top_k", top_k, minimum=1)
    probs = probs.detach().double().cpu().clamp_min(0)
    if greedy:
        return int(probs.argmax())
    # p ** (1/T) is softmax(log p / T) without the -inf arithmetic for zero-probability tokens
    weights = probs ** (1.0 / temperature)
    if top_k is not None and top_k < weights.shape[0]:
        threshold = torch.topk(weights, top_k).values[-1]
        weights = torch.where(weights >= threshold, weights, torch.zeros_like(weights))
    if not weights.sum() > 0:
        return int(probs.argmax())
    return int(torch.multinomial(weights / weights.sum(), 1, generator=generator))


def candidate_probabilities(probs: np.ndarray, candidates, vocab_size: int) -> np.ndarray:
    """`probs` at the candidate token ids (not renormalised), or all of `probs` for None."""
    if candidates is None:
        return probs
    candidates = np.asarray(candidates, dtype=np.int64)
    if candidates.ndim != 1 or (candidates < 0).any() or (candidates >= vocab_size).any():
        raise ValueError(f"candidates: expected a 1-D list of token ids in [0, {vocab_size}), got {candidates.tolist()}")
    return probs[candidates]
