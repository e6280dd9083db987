"""Run a sweep on SLURM through submitit: one array job, one task per run.

The sweep file's `slurm:` block sets the resources of every job:

    slurm:
      partition: gpu            # → slurm_partition
      time_min: 120             # → timeout_min (per run)
      mem_gb: 32
      cpus_per_task: 8
      gpus_per_node: 1          # each run then finds CUDA through device="auto"
      array_parallelism: 16     # at most this many runs at once
      setup: ["source .venv/bin/activate"]   # shell lines before each job
      additional: {reservation: ml}          # any other sbatch option
      # account, qos, constraint, exclude, ...: passed as slurm_<key>

`cluster: local` (or `--cluster local`) runs the same code path through submitit's local
executor, without a cluster: that is how the tests exercise it. Each job calls
`run_sweep_job`, a plain importable function (submitit ships the call to the job with
its own pickling; the run's artifacts never use pickle).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from storylab.paths import outputs_dir, runs_dir
from storylab.runner.execute import run_notebook
from storylab.readers import first_line
from storylab.runner.params import ParameterError
from storylab.runner.process import process_started
from storylab.runner.sweep import PlannedRun, Sweep
from storylab.runner.sweep_state import SweepState, write_state
from storylab.runs import read_run

GENERIC = {"timeout_min", "mem_gb", "cpus_per_task", "gpus_per_node", "name", "tasks_per_node", "nodes"}
RENAMED = {"time_min": "timeout_min", "additional": "slurm_additional_parameters",
           "array_parallelism": "slurm_array_parallelism"}
DEFAULT_TIMEOUT_MIN = 60
POLL_S = {"slurm": 10.0, "local": 0.5}  # sacct is not to be hammered; local jobs are cheap to poll


def executor_parameters(slurm: dict[str, Any], sweep_name: str = "sweep") -> dict[str, Any]:
    """The sweep file's `slurm:` block → submitit AutoExecutor parameters (checked, one-line errors)."""
    from submitit.slurm.slurm import SlurmExecutor

    valid_slurm = SlurmExecutor._valid_parameters()
    parameters: dict[str, Any] = {"timeout_min": DEFAULT_TIMEOUT_MIN, "name": f"storylab-{sweep_name}"}
    for key, value in slurm.items():
        if key == "cluster":
            continue
        target = RENAMED.get(key, key)
        if target in GENERIC or target.startswith("slurm_") and target.removeprefix("slurm_") in valid_slurm:
            parameters[target] = value
        elif key in valid_slurm:
            parameters[f"slurm_{key}"] = value
        else:
            raise ParameterError(f"slurm.{key}: unknown setting; expected one of: "
                                 f"{', '.join(sorted([*GENERIC, *RENAMED, *valid_slurm]))}")
    for key in ("tasks_per_node", "nodes", "slurm_ntasks_per_node"):
        # a run is one notebook, executed once: several tasks would each execute it into the same
        # run folder. Several GPUs go to one run through 03's `processes` (torchrun inside the job).
        if parameters.get(key, 1) != 1:
            raise ParameterError(f"slurm.{key}: a sweep runs each notebook once per job; give a run several GPUs with "
                                 f"gpus_per_node: N and the notebook parameter processes: N (03_transformer) instead")
    return parameters


def check_cluster(cluster: str) -> None:
    if cluster not in ("slurm", "local"):
        raise ParameterError(f"--cluster: expected slurm or local, got {cluster!r}")
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise ParameterError("--backend slurm: sbatch not found on this machine; run on a SLURM login node, "
                             "or use --backend local (or --cluster local to try the SLURM path here)")


def make_executor(sweep: Sweep, cluster: str):
    """A submitit executor writing its job files under `outputs/sweeps/<sweep>/submitit/`."""
    import submitit

    check_cluster(cluster)
    parameters = executor_parameters(sweep.slurm, sweep.name)
    executor = submitit.AutoExecutor(folder=sweep.folder / "submitit" / "%j", cluster=cluster)
    if cluster == "local":  # submitit's local executor knows no partitions or memory limits
        parameters = {k: v for k, v in parameters.items() if k in ("timeout_min", "gpus_per_node", "name")}
        parameters["gpus_per_node"] = parameters.get("gpus_per_node", 0) if _has_cuda() else 0
    executor.update_parameters(**parameters)
    return executor


