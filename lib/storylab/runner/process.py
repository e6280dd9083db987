"""Which process owns a run, whether it is still alive, and SIGTERM handled like Ctrl-C (or held back).

A run in progress records its owner in its `status.json` (`this_process()`): host, pid,
the pid's start time (so a recycled pid is not mistaken for the run) and, inside a SLURM
job, the job id. `owner_state(record)` then says whether that owner is alive: on this
host by its pid; on another host by the SLURM job's state (submitit asks `sacct`);
otherwise it cannot say ("unknown"), and the run is shown as running on that host.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
from contextlib import contextmanager
from typing import Any, Iterator

# SLURM job states in which the job may still write its run.
SLURM_ALIVE = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED",
               "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT"}
PID_START_SLACK_S = 2.0  # process start times are read with a clock tick's precision


class Terminated(KeyboardInterrupt):
    """SIGTERM (a SLURM time limit, `kill`, a container stop): unwinds like Ctrl-C, so every
    `finally` and `except BaseException` that cleans up after an interrupted run runs."""

    exit_status = 143  # 128 + SIGTERM, what a shell reports for a process killed by it


def raise_on_sigterm() -> None:
    """Make SIGTERM raise `Terminated` in the main thread (the command line calls this)."""
    def handler(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back until the block ends, then handle the first as it would have been.

    For steps that must not be cut in two (the renames that swap a run folder). The Python
    handlers are swapped rather than the signals masked (`pthread_sigmask`): a mask covers
    only the calling thread, and a signal delivered to any other thread (tqdm's monitor,
    a library's worker) still runs the Python handler in the main thread at once. Outside
    the main thread no Python handler can interrupt the block, so there is nothing to hold."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.getsignal(signum) for signum in held}
    for signum in held:
        signal.signal(signum, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if received:
            _handle_now(received[0], previous[received[0]])


def _handle_now(signum: int, handler: Any) -> None:
    if callable(handler):
        handler(signum, None)  # Ctrl-C: KeyboardInterrupt; SIGTERM: Terminated (raise_on_sigterm)
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signum)  # the default action, now: the process ends as it would have


def slurm_job_id() -> str | None:
    """The SLURM job running this process (`123_4` for an array task), or None outside SLURM."""
    if os.environ.get("SLURM_ARRAY_JOB_ID") and os.environ.get("SLURM_ARRAY_TASK_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID") or None


def this_process() -> dict[str, Any]:
    """The owner record a run in progress keeps in its status.json (and a sweep of its launcher)."""
    record: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid(), "pid_started": process_started()}
    job = slurm_job_id()
    if job:
        record["slurm_job_id"] = job
    return record


def process_started(pid: int | None = None) -> float | None:
    """When process `pid` (this one by default) started, in epoch seconds; None when it is gone."""
    import psutil

    try:
        return round(psutil.Process(pid).create_time(), 3)
    except psutil.Error:
        return None


def pid_alive(pid: Any, started: Any = None) -> bool:
    """Is process `pid` alive here (and, when `started` is given, the same process that started then)?"""
    import psutil

    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - float(started)) <= PID_START_SLACK_S
    except (psutil.Error, ValueError, TypeError):
        return False


def slurm_job_state(job_id: str, folder: str = os.devnull) -> str | None:
    """The SLURM state of a job (RUNNING, TIMEOUT, ...) as submitit reads it from `sacct`, or
    None when it cannot be known here (no sacct, an unknown job)."""
    if shutil.which("sacct") is None:  # not a SLURM machine: submitit would only warn and say UNKNOWN
        return None
    try:
        from submitit.slurm.slurm import SlurmJob

        state = str(SlurmJob(folder=folder, job_id=str(job_id)).state or "")
    except Exception:  # noqa: BLE001 - no sacct or submitit, an unreadable answer: cannot say
        return None
    state = state.split()[0].upper() if state.strip() else ""
    return None if state in ("", "UNKNOWN") else state


def owner_state(record: dict[str, Any]) -> tuple[str, str]:
    """("alive" | "dead" | "unknown", why) for the owner recorded in a run's status.json."""
    host, pid = record.get("host"), record.get("pid")
    where = f"pid {pid} on {host}"
    if host == socket.gethostname():
        if pid_alive(pid, record.get("pid_started")):
            return "alive", f"{where} is running"
        return "dead", (f"its process ({where}) is gone: killed before the run could end "
                        "(out of memory? a time limit? kill -9?)")
    job = record.get("slurm_job_id")
    if job:
        state = slurm_job_state(str(job))
        if state is None:
            return "unknown", f"running on {host} (SLURM job {job}; its state cannot be read here)"
        if state in SLURM_ALIVE:
            return "alive", f"SLURM job {job} on {host} is {state}"
        return "dead", f"its SLURM job {job} on {host} ended as {state} before the run could end"
    return "unknown", f"running on {host} (pid {pid}; another machine, so this one cannot tell if it is alive)"
