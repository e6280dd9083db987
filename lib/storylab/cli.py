"""`python -m storylab run | pipeline | sweep | status | report | params` — the workbook from the command line.

    python -m storylab run 02_hmm -p n_states=100 --name hmm100
    python -m storylab pipeline params/pipeline.yaml
    python -m storylab sweep hmm_states --jobs 2          # params/sweeps/hmm_states.yaml
    python -m storylab status [hmm_states]                # runs in progress, sweeps
    python -m storylab report                             # rebuild outputs/index.html
    python -m storylab params 02_hmm                      # a notebook's parameters
    python -m storylab board                              # TensorBoard on outputs/: every run's curves, live

Bad input (an unknown notebook, parameter, value of the wrong type, bad name or file) is
one line on stderr and exit status 2, before any run folder exists (a `ParameterError`
from the checks). A run whose notebook raised exits 1, says where on stderr in one line,
and keeps its folder with `status.json` saying `failed`; so does a failure after runs or
state files were written (a sweep's summary, a refused SLURM submission), with the
dashboard written. Ctrl-C exits 130 and SIGTERM 143, each with one line, leaving no
half-written run. Commands that change runs rewrite the dashboard once, at their end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from storylab.paths import PARAMS_DIR
from storylab.readers import first_line
from storylab.runner.dashboard import write_index
from storylab.runner.execute import run_notebook
from storylab.runner.in_progress import check_runs_in_progress
from storylab.runner.params import ParameterError, load_params_file, notebook_parameters, parse_cli_overrides, resolve_notebook
from storylab.runner.pipeline import run_pipeline
from storylab.runner.process import Terminated, raise_on_sigterm
from storylab.runner.sweep_launch import run_sweep
from storylab.runner.sweep_slurm import SubmitError
from storylab.runner.sweep_state import read_state, standing_counts, standings, sweeps_dir, all_states
from storylab.runner.sweep_summary import write_summary


def run_command(args: argparse.Namespace) -> int:
    """Run one notebook with parameters into outputs/runs/<notebook>/<name>/."""
    overrides = load_params_file(args.params_file) if args.params_file else {}
    overrides.update(parse_cli_overrides(args.param))
    result = run_notebook(args.notebook, overrides, name=args.name, force=args.force, progress=sys.stderr.isatty())
    print(f"{result.status}: {result.folder}")
    if result.error:
        print(f"{result.status}: {result.error}", file=sys.stderr)
    return 0 if result.ok else 1


def pipeline_command(args: argparse.Namespace) -> int:
    """Run the steps of a pipeline file in order (params/pipeline.yaml: the main job)."""
    results = run_pipeline(args.file, force=args.force, progress=sys.stderr.isatty())
    failed = [r for r in results if not r.ok]
    for result in failed:
        print(f"failed: {result.folder.parent.name}/{result.folder.name}: {result.error}", file=sys.stderr)
    return 1 if failed else 0


def sweep_command(args: argparse.Namespace) -> int:
    """Run every combination of a sweep file; finished runs are skipped."""
    outcome = run_sweep(sweep_file(args.file), jobs=args.jobs, backend=args.backend, retry_failed=args.retry_failed,
                        smoke=args.smoke, wait=not args.no_wait, cluster=args.cluster, progress=sys.stderr.isatty())
    name, folder = outcome.sweep.name, outcome.sweep.folder
    print(f"{name}: {len(outcome.launched)} launched, {len(outcome.skipped)} skipped (done before)")
    if not outcome.waited and outcome.launched:
        print(f"submitted; follow with: python -m storylab status {name}")
        return 0
    stand = args.standings[name] = outcome.standings
    _print_counts(name, stand)
    for run, (standing, error) in stand.items():
        if standing == "failed":
            print(f"  failed {run}: {error}")
    print(f"summary: {folder / 'summary.html'}")
    return 1 if outcome.count("failed") or outcome.count("interrupted") else 0


def sweep_file(text: str) -> Path:
    """A path, or a bare name of a file in params/sweeps/ (`hmm_states`)."""
    path = Path(text)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    return PARAMS_DIR / "sweeps" / f"{text}.yaml"


def status_command(args: argparse.Namespace) -> int:
    """Runs in progress (and which died), and where each run of a sweep stands."""
    if args.sweep is None:
        _print_in_progress()
        states = all_states()
        if not states:
            print(f"no sweeps under {sweeps_dir()}")
        for name, state in states.items():
            if isinstance(state, str):
                print(f"{name}: unreadable: {state}")
            else:
                _print_counts(name, args.standings.setdefault(name, standings(state)))
        return 0
    name = Path(args.sweep).stem if args.sweep.endswith((".yaml", ".yml")) else args.sweep
    state = read_state(sweeps_dir() / name)
    if state is None:
        known = ", ".join(sorted(all_states())) or "none"
        raise ParameterError(f"sweep {name!r}: no {sweeps_dir() / name / 'jobs.json'}; known sweeps: {known}")
    stand = args.standings[name] = standings(state)
    width = max(map(len, stand), default=3)
    for run, (standing, error) in stand.items():
        job = state.runs[run].job_id
        job = f"job {job}  " if job and standing in ("pending", "running") else ""  # for scancel
        print(f"{run:<{width}}  {standing:<11} {job}{error or ''}".rstrip())
    _print_counts(name, stand)
    _, summary = write_summary(state, stand)  # refreshed: a --no-wait sweep has no other moment to write it
    print(f"summary: {summary}")
    return 0


def _print_in_progress() -> None:
    live, died = check_runs_in_progress()
    for folder in died:
        print(f"died: {folder.parent.name}/{folder.name}: now a failed run ({folder / 'status.json'})")
    for progress in live:
        run = progress.run
        state = "running" if progress.liveness == "alive" else "running?"
        line = f" | {progress.last_line}" if progress.last_line else ""
        print(f"{state}: {run.notebook}/{run.name} since {run.status.get('started', '?')} ({progress.why}){line}")


def _print_counts(name: str, stand: dict[str, tuple[str, str | None]]) -> None:
    counts = standing_counts(stand)
    print(f"{name}: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + f" (of {len(stand)})")


def report_command(args: argparse.Namespace) -> int:
    """Rebuild the dashboard outputs/index.html."""
    return 0  # the dashboard is written after every command that changes runs, this one included


def params_command(args: argparse.Namespace) -> int:
    """List a notebook's parameters with defaults, types and comments."""
    for p in notebook_parameters(resolve_notebook(args.notebook)).values():
        print(f"{p.name:<22} {p.type_label():<16} {p.default!r:<28} {p.comment}")
    return 0


