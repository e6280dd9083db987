"""Errors a user reads as one line: files read with messages that name the file, and the time format.

    values = read_yaml(path, f"-f {path}", "a YAML file of parameter values", error=ParameterError)
    status = read_json(folder / "status.json", "status.json", "a JSON object", missing=None)

Every reader of a user's or a run's text file (parameter, pipeline and sweep files, notebooks,
a run's status/params/metrics, a sweep's jobs.json) goes through `read_parsed`: bytes →
UTF-8 → parsed, each step's failure one line `<where>: <why>; expected <what>`.
`first_line(error)` is how any error is shown in one line; `iso_now()` is the one format of
the times runs and sweeps record.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

MISSING = object()  # `missing=MISSING`: a missing file is an error, not a value


def first_line(error: BaseException | str) -> str:
    """The first non-empty line of an error's message ('' when it has none)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def iso_now() -> str:
    """Now, in UTC, to the second: `2026-06-01T10:00:00+00:00`."""
    return iso_time(datetime.now(timezone.utc).timestamp())


def iso_time(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, timezone.utc).isoformat(timespec="seconds")


def read_parsed(path: str | Path, where: str, expected: str, parse: Callable[[str], Any] | None = None,
                syntax: str = "", error: type[Exception] = ValueError, missing: Any = MISSING) -> Any:
    """`path` read as UTF-8 and given to `parse` (the text itself when None).

    A problem raises `error` with one line naming `where`: no such file (unless `missing`
    is given: then that is returned), a directory, unreadable, not UTF-8, or not valid
    `syntax` (the parser's first line of complaint)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if missing is not MISSING:
            return missing
        raise error(f"{where}: no such file") from None
    except IsADirectoryError:
        raise error(f"{where}: is a directory; expected {expected}") from None
    except OSError as problem:
        raise error(f"{where}: cannot be read ({problem.strerror or problem})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as problem:
        raise error(f"{where}: not UTF-8 text (byte {problem.object[problem.start]:#04x} at position "
                    f"{problem.start}); expected {expected}") from None
    if parse is None:
        return text
    try:
        return parse(text)
    except ValueError as problem:  # json.JSONDecodeError; yaml.YAMLError is mapped by read_yaml
        raise error(f"{where}: not valid {syntax or 'text'} ({first_line(problem)}); expected {expected}") from None


def read_yaml(path: str | Path, where: str, expected: str, error: type[Exception] = ValueError,
              missing: Any = MISSING) -> Any:
    """`read_parsed` for YAML (`yaml.safe_load`; an empty file is None)."""
    import yaml

    def parse(text: str) -> Any:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as problem:
            raise ValueError(first_line(problem)) from None

    return read_parsed(path, where, expected, parse, "YAML", error, missing)


def read_json(path: str | Path, where: str, expected: str, error: type[Exception] = ValueError,
              missing: Any = MISSING) -> Any:
    """`read_parsed` for JSON."""
    import json

    return read_parsed(path, where, expected, json.loads, "JSON", error, missing)