class SubmitError(RuntimeError):
    """The jobs could not be submitted (sbatch refused them): one line; the sweep can be launched again."""


def submit(sweep: Sweep, todo: list[PlannedRun], state: SweepState, cluster: str = "slurm") -> list:
    """Submit one array job for `todo`; record job ids in `state` (jobs.json).

    When submission fails, the runs are recorded as interrupted (not pending: no job will
    start them) and a one-line SubmitError says why."""
    outputs = str(outputs_dir())
    # Kernels of jobs that land on one machine at once race for ports: stagger their starts.
    delays = [float(i % 8) * 0.5 for i in range(len(todo))]
    try:
        executor = make_executor(sweep, cluster)
        jobs = executor.map_array(run_sweep_job, [str(sweep.notebook)] * len(todo), [r.overrides for r in todo],
                                  [r.name for r in todo], [outputs] * len(todo), delays)
    except Exception as error:  # noqa: BLE001 - sbatch's refusal comes as submitit's FailedJobError, or an OSError
        for run in todo:
            state.runs[run.name].state, state.runs[run.name].error = "interrupted", f"not submitted: {first_line(error)}"
        write_state(state)
        raise SubmitError(f"sweep {sweep.name}: submitting {len(todo)} runs failed ({first_line(error)}); "
                          "nothing was started") from None
    state.cluster, state.submitit_folder = cluster, str(sweep.folder / "submitit" / "%j")
    for run, job in zip(todo, jobs):
        entry = state.runs[run.name]
        entry.job_id, entry.log, entry.attempts = str(job.job_id), str(job.paths.stderr), 1
        if cluster == "local":  # the job id is the pid of submitit's controller: its start time tells it apart
            entry.started_at = process_started(int(entry.job_id.split("_")[0]))
    write_state(state)
    return jobs


def wait_for_jobs(sweep: Sweep, todo: list[PlannedRun], jobs: list, state: SweepState, progress: bool = True) -> None:
    """Wait for every job, recording each run's outcome as it ends."""
    from storylab.progress import progress_bar

    pending = dict(zip([r.name for r in todo], jobs))
    with progress_bar(total=len(pending), desc=sweep.name, unit="run", disable=not progress or not pending) as bar:
        while pending:
            for name, job in list(pending.items()):
                if job.done():
                    _record(sweep, name, job, state)
                    del pending[name]
                    bar.update(1)
                    bar.set_postfix_str(f"{name}: {state.runs[name].state}", refresh=True)
            if pending:
                time.sleep(POLL_S[state.cluster or "slurm"])


def _record(sweep: Sweep, name: str, job, state: SweepState) -> None:
    entry = state.runs[name]
    error = job.exception()
    if error is not None:
        entry.state = "failed"
        entry.error = f"the job failed: {str(error).strip().splitlines()[-1][:300]} (log: {job.paths.stderr})"
    else:
        run = read_run(runs_dir() / sweep.notebook.stem / name)
        entry.state = run.state if run.state in ("finished", "failed") else "failed"
        entry.error = run.error
    write_state(state)


def run_sweep_job(notebook: str, overrides: dict[str, Any], name: str, outputs: str,
                  start_delay_s: float = 0.0) -> dict[str, Any]:
    """One run of a sweep inside a SLURM job (`run_notebook` starts a kernel that failed to start again).

    `force`: the sweep has already chosen this run (new, changed or failed before)."""
    os.environ["STORYLAB_OUTPUTS"] = outputs
    time.sleep(start_delay_s)
    result = run_notebook(notebook, overrides, name=name, force=True)
    return {"status": result.status, "folder": str(result.folder), "error": result.error}


def _has_cuda() -> bool:
    return shutil.which("nvidia-smi") is not None and Path("/dev/nvidia0").exists()
