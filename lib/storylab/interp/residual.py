"""PCA of the residual stream: how many directions does each layer use, and what do they separate?"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from storylab.checks import check_int


@dataclass
class PCA:
    """Principal components of a set of vectors (rows), centred on `mean`."""

    mean: torch.Tensor  # (d,)
    components: torch.Tensor  # (k, d), orthonormal rows
    explained_variance_ratio: torch.Tensor  # (k,), a share of the total variance; sums to ≤ 1

    def transform(self, vectors: torch.Tensor) -> torch.Tensor:
        return (vectors.float() - self.mean) @ self.components.T


def pca(vectors: torch.Tensor, n_components: int = 10) -> PCA:
    """Exact PCA by SVD of the centred data (`vectors` is (N, d)); `n_components` is capped at min(N, d)."""
    vectors = torch.as_tensor(vectors).float()
    if vectors.ndim != 2 or vectors.shape[0] < 2:
        raise ValueError(f"vectors: expected an (N ≥ 2, d) matrix, got shape {tuple(vectors.shape)}")
    check_int("n_components", n_components, minimum=1)
    mean = vectors.mean(dim=0)
    # float64 SVD: the small trailing variances of a low-rank stream are otherwise lost in rounding
    _, singular, vh = torch.linalg.svd((vectors - mean).double(), full_matrices=False)
    variance = singular**2
    total = variance.sum()
    k = min(n_components, len(singular))
    ratio = variance[:k] / total if total > 0 else torch.zeros(k, dtype=torch.float64)
    return PCA(mean, vh[:k].float(), ratio.float())


def residual_pca(resid: torch.Tensor, n_components: int = 10) -> list[PCA]:
    """One `PCA` per residual-stream point of `resid` (L + 1, N, d), e.g. `ResidualSample.resid`."""
    return [pca(points, n_components) for points in resid]
