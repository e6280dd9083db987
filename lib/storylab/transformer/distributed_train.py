"""One training run over several processes: the torchrun entry point, and its launcher for notebooks.

From a notebook (03 with `processes > 1`), one call trains with N processes and returns
what `train` would have:

    result = train_with_torchrun(model_config, train_config, corpus="stories", tokenizer="char", rows=None,
                                 out_dir=work_dir, processes=2, device="auto",
                                 tracker_options=dict(folder=run_dir() / "tensorboard", name="03_transformer/x"))

It writes the job to `<out_dir>/torchrun_job.json` and runs

    python -m torch.distributed.run --standalone --nproc_per_node N -m storylab.transformer.distributed_train <job>

as a subprocess. Every process loads the same experiment (`storylab.experiment.load_experiment`:
the encoded corpus comes from the shared cache, which the launcher builds first) and
calls `train(..., distributed=True)` (`data_parallel`: each rank its share of every
step's batch, rank 0 writes). The child's output is streamed into the notebook as it
comes (and kept in `<out_dir>/torchrun.log`), a progress bar follows `train_log.jsonl`,
a failure is an error with the child's last error line, and the result is loaded back
from `out_dir` (`runs.load_result`). TensorBoard (and W&B) are written by rank 0 when
`tracker_options` (the arguments of a `storylab.tracking.Tracker`) are given.

On a SLURM cluster through submitit, the same job runs as the N tasks of one job: submitit
starts the function once per task and `init_distributed` reads the rank, world size and
master address from SLURM (`submitit.helpers.TorchDistributedEnvironment`):

    import submitit
    from storylab.transformer.distributed_train import run_job, write_job

    job_file = write_job(out_dir / "torchrun_job.json", model_config, train_config, "stories", "bpe:4096", None,
                         out_dir, progress=False, tracker_options=dict(folder=out_dir / "tensorboard"))
    executor = submitit.AutoExecutor(folder="outputs/submitit/%j")
    executor.update_parameters(nodes=2, tasks_per_node=4, gpus_per_node=4,   # 8 processes, one GPU each
                               cpus_per_task=8, mem_gb=64, timeout_min=600,
                               slurm_partition="gpu", slurm_account="my-lab")
    job = executor.submit(run_job, str(job_file))   # job.result(): rank 0's summary

`tasks_per_node` must equal `gpus_per_node` (one process per GPU: `init_distributed` puts
local rank r on `cuda:r`); `batch_size` must be a multiple of `nodes * tasks_per_node`.
A checkpoint resumes with any number of processes, so a job that hit its time limit can
be resubmitted on other resources.
"""

from __future__ import annotations

import inspect
import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any

from storylab.cache import write_json_atomic
from storylab.checks import check_int
from storylab.devices import resolve_device
from storylab.progress import progress_bar
from storylab.tracking import Tracker
from storylab.transformer.checkpoint import latest_checkpoint
from storylab.transformer.config import ModelConfig, TrainConfig
from storylab.transformer.data_parallel import check_batch_split
from storylab.transformer.runs import load_result
from storylab.transformer.training import TrainResult, train
from storylab.transformer.training_logs import TRAIN_LOG

JOB_FILE = "torchrun_job.json"
OUTPUT_LOG = "torchrun.log"
_ERROR_LINE = re.compile(r"^(?:\[rank\d+\]:\s*)?((?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Interrupt)\b.*)$")
_LAUNCHER_ERRORS = ("ChildFailedError", "torch.distributed.elastic")  # torchrun's own summary, not the cause


def check_job(model_config: ModelConfig, train_config: TrainConfig, tracker_options: dict[str, Any] | None) -> None:
    """One-line errors for a job's arguments, before any process starts."""
    if not isinstance(model_config, ModelConfig):
        raise ValueError(f"model_config: expected a ModelConfig, got {type(model_config).__name__}")
    if not isinstance(train_config, TrainConfig):
        raise ValueError(f"train_config: expected a TrainConfig, got {type(train_config).__name__}")
    if tracker_options is not None:
        known = set(inspect.signature(Tracker).parameters)
        if not isinstance(tracker_options, dict) or not set(tracker_options) <= known:
            raise ValueError(f"tracker_options: expected a dict of storylab.tracking.Tracker arguments "
                             f"({', '.join(sorted(known))}), got {tracker_options!r}")


