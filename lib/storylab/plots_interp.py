"""Figures of notebook 04 (interpretability): thin plotly views of what `storylab.interp` returns.

Side-by-side heatmaps (a similarity matrix and its block averages), one attention heatmap
per head, per-head score grids, residual PCA scatters (2-D or 3-D), and belief states on the
probability simplex. Like `storylab.plots`, each takes tensors or arrays and returns a figure;
extra keyword arguments go to plotly's layout.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from storylab.plots import to_numpy

MAX_TICK_LABELS = 80  # beyond this, axis labels stay in the hover text only


def _heatmap(z, x=None, y=None, zmin=None, zmax=None, colorscale="RdBu", reversescale=True, showscale=True):
    return go.Heatmap(z=to_numpy(z), x=None if x is None else [str(v) for v in x], y=None if y is None else [str(v) for v in y],
                      zmin=zmin, zmax=zmax, colorscale=colorscale, reversescale=reversescale, showscale=showscale)


def similarity_pair(full: Any, coarse: Any, labels: Sequence[str] | None = None, title: str = "",
                    subtitles: tuple[str, str] = ("full resolution", "block averages (diagonal excluded)"), **layout: Any) -> go.Figure:
    """A similarity matrix beside its coarse-grained version, on one colour scale from −1 to 1."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=subtitles, horizontal_spacing=0.08)
    n = to_numpy(full).shape[0]
    # unique axis labels: plotly merges repeated category names
    axis = None if labels is None else [f"{i}:{v}" for i, v in enumerate(labels)]
    fig.add_trace(_heatmap(full, axis, axis, -1, 1), row=1, col=1)
    fig.add_trace(_heatmap(coarse, zmin=-1, zmax=1, showscale=False), row=1, col=2)
    fig.update_yaxes(autorange="reversed")
    if labels is None or n > MAX_TICK_LABELS:
        fig.update_xaxes(showticklabels=False, row=1, col=1)
        fig.update_yaxes(showticklabels=False, row=1, col=1)
    fig.update_layout(title=title, height=520, **layout)
    return fig


def attention_heads(patterns: Any, labels: Sequence[str] | None = None, title: str = "", diverging: bool = False,
                    **layout: Any) -> go.Figure:
    """One heatmap per head of a layer's (H, T, T) patterns: rows are queries, columns keys.

    Attention probabilities use a 0–1 scale; `diverging=True` centres a red–blue scale on 0
    instead (for QK scores). `labels` name the tokens (positions when None).
    """
    patterns = to_numpy(patterns)
    n_heads, length = patterns.shape[0], patterns.shape[-1]
    axis = list(range(length)) if labels is None else [f"{i}:{v}" for i, v in enumerate(labels)]
    zmax = float(np.nanmax(np.abs(patterns))) if diverging else 1.0
    fig = make_subplots(rows=1, cols=n_heads, subplot_titles=[f"head {h}" for h in range(n_heads)], horizontal_spacing=0.04)
    for head in range(n_heads):
        trace = (_heatmap(patterns[head], axis, axis, -zmax, zmax, "RdBu", True, head == 0) if diverging
                 else _heatmap(patterns[head], axis, axis, 0, 1, "Blues", False, head == 0))
        fig.add_trace(trace, row=1, col=head + 1)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title=title, height=420, width=max(600, 330 * n_heads), **layout)
    return fig


def circuit_pair(matrices: Sequence[Any], subtitles: Sequence[str], row_labels: Sequence[str], col_labels: Sequence[str],
                 title: str = "", **layout: Any) -> go.Figure:
    """Token-by-token circuits side by side, each on its own red–blue scale centred on 0."""
    fig = make_subplots(rows=1, cols=len(matrices), subplot_titles=list(subtitles), horizontal_spacing=0.1)
    rows = [f"{i}:{v}" for i, v in enumerate(row_labels)]
    cols = [f"{i}:{v}" for i, v in enumerate(col_labels)]
    for i, matrix in enumerate(matrices):
        z = to_numpy(matrix)
        zmax = float(np.nanmax(np.abs(z))) or 1.0
        fig.add_trace(_heatmap(z, cols, rows, -zmax, zmax, showscale=False), row=1, col=i + 1)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title=title, height=520, **layout)
    return fig


