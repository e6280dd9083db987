"""Where outputs live, and where a user's relative paths point.

Outputs go to `outputs/` at the project root, or `$STORYLAB_OUTPUTS` (tests point it at a
temporary folder). The runner points `STORYLAB_RUN_DIR` at the folder of the run being
executed, so a notebook writes its artifacts with `storylab.run_dir() / "name"` whether
it runs under papermill or by hand (then `storylab.notebook.begin` gives it
`outputs/interactive/<notebook>/`).

A path a user passes (a corpus file, a parameter file, an earlier run) resolves against
the directory the command was started in: `$STORYLAB_LAUNCH_DIR`, which the runner sets
for the notebook's kernel; in JupyterLab, whose kernels start in `notebooks/`, the project
root; else the current directory.
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


def interactive_dir() -> Path:
    """`outputs/interactive/`: one folder per notebook run by hand (`interactive/02_hmm/`)."""
    return outputs_dir() / "interactive"


def run_dir() -> Path:
    """The folder of the run being executed (`$STORYLAB_RUN_DIR`); `outputs/interactive/` otherwise."""
    path = Path(os.environ.get("STORYLAB_RUN_DIR", interactive_dir()))
    path.mkdir(parents=True, exist_ok=True)
    return path


def launch_dir() -> Path:
    """The directory a user's relative paths resolve against (see the module docstring)."""
    if os.environ.get("STORYLAB_LAUNCH_DIR"):
        return Path(os.environ["STORYLAB_LAUNCH_DIR"])
    cwd = Path.cwd()
    return PROJECT_ROOT if cwd.resolve() == NOTEBOOKS_DIR.resolve() else cwd


def user_path(path: str | Path, base: Path | None = None) -> Path:
    """`path` made absolute against `base` (default `launch_dir()`); `~` is expanded."""
    path = Path(path).expanduser()
    return Path(os.path.abspath(path if path.is_absolute() else (base or launch_dir()) / path))


def checkpoint_dir(kind: str, key: str) -> Path:
    """`outputs/checkpoints/<kind>/<key>/`: where long fits checkpoint.

    It lives outside the run folder on purpose: a run folder is built under a temporary
    name and discarded if the run is killed, but its checkpoints must survive so that
    running the same parameters again resumes instead of starting over.
    """
    return outputs_dir() / "checkpoints" / kind / key
