"""The dashboard `outputs/index.html`: every run, every sweep, and the runs in progress.

Runs (finished, failed — including runs that died —, notebooks run by hand, and folders
that cannot be read, each with its reason) in one sortable, filterable table with their
parameters, key metrics and report link; runs in progress above it (host, start, last
line printed); sweeps with their summaries. Written once per command by the command line
(`python -m storylab run | pipeline | sweep | status | report`).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from storylab.cache import write_text_atomic
from storylab.paths import outputs_dir
from storylab.runner.html import KEY_METRICS, TABLE_CSS, cell, link, relative_href, status_cell
from storylab.runner.in_progress import RunInProgress, check_runs_in_progress
from storylab.runner.sweep_state import SweepState, all_states, standing_counts, standings, sweep_membership
from storylab.runs import Run, find_runs


Standing = dict[str, tuple[str, "str | None"]]  # run name → (standing, error) of one sweep


def index_rows(runs: list[Run], states: dict[str, SweepState | str] | None = None) -> list[dict[str, Any]]:
    members = sweep_membership(states)
    rows = []
    for run in runs:
        metrics = {k: run.metrics[k] for k in KEY_METRICS
                   if isinstance(run.metrics.get(k), (int, float, str)) and not isinstance(run.metrics.get(k), bool)}
        rows.append({
            "notebook": run.notebook, "name": run.name, "status": run.state, "ended": run.ended,
            "elapsed_s": run.status.get("elapsed_s"), "parameters": run.status.get("overrides") or {},
            "metrics": metrics, "bits_note": _bits_note(run), "error": run.error, "died": bool(run.status.get("died")),
            "sweeps": members.get((run.notebook, run.name), []),
            "report": relative_href(run.folder / "report.html", outputs_dir()),
        })
    return rows


def _bits_note(run: Run) -> str | None:
    """Why a run has no bits/char (text with `<unk>`: not comparable), shown in its place."""
    note = run.metrics.get("val_bits_per_char_note")
    return note if isinstance(note, str) and not isinstance(run.metrics.get("val_bits_per_char"), (int, float)) else None


def sweep_links(states: dict[str, SweepState | str] | None = None,
                known: dict[str, Standing] | None = None) -> list[dict[str, Any]]:
    """Every sweep, its summary page, and how many of its runs stand where (or why it cannot be read).

    `known`: standings the command has just computed, by sweep name (not computed again)."""
    links = []
    for name, state in (all_states() if states is None else states).items():
        summary = relative_href(outputs_dir() / "sweeps" / name / "summary.html", outputs_dir())
        if isinstance(state, SweepState):
            stand = (known or {}).get(name) or standings(state)
            links.append({"name": name, "notebook": state.notebook, "counts": standing_counts(stand),
                          "summary": summary, "problem": None})
        else:
            links.append({"name": name, "notebook": "", "counts": {}, "summary": summary, "problem": state})
    return links


def _sweep_item(sweep: dict[str, Any]) -> str:
    if sweep["problem"]:
        return f'<li>{html.escape(sweep["name"])}: <span class="error">{html.escape(sweep["problem"])}</span></li>'
    counts = ", ".join(f"{n} {state}" for state, n in sweep["counts"].items())
    return f"<li>{link(sweep['summary'], sweep['name'])} ({html.escape(sweep['notebook'])}: {html.escape(counts)})</li>"


def _in_progress_row(progress: RunInProgress) -> str:
    run, status = progress.run, progress.run.status
    state = "running" if progress.liveness == "alive" else "running?"  # "unknown": on a host we cannot check
    params = "<br>".join(f"{html.escape(k)}={cell(v)}" for k, v in (status.get("overrides") or {}).items())
    cells = [html.escape(run.notebook), html.escape(run.name), status_cell(state, note=progress.why),
             html.escape(str(status.get("host", ""))), html.escape(str(status.get("started", ""))), params,
             html.escape(progress.last_line)]
    return '<tr class="running">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _options(values: list[str]) -> str:
    return "".join(f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in sorted(set(values)))


def _metric_cell(r: dict[str, Any], name: str) -> str:
    if name == "val_bits_per_char" and r["bits_note"]:
        return f'<span class="note">n/a: {html.escape(r["bits_note"])}</span>'
    return cell(r["metrics"].get(name, ""))


def _run_row(r: dict[str, Any], metric_names: list[str]) -> str:
    params = "<br>".join(f"{html.escape(k)}={cell(v)}" for k, v in r["parameters"].items())
    cells = [html.escape(r["notebook"]), link(r["report"], r["name"]), status_cell(r["status"], r["error"]),
             html.escape(" ".join(r["sweeps"])), html.escape(r["ended"]), cell(r["elapsed_s"]), params,
             *(_metric_cell(r, m) for m in metric_names)]
    sort_keys = [r["notebook"], r["name"], r["status"], " ".join(r["sweeps"]), r["ended"], r["elapsed_s"] or 0, "",
                 *(r["metrics"].get(m, "") for m in metric_names)]
    tds = "".join(f'<td data-sort="{html.escape(str(k))}">{c}</td>' for c, k in zip(cells, sort_keys))
    data = (f'data-notebook="{html.escape(r["notebook"])}" data-status="{html.escape(r["status"])}" '
            f'data-sweeps="{html.escape(" ".join(r["sweeps"]))}"')
    return f'<tr class="{html.escape(r["status"])}" {data}>{tds}</tr>'


def write_index(known: dict[str, Standing] | None = None) -> Path:
    """`outputs/index.html`: runs in progress, every run and every sweep. Dead runs are reaped first.

    `known`: the standings of sweeps the command has just computed, by sweep name."""
    in_progress, _ = check_runs_in_progress()
    states = all_states()
    rows = index_rows(sorted(find_runs(), key=lambda r: r.ended, reverse=True), states)
    metric_names = [k for k in KEY_METRICS if any(k in r["metrics"] or (k == "val_bits_per_char" and r["bits_note"])
                                                   for r in rows)]
    header = ["notebook", "run", "status", "sweep", "ended", "elapsed_s", "parameters", *metric_names]
    ths = "".join(f'<th onclick="sortBy({i})">{html.escape(h)}</th>' for i, h in enumerate(header))
    progress_table = ""
    if in_progress:
        progress_header = "".join(f"<th>{h}</th>" for h in
                                  ("notebook", "run", "status", "host", "started", "parameters", "last line"))
        progress_table = (f"<h2>In progress</h2><table id=\"in-progress\"><thead><tr>{progress_header}</tr></thead>"
                          f"<tbody>{''.join(_in_progress_row(p) for p in in_progress)}</tbody></table>")
    sweeps = sweep_links(states, known)
    n_failed = sum(r["status"] == "failed" for r in rows)
    n_died = sum(r["died"] for r in rows)
    n_unreadable = sum(r["status"] == "unreadable" for r in rows)
    summary = f"{len(rows)} runs, {n_failed} failed" + (f" ({n_died} died)" if n_died else "") + \
        (f", {n_unreadable} unreadable" if n_unreadable else "") + \
        (f"; {len(in_progress)} in progress" if in_progress else "")
    page = INDEX_TEMPLATE.format(
        css=TABLE_CSS, summary=html.escape(summary), header=ths, rows="\n".join(_run_row(r, metric_names) for r in rows),
        in_progress=progress_table,
        sweeps=f"<h2>Sweeps</h2><ul>{''.join(_sweep_item(s) for s in sweeps)}</ul>" if sweeps else "",
        notebooks=_options([r["notebook"] for r in rows]), statuses=_options([r["status"] for r in rows]),
        sweep_names=_options([s for r in rows for s in r["sweeps"]]))
    path = outputs_dir() / "index.html"
    write_text_atomic(path, page)
    return path


INDEX_TEMPLATE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>storylab runs</title>
<style>
{css}
#runs th {{ cursor: pointer; position: sticky; top: 0; }}
th.asc::after {{ content: " ▲"; }} th.desc::after {{ content: " ▼"; }}
.filters select, .filters input {{ margin-right: 1em; }}
</style></head>
<body>
<h1>storylab runs</h1>
{in_progress}
{sweeps}
<h2>Runs</h2>
<p>{summary}. Click a column to sort; filter below.</p>
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
