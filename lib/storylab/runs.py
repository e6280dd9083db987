"""Find run folders under `outputs/runs/`: what later notebooks, 05_compare and the index read.

A run folder holds `params.yaml`, `metrics.json`, `status.json`, `notebook.ipynb`,
`report.html` and the run's artifacts. Hidden folders (`.tmp-*`) are runs in progress.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from storylab.paths import runs_dir


@dataclass
class Run:
    folder: Path
    notebook: str
    name: str
    status: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status.get("status") == "finished"

    @property
    def ended(self) -> str:
        return self.status.get("ended", "")


def read_run(folder: str | Path) -> Run:
    folder = Path(folder)

    def load(name: str, parse) -> dict:
        path = folder / name
        try:
            return parse(path.read_text()) or {} if path.exists() else {}
        except (ValueError, yaml.YAMLError):
            return {}

    return Run(folder, folder.parent.name, folder.name, load("status.json", json.loads),
               load("params.yaml", yaml.safe_load), load("metrics.json", json.loads))


def find_runs(notebook: str | None = None, finished_only: bool = False, root: Path | None = None) -> list[Run]:
    """Runs (oldest first by end time), optionally of one notebook (stem or prefix like '02')."""
    root = root or runs_dir()
    if not root.exists():
        return []
    runs = []
    for nb_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if notebook and not nb_dir.name.startswith(notebook):
            continue
        for folder in sorted(p for p in nb_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            run = read_run(folder)
            if run.status and (run.finished or not finished_only):
                runs.append(run)
    return sorted(runs, key=lambda r: r.ended)


def latest_run(notebook: str, where: dict[str, Any] | None = None) -> Run | None:
    """The most recent finished run of a notebook whose parameters match `where` (if given)."""
    matching = [r for r in find_runs(notebook, finished_only=True)
                if all(r.params.get(k) == v for k, v in (where or {}).items())]
    return matching[-1] if matching else None


def resolve_run(run: str | Path | None, notebook: str) -> Run:
    """A notebook parameter naming an earlier run: a folder path, a run name, or None for the latest."""
    if run:
        folder = Path(run)
        if not folder.exists():
            folder = runs_dir() / notebook / str(run)
        if not (folder / "status.json").exists():
            raise ValueError(f"run {str(run)!r}: not a run folder (expected a path or a run name of {notebook})")
        return read_run(folder)
    found = latest_run(notebook)
    if found is None:
        raise ValueError(f"no finished run of {notebook} under {runs_dir()}; run it first (python -m storylab run {notebook})")
    return found