def board_command(args: argparse.Namespace) -> int:
    """TensorBoard on outputs/: the curves of every run, finished or running (Ctrl-C stops it)."""
    import subprocess

    from storylab.paths import outputs_dir

    folder = outputs_dir()
    print(f"TensorBoard on {folder} at http://{args.host}:{args.port}/ (Ctrl-C to stop); on a cluster, from your "
          f"laptop: ssh -N -L {args.port}:localhost:{args.port} <login node>, then open http://localhost:{args.port}/",
          flush=True)
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(folder), "--host", args.host,
               "--port", str(args.port), "--reload_interval", str(args.reload_s)]
    return subprocess.call(command)


def _board_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=6006, help="port to serve on (default 6006)")
    parser.add_argument("--host", default="localhost", help="address to bind (default localhost; 0.0.0.0 for every interface)")
    parser.add_argument("--reload-s", type=int, default=15, help="seconds between rescans of outputs/ (default 15)")


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", help="01_tokenizers, 02_hmm, ... or a path to a notebook")
    parser.add_argument("-f", "--params-file", help="YAML file of parameter values")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter value (parsed as YAML: 512, [256,512], {source: stories}); repeatable")
    parser.add_argument("--name", help="run folder name (default: a hash of the effective parameters)")
    parser.add_argument("--force", action="store_true",
                        help="rerun even if an identical finished run exists; replace a run of this name with other parameters")
    parser.add_argument("--no-index", action="store_true",
                        help="leave outputs/index.html alone (a sweep writes it once for all its runs)")


