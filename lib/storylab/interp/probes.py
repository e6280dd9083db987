"""Linear probes on the residual stream: ridge regression (closed form, torch) to continuous
targets such as belief states, and a one-vs-rest ridge classifier for discrete states.

Probes are fitted on one set of sequences and scored on held-out sequences (positions of one
story never sit on both sides), and every score comes with a baseline: the same probe fitted
on targets shuffled across positions (R²) or the majority class (accuracy).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch


def split_by_sequence(sequence_index: np.ndarray, test_fraction: float = 0.25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (train, test) masks over positions, holding out whole sequences."""
    if not (isinstance(test_fraction, (int, float)) and 0 < test_fraction < 1):
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    sequence_index = np.asarray(sequence_index)
    sequences = np.unique(sequence_index)
    if len(sequences) < 2:
        raise ValueError("sequence_index: a held-out split needs positions from at least 2 sequences")
    n_test = min(max(1, math.ceil(len(sequences) * test_fraction)), len(sequences) - 1)
    test_sequences = np.random.default_rng(seed).permutation(sequences)[:n_test]
    test = np.isin(sequence_index, test_sequences)
    return ~test, test


def fit_ridge(x: torch.Tensor, y: torch.Tensor, ridge: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (d, k) and bias (k,) minimising ‖x W + b − y‖² + ridge·N·‖W‖² (x standardised per feature first)."""
    if not (isinstance(ridge, (int, float)) and ridge >= 0):
        raise ValueError(f"ridge: expected a number >= 0, got {ridge!r}")
    x, y = x.double(), y.double()
    x_mean, y_mean = x.mean(dim=0), y.mean(dim=0)
    x_std = x.std(dim=0).clamp_min(1e-8)  # the penalty then means the same at every layer's scale
    xs = (x - x_mean) / x_std
    gram = xs.T @ xs + ridge * len(x) * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    weights = torch.linalg.solve(gram, xs.T @ (y - y_mean)) / x_std[:, None]
    return weights, y_mean - x_mean @ weights


def r_squared(y_true: torch.Tensor, y_pred: torch.Tensor) -> float:
    """1 − SS_res / SS_tot summed over all target columns (the variance-weighted R²)."""
    y_true, y_pred = y_true.double(), y_pred.double()
    total = ((y_true - y_true.mean(dim=0)) ** 2).sum()
    return float(1 - ((y_true - y_pred) ** 2).sum() / total) if total > 0 else float("nan")


def _as_tensors(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if y.ndim == 1:
        y = y[:, None]
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"targets: expected one row per activation (x {tuple(x.shape)}, y {tuple(y.shape)})")
    return x, y


def ridge_probe(x, y, train: np.ndarray, test: np.ndarray, ridge: float = 1e-3) -> dict:
    """Held-out R² of a ridge probe x → y, plus the test predictions."""
    x, y = _as_tensors(x, y)
    train, test = torch.as_tensor(train), torch.as_tensor(test)
    weights, bias = fit_ridge(x[train], y[train], ridge)
    predicted = x[test].double() @ weights + bias
    return {"r2": r_squared(y[test], predicted), "predicted": predicted.float(), "weights": weights.float(), "bias": bias.float()}


def probe_layers(resid: torch.Tensor, targets, sequence_index: np.ndarray, ridge: float = 1e-3,
                 test_fraction: float = 0.25, seed: int = 0, labels: list[str] | None = None) -> pd.DataFrame:
    """Held-out R² of a ridge probe at every residual point of `resid` (L + 1, N, d), and of the same
    probe on targets shuffled across positions (what a probe finds in noise)."""
    targets = torch.as_tensor(np.asarray(targets, dtype=np.float64))
    train, test = split_by_sequence(sequence_index, test_fraction, seed)
    shuffled = targets[torch.as_tensor(np.random.default_rng(seed + 1).permutation(len(targets)))]
    rows = []
    for point, x in enumerate(resid):
        rows.append({"point": point, "label": labels[point] if labels else str(point),
                     "r2": ridge_probe(x, targets, train, test, ridge)["r2"],
                     "r2_shuffled": ridge_probe(x, shuffled, train, test, ridge)["r2"]})
    return pd.DataFrame(rows)


def classifier_probe(x, labels, train: np.ndarray, test: np.ndarray, ridge: float = 1e-3) -> dict:
    """Held-out accuracy of a linear classifier (ridge regression onto one-hot labels, argmax),
    and the majority baseline (the most common training label, scored on the test positions).

    Only test positions whose label occurs in training are scored (`n_test` of them): no
    classifier can name a class it never saw (a toy held out with its only story), and
    counting those would score the test split, not the probe."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 1 or labels.min() < 0:
        raise ValueError("labels: expected a 1-D array of non-negative class ids")
    n_classes = int(labels.max()) + 1
    one_hot = torch.nn.functional.one_hot(torch.as_tensor(labels), n_classes).double()
    x, one_hot = _as_tensors(x, one_hot)
    weights, bias = fit_ridge(x[torch.as_tensor(train)], one_hot[torch.as_tensor(train)], ridge)
    test = np.asarray(test)
    test = np.flatnonzero(test) if test.dtype == bool else test  # a mask or positions
    test = test[np.isin(labels[test], labels[train])]
    if not len(test):
        return {"accuracy": float("nan"), "majority_baseline": float("nan"), "n_test": 0}
    predicted = (x[torch.as_tensor(test)].double() @ weights + bias).argmax(dim=-1).numpy()
    majority = np.bincount(labels[train], minlength=n_classes).argmax()
    return {"accuracy": float(np.mean(predicted == labels[test])), "majority_baseline": float(np.mean(labels[test] == majority)),
            "n_test": int(len(test))}


def classifier_probe_layers(resid: torch.Tensor, labels, sequence_index: np.ndarray, ridge: float = 1e-3,
                            test_fraction: float = 0.25, seed: int = 0, point_labels: list[str] | None = None) -> pd.DataFrame:
    """`classifier_probe` at every residual point: accuracy and majority baseline per layer."""
    train, test = split_by_sequence(sequence_index, test_fraction, seed)
    rows = []
    for point, x in enumerate(resid):
        scores = classifier_probe(x, labels, train, test, ridge)
        rows.append({"point": point, "label": point_labels[point] if point_labels else str(point), **scores})
    return pd.DataFrame(rows)


def simplex_xy(probabilities) -> np.ndarray:
    """2-D barycentric coordinates of 3-state distributions (N, 3): corners at the triangle's vertices."""
    probabilities = np.asarray(probabilities.detach().cpu() if hasattr(probabilities, "detach") else probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] != 3:
        raise ValueError(f"probabilities: expected (N, 3) distributions over 3 states, got shape {probabilities.shape}")
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    return probabilities @ corners
