"""Execute one notebook with papermill into `outputs/runs/<notebook>/<name>/`, atomically.

The run is built in a hidden temporary folder beside its final place and renamed when
it has ended, finished or failed: a crash or Ctrl-C leaves no half-written run behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from storylab.cache import spec_hash, write_json_atomic, write_text_atomic
from storylab.paths import NOTEBOOKS_DIR, runs_dir
from storylab.runner.params import ParameterError, notebook_parameters, validate_parameters

KERNEL_NAME = "python3"


class _KnownParameters(logging.Filter):
    """papermill cannot read annotated parameters (`x: int | None = 1`) and warns they are unknown;
    ours were already checked against the cell, so that warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passed unknown parameter")


logging.getLogger("papermill").addFilter(_KnownParameters())


@dataclass
class RunResult:
    folder: Path
    status: str  # "finished" | "failed" | "reused"
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("finished", "reused")


def resolve_notebook(notebook: str | Path) -> Path:
    """`01_tokenizers`, `01_tokenizers.ipynb`, `01` or a path → the notebook file."""
    path = Path(notebook)
    if path.suffix == ".ipynb" and path.exists():
        return path.resolve()
    stem = path.name.removesuffix(".ipynb")
    matches = sorted(NOTEBOOKS_DIR.glob(f"{stem}*.ipynb")) if stem else []
    exact = [m for m in matches if m.stem == stem]
    if exact or len(matches) == 1:
        return (exact or matches)[0]
    available = ", ".join(p.stem for p in sorted(NOTEBOOKS_DIR.glob("*.ipynb")))
    raise ParameterError(f"notebook {str(notebook)!r} not found; expected one of: {available}")


def effective_parameters(notebook: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults of the notebook's parameters cell updated with the checked overrides."""
    declared = notebook_parameters(notebook)
    checked = validate_parameters(declared, overrides, notebook.stem)
    return {**{name: p.default for name, p in declared.items()}, **checked}


def run_name(params: dict[str, Any]) -> str:
    return spec_hash(params, 10)


def run_notebook(notebook: str | Path, overrides: dict[str, Any] | None = None, name: str | None = None,
                 force: bool = False, progress: bool = False) -> RunResult:
    """Check parameters, execute, write report/params/status; the folder appears when the run ends."""
    path = resolve_notebook(notebook)
    overrides = dict(overrides or {})
    params = effective_parameters(path, overrides)  # raises ParameterError before anything is made
    name = name or run_name(params)
    if "/" in name or name.startswith("."):
        raise ParameterError(f"--name {name!r}: a run name may not contain '/' or start with '.'")
    final = runs_dir() / path.stem / name
    if not force and _finished_with(final, params):
        return RunResult(final, "reused")

    tmp = final.parent / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        status = _execute(path, tmp, params, overrides, name, progress)
        _replace(tmp, final)
    except BaseException:  # Ctrl-C or an internal error: leave nothing half-written
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    from storylab.runner.report import write_index

    write_index()
    return RunResult(final, status["status"], status.get("error", {}).get("message") if status.get("error") else None)


def _finished_with(folder: Path, params: dict[str, Any]) -> bool:
    try:
        status = json.loads((folder / "status.json").read_text())
        return status.get("status") == "finished" and yaml.safe_load((folder / "params.yaml").read_text()) == params
    except (OSError, ValueError, yaml.YAMLError, AttributeError):
        return False


def _execute(notebook: Path, folder: Path, params: dict, overrides: dict, name: str, progress: bool) -> dict:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from storylab.runner.report import write_report

    write_text_atomic(folder / "params.yaml", yaml.safe_dump(params, sort_keys=False))
    started = time.time()
    status: dict[str, Any] = {
        "notebook": notebook.stem, "name": name, "overrides": overrides, "host": socket.gethostname(),
        "started": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
    }
    # The kernel inherits this environment: notebooks find their run folder through it,
    # and progress bars print a line every 20 s instead of filling the report.
    kernel_env = {"STORYLAB_RUN_DIR": str(folder), "TQDM_MININTERVAL": os.environ.get("TQDM_MININTERVAL", "20")}
    previous = {name: os.environ.get(name) for name in kernel_env}
    os.environ.update(kernel_env)
    try:
        papermill.execute_notebook(
            str(notebook), str(folder / "notebook.ipynb"), parameters=overrides, kernel_name=KERNEL_NAME,
            cwd=str(folder), progress_bar=progress, log_output=False, report_mode=False,
        )
        status["status"] = "finished"
    except PapermillExecutionError as error:
        status["status"] = "failed"
        status["error"] = {"cell": error.exec_count, "ename": error.ename, "evalue": error.evalue,
                           "message": f"cell [{error.exec_count}] {error.ename}: {error.evalue}"}
    except Exception as error:  # kernel died, notebook unreadable, ...
        status["status"] = "failed"
        status["error"] = {"cell": None, "ename": type(error).__name__, "evalue": str(error),
                           "message": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    status["ended"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    status["elapsed_s"] = round(time.time() - started, 2)
    if (folder / "notebook.ipynb").exists():
        try:
            write_report(folder)
        except Exception as error:  # a report problem must not hide the run's own result
            status["report_error"] = f"{type(error).__name__}: {error}"
    write_json_atomic(folder / "status.json", status)
    return status


def _replace(tmp: Path, final: Path) -> None:
    """Move `tmp` to `final`, replacing an older run of the same name only at the last moment."""
    old = None
    if final.exists():
        old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
        os.rename(final, old)
    os.rename(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def print_error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
