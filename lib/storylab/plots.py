"""Thin plotly helpers, and the renderer set-up that makes figures work offline.

`setup()` makes every figure carry two representations: plotly's JSON (JupyterLab draws
it with its built-in plotly renderer) and an HTML `<div>` + `Plotly.newPlot` script that
does NOT embed plotly.js. The runner's report page loads one shared copy of plotly.js
from `outputs/assets/`, so reports stay small and open from `file://` with no network.

The helpers take tensors or arrays, in the spirit of neel-plotly: say what to show, get
a figure back; keyword arguments not named here go to plotly's layout.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer

RENDERER = "storylab"


class OfflineRenderer(MimetypeRenderer):
    """Plotly JSON for Lab plus an HTML div that needs plotly.js on the page (the report provides it)."""

    def to_mimebundle(self, fig_dict: dict) -> dict:
        fig_json = json.loads(pio.to_json(fig_dict, validate=False))
        div_id = f"fig-{uuid.uuid4().hex[:12]}"
        data = json.dumps(fig_json.get("data", []))
        layout = json.dumps(fig_json.get("layout", {}))
        html = (
            f'<div id="{div_id}" class="plotly-graph-div" style="width:100%;min-height:450px;"></div>\n'
            f'<script type="text/javascript">(function() {{ if (window.Plotly) {{ '
            f'Plotly.newPlot("{div_id}", {data}, {layout}, {{"responsive": true}}); }} }})();</script>'
        )
        return {"application/vnd.plotly.v1+json": fig_json, "text/html": html}


def setup() -> None:
    """Render figures for JupyterLab and for the offline report (call once per notebook)."""
    pio.renderers[RENDERER] = OfflineRenderer()
    pio.renderers.default = RENDERER
    pio.templates.default = "plotly_white"


def to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def imshow(matrix: Any, x: Sequence | None = None, y: Sequence | None = None, title: str = "",
           diverging: bool = True, zmax: float | None = None, **layout: Any) -> go.Figure:
    """A heatmap; diverging colours centred on 0 by default (similarities, circuits)."""
    z = to_numpy(matrix)
    if diverging:
        zmax = float(np.nanmax(np.abs(z))) if zmax is None else zmax
        kwargs = {"colorscale": "RdBu", "reversescale": True, "zmin": -zmax, "zmax": zmax}
    else:
        kwargs = {"colorscale": "Viridis"}
    hover_x = None if x is None else [str(v) for v in x]
    hover_y = None if y is None else [str(v) for v in y]
    fig = go.Figure(go.Heatmap(z=z, x=hover_x, y=hover_y, **kwargs))
    fig.update_layout(title=title, yaxis_autorange="reversed", **layout)
    return fig


def _interval(values: np.ndarray, errors: dict[str, tuple[Any, Any]] | None, name: Any) -> dict | None:
    """Plotly error bars from absolute (low, high) bounds of series `name`, if `errors` has them."""
    if errors is None or name not in errors:
        return None
    low, high = (to_numpy(v).astype(np.float64) for v in errors[name])
    values = np.asarray(values, dtype=np.float64)
    return {"type": "data", "symmetric": False, "array": high - values, "arrayminus": values - low}


def line(ys: Any, x: Any = None, names: Sequence[str] | None = None, title: str = "",
         xaxis_title: str = "", yaxis_title: str = "", log_x: bool = False, log_y: bool = False,
         errors: dict[str, tuple[Any, Any]] | None = None, markers: bool = False, **layout: Any) -> go.Figure:
    """One trace per row of `ys` (or a dict name → values); `x` shared or per trace. With a dict,
    `errors[name] = (low, high)` draws an interval at each point of that trace; `markers` marks the points."""
    fig = go.Figure()
    series = ys.items() if isinstance(ys, dict) else zip(names or [None] * len(np.atleast_2d(to_numpy(ys))), np.atleast_2d(to_numpy(ys)))
    for name, values in series:
        values = to_numpy(values)
        xs = x.get(name) if isinstance(x, dict) else (to_numpy(x) if x is not None else np.arange(len(values)))
        fig.add_trace(go.Scatter(x=xs, y=values, mode="lines+markers" if markers else "lines", name=name,
                                 error_y=_interval(values, errors, name)))
    fig.update_layout(title=title, xaxis_title=xaxis_title, yaxis_title=yaxis_title, **layout)
    if log_x:
        fig.update_xaxes(type="log")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def lines_by(frame, x: str, y: str, by: str, title: str = "", xaxis_title: str = "", yaxis_title: str = "",
             log_x: bool = False, **layout: Any) -> go.Figure:
    """One line with markers per value of column `by` of a DataFrame, points sorted by `x`."""
    groups = {str(name): rows.sort_values(x) for name, rows in frame.groupby(by, dropna=False)}
    return line({name: rows[y] for name, rows in groups.items()}, x={name: rows[x] for name, rows in groups.items()},
                title=title, xaxis_title=xaxis_title or x, yaxis_title=yaxis_title or y, log_x=log_x, markers=True, **layout)


def scatter(x: Any, y: Any, color: Any = None, text: Sequence | None = None, title: str = "",
            xaxis_title: str = "", yaxis_title: str = "", log_x: bool = False, **layout: Any) -> go.Figure:
    """Points, one trace per distinct value of a categorical `color` (or a colour scale for numbers)."""
    x, y = to_numpy(x), to_numpy(y)
    fig = go.Figure()
    colors = None if color is None else to_numpy(color)
    if colors is not None and colors.dtype.kind in "OUSb":
        for value in dict.fromkeys(colors.tolist()):
            mask = colors == value
            fig.add_trace(go.Scatter(x=x[mask], y=y[mask], mode="markers", name=str(value),
                                     text=None if text is None else np.asarray(text)[mask]))
    else:
        marker = {} if colors is None else {"color": colors, "colorscale": "Viridis", "showscale": True}
        fig.add_trace(go.Scatter(x=x, y=y, mode="markers", marker=marker, text=text))
    fig.update_layout(title=title, xaxis_title=xaxis_title, yaxis_title=yaxis_title, **layout)
    if log_x:
        fig.update_xaxes(type="log")
    return fig


def bar(values: Any, labels: Sequence | None = None, title: str = "", xaxis_title: str = "",
        yaxis_title: str = "", **layout: Any) -> go.Figure:
    values = to_numpy(values)
    labels = [str(v) for v in (labels if labels is not None else range(len(values)))]
    fig = go.Figure(go.Bar(x=labels, y=values))
    fig.update_layout(title=title, xaxis_title=xaxis_title, yaxis_title=yaxis_title, **layout)
    return fig


def histogram(values: dict[str, Any], title: str = "", xaxis_title: str = "", yaxis_title: str = "count",
              **layout: Any) -> go.Figure:
    """Overlaid, semi-transparent histograms, one per named series."""
    fig = go.Figure()
    for name, series in values.items():
        fig.add_trace(go.Histogram(x=to_numpy(series), name=str(name), opacity=0.6))
    fig.update_layout(barmode="overlay", title=title, xaxis_title=xaxis_title, yaxis_title=yaxis_title, **layout)
    return fig


def bars(series: dict[str, Any], labels: Sequence, mode: str = "group", errors: dict[str, tuple[Any, Any]] | None = None,
         title: str = "", xaxis_title: str = "", yaxis_title: str = "", **layout: Any) -> go.Figure:
    """Several bar series over the same `labels`: side by side (`mode="group"`), or stacked
    (`"stack"`; `"relative"` stacks negative values below zero). `errors[name] = (low, high)`
    draws an interval around each bar of that series (absolute values, e.g. a confidence interval)."""
    if mode not in ("group", "stack", "relative"):
        raise ValueError(f"mode: expected 'group', 'stack' or 'relative', got {mode!r}")
    labels = [str(v) for v in labels]
    fig = go.Figure()
    for name, values in series.items():
        values = to_numpy(values).astype(np.float64)
        fig.add_trace(go.Bar(x=labels, y=values, name=str(name), error_y=_interval(values, errors, name)))
    fig.update_layout(barmode=mode, title=title, xaxis_title=xaxis_title, yaxis_title=yaxis_title, **layout)
    return fig


def vline(fig: go.Figure, x: float | None, label: str, dash: str = "dot") -> go.Figure:
    """A labelled vertical reference line (a context length); `None` draws nothing. Call it after
    the x axis is made logarithmic: a label's position on a log axis is given as log10(x)."""
    if x is None:
        return fig
    fig.add_vline(x=x, line_dash=dash)
    at = math.log10(x) if fig.layout.xaxis.type == "log" and x > 0 else x
    fig.add_annotation(x=at, y=1, yref="paper", text=label, showarrow=False, xanchor="left", yanchor="top",
                       textangle=-90)
    return fig


def hline(fig: go.Figure, y: float | None, label: str, dash: str = "dash") -> go.Figure:
    """A labelled horizontal reference line (a floor, a baseline); `None` draws nothing."""
    if y is not None:
        fig.add_hline(y=y, line_dash=dash, annotation_text=label, annotation_position="top right")
    return fig
