"""Launch a planned sweep: choose the runs still to do, record them, run them, summarise.

    outcome = run_sweep("params/sweeps/hmm_states.yaml", jobs=2)

Every run's parameters are checked before anything is written (`sweep.load_sweep`). A
run whose folder ended with the same parameters is skipped (finished ones always, failed
ones unless `retry_failed`); runs killed outright count as failed (see `in_progress`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from storylab.runner.params import ParameterError
from storylab.runner.process import this_process
from storylab.runner.sweep import PlannedRun, Sweep, load_sweep
from storylab.runner.sweep_local import run_local
from storylab.runner.sweep_slurm import check_cluster, executor_parameters, submit, wait_for_jobs
from storylab.runner.sweep_state import RunEntry, SweepState, iso_now, read_state, standings, sweep_membership, write_state
from storylab.runner.sweep_summary import write_summary
from storylab.runs import read_run


@dataclass
class SweepOutcome:
    sweep: Sweep
    state: SweepState           # jobs.json
    launched: list[str]         # run names started by this call
    skipped: dict[str, str]     # run name → finished | failed (left alone)
    waited: bool = True
    standings: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # where each run stands at the end

    def count(self, status: str) -> int:
        return self.state.count(status)


def run_sweep(path: str | Path, jobs: int = 1, backend: str = "local", retry_failed: bool = False,
              smoke: bool = False, wait: bool = True, cluster: str = "slurm", progress: bool = True) -> SweepOutcome:
    """Check every run, launch the ones not yet done, (wait,) then write the sweep's summary."""
    if backend not in ("local", "slurm"):
        raise ParameterError(f"--backend: expected local or slurm, got {backend!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ParameterError(f"--jobs: expected a positive number of parallel runs, got {jobs}")
    if not wait and backend == "local":
        raise ParameterError("--no-wait works with --backend slurm only (local runs are children of the sweep)")
    sweep = load_sweep(path, smoke)  # every run's parameters are checked before anything starts
    cluster = sweep.slurm.get("cluster", cluster) if cluster == "slurm" else cluster
    if backend == "slurm":
        check_cluster(cluster)  # no SLURM here, or a bad slurm block: fail before any state is written
        executor_parameters(sweep.slurm, sweep.name)
    _refuse_if_still_running(sweep)
    todo, skipped = select_runs(sweep, retry_failed)
    state = begin_state(sweep, backend, todo, skipped)
    try:
        if backend == "local":
            run_local(sweep, todo, state, jobs, progress)
        elif todo:
            submitted = submit(sweep, todo, state, cluster)
            if wait:
                wait_for_jobs(sweep, todo, submitted, state, progress)
    finally:  # also after Ctrl-C: the summary shows what did finish
        stand = standings(state)
        write_summary(state, stand)
    return SweepOutcome(sweep, state, [r.name for r in todo], skipped, wait, stand)


def _refuse_if_still_running(sweep: Sweep) -> None:
    """Launching again while earlier jobs of this sweep still run would start each run twice."""
    previous = read_state(sweep.folder)
    busy = [name for name, (standing, _) in standings(previous).items() if standing in ("pending", "running")] \
        if previous else []
    if busy:
        raise ParameterError(f"sweep {sweep.name}: {len(busy)} runs of an earlier launch are still pending or running "
                             f"(python -m storylab status {sweep.name}); wait for them or cancel their jobs")


def select_runs(sweep: Sweep, retry_failed: bool = False) -> tuple[list[PlannedRun], dict[str, str]]:
    """(runs to launch, {name: 'finished' | 'failed'} of runs to leave alone).

    A run whose folder ended with the same parameters is skipped: finished ones always,
    failed ones unless `retry_failed`. Runs never made, or made with other parameters
    (the sweep file changed), are launched; but a run folder of another sweep is never
    replaced: that is a name clash, reported before anything starts.
    """
    members = sweep_membership()
    todo, skipped = [], {}
    for run in sweep.runs:
        existing = read_run(sweep.run_folder(run))
        status = existing.state if existing.state in ("finished", "failed") else None
        same = status is not None and existing.params == run.params
        others = [s for s in members.get((sweep.notebook.stem, run.name), []) if s != sweep.name]
        if status is not None and not same and others:
            raise ParameterError(f"sweep {sweep.name}: run {run.name!r} would replace the run of sweep {others[0]!r}, "
                                 f"which has other parameters; give one of them a `prefix:` (e.g. prefix: {sweep.name}-)")
        if same and (status == "finished" or (status == "failed" and not retry_failed)):
            skipped[run.name] = status
        else:
            todo.append(run)
    return todo, skipped


def begin_state(sweep: Sweep, backend: str, todo: list[PlannedRun], skipped: dict[str, str]) -> SweepState:
    """A fresh jobs.json for this launch: every run of the sweep, the ones launched now pending."""
    launched = iso_now()
    runs: dict[str, RunEntry] = {}
    for run in sweep.runs:
        entry = RunEntry(overrides=run.overrides, swept=run.swept)
        if run.name in skipped:
            entry.state = skipped[run.name]
            entry.error = read_run(sweep.run_folder(run)).error
        else:
            entry.submitted = launched
        runs[run.name] = entry
    state = SweepState(sweep=sweep.name, file=str(sweep.file), notebook=sweep.notebook.stem, backend=backend,
                       swept=sweep.swept_names, launched=launched, runs=runs, launcher=this_process())
    write_state(state)
    return state
