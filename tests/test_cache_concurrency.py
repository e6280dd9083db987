"""Concurrent cache builders, threads and processes: all return the same folder, none raises.

The race harness runs every builder to completion and re-raises the first exception any
of them raised (a bare `threading.Thread` would only print it as a warning); the last
test plants the bug the harness exists to catch — a losing builder that raises instead
of backing off — and checks the harness reports it.
"""

import multiprocessing
import os
import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest

from storylab.cache import atomic_dir, cached_dir

N_BUILDERS = 4
_barrier = None  # the processes' start line (set by the pool's initializer)


def _wait_at_barrier(barrier):
    global _barrier
    _barrier = barrier


def _build(folder: Path) -> None:
    """Every builder finishes its copy at the same moment, so all of them try to rename."""
    (folder / "data.txt").write_text(f"built by {os.getpid()}")
    _barrier.wait(timeout=60)


def _cached(outputs: str) -> str:
    os.environ["STORYLAB_OUTPUTS"] = outputs
    return str(cached_dir("race", {"a": 1}, _build))


def _atomic(final: str, builder=atomic_dir) -> str:
    return str(builder(Path(final), _build))


def _race(pool_kind: str, function, *args) -> list[str]:
    """Run `function(*args)` in N_BUILDERS threads or processes at once; every result, or the first exception."""
    global _barrier
    if pool_kind == "threads":
        import threading

        _barrier = threading.Barrier(N_BUILDERS)
        with ThreadPoolExecutor(N_BUILDERS) as pool:
            futures = [pool.submit(function, *args) for _ in range(N_BUILDERS)]
    else:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(N_BUILDERS, mp_context=context, initializer=_wait_at_barrier,
                                 initargs=(context.Barrier(N_BUILDERS),)) as pool:
            futures = [pool.submit(function, *args) for _ in range(N_BUILDERS)]
    return [f.result() for f in futures]  # re-raises a builder's exception here, in the test


@pytest.mark.parametrize("pool_kind", ["threads", "processes"])
def test_concurrent_cached_dir_builders_agree(pool_kind, fresh_outputs):
    results = _race(pool_kind, _cached, str(fresh_outputs))
    assert len(set(results)) == 1 and Path(results[0]).parent == fresh_outputs / "cache" / "race"
    assert (Path(results[0]) / "data.txt").read_text().startswith("built by ")
    assert (Path(results[0]) / "spec.json").exists()
    assert [p.name for p in (fresh_outputs / "cache" / "race").iterdir()] == [Path(results[0]).name]  # no leftovers


@pytest.mark.parametrize("pool_kind", ["threads", "processes"])
def test_concurrent_atomic_dir_builders_agree(pool_kind, tmp_path):
    final = tmp_path / "artifact"
    assert _race(pool_kind, _atomic, str(final)) == [str(final)] * N_BUILDERS
    assert [p.name for p in tmp_path.iterdir()] == ["artifact"]


def _raising_loser(final: Path, build) -> Path:
    """atomic_dir with the planted bug: the loser of the race raises instead of using the winner's folder."""
    tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    build(tmp)
    try:
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


@pytest.mark.parametrize("pool_kind", ["threads", "processes"])
def test_the_race_harness_reports_a_builder_that_raises(pool_kind, tmp_path):
    with pytest.raises(OSError):
        _race(pool_kind, _atomic, str(tmp_path / "artifact"), _raising_loser)
