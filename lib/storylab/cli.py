"""`python -m storylab run | pipeline | report | params` — the workbook from the command line.

Bad input (an unknown notebook, parameter or value of the wrong type) is one line on
stderr and exit status 2, before any run folder exists; a run whose notebook raised
exits 1 and keeps its folder with `status.json` saying `failed`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from storylab.runner.params import ParameterError

COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Register a subcommand: `add_arguments(parser)` and a handler returning an exit status."""
    def register(handler: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (add_arguments, handler)
        return handler

    return register


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", help="01_tokenizers, 02_hmm, ... or a path to a notebook")
    parser.add_argument("-f", "--params-file", help="YAML file of parameter values")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter value (parsed as YAML: 512, [256,512], {source: stories}); repeatable")
    parser.add_argument("--name", help="run folder name (default: a hash of the effective parameters)")
    parser.add_argument("--force", action="store_true", help="rerun even if an identical finished run exists")


@command("run", _run_arguments)
def run_command(args: argparse.Namespace) -> int:
    from storylab.runner.execute import run_notebook
    from storylab.runner.params import load_params_file, parse_cli_overrides

    overrides = load_params_file(args.params_file) if args.params_file else {}
    overrides.update(parse_cli_overrides(args.param))
    result = run_notebook(args.notebook, overrides, name=args.name, force=args.force, progress=sys.stderr.isatty())
    print(f"{result.status}: {result.folder}" + (f"\n{result.error}" if result.error else ""))
    return 0 if result.ok else 1


def _pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="pipeline YAML, e.g. params/pipeline.yaml")
    parser.add_argument("--force", action="store_true", help="rerun steps that already finished")


@command("pipeline", _pipeline_arguments)
def pipeline_command(args: argparse.Namespace) -> int:
    from storylab.runner.pipeline import run_pipeline
    from storylab.runner.report import write_index

    results = run_pipeline(args.file, force=args.force, progress=sys.stderr.isatty())
    print(f"index: {write_index()}")
    failed = [r for r in results if not r.ok]
    return 1 if failed else 0


@command("report", lambda parser: None)
def report_command(args: argparse.Namespace) -> int:
    from storylab.runner.report import write_index

    print(write_index())
    return 0


@command("params", lambda parser: parser.add_argument("notebook"))
def params_command(args: argparse.Namespace) -> int:
    """List a notebook's parameters with defaults, types and comments."""
    from storylab.runner.execute import resolve_notebook
    from storylab.runner.params import notebook_parameters

    for p in notebook_parameters(resolve_notebook(args.notebook)).values():
        print(f"{p.name:<22} {p.type_label():<16} {p.default!r:<28} {p.comment}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    import storylab.runner.sweep_cli  # noqa: F401  (registers sweep and status)

    parser = argparse.ArgumentParser(prog="python -m storylab", description="storylab: run the workbook's notebooks")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, handler) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=(handler.__doc__ or "").strip().splitlines()[0] if handler.__doc__ else None)
        add_arguments(sub_parser)
        sub_parser.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ParameterError, ValueError, FileNotFoundError) as error:
        print(f"error: {str(error).splitlines()[0] if str(error) else type(error).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no half-written run was left behind", file=sys.stderr)
        return 130
