"""Run names: what may name a folder under `outputs/runs/<notebook>/` (and a sweep's `prefix:`).

A name is one path component: no separators (a name must never reach outside
`outputs/`), not hidden (`.tmp-*` folders are runs in progress), no control characters,
and short enough for every filesystem once the runner adds its temporary suffix.
"""

from __future__ import annotations

from storylab.runner.params import ParameterError

MAX_NAME_CHARS = 100
SEPARATORS = ("/", "\\")


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a run folder, or None when it can."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty string"
    if any(s in name for s in SEPARATORS):
        return "may not contain a path separator ('/' or '\\')"
    if name.startswith("."):
        return "may not start with '.'"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "may not contain control characters"
    if len(name) > MAX_NAME_CHARS:
        return f"may have at most {MAX_NAME_CHARS} characters, got {len(name)}"
    return None


def check_run_name(name: str, where: str = "--name") -> str:
    """`name` unchanged, or a one-line ParameterError saying what is wrong with it."""
    problem = name_problem(name)
    if problem:
        shown = repr(name) if len(repr(name)) <= 40 else repr(name)[:37] + "..."
        raise ParameterError(f"{where} {shown}: a run name {problem}")
    return name