def write_job(path: str | Path, model_config: ModelConfig, train_config: TrainConfig, corpus, tokenizer,
              rows: int | None, out_dir: str | Path, *, device: str = "auto", resume: bool = True,
              progress: bool = True, tracker_options: dict[str, Any] | None = None, final_eval: bool = True) -> Path:
    """Write the job file every process of a distributed run reads (JSON); returns its path."""
    check_job(model_config, train_config, tracker_options)
    job = {"model": model_config.to_dict(), "train": train_config.to_dict(), "corpus": corpus, "tokenizer": tokenizer,
           "rows": rows, "out_dir": str(Path(out_dir).resolve()), "device": str(device), "resume": bool(resume),
           "progress": bool(progress), "tracker": tracker_options, "final_eval": bool(final_eval)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # default=str: a tracker folder given as a Path, numpy scalars in a notebook's parameters
    write_json_atomic(path, json.loads(json.dumps(job, default=str)))
    return path


def run_job(job_path: str) -> dict[str, Any] | None:
    """One process of a distributed run (torchrun or a SLURM task): train the job; rank 0 returns the summary."""
    from storylab.distributed import close_distributed, init_distributed
    from storylab.experiment import load_experiment

    job = json.loads(Path(job_path).read_text())
    context = init_distributed(job["device"])
    try:
        experiment = load_experiment(job["corpus"], job["tokenizer"], job["rows"])
        tracker = Tracker(**job["tracker"]) if job["tracker"] and context.is_main else None
        try:
            result = train(ModelConfig.from_dict(job["model"]), TrainConfig.from_dict(job["train"]),
                           experiment.train.stream(), experiment.validation.stream(), job["out_dir"],
                           tokenizer=experiment.tokenizer, resume=job["resume"], progress=job["progress"],
                           tracker=tracker, distributed=context, final_eval=job.get("final_eval", True))
        finally:
            if tracker is not None:
                tracker.close()
    finally:
        close_distributed(context)
    return None if result is None else result.summary()


def train_with_torchrun(model_config: ModelConfig, train_config: TrainConfig, corpus, tokenizer, rows: int | None,
                        out_dir: str | Path, *, processes: int, device: str = "auto", resume: bool = True,
                        tracker_options: dict[str, Any] | None = None, progress: bool = True,
                        final_eval: bool = True) -> TrainResult:
    """Train with `processes` processes under torchrun and return the run's TrainResult (module docstring).

    `corpus`, `tokenizer` and `rows` are the experiment's specs (as for `load_experiment`);
    `device="auto"` gives each process a GPU of its own when there are GPUs (then
    `processes` should not exceed them), else CPU processes talking over gloo. `final_eval`
    as for `train`.
    """
    from storylab.experiment import load_experiment

    check_job(model_config, train_config, tracker_options)
    processes = check_int("processes", processes, minimum=1)
    check_batch_split(train_config.batch_size, processes)
    if not isinstance(final_eval, bool):
        raise ValueError(f"final_eval: expected True or False, got {final_eval!r}")
    resolve_device(device)  # a bad device name fails here, not in N processes
    out_dir = Path(out_dir).resolve()
    if latest_checkpoint(out_dir) is not None and not resume:
        raise ValueError(f"out_dir: {out_dir} already holds a run; pass resume=True or choose an empty folder")
    load_experiment(corpus, tokenizer, rows)  # checks the specs and builds the cache once, not once per process
    job_path = write_job(out_dir / JOB_FILE, model_config, train_config, corpus, tokenizer, rows, out_dir,
                         device=device, resume=resume, progress=False, tracker_options=tracker_options,
                         final_eval=final_eval)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", __name__, str(job_path)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    start_step = _checkpoint_step(out_dir)
    with progress_bar(total=train_config.max_steps, initial=start_step, disable=not progress,
                      desc=f"train ({processes} processes)", unit="step") as bar:
        return_code, last_lines = _run_streaming(command, env, out_dir, bar)
    if return_code != 0:
        raise RuntimeError(f"train_with_torchrun: the {processes} training processes failed (exit {return_code}): "
                           f"{last_error_line(last_lines)} (full output: {out_dir / OUTPUT_LOG})")
    return load_result(out_dir, device)


def _checkpoint_step(out_dir: Path) -> int:
    checkpoint = latest_checkpoint(out_dir)
    return 0 if checkpoint is None else int(json.loads((checkpoint / "state.json").read_text())["step"])


def _run_streaming(command: list[str], env: dict[str, str], out_dir: Path, bar) -> tuple[int, list[str]]:
    """Run `command`, echoing its output line by line and moving `bar` to the last step logged; (exit code, last lines)."""
    lines: queue.Queue[str | None] = queue.Queue()  # None: the output ended
    last_lines: deque[str] = deque(maxlen=200)
    follower = _LogFollower(out_dir / TRAIN_LOG)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                               bufsize=1)

    def read() -> None:  # a thread, so the bar keeps moving while the child prints nothing
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        with open(out_dir / OUTPUT_LOG, "a") as output_log:
            while True:
                try:
                    line = lines.get(timeout=0.5)
                except queue.Empty:
                    follower.move(bar)
                    continue
                if line is None:
                    break
                output_log.write(line)
                last_lines.append(line.rstrip("\n"))
                print(line, end="", flush=True)
        follower.move(bar)
        return process.wait(), list(last_lines)
    finally:
        if process.poll() is None:  # the notebook was interrupted: stop the processes too
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


class _LogFollower:
    """Reads the rows a training run appends to its train log, to show its progress from another process."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0

    def move(self, bar) -> None:
        """Move `bar` to the last step logged (forward only), with its loss."""
        try:
            with open(self.path, "rb") as log:
                if log.seek(0, os.SEEK_END) < self.offset:  # the run truncated its log to its checkpoint on resuming
                    self.offset = 0
                log.seek(self.offset)
                data = log.read()
        except FileNotFoundError:
            return
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        rows = [json.loads(line) for line in complete.decode().splitlines() if line.strip()]
        if rows and rows[-1]["step"] > bar.n:
            bar.update(rows[-1]["step"] - bar.n)
            bar.set_postfix(loss=f"{rows[-1]['train_loss']:.3f}", refresh=False)


def last_error_line(lines: list[str]) -> str:
    """The last line of a child's output that names an exception (not torchrun's own summary of it)."""
    for line in reversed(lines):
        match = _ERROR_LINE.match(line.strip())
        if match and not any(marker in line for marker in _LAUNCHER_ERRORS):
            return match.group(1)
    return next((line.strip() for line in reversed(lines) if line.strip()), "no output")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: torchrun --nproc_per_node N -m storylab.transformer.distributed_train <job.json>")
    run_job(sys.argv[1])
