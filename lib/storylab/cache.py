"""A content-addressed cache of derived artifacts (corpora, tokenizers, encoded corpora).

`cached_dir(kind, spec, build)` returns `outputs/cache/<kind>/<hash of spec>/`, calling
`build(tmp_folder)` on first use. The build writes into a temporary sibling folder that
is renamed into place only when complete, so a crash or two concurrent builders never
leave a half-written artifact: the loser of a race discards its copy and uses the
winner's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from storylab.paths import cache_dir


def spec_hash(spec: Any, length: int = 16) -> str:
    """A stable short hash of a JSON-able spec (key order does not matter)."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def atomic_dir(final: Path, build: Callable[[Path], None]) -> Path:
    """Build a folder with `build(tmp)` and rename it to `final`; an existing `final` wins."""
    final = Path(final)
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # a concurrent builder finished first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def cached_dir(kind: str, spec: Any, build: Callable[[Path], None]) -> Path:
    """The cache folder for `spec`, built with `build(tmp_folder)` on first use."""
    final = cache_dir() / kind / spec_hash(spec)

    def build_with_spec(tmp: Path) -> None:
        build(tmp)
        write_json_atomic(tmp / "spec.json", spec)

    return atomic_dir(final, build_with_spec)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file and rename it into place."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary sibling of `path` to write to; renamed onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
