"""Sweep and status subcommands (registered into `storylab.cli`).

    python -m storylab sweep params/sweeps/hmm_states.yaml --jobs 2
    python -m storylab sweep transformer_sizes --backend slurm --no-wait
    python -m storylab status                  # every sweep, counts by state
    python -m storylab status hmm_states       # every run of one sweep
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from storylab.cli import command
from storylab.paths import PARAMS_DIR
from storylab.runner.params import ParameterError

STATES = ("finished", "failed", "running", "pending", "interrupted")


def sweep_file(text: str) -> Path:
    """A path, or a bare name of a file in params/sweeps/ (`hmm_states`)."""
    path = Path(text)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    return PARAMS_DIR / "sweeps" / f"{text}.yaml"


def _sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="sweep YAML (params/sweeps/NAME.yaml) or its NAME")
    parser.add_argument("--jobs", type=int, default=1, help="local backend: runs at once (default 1)")
    parser.add_argument("--backend", choices=["local", "slurm"], default="local",
                        help="local: child processes here; slurm: one submitit array job (default local)")
    parser.add_argument("--cluster", choices=["slurm", "local"], default="slurm",
                        help="slurm backend: 'local' runs the same submitit path on this machine, without SLURM")
    parser.add_argument("--retry-failed", action="store_true", help="also rerun runs that failed before")
    parser.add_argument("--smoke", action="store_true", help="the sweep file's tiny `smoke:` variant")
    parser.add_argument("--no-wait", action="store_true", help="slurm backend: return once the jobs are submitted")


@command("sweep", _sweep_arguments)
def sweep_command(args: argparse.Namespace) -> int:
    """Run every combination of a sweep file; finished runs are skipped."""
    from storylab.runner.sweep import run_sweep

    outcome = run_sweep(sweep_file(args.file), jobs=args.jobs, backend=args.backend, retry_failed=args.retry_failed,
                        smoke=args.smoke, wait=not args.no_wait, cluster=args.cluster, progress=sys.stderr.isatty())
    name, folder = outcome.sweep.name, outcome.sweep.folder
    print(f"{name}: {len(outcome.launched)} launched, {len(outcome.skipped)} skipped (done before)")
    if not outcome.waited and outcome.launched:
        print(f"submitted; follow with: python -m storylab status {name}")
        return 0
    _print_counts(name, {n: (e.get("state", "?"), e.get("error")) for n, e in outcome.state["runs"].items()})
    print(f"summary: {folder / 'summary.html'}")
    return 1 if outcome.count("failed") or outcome.count("interrupted") else 0


def _status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep", nargs="?", help="a sweep name (outputs/sweeps/NAME) or sweep file; all sweeps if omitted")


@command("status", _status_arguments)
def status_command(args: argparse.Namespace) -> int:
    """Where each run of a sweep stands: pending, running, finished or failed."""
    from storylab.runner.sweep_state import read_state, standings, sweeps_dir
    from storylab.runner.sweep_summary import write_summary

    if args.sweep is None:
        folders = sorted(p for p in sweeps_dir().iterdir() if (p / "jobs.json").exists()) if sweeps_dir().exists() else []
        if not folders:
            print(f"no sweeps under {sweeps_dir()}")
        for folder in folders:
            state = read_state(folder)
            _print_counts(folder.name, standings(state), brief=True)
        return 0
    name = Path(args.sweep).stem if args.sweep.endswith((".yaml", ".yml")) else args.sweep
    state = read_state(sweeps_dir() / name)
    if not state:
        known = ", ".join(p.name for p in sweeps_dir().iterdir()) if sweeps_dir().exists() else "none"
        raise ParameterError(f"sweep {name!r}: no {sweeps_dir() / name / 'jobs.json'}; known sweeps: {known}")
    stand = standings(state)
    width = max(map(len, stand), default=3)
    for run, (standing, error) in stand.items():
        job = state["runs"][run].get("job_id")
        job = f"job {job}  " if job and standing in ("pending", "running") else ""  # for scancel
        print(f"{run:<{width}}  {standing:<11} {job}{error or ''}".rstrip())
    _print_counts(name, stand, brief=True)
    _, summary = write_summary(state)  # refreshed: a --no-wait sweep has no other moment to write it
    print(f"summary: {summary}")
    return 0


def _print_counts(name: str, stand: dict[str, tuple[str, str | None]], brief: bool = False) -> None:
    counts = {s: sum(1 for v, _ in stand.values() if v == s) for s in STATES}
    print(f"{name}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" (of {len(stand)})")
    if not brief:
        for run, (standing, error) in stand.items():
            if standing == "failed":
                print(f"  failed {run}: {error}")
