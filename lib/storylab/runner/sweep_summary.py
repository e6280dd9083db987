"""A sweep's summary: `outputs/sweeps/<sweep>/summary.csv` and `summary.html`.

One row per run (status, swept values, numeric metrics, elapsed time) and, in the HTML,
one plot per key metric against each swept parameter, a line per combination of the
other swept values. Offline: the page shares `outputs/assets/plotly.min.js` with reports.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
from pathlib import Path
from typing import Any

from storylab.cache import write_text_atomic
from storylab.paths import outputs_dir, runs_dir
from storylab.runner.html import KEY_METRICS, TABLE_CSS, cell, link, plotly_script_tag, relative_href, status_cell
from storylab.runner.sweep import render_value
from storylab.runner.sweep_state import SweepState, standing_counts, standings
from storylab.runs import is_finite_number, read_run

MAX_METRICS_PLOTTED = 12


def summary_rows(state: SweepState, stand: dict[str, tuple[str, str | None]] | None = None) -> list[dict[str, Any]]:
    """One row per run of the sweep (`stand`: its standings, when the caller has them already)."""
    rows = []
    for name, (standing, error) in (standings(state) if stand is None else stand).items():
        run = read_run(runs_dir() / state.notebook / name)
        metrics = {k: v for k, v in run.metrics.items() if is_finite_number(v)}
        rows.append({"run": name, "status": standing, "swept": state.runs[name].swept,
                     "metrics": metrics if standing == "finished" else {},
                     "elapsed_s": run.status.get("elapsed_s"), "ended": run.ended, "error": error or "",
                     "report": run.folder / "report.html"})
    return rows


def metric_names(rows: list[dict[str, Any]]) -> list[str]:
    """Numeric metrics of finished runs, the dashboard's key metrics first."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row["metrics"]))
    return [m for m in KEY_METRICS if m in seen] + sorted(m for m in seen if m not in KEY_METRICS)


def write_summary(state: SweepState, stand: dict[str, tuple[str, str | None]] | None = None) -> tuple[Path, Path]:
    """summary.csv, summary.html and the TensorBoard HParams entries (`stand`: the standings, if known)."""
    folder = state.folder
    rows = summary_rows(state, stand)
    metrics = metric_names(rows)
    write_text_atomic(folder / "summary.csv", _csv(rows, state.swept, metrics))
    write_text_atomic(folder / "summary.html", _html(state, rows, state.swept, metrics, folder))
    _write_tensorboard(folder / "tensorboard", rows)
    return folder / "summary.csv", folder / "summary.html"


def _write_tensorboard(folder: Path, rows: list[dict]) -> None:
    """Each finished run as a TensorBoard HParams entry (`python -m storylab board`), rewritten when it ended again."""
    finished = [r for r in rows if r["status"] == "finished" and r["metrics"]]
    if finished:
        from storylab.tracking import write_sweep_run

        for r in finished:
            write_sweep_run(folder / r["run"], r["swept"], r["metrics"], r["ended"])


def _csv(rows: list[dict], swept: list[str], metrics: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["run", "status", *swept, *_metric_headers(metrics, swept), "run_elapsed_s", "error"])
    for r in rows:
        values = [_plain(r["swept"].get(p)) for p in swept]
        writer.writerow([r["run"], r["status"], *values, *(r["metrics"].get(m, "") for m in metrics),
                         r["elapsed_s"] if r["elapsed_s"] is not None else "", r["error"]])
    return out.getvalue()


def _metric_headers(metrics: list[str], swept: list[str]) -> list[str]:
    """A metric named like a swept parameter (an HMM reporting its n_states) gets a `metrics.` prefix."""
    return [f"metrics.{m}" if m in swept else m for m in metrics]


def _plain(value: Any) -> Any:
    return json.dumps(value, separators=(",", ":")) if isinstance(value, (list, dict)) else value


def figures(rows: list[dict], swept: list[str], metrics: list[str]) -> list:
    """One figure per (metric that varies, swept parameter)."""
    import plotly.graph_objects as go

    finished = [r for r in rows if r["metrics"]]
    out = []
    for metric in metrics[:MAX_METRICS_PLOTTED]:
        values = {r["metrics"].get(metric) for r in finished} - {None}
        if len(values) < 2 or metric in swept:  # a constant says nothing; a swept value against itself neither
            continue
        for parameter in swept:
            if len({render_value(r["swept"].get(parameter)) for r in finished}) < 2:
                continue  # a value this variant does not vary (a trimmed smoke grid)
            others = [p for p in swept if p != parameter]
            numeric = all(isinstance(r["swept"].get(parameter), (int, float)) for r in finished)
            groups: dict[str, list[tuple[Any, float]]] = {}
            for r in finished:
                if metric in r["metrics"]:
                    label = ",".join(f"{p}={render_value(r['swept'].get(p))}" for p in others) or metric
                    x = r["swept"].get(parameter) if numeric else render_value(r["swept"].get(parameter))
                    groups.setdefault(label, []).append((x, r["metrics"][metric]))
            fig = go.Figure()
            for label, points in groups.items():
                if numeric:
                    points.sort(key=lambda p: p[0])
                fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=label,
                                         mode="lines+markers"))
            xs = [r["swept"].get(parameter) for r in finished]
            log_x = numeric and min(xs) > 0 and max(xs) / min(xs) >= 20
            fig.update_layout(title=f"{metric} vs {parameter}", xaxis_title=parameter, yaxis_title=metric,
                              xaxis_type="log" if log_x else ("-" if numeric else "category"),
                              template="plotly_white", height=380, showlegend=len(groups) > 1)
            out.append(fig)
    return out


def _html(state: SweepState, rows: list[dict], swept: list[str], metrics: list[str], folder: Path) -> str:
    header = ["run", "status", *swept, *_metric_headers(metrics, swept), "run_elapsed_s"]
    lines = []
    for r in rows:
        cells = [link(relative_href(r["report"], folder), r["run"]), status_cell(r["status"], r["error"]),
                 *(cell(_plain(r["swept"].get(p))) for p in swept), *(cell(r["metrics"].get(m)) for m in metrics),
                 cell(r["elapsed_s"])]
        lines.append(f'<tr class="{html.escape(r["status"])}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    plots = "\n".join(f'<div class="figure">{f.to_html(full_html=False, include_plotlyjs=False, default_width="100%")}</div>'
                      for f in figures(rows, swept, metrics))
    counts = standing_counts({r["run"]: (r["status"], None) for r in rows})
    index = os.path.relpath(outputs_dir() / "index.html", folder)
    return SUMMARY_TEMPLATE.format(
        title=html.escape(state.sweep), script=plotly_script_tag(folder), index=html.escape(index), css=TABLE_CSS,
        notebook=html.escape(state.notebook), counts=html.escape(", ".join(f"{v} {k}" for k, v in counts.items())),
        header="".join(f"<th>{html.escape(h)}</th>" for h in header), rows="\n".join(lines),
        plots=f'<div class="plots">{plots}</div>' if plots else "<p>No metric varies across finished runs yet.</p>")


SUMMARY_TEMPLATE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>sweep {title}</title>
{script}
<style>
{css}
.plots {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 1em; }}
</style></head>
<body>
<p><a href="{index}">← all runs</a></p>
<h1>sweep {title}</h1>
<p>notebook {notebook}: {counts}. Also as <a href="summary.csv">summary.csv</a>.</p>
<table><thead><tr>{header}</tr></thead><tbody>
{rows}
</tbody></table>
{plots}
</body></html>
"""
