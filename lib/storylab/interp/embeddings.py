"""Token-embedding geometry: cosine similarity of `W_E` / `W_U` rows, block-averaged views,
token orderings (by frequency or by hierarchical clustering) and nearest neighbours.

Everything takes a plain (n_tokens, d) matrix, so `bridge.W_E` and `bridge.W_U.T` go through
the same code; nothing here knows about transformers.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from storylab.checks import check_int

ORDERS = ("frequency", "cluster", "id")


def _as_matrix(name: str, matrix) -> torch.Tensor:
    # on the CPU: these are small (vocabulary-sized) matrices, and scipy clustering needs numpy
    matrix = torch.as_tensor(matrix.detach().cpu() if hasattr(matrix, "detach") else np.asarray(matrix))
    if matrix.ndim != 2 or min(matrix.shape) == 0:
        raise ValueError(f"{name}: expected a non-empty 2-D matrix (tokens × d), got shape {tuple(matrix.shape)}")
    return matrix.float()


def cosine_similarity_matrix(vectors) -> torch.Tensor:
    """(n, n) cosine similarity of the rows of `vectors` (zero rows have similarity 0 to everything)."""
    vectors = _as_matrix("vectors", vectors)
    unit = vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return unit @ unit.T


def block_edges(n: int, n_blocks: int) -> np.ndarray:
    """Boundaries of `n_blocks` contiguous blocks covering range(n), sizes differing by at most one."""
    n_blocks = check_int("n_blocks", n_blocks, minimum=1, below=n + 1)  # at most the matrix size
    return np.linspace(0, n, n_blocks + 1).round().astype(int)


def coarse_grain(matrix, n_blocks: int, exclude_diagonal: bool = True) -> torch.Tensor:
    """(n_blocks, n_blocks) block averages of a square matrix.

    With `exclude_diagonal` the matrix's own diagonal (a token's similarity to itself, always 1)
    is left out of the diagonal blocks, so they show how similar *different* tokens of a block
    are. A 1×1 diagonal block then has nothing left to average and is NaN.
    """
    matrix = _as_matrix("matrix", matrix)
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix: expected a square matrix, got shape {tuple(matrix.shape)}")
    edges = block_edges(matrix.shape[0], n_blocks)
    weights = torch.ones_like(matrix)
    if exclude_diagonal:
        weights.fill_diagonal_(0.0)
    out = torch.empty(len(edges) - 1, len(edges) - 1)
    for i, (r0, r1) in enumerate(zip(edges[:-1], edges[1:])):
        for j, (c0, c1) in enumerate(zip(edges[:-1], edges[1:])):
            w = weights[r0:r1, c0:c1]
            total = w.sum()
            out[i, j] = (matrix[r0:r1, c0:c1] * w).sum() / total if total > 0 else float("nan")
    return out


def token_order(vectors, frequencies=None, order: str = "frequency") -> np.ndarray:
    """A permutation of the tokens: most frequent first, hierarchical-clustering leaf order, or by id.

    Clustering is average linkage on cosine distance (scipy), so tokens whose rows point the
    same way sit next to each other and blocks appear on the similarity matrix's diagonal.
    """
    if order not in ORDERS:
        raise ValueError(f"order: expected one of {ORDERS}, got {order!r}")
    vectors = _as_matrix("vectors", vectors)
    n = vectors.shape[0]
    if order == "id":
        return np.arange(n)
    if order == "frequency":
        if frequencies is None:
            raise ValueError("frequencies: expected token counts to order by frequency, got None")
        frequencies = np.asarray(frequencies)
        if frequencies.shape != (n,):
            raise ValueError(f"frequencies: expected {n} counts (one per token), got shape {frequencies.shape}")
        return np.argsort(-frequencies, kind="stable")
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import pdist

    if n < 3:
        return np.arange(n)
    distances = np.clip(pdist(vectors.double().numpy(), metric="cosine"), 0, None)
    return leaves_list(linkage(np.nan_to_num(distances, nan=1.0), method="average"))


def nearest_neighbours(vectors, token_ids: Sequence[int], labels: Sequence[str], k: int = 5) -> pd.DataFrame:
    """For each token in `token_ids`, its `k` most cosine-similar other tokens (one row each)."""
    similarity = cosine_similarity_matrix(vectors)
    n = similarity.shape[0]
    if len(labels) != n:
        raise ValueError(f"labels: expected {n} token labels, got {len(labels)}")
    check_int("k", k, minimum=1, below=n)
    rows = []
    for token in token_ids:
        if not 0 <= int(token) < n:
            raise ValueError(f"token_ids: id {token} is outside [0, {n})")
        scores = similarity[int(token)].clone()
        scores[int(token)] = -float("inf")
        top = torch.topk(scores, k)
        rows.append({"token": labels[int(token)],
                     **{f"#{r + 1}": f"{labels[i]} ({s:.2f})" for r, (i, s) in enumerate(zip(top.indices.tolist(), top.values.tolist()))}})
    return pd.DataFrame(rows)
