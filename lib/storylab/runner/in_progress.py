"""Runs in progress: the hidden `.tmp-<name>-<hex>` folders the runner builds runs in.

Each records its owner (host, pid, SLURM job) in its `status.json` from the moment it
exists. A run whose owner is alive, or cannot be checked from here (another host
without SLURM), is shown as running. A run whose owner is gone (SIGKILL, the OOM
killer, a SLURM time limit) would otherwise stay "running" forever: `reap_dead_runs`
turns it into a failed run (`died: ...`) in its final folder, so `status`, the dashboard
and `sweep --retry-failed` treat it like any failed run. A finished run of the same name
is never replaced by a dead attempt; the attempt is removed instead.

`replace_folder` swaps a run into its final folder (the runner's last step, and the
reaper's); a process killed outright mid-swap or mid-reap leaves an `.old-*` or `.reap-*`
folder, which `reap_dead_runs` restores, finishes or removes.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storylab.cache import write_json_atomic
from storylab.paths import runs_dir
from storylab.readers import iso_now, read_json
from storylab.runner.process import owner_state, signals_held
from storylab.runs import HIDDEN_RUN, Run, read_run

STARTUP_GRACE_S = 60.0  # a folder this young may not have written its status.json yet
ORPHAN_GRACE_S = 60.0   # an `.old-*` / `.reap-*` folder this recent may still be in a live process's hands


@dataclass
class RunInProgress:
    run: Run            # read from the temporary folder: notebook, name, params, status, metrics
    owner: dict[str, Any]  # status.json as written (host, pid, ...), even where `run` finds a file odd; {} if none
    liveness: str       # alive | unknown | dead
    why: str            # where it runs, or why it is considered dead
    last_line: str      # the last line the notebook printed so far, or its last metric

    @property
    def final_folder(self) -> Path:
        return self.run.folder.parent / self.run.name


def runs_in_progress(notebook: str | None = None, name: str | None = None) -> list[RunInProgress]:
    """Every temporary run folder (optionally of one notebook / run name), with its owner's liveness."""
    return [_in_progress(folder) for folder, kind, _ in _hidden_folders(notebook, name) if kind == "tmp"]


def check_runs_in_progress(notebook: str | None = None,
                           name: str | None = None) -> tuple[list[RunInProgress], list[Path]]:
    """(the runs in progress that are alive or cannot be checked, the final folders of those found dead).

    In one look at the folders: each dead run becomes a failed run (`died: ...`) in its final
    folder, and folders a killed process left mid-swap or mid-reap (`.old-*`, `.reap-*`) are
    restored, finished or removed."""
    hidden = _hidden_folders(notebook, name)
    found = [_in_progress(folder) for folder, kind, _ in hidden if kind == "tmp"]
    made = []
    for dead in (p for p in found if p.liveness == "dead"):
        claimed = dead.final_folder.parent / f".reap-{dead.run.name}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(dead.run.folder, claimed)  # one reaper wins; the others find the folder gone
        except OSError:
            continue
        made.extend(_reap(claimed, dead.final_folder, dead.owner, dead.why))
    orphans = [(folder, kind, folder.parent / run) for folder, kind, run in hidden
               if kind != "tmp" and time.time() - _changed(folder) >= ORPHAN_GRACE_S]
    made.extend(_finish_orphans(orphans))
    return [p for p in found if p.liveness != "dead"], made


def reap_dead_runs(notebook: str | None = None, name: str | None = None) -> list[Path]:
    """Turn every dead run in progress into a failed run (`died: ...`); the final folders made.
    (`check_runs_in_progress`, for callers that need only this.)"""
    return check_runs_in_progress(notebook, name)[1]


def _in_progress(folder: Path) -> RunInProgress:
    run = read_run(folder)
    owner = run.status if not run.problem else _owner_record(folder)
    liveness, why = _liveness(folder, owner)
    return RunInProgress(run, owner, liveness, why, last_line(folder, run.metrics))


def _hidden_folders(notebook: str | None, name: str | None) -> list[tuple[Path, str, str]]:
    """(folder, tmp | old | reap, run name) of the hidden folders beside runs, matched by name before any is read."""
    found = []
    for parent in _notebook_folders(notebook):
        for folder in _children(parent):
            match = HIDDEN_RUN.match(folder.name)
            if match and (name is None or match["name"] == name):
                found.append((folder, match["kind"], match["name"]))
    return found