def head_grids(scores: pd.DataFrame, columns: Sequence[str], title: str = "", **layout: Any) -> go.Figure:
    """A layer × head grid per score column of a per-head DataFrame (with `layer`, `head` columns)."""
    fig = make_subplots(rows=1, cols=len(columns), subplot_titles=list(columns), horizontal_spacing=0.08)
    for i, column in enumerate(columns):
        grid = scores.pivot(index="layer", columns="head", values=column)
        fig.add_trace(_heatmap(grid.values, [f"H{h}" for h in grid.columns], [f"L{l}" for l in grid.index],
                               0, 1, "Viridis", False, i == 0), row=1, col=i + 1)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title=title, height=360, **layout)
    return fig


def pca_scatter(projected: Any, color: Any = None, text: Sequence[str] | None = None, dims: int = 2,
                title: str = "", **layout: Any) -> go.Figure:
    """Points on their first 2 or 3 principal components, one trace per class (or a colour scale)."""
    if dims not in (2, 3):
        raise ValueError(f"dims: expected 2 or 3, got {dims!r}")
    projected = to_numpy(projected)
    if projected.shape[1] < dims:
        raise ValueError(f"projected: has {projected.shape[1]} components, fewer than dims={dims}")
    colors = None if color is None else np.asarray(color)
    text = None if text is None else np.asarray(text, dtype=object)
    groups = dict.fromkeys(colors.tolist()) if colors is not None and colors.dtype.kind in "OUSb" else [None]
    fig = go.Figure()
    for group in groups:
        mask = np.ones(len(projected), bool) if group is None else colors == group
        marker = {"size": 3 if dims == 3 else 5}
        if group is None and colors is not None:
            marker.update(color=colors, colorscale="Viridis", showscale=True)
        coords = {"x": projected[mask, 0], "y": projected[mask, 1]}
        hover = None if text is None else text[mask]
        if dims == 3:
            fig.add_trace(go.Scatter3d(**coords, z=projected[mask, 2], mode="markers", marker=marker, name=str(group), text=hover))
        else:
            fig.add_trace(go.Scattergl(**coords, mode="markers", marker=marker, name=str(group), text=hover))
    fig.update_layout(title=title, xaxis_title="PC 1", yaxis_title="PC 2", **layout)
    return fig


def _triangle() -> go.Scatter:
    corners = np.array([[0, 0], [1, 0], [0.5, np.sqrt(3) / 2], [0, 0]])
    return go.Scatter(x=corners[:, 0], y=corners[:, 1], mode="lines", line={"color": "black", "width": 1}, showlegend=False)


def simplex_pair(true_xy: Any, predicted_xy: Any, true_beliefs: Any, title: str = "",
                 subtitles: tuple[str, str] = ("true belief states", "predicted from the residual stream"), **layout: Any) -> go.Figure:
    """True and probe-predicted 3-state beliefs on the simplex, each point coloured by its TRUE
    belief (red, green, blue = the three states), so matching colours mean matching geometry."""
    rgb = np.clip(to_numpy(true_beliefs), 0, 1) * 255
    colors = [f"rgb({r:.0f},{g:.0f},{b:.0f})" for r, g, b in rgb]
    fig = make_subplots(rows=1, cols=2, subplot_titles=subtitles)
    for col, xy in ((1, to_numpy(true_xy)), (2, to_numpy(predicted_xy))):
        fig.add_trace(_triangle(), row=1, col=col)
        fig.add_trace(go.Scattergl(x=xy[:, 0], y=xy[:, 1], mode="markers", marker={"size": 3, "color": colors}, showlegend=False),
                      row=1, col=col)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    for col, anchor in ((1, "x"), (2, "x2")):  # equal axis scales: the triangle stays equilateral
        fig.update_yaxes(scaleanchor=anchor, row=1, col=col)
    fig.update_layout(title=title, height=460, **layout)
    return fig
