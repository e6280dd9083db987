"""Offline HTML: each run's `report.html` and the dashboard `outputs/index.html`.

Reports come from nbconvert's lab template with its CDN scripts removed; figures are the
HTML divs `storylab.plots` emits, drawn by one shared copy of plotly.js that lives in
`outputs/assets/` (linked relatively, so a copied `outputs/` folder keeps working).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import plotly

from storylab.cache import write_text_atomic
from storylab.paths import outputs_dir
from storylab.runs import Run, find_runs

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
REMOTE_SCRIPT = re.compile(r'<script[^>]*\ssrc="https?://[^"]*"[^>]*>\s*</script>\s*', re.IGNORECASE)
KEY_METRICS = ["val_bits_per_char", "gap_to_floor_bits_per_char", "floor_bits_per_char", "val_nats_per_token",
               "n_states", "vocab_size", "params", "train_tokens", "em_tokens_per_s", "train_tokens_per_s",
               "elapsed_s", "peak_rss_mb"]


def assets_dir() -> Path:
    """`outputs/assets/` with plotly.min.js in it (copied once, replaced when plotly changes)."""
    folder = outputs_dir() / "assets"
    target = folder / "plotly.min.js"
    if not target.exists() or target.stat().st_size != PLOTLY_JS.stat().st_size:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".tmp-plotly-{os.getpid()}.js"
        shutil.copyfile(PLOTLY_JS, tmp)
        os.replace(tmp, target)
    return folder


def plotly_script_tag(page_folder: Path) -> str:
    src = os.path.relpath(assets_dir() / "plotly.min.js", page_folder)
    return f'<script src="{src}" charset="utf-8"></script>'


def write_report(folder: Path) -> Path:
    """Render `folder/notebook.ipynb` to `folder/report.html`, offline."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(str(folder / "notebook.ipynb"), as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(notebook)
    body = REMOTE_SCRIPT.sub("", body)
    # plotly.js goes first in <head>, before anything that could define an AMD loader.
    body = body.replace("<head>", "<head>\n" + plotly_script_tag(folder), 1)
    write_text_atomic(folder / "report.html", body)
    return folder / "report.html"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return html.escape(json.dumps(value))
    return html.escape(str(value))


def index_rows(runs: list[Run]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        metrics = {k: run.metrics[k] for k in KEY_METRICS if isinstance(run.metrics.get(k), (int, float, str))}
        rows.append({
            "notebook": run.notebook, "name": run.name, "status": run.status.get("status", "?"),
            "ended": run.ended, "elapsed_s": run.status.get("elapsed_s"),
            "parameters": run.status.get("overrides", {}), "metrics": metrics,
            "error": (run.status.get("error") or {}).get("message"),
            "report": os.path.relpath(run.folder / "report.html", outputs_dir()) if (run.folder / "report.html").exists() else None,
        })
    return rows


def write_index() -> Path:
    """`outputs/index.html`: every run, its status, parameters, key metrics and report link."""
    rows = index_rows(sorted(find_runs(), key=lambda r: r.ended, reverse=True))
    metric_names = [k for k in KEY_METRICS if any(k in r["metrics"] for r in rows)]
    header = ["notebook", "run", "status", "ended", "elapsed_s", "parameters", *metric_names]
    lines = []
    for r in rows:
        link = f'<a href="{html.escape(r["report"])}">{html.escape(r["name"])}</a>' if r["report"] else html.escape(r["name"])
        status = html.escape(r["status"]) + (f'<div class="error">{html.escape(r["error"])}</div>' if r["error"] else "")
        params = "<br>".join(f"{html.escape(k)}={_cell(v)}" for k, v in r["parameters"].items())
        cells = [html.escape(r["notebook"]), link, status, html.escape(r["ended"]), _cell(r["elapsed_s"]), params,
                 *(_cell(r["metrics"].get(m, "")) for m in metric_names)]
        sort_keys = [r["notebook"], r["name"], r["status"], r["ended"], r["elapsed_s"] or 0, "",
                     *(r["metrics"].get(m, "") for m in metric_names)]
        tds = "".join(f'<td data-sort="{html.escape(str(k))}">{c}</td>' for c, k in zip(cells, sort_keys))
        lines.append(f'<tr class="{html.escape(r["status"])}">{tds}</tr>')
    ths = "".join(f'<th onclick="sortBy({i})">{html.escape(h)}</th>' for i, h in enumerate(header))
    page = INDEX_TEMPLATE.format(n_runs=len(rows), header=ths, rows="\n".join(lines))
    path = outputs_dir() / "index.html"
    write_text_atomic(path, page)
    return path


INDEX_TEMPLATE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>storylab runs</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; font-size: 14px; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ cursor: pointer; background: #f4f4f4; position: sticky; top: 0; }}
tr.failed td {{ background: #fff0f0; }}
.error {{ color: #a00; font-size: 12px; max-width: 40em; }}
</style></head>
<body>
<h1>storylab runs</h1>
<p>{n_runs} runs. Click a column to sort; type to filter.
<input id="filter" placeholder="filter rows" oninput="filterRows(this.value)"></p>
<table id="runs"><thead><tr>{header}</tr></thead><tbody>
{rows}
</tbody></table>
<script>
let sortState = {{}};
function sortBy(col) {{
  const body = document.querySelector('#runs tbody');
  const rows = Array.from(body.rows);
  const dir = sortState[col] = -(sortState[col] || -1);
  const key = r => r.cells[col].dataset.sort;
  rows.sort((a, b) => {{
    const x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
    const cmp = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
    return dir * cmp;
  }});
  rows.forEach(r => body.appendChild(r));
}}
function filterRows(text) {{
  const needle = text.toLowerCase();
  for (const r of document.querySelectorAll('#runs tbody tr'))
    r.style.display = r.textContent.toLowerCase().includes(needle) ? '' : 'none';
}}
</script>
</body></html>
"""
