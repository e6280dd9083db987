"""Where outputs live: `outputs/` at the project root, or `$STORYLAB_OUTPUTS`.

Tests point `STORYLAB_OUTPUTS` at a temporary folder; the runner points
`STORYLAB_RUN_DIR` at the folder of the run being executed, so a notebook writes its
artifacts with `storylab.run_dir() / "name"` whether it runs under papermill or in Lab.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
PARAMS_DIR = PROJECT_ROOT / "params"


def outputs_dir() -> Path:
    return Path(os.environ.get("STORYLAB_OUTPUTS", PROJECT_ROOT / "outputs")).resolve()


def cache_dir() -> Path:
    return outputs_dir() / "cache"


def runs_dir() -> Path:
    return outputs_dir() / "runs"


def run_dir() -> Path:
    """The folder of the run being executed; `outputs/interactive/` when run by hand in Lab."""
    path = Path(os.environ.get("STORYLAB_RUN_DIR", outputs_dir() / "interactive"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoint_dir(kind: str, key: str) -> Path:
    """`outputs/checkpoints/<kind>/<key>/`: where long fits checkpoint.

    It lives outside the run folder on purpose: a run folder is built under a temporary
    name and discarded if the run is killed, but its checkpoints must survive so that
    running the same parameters again resumes instead of starting over.
    """
    return outputs_dir() / "checkpoints" / kind / key
