"""HTML pieces shared by run reports, sweep summaries and the dashboard.

Pages are offline: figures are drawn by one shared copy of plotly.js in
`outputs/assets/`, linked relatively, so a copied `outputs/` folder keeps working.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from pathlib import Path
from typing import Any

import plotly

from storylab.cache import atomic_path
from storylab.paths import outputs_dir

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
# The metrics tables show first, in this order (the dashboard, sweep summaries).
KEY_METRICS = ["val_bits_per_char", "val_unk_rate", "gap_to_floor_bits_per_char", "floor_bits_per_char", "val_nats_per_token",
               "n_states", "vocab_size", "params", "train_tokens", "em_tokens_per_s", "train_tokens_per_s",
               "elapsed_s", "peak_rss_mb"]

# The style of every table page (dashboard, sweep summaries).
TABLE_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; font-size: 14px; margin-bottom: 2em; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
tr.failed td, tr.unreadable td { background: #fff0f0; }
tr.running td { background: #f0f6ff; }
.error { color: #a00; font-size: 12px; max-width: 40em; }
.note { color: #555; font-size: 12px; max-width: 40em; }
"""


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


def cell(value: Any) -> str:
    """A table cell's text: floats to 4 significant digits, lists and dicts as JSON, None empty."""
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return html.escape(json.dumps(value))
    return html.escape(str(value))


def status_cell(status: str, error: str | None = None, note: str | None = None) -> str:
    """A status with its error (red) or note (grey) underneath."""
    text = html.escape(status)
    if error:
        text += f'<div class="error">{html.escape(error)}</div>'
    if note:
        text += f'<div class="note">{html.escape(note)}</div>'
    return text


def link(href: str | None, text: str) -> str:
    return f'<a href="{html.escape(href)}">{html.escape(text)}</a>' if href else html.escape(text)


def relative_href(target: Path, page_folder: Path) -> str | None:
    """A relative link from a page in `page_folder` to `target`, or None when it does not exist."""
    return os.path.relpath(target, page_folder) if target.exists() else None
