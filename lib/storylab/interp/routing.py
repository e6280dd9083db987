"""Mixture-of-experts routing: which expert each token goes to, read from the bridge's router hooks.

A storylab MoE model opens in TransformerLens with `blocks.{i}.mlp.hook_expert_weights`
(tokens × experts: the router probability of each chosen expert, 0 for the others; see
`storylab.transformer.bridge_options`). `routing_weights` collects them for a batch;
`expert_assignments` lists every (position, layer, chosen expert); `expert_token_table`
turns that into the token × expert table 04 draws as a heatmap: for each token, the share
of its occurrences routed to each expert.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from storylab.interp.activations import _check_sequences, pad_batch
from storylab.interp.tokens import token_label


def _n_experts(bridge) -> int:
    n_experts = getattr(bridge.cfg, "num_experts", None)
    if not n_experts:
        raise ValueError("bridge: not a mixture-of-experts model (trained with mlp='moe'); it has no router to read")
    return n_experts


def routing_names(n_layers: int) -> list[str]:
    return [f"blocks.{layer}.mlp.hook_expert_weights" for layer in range(n_layers)]


@torch.no_grad()
def routing_weights(bridge, tokens: torch.Tensor) -> torch.Tensor:
    """(L, B, T, E) router weights of the chosen experts (0 elsewhere) for a (B, T) or (T,) batch of ids."""
    n_experts = _n_experts(bridge)
    tokens = torch.as_tensor(tokens)
    tokens = tokens[None] if tokens.ndim == 1 else tokens
    names = routing_names(bridge.cfg.n_layers)
    _, cache = bridge.run_with_cache(tokens.to(bridge.W_E.device), names_filter=lambda name: name in names)
    return torch.stack([cache[name].reshape(*tokens.shape, n_experts) for name in names]).float().cpu()


def expert_assignments(bridge, sequences: Sequence[np.ndarray], batch_size: int = 32) -> pd.DataFrame:
    """One row per (sequence, position, layer, chosen expert): token_id, weight (the router probability)."""
    _check_sequences(bridge, sequences)
    frames = []
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start : start + batch_size]
        ids, real = pad_batch(batch)
        weights = routing_weights(bridge, ids)  # (L, B, T, E)
        layer, row, position, expert = torch.nonzero((weights > 0) & real[None, :, :, None], as_tuple=True)
        frames.append(pd.DataFrame({
            "sequence": (row + start).numpy(), "position": position.numpy(), "token_id": ids[row, position].numpy(),
            "layer": layer.numpy(), "expert": expert.numpy(), "weight": weights[layer, row, position, expert].numpy(),
        }))
    return pd.concat(frames, ignore_index=True)


def expert_token_table(assignments: pd.DataFrame, tokenizer, layer: int, n_experts: int,
                       min_count: int = 1) -> pd.DataFrame:
    """Token × expert table of one layer: per token (rows, most frequent first), its count and the
    share of its occurrences routed to each expert (columns `expert 0` …; rows sum to experts_per_token)."""
    chosen = assignments[assignments["layer"] == layer]
    if chosen.empty:
        raise ValueError(f"layer: no routing recorded for layer {layer}")
    occurrences = chosen.drop_duplicates(["sequence", "position"]).groupby("token_id").size()
    counts = chosen.groupby(["token_id", "expert"]).size().unstack(fill_value=0).reindex(columns=range(n_experts), fill_value=0)
    table = counts.div(occurrences, axis=0)
    table.columns = [f"expert {e}" for e in table.columns]
    table.insert(0, "count", occurrences)
    table = table[table["count"] >= min_count].sort_values("count", ascending=False, kind="stable")
    table.index = [token_label(tokenizer, i) for i in table.index]
    table.index.name = "token"
    return table