def _pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="pipeline YAML, e.g. params/pipeline.yaml")
    parser.add_argument("--force", action="store_true", help="rerun steps that already finished")


def _sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="sweep YAML (params/sweeps/NAME.yaml) or its NAME")
    parser.add_argument("--jobs", type=int, default=1, help="local backend: runs at once (default 1)")
    parser.add_argument("--backend", choices=["local", "slurm"], default="local",
                        help="local: child processes here; slurm: one submitit array job (default local)")
    parser.add_argument("--cluster", choices=["slurm", "local"], default="slurm",
                        help="slurm backend: 'local' runs the same submitit path on this machine, without SLURM")
    parser.add_argument("--retry-failed", action="store_true", help="also rerun runs that failed before (or died)")
    parser.add_argument("--smoke", action="store_true", help="the sweep file's tiny `smoke:` variant")
    parser.add_argument("--no-wait", action="store_true", help="slurm backend: return once the jobs are submitted")


def _status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep", nargs="?", help="a sweep name (outputs/sweeps/NAME) or sweep file; all sweeps if omitted")


# name → (add arguments, handler, the dashboard afterwards: None, "write" or "show" (write, print its path))
COMMANDS = {
    "run": (_run_arguments, run_command, "write"),
    "pipeline": (_pipeline_arguments, pipeline_command, "show"),
    "sweep": (_sweep_arguments, sweep_command, "write"),
    "status": (_status_arguments, status_command, "write"),
    "report": (lambda parser: None, report_command, "show"),
    "params": (lambda parser: parser.add_argument("notebook"), params_command, None),
    "board": (_board_arguments, board_command, None),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m storylab", description="storylab: run the workbook's notebooks")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, handler, _) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=(handler.__doc__ or "").strip().splitlines()[0])
        add_arguments(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _, handler, dashboard = COMMANDS[args.command]
    dashboard = None if getattr(args, "no_index", False) else dashboard
    args.standings = {}  # sweep name → standings a command computed: the dashboard does not compute them again
    raise_on_sigterm()
    try:
        status = handler(args)
    except ParameterError as error:  # bad input, found by the checks before anything runs: nothing was written
        print(f"error: {first_line(error) or 'ParameterError'}", file=sys.stderr)
        return 2
    except (ValueError, OSError, RuntimeError) as error:  # a failure once runs or state files were written
        _write_dashboard(dashboard, args.standings, failing=True)
        message = first_line(error) if isinstance(error, SubmitError) else f"{type(error).__name__}: {first_line(error)}"
        print(f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as interrupt:
        _write_dashboard(dashboard, args.standings)
        if isinstance(interrupt, Terminated):
            print("terminated (SIGTERM): no half-written run was left behind", file=sys.stderr)
            return Terminated.exit_status
        print("interrupted: no half-written run was left behind", file=sys.stderr)
        return 130
    _write_dashboard(dashboard, args.standings)
    return status


def _write_dashboard(mode: str | None, known: dict | None = None, failing: bool = False) -> None:
    """Rewrite outputs/index.html (`mode` "show" prints its path) with the sweeps' standings `known` so far;
    `failing`: the command already failed, and a dashboard that cannot be written must not hide why."""
    if mode is None:
        return
    try:
        path = write_index(known)
    except KeyboardInterrupt:  # a second Ctrl-C while writing: the page is written atomically or not at all
        return
    except Exception:  # noqa: BLE001
        if failing:
            return
        raise
    if mode == "show":
        print(f"index: {path}")
