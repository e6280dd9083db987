"""Top-k attention: each query attends only to the k keys with the largest scores.

Per query, the scores `q·k / sqrt(d_head)` of the keys it may see (the earlier ones, under
a causal mask) are computed as usual; only the `k` largest are kept, softmaxed among
themselves, and used to weight their values — which are gathered by index, so the value
side costs (T, k, d_head) per head instead of the (T, T, d_head) matmul of dense attention.
The score side is still dense (every score must be seen to find the largest), so the
saving is in the value product and the softmax, not in the QK product.

The same rule runs in training and evaluation. With k at least the number of visible
keys it is dense attention (up to float rounding). A query with fewer than k visible keys
(the first positions of a causal window) attends to all of them.

`topk_attention` is the training path (gather); `topk_pattern` returns the same weights
as a dense (…, T, T) pattern with zeros outside the top k, for TransformerLens's
`hook_pattern` (see `bridge.py`).
"""

from __future__ import annotations

import math

import torch


def causal_mask(n_query: int, n_key: int, device) -> torch.Tensor:
    """(n_query, n_key) bool, True where the key is in the query's future (masked)."""
    return torch.ones(n_query, n_key, dtype=torch.bool, device=device).triu(diagonal=1 + n_key - n_query)


def topk_weights(scores: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`(weights, indices)` (…, T, k'), k' = min(top_k, n_keys): the softmax over each row's top k.

    Masked keys must hold −inf in `scores`; if one is among a row's top k (the row has
    fewer visible keys than k) it gets weight exactly 0.
    """
    values, indices = scores.topk(min(top_k, scores.shape[-1]), dim=-1)
    return values.softmax(dim=-1), indices


def _scores(q: torch.Tensor, k: torch.Tensor, causal: bool) -> torch.Tensor:
    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if causal:
        scores = scores.masked_fill(causal_mask(q.shape[-2], k.shape[-2], q.device), float("-inf"))
    return scores


def topk_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, top_k: int, causal: bool = True) -> torch.Tensor:
    """Attention output (B, H, T, d_head) from (B, H, T, d_head) q, k, v, attending the top_k keys per query."""
    weights, indices = topk_weights(_scores(q, k, causal), top_k)  # (B, H, T, k')
    batch, heads, n_query, kept = indices.shape
    values = v.reshape(batch * heads, v.shape[-2], v.shape[-1])
    index = indices.reshape(batch * heads, n_query * kept, 1).expand(-1, -1, v.shape[-1])
    gathered = values.gather(1, index).view(batch, heads, n_query, kept, v.shape[-1])
    return (weights.unsqueeze(-2) @ gathered).squeeze(-2)


def topk_pattern(scores: torch.Tensor, top_k: int) -> torch.Tensor:
    """The top-k weights of `scores` (…, T, T) as a dense pattern, zero outside each row's top k."""
    weights, indices = topk_weights(scores, top_k)
    return torch.zeros_like(scores).scatter(-1, indices, weights)