def _notebook_folders(notebook: str | None) -> list[Path]:
    """`outputs/runs/<notebook>/` (every notebook's when None)."""
    return [runs_dir() / notebook] if notebook else _children(runs_dir())


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return []


def _owner_record(folder: Path) -> dict[str, Any]:
    """status.json as its owner wrote it; {} when missing or not a JSON object.

    Liveness is judged from this alone: a live notebook may write a metrics.json (or a
    runner a field) that `read_run` finds odd, and must not be taken for dead because of it."""
    try:
        record = read_json(folder / "status.json", "status.json", "a JSON object", missing={})
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _liveness(folder: Path, owner: dict[str, Any]) -> tuple[str, str]:
    if owner.get("host"):
        return owner_state(owner)
    if time.time() - _mtime(folder) < STARTUP_GRACE_S:
        return "alive", "starting"
    return "dead", "it records no owner process (no host in status.json): its runner crashed"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _finish_orphans(orphans: list[tuple[Path, str, Path]]) -> list[Path]:
    """(folder, old | reap, final folder) left by a killed process → the final folders made from `.reap-*` ones.

    Only folders untouched for ORPHAN_GRACE_S are given: a live process holds one for a moment only."""
    made = []
    for orphan, kind, final in orphans:
        if kind == "reap":  # claimed as dead by a reaper that was killed before it was done
            owner = _owner_record(orphan)
            why = owner_state(owner)[1] if owner.get("host") else "it records no owner process: its runner crashed"
            made.extend(_reap(orphan, final, owner, why))
        elif final.exists():
            shutil.rmtree(orphan, ignore_errors=True)  # the swap ended: this is the replaced run
        else:
            try:
                os.rename(orphan, final)  # the swap was cut between its renames: the old run comes back
            except OSError:
                pass  # another process restored it, or made a new run there, first
    return made


def _reap(claimed: Path, final: Path, owner: dict[str, Any], why: str) -> list[Path]:
    """A claimed dead run into its final folder as a failed run: [final], or [] when a finished run is there."""
    status = owner
    if status.get("status") not in ("finished", "failed"):  # it died before it could end: say so
        status = {**status, "status": "failed", "died": True, "ended": iso_now(),
                  "error": {"cell": None, "ename": "Died", "evalue": why, "message": f"died: {why}"}}
    write_json_atomic(claimed / "status.json", status)
    if status["status"] != "finished" and read_run(final).finished:
        shutil.rmtree(claimed)  # a finished run is never replaced by a dead attempt
        return []
    replace_folder(claimed, final)
    return [final]


def _changed(path: Path) -> float:
    """When `path` last changed, a rename included (st_ctime), or was written into (st_mtime)."""
    try:
        stat = path.stat()
    except OSError:
        return time.time()
    return max(stat.st_mtime, stat.st_ctime)


def replace_folder(tmp: Path, final: Path) -> None:
    """Move `tmp` to `final`, replacing an older folder of that name only at the last moment.

    Two renames (the old folder aside, the new one in): Ctrl-C and SIGTERM wait until both are
    done, and a failed second rename puts the old folder back. A process killed outright
    between them leaves an `.old-*` folder that `reap_dead_runs` restores or removes."""
    old = None
    with signals_held():
        if final.exists():
            old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
            os.rename(final, old)
        try:
            os.rename(tmp, final)
        except BaseException:
            if old is not None:
                os.rename(old, final)
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def last_line(folder: Path, metrics: dict[str, Any], max_chars: int = 200) -> str:
    """The last line a run printed so far (papermill saves the notebook as cells run), else its last metric."""
    try:
        notebook = json.loads((folder / "notebook.ipynb").read_bytes())
        for cell in reversed(notebook.get("cells", [])):
            for output in reversed(cell.get("outputs", [])):
                text = _output_text(output)
                lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
                if lines:
                    return lines[-1][:max_chars]
    except (OSError, ValueError, AttributeError, TypeError):
        pass  # not written yet, or caught mid-write: fall back to the metrics
    if metrics:
        key, value = list(metrics.items())[-1]
        return f"{key} = {json.dumps(value, default=str)}"[:max_chars]
    return ""


def _output_text(output: dict[str, Any]) -> str:
    if output.get("output_type") == "stream":
        text = output.get("text", "")
    else:
        text = (output.get("data") or {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else str(text)
