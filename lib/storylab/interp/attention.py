"""Attention patterns and the standard per-head scores.

- previous-token score: mean attention from position i to i − 1 (i ≥ 1);
- first-token score: mean attention from position i to position 0 (i ≥ 1), where the
  leading end-of-text token sits — a head's "nothing to do" sink;
- induction score: on a random token sequence repeated twice after an end-of-text token,
  mean attention from each token of the second copy to the token *after* its earlier
  occurrence (Olsson et al. 2022). A model that has learnt induction also predicts the
  second copy far better than the first, which `repeated_token_loss` shows.

Scores are averages over the batch and the scored positions, one per (layer, head).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from storylab.checks import check_int
from storylab.interp.activations import pad_batch
from storylab.interp.tokens import special_ids


def pattern_names(n_layers: int) -> list[str]:
    return [f"blocks.{layer}.attn.hook_pattern" for layer in range(n_layers)]


@torch.no_grad()
def attention_patterns(bridge, tokens: torch.Tensor) -> torch.Tensor:
    """(L, B, H, T, T) attention patterns of a (B, T) or (T,) batch of token ids."""
    tokens = torch.as_tensor(tokens)
    if tokens.ndim == 1:
        tokens = tokens[None]
    if tokens.ndim != 2 or tokens.shape[1] > bridge.cfg.n_ctx:
        raise ValueError(f"tokens: expected (batch, seq ≤ n_ctx={bridge.cfg.n_ctx}) ids, got shape {tuple(tokens.shape)}")
    names = pattern_names(bridge.cfg.n_layers)
    _, cache = bridge.run_with_cache(tokens.to(bridge.W_E.device), names_filter=lambda name: name in names)
    return torch.stack([cache[name] for name in names]).float().cpu()


def previous_token_scores(patterns: torch.Tensor) -> torch.Tensor:
    """(L, H) mean attention to the previous position, from patterns (L, B, H, T, T)."""
    return torch.diagonal(patterns, offset=-1, dim1=-2, dim2=-1).mean(dim=(1, 3))


def first_token_scores(patterns: torch.Tensor) -> torch.Tensor:
    """(L, H) mean attention to position 0 from positions 1..T−1."""
    return patterns[..., 1:, 0].mean(dim=(1, 3))


def induction_scores(patterns: torch.Tensor, half_len: int) -> torch.Tensor:
    """(L, H) induction score on `[bos] + r + r` with |r| = half_len (patterns (L, B, H, 1+2n, 1+2n)).

    Query 1 + n + j (token r_j, second copy) should attend to key 1 + j + 1 (the token
    after r_j's first occurrence): the diagonal at offset −(n − 1).
    """
    if patterns.shape[-1] != 1 + 2 * half_len:
        raise ValueError(f"half_len: patterns of length {patterns.shape[-1]} do not hold [bos] + 2 × {half_len} tokens")
    band = torch.diagonal(patterns, offset=-(half_len - 1), dim1=-2, dim2=-1)  # query i attends key i − (n − 1)
    return band[..., -half_len:].mean(dim=(1, 3))


def repeated_random_tokens(tokenizer, half_len: int, batch: int, seed: int = 0) -> torch.Tensor:
    """(batch, 1 + 2·half_len) ids: end-of-text, then random ordinary tokens, then the same again."""
    for name, value in (("half_len", half_len), ("batch", batch)):
        check_int(name, value, minimum=1)
    specials = set(special_ids(tokenizer))
    ordinary = torch.tensor([i for i in range(len(tokenizer)) if i not in specials])
    if len(ordinary) == 0:
        raise ValueError("tokenizer: has no ordinary (non-special) tokens to draw a random sequence from")
    generator = torch.Generator().manual_seed(seed)
    half = ordinary[torch.randint(len(ordinary), (batch, half_len), generator=generator)]
    bos = torch.full((batch, 1), tokenizer.eos_token_id, dtype=torch.long)
    return torch.cat([bos, half, half], dim=1)


def head_scores(bridge, tokenizer, text_sequences, half_len: int = 20, batch: int = 8, seed: int = 0) -> pd.DataFrame:
    """One row per head: previous-token and first-token scores on `text_sequences` (lists of ids that
    start with end-of-text, e.g. `story_sequences`), and the induction score on repeated random tokens."""
    n_ctx = bridge.cfg.n_ctx
    if 1 + 2 * half_len > n_ctx:
        raise ValueError(f"half_len: 1 + 2 × {half_len} tokens exceed the model's n_ctx={n_ctx}")
    prev, first, weights = 0.0, 0.0, 0
    for start in range(0, len(text_sequences), batch):
        chunk = text_sequences[start : start + batch]
        length = min(len(s) for s in chunk)  # equal lengths so every row scores the same positions
        if length < 2:
            continue
        patterns = attention_patterns(bridge, pad_batch([s[:length] for s in chunk])[0])
        prev = prev + previous_token_scores(patterns) * len(chunk)
        first = first + first_token_scores(patterns) * len(chunk)
        weights += len(chunk)
    if weights == 0:
        raise ValueError("text_sequences: expected sequences of at least 2 tokens")
    induction = induction_scores(attention_patterns(bridge, repeated_random_tokens(tokenizer, half_len, batch, seed)), half_len)
    rows = []
    for layer in range(bridge.cfg.n_layers):
        for head in range(bridge.cfg.n_heads):
            rows.append({"layer": layer, "head": head, "label": f"L{layer}H{head}",
                         "prev_token_score": float(prev[layer, head] / weights),
                         "first_token_score": float(first[layer, head] / weights),
                         "induction_score": float(induction[layer, head])})
    return pd.DataFrame(rows)


@torch.no_grad()
def per_token_loss(bridge, tokens: torch.Tensor) -> torch.Tensor:
    """(B, T − 1) −ln p(token t+1 | tokens ≤ t) of a (B, T) batch."""
    tokens = torch.as_tensor(tokens)
    tokens = tokens[None] if tokens.ndim == 1 else tokens
    logits = bridge(tokens.to(bridge.W_E.device), return_type="logits").float()
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:].to(logits.device), reduction="none").cpu()


def repeated_token_loss(bridge, tokenizer, half_len: int = 20, batch: int = 8, seed: int = 0) -> dict:
    """Per-position mean loss on repeated random tokens, and its mean over each copy.

    Returns `{"loss_by_position": (2·half_len,) array, "first_half": float, "second_half": float}`;
    position k predicts token k + 1, so the first copy is positions 0..n−1 and the second
    (predictable by induction, except its first token) n+1..2n−1.
    """
    tokens = repeated_random_tokens(tokenizer, half_len, batch, seed)
    if tokens.shape[1] > bridge.cfg.n_ctx:
        raise ValueError(f"half_len: 1 + 2 × {half_len} tokens exceed the model's n_ctx={bridge.cfg.n_ctx}")
    losses = per_token_loss(bridge, tokens).mean(dim=0).numpy()
    return {"loss_by_position": losses, "first_half": float(np.mean(losses[:half_len])),
            "second_half": float(np.mean(losses[half_len + 1 :])) if half_len > 1 else float("nan")}


def pattern_sparsity(patterns: torch.Tensor, causal: bool = True, mass: float = 0.9) -> pd.DataFrame:
    """One row per head: how many keys each query actually uses, from patterns (L, B, H, T, T).

    - `nonzero_keys`: keys with weight > 0 (at most k under top-k attention; every visible
      key under softmax attention);
    - `keys_for_mass`: the fewest keys holding `mass` (default 90%) of the query's attention,
      comparable between dense and top-k models;
    - `visible_keys`: keys the query may attend (i + 1 at position i when `causal`, else T);
    - `nonzero_share`: nonzero_keys / visible_keys.
    All are means over the batch and the query positions.
    """
    if patterns.ndim != 5 or patterns.shape[-1] != patterns.shape[-2]:
        raise ValueError(f"patterns: expected (layers, batch, heads, T, T), got shape {tuple(patterns.shape)}")
    if not 0 < mass <= 1:
        raise ValueError(f"mass: expected a fraction in (0, 1], got {mass!r}")
    n = patterns.shape[-1]
    visible = torch.arange(1, n + 1, dtype=torch.float32) if causal else torch.full((n,), float(n))
    nonzero = (patterns > 0).sum(-1).float()  # (L, B, H, T)
    cumulative = patterns.sort(dim=-1, descending=True).values.cumsum(-1)
    # rounding can leave a row's total a hair under `mass`: cap at the last key
    for_mass = ((cumulative < mass - 1e-6).sum(-1) + 1).clamp_max(n).float()
    rows = []
    for layer in range(patterns.shape[0]):
        for head in range(patterns.shape[2]):
            used = nonzero[layer, :, head]
            rows.append({"layer": layer, "head": head, "label": f"L{layer}H{head}",
                         "nonzero_keys": float(used.mean()), "keys_for_mass": float(for_mass[layer, :, head].mean()),
                         "visible_keys": float(visible.mean()), "nonzero_share": float((used / visible).mean())})
    return pd.DataFrame(rows)
