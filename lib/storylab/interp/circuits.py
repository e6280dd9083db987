"""QK and OV circuits of every attention head, read straight from the bridge's weights.

For head (layer, head) with `W_QK = W_Q W_Kᵀ` and `W_OV = W_V W_O` (TransformerLens shapes):

- token QK circuit `W_E W_QK W_Eᵀ`: how much a query token wants to attend to a key token;
- positional QK circuit `W_pos W_QK W_posᵀ`: the same for positions (a band just below the
  diagonal is a previous-token head);
- OV circuit `W_E W_OV W_U`: which output logits a head writes when it attends to a token
  (a large diagonal is a copying head).

The circuits are `FactoredMatrix` objects (TransformerLens), so their eigenvalues come from
the small d_head × d_head product and a vocabulary-sized matrix is only built in row chunks.
Layer norms and biases are left out, as in Elhage et al. (2021): the circuits describe the
directions the weights read and write, not exact logits.
"""

from __future__ import annotations

import pandas as pd
import torch
from transformer_lens import FactoredMatrix

ROW_CHUNK = 1024  # rows of a vocabulary-sized circuit materialised at once


def _check_head(bridge, layer: int, head: int) -> None:
    n_layers, n_heads = bridge.cfg.n_layers, bridge.cfg.n_heads
    if not (isinstance(layer, int) and 0 <= layer < n_layers):
        raise ValueError(f"layer: expected an integer in [0, {n_layers}), got {layer!r}")
    if not (isinstance(head, int) and 0 <= head < n_heads):
        raise ValueError(f"head: expected an integer in [0, {n_heads}), got {head!r}")


@torch.no_grad()
def qk_circuit(bridge, layer: int, head: int, source: str = "tokens") -> FactoredMatrix:
    """`X W_Q W_Kᵀ Xᵀ` for X = `W_E` (source="tokens") or `W_pos` (source="positions")."""
    _check_head(bridge, layer, head)
    if source not in ("tokens", "positions"):
        raise ValueError(f"source: expected 'tokens' or 'positions', got {source!r}")
    inputs = bridge.W_E if source == "tokens" else bridge.W_pos
    return FactoredMatrix(inputs @ bridge.W_Q[layer, head], (inputs @ bridge.W_K[layer, head]).T)


@torch.no_grad()
def ov_circuit(bridge, layer: int, head: int) -> FactoredMatrix:
    """`W_E W_V W_O W_U`: rows are attended-to tokens, columns the logits the head writes."""
    _check_head(bridge, layer, head)
    return FactoredMatrix(bridge.W_E @ bridge.W_V[layer, head], bridge.W_O[layer, head] @ bridge.W_U)


def copying_score(circuit: FactoredMatrix) -> float:
    """Σλ / Σ|λ| over the circuit's eigenvalues: +1 for a pure copier, −1 for pure anti-copying."""
    eigenvalues = circuit.eigenvalues
    total = eigenvalues.abs().sum()
    return float(eigenvalues.sum().real / total) if total > 0 else 0.0


@torch.no_grad()
def diagonal_top1_accuracy(circuit: FactoredMatrix) -> float:
    """Fraction of rows whose largest entry is on the diagonal (row i's argmax is column i)."""
    n = circuit.A.shape[-2]
    hits = 0
    for start in range(0, n, ROW_CHUNK):
        rows = circuit.A[start : start + ROW_CHUNK] @ circuit.B
        hits += int((rows.argmax(dim=-1) == torch.arange(start, start + rows.shape[0], device=rows.device)).sum())
    return hits / n


@torch.no_grad()
def circuit_summary(bridge) -> pd.DataFrame:
    """One row per head: OV copying score and top-1 diagonal accuracy, and the same for token QK
    (does a token attend most to itself?)."""
    rows = []
    for layer in range(bridge.cfg.n_layers):
        for head in range(bridge.cfg.n_heads):
            ov, qk = ov_circuit(bridge, layer, head), qk_circuit(bridge, layer, head)
            rows.append({
                "layer": layer, "head": head, "label": f"L{layer}H{head}",
                "ov_copying_score": copying_score(ov),
                "ov_top1_diagonal": diagonal_top1_accuracy(ov),
                "qk_top1_diagonal": diagonal_top1_accuracy(qk),
            })
    return pd.DataFrame(rows)


@torch.no_grad()
def positional_qk(bridge, layer: int, head: int, n_positions: int | None = None) -> torch.Tensor:
    """(n, n) positional QK circuit with the future (j > i, masked by causal attention) set to NaN."""
    n_ctx = bridge.cfg.n_ctx
    n_positions = n_ctx if n_positions is None else n_positions
    if not (isinstance(n_positions, int) and 1 <= n_positions <= n_ctx):
        raise ValueError(f"n_positions: expected an integer in [1, n_ctx={n_ctx}], got {n_positions!r}")
    matrix = qk_circuit(bridge, layer, head, source="positions").AB[:n_positions, :n_positions].float().cpu()
    future = torch.triu(torch.ones(n_positions, n_positions, dtype=torch.bool), diagonal=1)
    return matrix.masked_fill(future, float("nan"))
