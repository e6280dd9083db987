"""Run a sweep on this machine: up to N notebook runs at once, each its own process and kernel.

Each run is `python -m storylab run NOTEBOOK -f <params file> --name NAME --force --no-index` in a
child process (own session, so a terminal Ctrl-C reaches only the sweep, which then
interrupts every child exactly once and waits: the runner removes its temporary folder
and no half-written run is left). SIGTERM to the sweep is passed on to the children the
same way. `--force` because the sweep has already chosen what to (re)run. Starts are
staggered (a run whose kernel still failed to start is started again by `run_notebook`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import yaml

from storylab.cache import write_text_atomic
from storylab.runner.in_progress import reap_dead_runs
from storylab.runner.process import Terminated, process_started
from storylab.runner.sweep import PlannedRun, Sweep
from storylab.readers import iso_now
from storylab.runner.sweep_state import SweepState, write_state
from storylab.runs import read_run

STAGGER_S = 1.0          # between two kernel starts
INTERRUPT_GRACE_S = 60   # how long an interrupted child may take to clean up
POLL_S = 0.2


def run_local(sweep: Sweep, todo: list[PlannedRun], state: SweepState, jobs: int = 1,
              progress: bool = True) -> SweepState:
    """Run `todo` with up to `jobs` at once; record each outcome in `state` (jobs.json)."""
    from storylab.progress import progress_bar

    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    queue: deque[PlannedRun] = deque(todo)
    running: dict[subprocess.Popen, PlannedRun] = {}
    last_start = 0.0
    bar = progress_bar(total=len(todo), desc=sweep.name, unit="run", disable=not progress or not todo)
    try:
        while queue or running:
            if queue and len(running) < jobs and time.monotonic() - last_start >= STAGGER_S:
                run = queue.popleft()
                running[_start(sweep, run, state, threads_per_run(jobs))] = run
                last_start = time.monotonic()
            for process in [p for p in running if p.poll() is not None]:
                run = running.pop(process)
                _finish(sweep, run, process, state)
                bar.update(1)
                bar.set_postfix_str(f"{run.name}: {state.runs[run.name].state}", refresh=True)
            time.sleep(POLL_S)
    except KeyboardInterrupt as interrupt:
        _interrupt(sweep, running, state, terminated=isinstance(interrupt, Terminated))
        raise
    finally:
        bar.close()
    return state


def threads_per_run(jobs: int) -> int:
    """Cores shared out between concurrent runs: oversubscribed torch threads spin-wait on
    each other and can make every run several times slower."""
    return max(1, (os.cpu_count() or 1) // jobs)


def _start(sweep: Sweep, run: PlannedRun, state: SweepState, threads: int) -> subprocess.Popen:
    params_file = sweep.folder / "params" / f"{run.name}.yaml"
    write_text_atomic(params_file, yaml.safe_dump(run.overrides, sort_keys=False))
    log = _log_path(sweep, run)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "storylab", "run", str(sweep.notebook), "-f", str(params_file), "--name", run.name,
               "--force", "--no-index"]  # the sweep's command writes the dashboard once, at its end
    with open(log, "ab") as log_file:
        log_file.write(f"\n=== {iso_now()} {' '.join(command)}\n".encode())
        log_file.flush()
        env = {**os.environ}
        env.setdefault("OMP_NUM_THREADS", str(threads))  # the run's kernel inherits it; torch reads it at start
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, env=env)
    entry = state.runs[run.name]
    entry.state, entry.pid, entry.attempts, entry.log = "running", process.pid, entry.attempts + 1, str(log)
    entry.started_at = process_started(process.pid) or time.time()  # with the pid: this child, not a later one
    write_state(state)
    return process


def _finish(sweep: Sweep, run: PlannedRun, process: subprocess.Popen, state: SweepState) -> None:
    """Record a child's outcome in `state`."""
    entry = state.runs[run.name]
    entry.pid = None
    status_file = sweep.run_folder(run) / "status.json"
    if process.returncode < 0:  # killed by a signal: its temporary folder says it died
        reap_dead_runs(sweep.notebook.stem, run.name)
    # written by this attempt, not left by an earlier run of the same name
    fresh = status_file.exists() and status_file.stat().st_mtime >= (entry.started_at or 0)
    status = read_run(sweep.run_folder(run)).status if fresh else {}
    if fresh and status:
        entry.state, entry.error = status["status"], (status.get("error") or {}).get("message")
    else:  # the child ended before the runner could write a status (bad arguments, ...)
        entry.state = "failed"
        entry.error = (f"the run's process exited with status {process.returncode} without writing its run; "
                       f"see {_log_path(sweep, run)}")
    write_state(state)


def _interrupt(sweep: Sweep, running: dict[subprocess.Popen, PlannedRun], state: SweepState,
               terminated: bool = False) -> None:
    """Pass Ctrl-C (or SIGTERM) on to every child once and wait while each removes its temporary run folder."""
    signum, why = (signal.SIGTERM, "terminated (SIGTERM)") if terminated else (signal.SIGINT, "interrupted (Ctrl-C)")
    for process in running:
        if process.poll() is None:
            process.send_signal(signum)
    deadline = time.monotonic() + INTERRUPT_GRACE_S
    for process, run in running.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        entry = state.runs[run.name]
        entry.state, entry.pid, entry.error = "interrupted", None, why
    for name, entry in state.runs.items():
        if entry.state == "pending":
            entry.state, entry.error = "interrupted", "not started: the sweep was interrupted"
    write_state(state)


def _log_path(sweep: Sweep, run: PlannedRun) -> Path:
    return sweep.folder / "logs" / f"{run.name}.log"
