"""Each run's `report.html`: the executed notebook, offline.

Reports come from nbconvert's lab template with its CDN scripts removed; figures are the
HTML divs `storylab.plots` emits, drawn by the shared plotly.js in `outputs/assets/`.
"""

from __future__ import annotations

import re
from pathlib import Path

from storylab.cache import write_text_atomic
from storylab.runner.html import plotly_script_tag

REMOTE_SCRIPT = re.compile(r'<script[^>]*\ssrc="https?://[^"]*"[^>]*>\s*</script>\s*', re.IGNORECASE)


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
