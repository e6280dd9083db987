"""Read run folders: what later notebooks, 05_compare, the runner and the dashboard see of a run.

A run folder holds `params.yaml`, `status.json`, `metrics.json`, `notebook.ipynb`,
`report.html` and the run's artifacts. Runs made by the runner live in
`outputs/runs/<notebook>/<name>/` (hidden `.tmp-*` folders beside them are runs in
progress); a notebook run by hand in Lab lives in `outputs/interactive/<notebook>/`, run
name `interactive`.

`read_run` is the one reader of those files. It checks their shapes (a status that is an
object with a known `status`, timestamps that are strings, metrics that are an object
whose `models` are records, ...); a folder that fails is a `Run` whose `state` is
`"unreadable"` and whose `problem` says why, so one bad file never hides the other runs.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storylab.paths import interactive_dir, outputs_dir, runs_dir, user_path
from storylab.readers import iso_time, read_json, read_yaml

STATUSES = ("running", "finished", "failed", "interactive")
TIMESTAMPS = ("started", "ended", "updated")
MODEL_NUMBERS = ("vocab_size", "params", "train_tokens", "train_flops", "elapsed_s", "peak_rss_mb",
                 "val_bits_per_char", "floor_bits_per_char", "gap_to_floor_bits_per_char", "val_nats_per_token")
INTERACTIVE = "interactive"
LATEST = "latest"  # a run parameter meaning "the latest run with results", like None
# Hidden folders beside a run's final folder: a run in progress (tmp), the run it replaces while the
# two are swapped (old), a dead run being turned into a failed one (reap).
HIDDEN_RUN = re.compile(r"^\.(?P<kind>tmp|old|reap)-(?P<name>.+)-[0-9a-f]{8}$")
TMP_RUN = re.compile(r"^\.tmp-(?P<name>.+)-[0-9a-f]{8}$")  # a run in progress, beside its final folder


class UnreadableRun(ValueError):
    """A file of a run folder that does not have the shape the workbook writes."""


@dataclass
class Run:
    folder: Path
    notebook: str
    name: str
    status: dict[str, Any] = field(default_factory=dict)   # status.json (checked)
    params: dict[str, Any] = field(default_factory=dict)   # params.yaml
    metrics: dict[str, Any] = field(default_factory=dict)  # metrics.json (checked)
    problem: str | None = None                              # why the folder is unreadable

    @property
    def state(self) -> str:
        """running | finished | failed | interactive | unreadable."""
        return "unreadable" if self.problem else self.status.get("status", "unreadable")

    @property
    def finished(self) -> bool:
        return self.state == "finished"

    @property
    def has_results(self) -> bool:
        """A finished run, or a notebook run by hand that has saved metrics."""
        return self.state == "finished" or (self.state == INTERACTIVE and bool(self.metrics))

    @property
    def ended(self) -> str:
        """When the run ended (ISO time); for a hand-run notebook, when it last saved metrics."""
        if self.state == INTERACTIVE:
            return _mtime_iso(self.folder / "metrics.json") or self.status.get("updated", "")
        return self.status.get("ended", "")

    @property
    def run_id(self) -> str:
        """The folder relative to `outputs/`: `runs/02_hmm/main`, `interactive/03_transformer`.

        Unique, unlike `name` (every notebook of the main job has a run named `main`)."""
        try:
            return self.folder.resolve().relative_to(outputs_dir()).as_posix()
        except ValueError:
            return str(self.folder)

    @property
    def error(self) -> str | None:
        """Why the run failed or cannot be read, in one line."""
        if self.problem:
            return self.problem
        return (self.status.get("error") or {}).get("message")

    def artifact(self, key: str) -> Path:
        """The artifact the run recorded in metrics.json under `key` (`hmm_path`, `model_path`, ...).

        Notebooks record artifacts relative to their run folder ("hmm"), so a run folder can be
        renamed (the runner builds it under a temporary name) or copied elsewhere and still
        be read; an absolute path is taken as it is. A key the run never recorded, or a path
        that does not exist, is a one-line ValueError."""
        recorded = self.metrics.get(key)
        if not isinstance(recorded, str) or not recorded:
            raise ValueError(f"run {self.run_id}: metrics.json records no {key!r}")
        path = self.folder / recorded  # an absolute `recorded` replaces the folder
        if not path.exists():
            raise ValueError(f"run {self.run_id}: {key} {str(path)!r} does not exist")
        return path


def read_run(folder: str | Path) -> Run:
    """Read a run folder; never raises for bad contents (see `Run.problem`)."""
    folder = Path(folder)
    notebook, name = _names(folder)
    try:
        status = _read_status(folder)
        if status.get("status") == INTERACTIVE:
            notebook, name = folder.name, INTERACTIVE
        params = _read_params(folder)
        metrics = _read_metrics(folder)
    except UnreadableRun as problem:
        return Run(folder, notebook, name, problem=str(problem))
    return Run(folder, notebook, name, status, params, metrics)


def _names(folder: Path) -> tuple[str, str]:
    if folder.parent.resolve() == interactive_dir():
        return folder.name, INTERACTIVE
    in_progress = TMP_RUN.match(folder.name)
    return folder.parent.name, in_progress["name"] if in_progress else folder.name


def run_name(folder: str | Path) -> str:
    """The name of the run a folder holds: `main` for `runs/02_hmm/main/` and for the `.tmp-main-1a2b3c4d/`
    it is built in, `interactive` for a notebook run by hand."""
    return _names(Path(folder))[1]


def _read_status(folder: Path) -> dict[str, Any]:
    status = read_json(folder / "status.json", "status.json", "a JSON object", UnreadableRun, missing=None)
    if status is None:
        raise UnreadableRun("status.json: missing")
    _expect(isinstance(status, dict), "status.json: expected a JSON object", status)
    _expect(status.get("status") in STATUSES, f"status.json: 'status' must be one of {', '.join(STATUSES)}",
            status.get("status"))
    for key in TIMESTAMPS:
        _expect(isinstance(status.get(key, ""), str), f"status.json: {key!r} must be an ISO time string", status.get(key))
    error = status.get("error")
    _expect(error is None or (isinstance(error, dict) and isinstance(error.get("message", ""), str)),
            "status.json: 'error' must be an object with a 'message' string", error)
    _expect(_number_or_none(status.get("elapsed_s")), "status.json: 'elapsed_s' must be a number", status.get("elapsed_s"))
    _expect(isinstance(status.get("overrides", {}), dict), "status.json: 'overrides' must be an object",
            status.get("overrides"))
    return status


def _read_params(folder: Path) -> dict[str, Any]:
    params = read_yaml(folder / "params.yaml", "params.yaml", "a mapping of parameter names", UnreadableRun, missing=None)
    _expect(params is None or isinstance(params, dict), "params.yaml: expected a mapping of parameter names", params)
    return params or {}


def _read_metrics(folder: Path) -> dict[str, Any]:
    metrics = read_json(folder / "metrics.json", "metrics.json", "a JSON object", UnreadableRun, missing=None)
    if metrics is None:
        return {}
    _expect(isinstance(metrics, dict), "metrics.json: expected a JSON object", metrics)
    models = metrics.get("models", [])
    _expect(isinstance(models, list), "metrics.json: 'models' must be a list of model records", models)
    for number, record in enumerate(models):
        where = f"metrics.json: models[{number}]"
        _expect(isinstance(record, dict), f"{where} must be an object", record)
        _expect(isinstance(record.get("family"), str), f"{where}: 'family' must be a string", record.get("family"))
        _expect(isinstance(record.get("corpus", {}), dict), f"{where}: 'corpus' must be an object", record.get("corpus"))
        for key in MODEL_NUMBERS:
            _expect(_number_or_none(record.get(key)), f"{where}: {key!r} must be a number or null", record.get(key))
    return metrics


def _number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _expect(ok: bool, message: str, got: Any) -> None:
    if not ok:
        shown = json.dumps(got, default=str)
        raise UnreadableRun(f"{message}, got {shown if len(shown) <= 60 else shown[:57] + '...'}")


def _mtime_iso(path: Path) -> str:
    try:
        return iso_time(os.stat(path).st_mtime)
    except OSError:
        return ""


def run_folders() -> list[Path]:
    """Every run folder that is not in progress: `runs/<notebook>/<name>/` and `interactive/<notebook>/`."""
    folders = []
    for parent in sorted(_visible_dirs(runs_dir())):
        folders.extend(sorted(_visible_dirs(parent)))
    folders.extend(sorted(_visible_dirs(interactive_dir())))
    return folders


def _visible_dirs(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []


def find_runs(notebook: str | None = None, finished_only: bool = False) -> list[Run]:
    """Runs, oldest first by end time, optionally of one notebook (a stem or a prefix like '02').

    `finished_only` keeps the runs whose metrics are results: finished runs and notebooks
    run by hand that saved metrics. Otherwise failed and unreadable runs are listed too.
    """
    runs = [read_run(folder) for folder in run_folders()]
    runs = [r for r in runs if (not notebook or r.notebook.startswith(notebook))
            and (r.has_results if finished_only else r.state != "running")]
    return sorted(runs, key=lambda r: r.ended)


def latest_run(notebook: str, where: dict[str, Any] | None = None) -> Run | None:
    """The most recent run with results of a notebook whose parameters match `where` (if given)."""
    matching = [r for r in find_runs(notebook, finished_only=True)
                if all(r.params.get(k) == v for k, v in (where or {}).items())]
    return matching[-1] if matching else None


def resolve_run(run: str | Path | None, notebook: str) -> Run:
    """A notebook parameter naming an earlier run, or None or "latest" for the latest run with results.

    A run is named by its folder (relative paths against the launch directory), its run id
    as 05_compare lists it (`runs/03_transformer/main`), `notebook/name`
    (`03_transformer/main`), its name (`main`), or `interactive` for the notebook run by
    hand: the names 06_diagnostics accepts (`storylab.checks.run_reference` keeps all but
    paths as given).
    """
    if run and str(run) != LATEST:
        text = str(run)
        if text == INTERACTIVE:
            candidates = [interactive_dir() / notebook]
        else:
            candidates = [user_path(text), outputs_dir() / text, runs_dir() / text, runs_dir() / notebook / text]
        folder = next((c for c in candidates if (c / "status.json").exists()), None)
        if folder is None:
            raise ValueError(f"run {text!r}: not a run folder (expected a path, a run id, a run name of {notebook}, "
                             f"{INTERACTIVE!r} or {LATEST!r})")
        found = read_run(folder)
        if found.problem:
            raise ValueError(f"run {text!r}: {found.folder} cannot be read: {found.problem}")
        return found
    found = latest_run(notebook)
    if found is None:
        raise ValueError(f"no finished run of {notebook} under {runs_dir()}; run it first (python -m storylab run {notebook})")
    return found


def is_finite_number(value: Any) -> bool:
    return _number_or_none(value) and value is not None and math.isfinite(value)
