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

from storylab.cache import atomic_path, write_text_atomic
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
        with atomic_path(target) as tmp:
            shutil.copyfile(PLOTLY_JS, tmp)
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


# --- the dashboard: outputs/index.html (owned by the sweeps engineer) -----------------

def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return html.escape(json.dumps(value))
    return html.escape(str(value))


def index_rows(runs: list[Run]) -> list[dict[str, Any]]:
    from storylab.runner.sweep_state import sweep_membership

    members = sweep_membership()
    rows = []
    for run in runs:
        metrics = {k: run.metrics[k] for k in KEY_METRICS if isinstance(run.metrics.get(k), (int, float, str))}
        rows.append({
            "notebook": run.notebook, "name": run.name, "status": run.status.get("status", "?"),
            "ended": run.ended, "elapsed_s": run.status.get("elapsed_s"),
            "parameters": run.status.get("overrides", {}), "metrics": metrics,
            "error": (run.status.get("error") or {}).get("message"),
            "sweeps": members.get((run.notebook, run.name), []),
            "report": os.path.relpath(run.folder / "report.html", outputs_dir()) if (run.folder / "report.html").exists() else None,
        })
    return rows


def sweep_links() -> list[dict[str, Any]]:
    """Every sweep with a summary page, and how many of its runs finished / failed."""
    from storylab.runner.sweep_state import read_state, standings, sweeps_dir

    links = []
    if not sweeps_dir().exists():
        return links
    for folder in sorted(p for p in sweeps_dir().iterdir() if (p / "jobs.json").exists()):
        state = read_state(folder)
        counts: dict[str, int] = {}
        for standing, _ in standings(state).values():
            counts[standing] = counts.get(standing, 0) + 1
        summary = folder / "summary.html"
        links.append({"name": folder.name, "notebook": state.get("notebook", ""), "counts": counts,
                      "summary": os.path.relpath(summary, outputs_dir()) if summary.exists() else None})
    return links


def _sweep_item(sweep: dict[str, Any]) -> str:
    name = html.escape(sweep["name"])
    link = f'<a href="{html.escape(sweep["summary"])}">{name}</a>' if sweep["summary"] else name
    counts = ", ".join(f"{n} {state}" for state, n in sweep["counts"].items())
    return f"<li>{link} ({html.escape(sweep['notebook'])}: {html.escape(counts)})</li>"


def _options(values: list[str]) -> str:
    return "".join(f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in sorted(set(values)))


def write_index() -> Path:
    """`outputs/index.html`: every run (status, sweep, parameters, key metrics, report link) and every sweep."""
    rows = index_rows(sorted(find_runs(), key=lambda r: r.ended, reverse=True))
    metric_names = [k for k in KEY_METRICS if any(k in r["metrics"] for r in rows)]
    header = ["notebook", "run", "status", "sweep", "ended", "elapsed_s", "parameters", *metric_names]
    lines = []
    for r in rows:
        link = f'<a href="{html.escape(r["report"])}">{html.escape(r["name"])}</a>' if r["report"] else html.escape(r["name"])
        status = html.escape(r["status"]) + (f'<div class="error">{html.escape(r["error"])}</div>' if r["error"] else "")
        params = "<br>".join(f"{html.escape(k)}={_cell(v)}" for k, v in r["parameters"].items())
        cells = [html.escape(r["notebook"]), link, status, html.escape(" ".join(r["sweeps"])), html.escape(r["ended"]),
                 _cell(r["elapsed_s"]), params, *(_cell(r["metrics"].get(m, "")) for m in metric_names)]
        sort_keys = [r["notebook"], r["name"], r["status"], " ".join(r["sweeps"]), r["ended"], r["elapsed_s"] or 0, "",
                     *(r["metrics"].get(m, "") for m in metric_names)]
        tds = "".join(f'<td data-sort="{html.escape(str(k))}">{c}</td>' for c, k in zip(cells, sort_keys))
        data = (f'data-notebook="{html.escape(r["notebook"])}" data-status="{html.escape(r["status"])}" '
                f'data-sweeps="{html.escape(" ".join(r["sweeps"]))}"')
        lines.append(f'<tr class="{html.escape(r["status"])}" {data}>{tds}</tr>')
    sweeps = sweep_links()
    sweep_items = "".join(_sweep_item(s) for s in sweeps)
    ths = "".join(f'<th onclick="sortBy({i})">{html.escape(h)}</th>' for i, h in enumerate(header))
    page = INDEX_TEMPLATE.format(
        n_runs=len(rows), header=ths, rows="\n".join(lines),
        n_failed=sum(r["status"] == "failed" for r in rows),
        sweeps=f"<h2>Sweeps</h2><ul>{sweep_items}</ul>" if sweeps else "",
        notebooks=_options([r["notebook"] for r in rows]), statuses=_options([r["status"] for r in rows]),
        sweep_names=_options([s for r in rows for s in r["sweeps"]]))
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
th.asc::after {{ content: " ▲"; }} th.desc::after {{ content: " ▼"; }}
tr.failed td {{ background: #fff0f0; }}
.error {{ color: #a00; font-size: 12px; max-width: 40em; }}
.filters select, .filters input {{ margin-right: 1em; }}
</style></head>
<body>
<h1>storylab runs</h1>
{sweeps}
<h2>Runs</h2>
<p>{n_runs} runs, {n_failed} failed. Click a column to sort; filter below.</p>
<p class="filters">
<select id="f-notebook" onchange="filterRows()"><option value="">all notebooks</option>{notebooks}</select>
<select id="f-status" onchange="filterRows()"><option value="">any status</option>{statuses}</select>
<select id="f-sweep" onchange="filterRows()"><option value="">any sweep</option>{sweep_names}</select>
<input id="filter" placeholder="text in row (e.g. n_states=100)" oninput="filterRows()">
<span id="shown"></span></p>
<table id="runs"><thead><tr>{header}</tr></thead><tbody>
{rows}
</tbody></table>
<script>
let sortState = {{}};
function sortBy(col) {{
  const body = document.querySelector('#runs tbody');
  const rows = Array.from(body.rows);
  const dir = sortState[col] = -(sortState[col] || -1);
  document.querySelectorAll('#runs th').forEach((th, i) => th.className = i === col ? (dir > 0 ? 'asc' : 'desc') : '');
  const key = r => r.cells[col].dataset.sort;
  rows.sort((a, b) => {{
    const x = key(a), y = key(b), nx = Number(x), ny = Number(y);
    const cmp = (x !== '' && y !== '' && !isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
    return dir * cmp;
  }});
  rows.forEach(r => body.appendChild(r));
}}
function filterRows() {{
  const needle = document.getElementById('filter').value.toLowerCase();
  const notebook = document.getElementById('f-notebook').value;
  const status = document.getElementById('f-status').value;
  const sweep = document.getElementById('f-sweep').value;
  let shown = 0;
  for (const r of document.querySelectorAll('#runs tbody tr')) {{
    const ok = (!notebook || r.dataset.notebook === notebook) && (!status || r.dataset.status === status)
      && (!sweep || r.dataset.sweeps.split(' ').includes(sweep)) && r.textContent.toLowerCase().includes(needle);
    r.style.display = ok ? '' : 'none';
    shown += ok;
  }}
  document.getElementById('shown').textContent = shown + ' shown';
}}
</script>
</body></html>
"""
