"""Sweeps: expansion and names, checks before launch, local and submitit backends, summaries."""

import csv
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from storylab.paths import PARAMS_DIR
from storylab.runner.params import ParameterError
from storylab.runner.sweep import expand, load_sweep, render_value, run_names
from storylab.runner.sweep_launch import run_sweep

# The toy notebook avoids importing storylab (and with it torch) to keep each run short;
# it fails while the file named by `fail_if_exists` exists, so a test can "fix" a failure.
PARAMETERS = '''rows = 10                 # a swept integer
lr = 0.001                # a swept float
label = "a"               # a swept string
fail_if_exists = ""       # raise while this file exists
sleep_s = 0.0             # wait this long (to interrupt a sweep mid-run)
wait_while_exists = ""    # wait while this file exists (to kill a sweep mid-run)
'''
BODY = '''import json, os, pathlib, time
time.sleep(sleep_s)
while wait_while_exists and os.path.exists(wait_while_exists):
    time.sleep(0.2)
if fail_if_exists and os.path.exists(fail_if_exists):
    raise RuntimeError("planned failure")
run_dir = pathlib.Path(os.environ["STORYLAB_RUN_DIR"])
(run_dir / "metrics.json").write_text(json.dumps({"val_bits_per_char": 1.0 + 1.0 / rows + lr, "rows_seen": rows}))
'''


@pytest.fixture
def toy(tmp_path):
    """A toy notebook and a writer of sweep files for it."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(BODY)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = tmp_path / "toy.ipynb"
    nbformat.write(nb, str(notebook))

    def write(name: str, **spec) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"notebook": str(notebook), **spec}, sort_keys=False))
        return path

    return write


def test_grid_is_a_product_and_zip_goes_in_parallel():
    combos = expand({"a": [1, 2], "b": ["x", "y"]}, {"c": [10, 20], "d": [True, False]})
    assert len(combos) == 8
    assert combos[0] == {"a": 1, "b": "x", "c": 10, "d": True}
    assert combos[1] == {"a": 1, "b": "x", "c": 20, "d": False}  # zipped values stay together
    assert {(c["c"], c["d"]) for c in combos} == {(10, True), (20, False)}
    assert expand({}, {"c": [1, 2]}) == [{"c": 1}, {"c": 2}]


@pytest.mark.parametrize("grid, zipped, message", [
    ({"a": []}, {}, "grid.a must be a non-empty list"),
    ({"a": 3}, {}, "grid.a must be a non-empty list"),
    ({}, {"a": [1, 2], "b": [1]}, "zip lists must have equal lengths"),
    ({"a": [1]}, {"a": [2]}, "'a' is in both grid and zip"),
])
def test_bad_grids_are_one_line_errors(grid, zipped, message):
    with pytest.raises(ParameterError, match=message):
        expand(grid, zipped)


def test_run_names_are_readable_safe_and_unique():
    assert render_value({"kind": "bpe", "vocab_size": 500}) == "bpe-500"
    assert render_value("bpe:500") == "bpe-500"
    assert render_value([32, 64]) == "32-64"
    assert render_value("../../etc") == "..-..-etc"
    names = run_names([{"n_states": 100, "vocab_size": 1024}, {"n_states": 100, "path": "a/b"},
                       {"n_states": 100, "path": "a:b"}], prefix="smoke-")
    assert names[0] == "smoke-n_states=100,vocab_size=1024"
    assert all("/" not in n and ":" not in n for n in names)
    assert len(set(names)) == 3 and names[1].startswith("smoke-n_states=100,path=a-b-")  # collision → hash
    long = run_names([{"x": "y" * 500}])[0]
    assert len(long) <= 120 and long.startswith("x=yyy")


def test_every_combination_is_checked_before_launch(toy, fresh_outputs):
    bad = toy("bad", params={"rows": 5}, grid={"lr": [0.1, "fast"]})
    with pytest.raises(ParameterError, match=r"run 'lr=fast': toy: parameter 'lr' expects float \| int"):
        run_sweep(bad, progress=False)
    assert not (fresh_outputs / "runs").exists() and not (fresh_outputs / "sweeps").exists()
    typo = toy("typo", grid={"row": [1, 2]})
    done = subprocess.run([sys.executable, "-m", "storylab", "sweep", str(typo)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().endswith("toy: unknown parameter 'row'; did you mean 'rows'?")
    assert done.stderr.count("\n") == 1 and not (fresh_outputs / "runs").exists()
    with pytest.raises(ParameterError, match="--smoke needs a 'smoke:' block"):
        load_sweep(toy("nosmoke", grid={"rows": [1]}), smoke=True)
    with pytest.raises(ParameterError, match=r"slurm.partitoin: unknown setting"):
        run_sweep(toy("slurmtypo", grid={"rows": [1]}, slurm={"partitoin": "gpu"}), backend="slurm", cluster="local",
                  progress=False)


def test_smoke_variant_updates_params_and_replaces_the_grid(toy):
    path = toy("s", params={"rows": 100, "lr": 0.5}, grid={"rows": [1000, 5000], "label": ["a", "b"]},
               smoke={"params": {"lr": 0.1}, "grid": {"rows": [2]}})
    full, smoke = load_sweep(path), load_sweep(path, smoke=True)
    assert len(full.runs) == 4 and full.name == "s"
    assert smoke.name == "s-smoke" and [r.name for r in smoke.runs] == ["smoke-rows=2"]
    assert smoke.runs[0].overrides == {"rows": 2, "lr": 0.1}


@pytest.mark.slow
def test_local_sweep_survives_a_failure_skips_done_runs_and_retries_failed(toy, tmp_path, fresh_outputs):
    marker = tmp_path / "broken"
    marker.touch()
    path = toy("local", zip={"rows": [2, 3], "fail_if_exists": ["", str(marker)]})
    done = subprocess.run([sys.executable, "-m", "storylab", "sweep", str(path), "--jobs", "2"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 1, done.stderr  # one run failed
    runs = fresh_outputs / "runs" / "toy"
    names = sorted(p.name for p in runs.iterdir())
    assert len(names) == 2 and not any(n.startswith(".") for n in names)
    statuses = {n: json.loads((runs / n / "status.json").read_text()) for n in names}
    failed = [n for n, s in statuses.items() if s["status"] == "failed"]
    assert len(failed) == 1 and "rows=3" in failed[0] and statuses[failed[0]]["error"]["evalue"] == "planned failure"
    assert "1 finished, 1 failed" in done.stdout and "planned failure" in done.stdout

    summary = list(csv.DictReader((fresh_outputs / "sweeps" / "local" / "summary.csv").open()))
    assert [r["status"] for r in summary] == ["finished", "failed"]
    assert float(summary[0]["val_bits_per_char"]) == pytest.approx(1.0 + 1 / 2 + 0.001)
    index = (fresh_outputs / "index.html").read_text()
    assert "planned failure" in index and "sweeps/local/summary.html" in index

    ended = {n: s["ended"] for n, s in statuses.items()}
    again = run_sweep(path, jobs=2, progress=False)  # nothing to do: finished skipped, failed left alone
    assert again.launched == [] and set(again.skipped.values()) == {"finished", "failed"}

    marker.unlink()  # "fix the bug", then rerun only what failed
    retried = run_sweep(path, jobs=2, retry_failed=True, progress=False)
    assert retried.launched == failed and retried.count("finished") == 2
    for name in names:
        status = json.loads((runs / name / "status.json").read_text())
        assert status["status"] == "finished"
        assert (status["ended"] == ended[name]) == (name not in failed)  # the others were not touched
    page = (fresh_outputs / "sweeps" / "local" / "summary.html").read_text()
    assert "val_bits_per_char vs rows" in page and "../../assets/plotly.min.js" in page
    boards = sorted(p.name for p in (fresh_outputs / "sweeps" / "local" / "tensorboard").iterdir())
    assert boards == sorted(names)  # each finished run once, as a TensorBoard HParams entry


@pytest.mark.slow
@pytest.mark.parametrize("signum, exit_status, why", [(signal.SIGINT, 130, "interrupted (Ctrl-C)"),
                                                      (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_ctrl_c_or_sigterm_interrupts_every_run_and_leaves_no_half_written_run(toy, fresh_outputs, signum,
                                                                               exit_status, why):
    path = toy("sleepy", params={"sleep_s": 120}, grid={"rows": [1, 2]})
    sweep = subprocess.Popen([sys.executable, "-m", "storylab", "sweep", str(path), "--jobs", "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    runs = fresh_outputs / "runs" / "toy"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(list(runs.glob(".tmp-*")) if runs.exists() else []) < 2:
        time.sleep(0.2)
    assert len(list(runs.glob(".tmp-*"))) == 2, "both runs should have started"
    time.sleep(1.0)
    sweep.send_signal(signum)  # Ctrl-C in the terminal, or a SLURM time limit / kill
    _, stderr = sweep.communicate(timeout=90)
    assert sweep.returncode == exit_status and stderr.strip().splitlines()[-1].startswith(why.split()[0])
    assert list(runs.iterdir()) == []  # no run folder, finished or half-written
    state = json.loads((fresh_outputs / "sweeps" / "sleepy" / "jobs.json").read_text())
    assert {e["state"] for e in state["runs"].values()} == {"interrupted"}
    assert {e["error"] for e in state["runs"].values()} == {why}
    again = load_sweep(path)
    from storylab.runner.sweep_launch import select_runs
    assert [r.name for r in select_runs(again)[0]] == ["rows=1", "rows=2"]  # a rerun starts them again


@pytest.mark.slow
def test_a_sweep_killed_outright_can_be_retried(toy, tmp_path, fresh_outputs):
    """SIGKILL to the sweep and its run (a SLURM time limit, the OOM killer), with more runs than
    --jobs: the run is seen dead and shown failed, the run never started is interrupted (not pending
    forever), and --retry-failed runs both instead of refusing."""
    import psutil

    marker = tmp_path / "hold"
    marker.touch()
    path = toy("killed", params={"wait_while_exists": str(marker)}, grid={"rows": [1, 2]})  # --jobs 1
    sweep = subprocess.Popen([sys.executable, "-m", "storylab", "sweep", str(path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = fresh_outputs / "runs" / "toy"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (list(runs.glob(".tmp-*/notebook.ipynb")) if runs.exists() else []):
        time.sleep(0.2)
    tmp = list(runs.glob(".tmp-*"))[0]
    child = json.loads((tmp / "status.json").read_text())["pid"]
    for pid in (sweep.pid, child):
        psutil.Process(pid).kill()
    sweep.wait()
    done = subprocess.run([sys.executable, "-m", "storylab", "status", "killed"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "rows=1  failed      died: its process" in done.stdout
    assert "rows=2  interrupted not started: the sweep that launched it ended first" in done.stdout
    assert "killed: 1 failed, 1 interrupted (of 2)" in done.stdout
    marker.unlink()
    retried = run_sweep(path, retry_failed=True, progress=False)
    assert retried.launched == ["rows=1", "rows=2"] and retried.count("finished") == 2


def test_a_prefix_may_not_reach_outside_outputs(toy, fresh_outputs):
    for prefix in ("../../escaped-", "a/b-", ".hidden-"):
        with pytest.raises(ParameterError, match="prefix"):
            run_sweep(toy("escape", prefix=prefix, grid={"rows": [1]}), progress=False)
    with pytest.raises(ParameterError, match="prefix .x/.: a run name may not contain a path separator"):
        load_sweep(toy("escape", grid={"rows": [1]}, smoke={"prefix": "x/"}), smoke=True)
    assert not fresh_outputs.exists() or not any(fresh_outputs.iterdir())


@pytest.mark.slow
def test_slurm_backend_through_submitits_local_executor(toy, fresh_outputs):
    path = toy("cluster", grid={"label": ["x", "y"]}, params={"rows": 3},
               slurm={"partition": "gpu", "time_min": 10, "mem_gb": 4, "cpus_per_task": 1, "gpus_per_node": 0,
                      "array_parallelism": 2, "additional": {"reservation": "none"}})
    outcome = run_sweep(path, backend="slurm", cluster="local", progress=False)
    assert outcome.count("finished") == 2 and sorted(outcome.launched) == ["label=x", "label=y"]
    state = json.loads((fresh_outputs / "sweeps" / "cluster" / "jobs.json").read_text())
    assert state["backend"] == "slurm" and all(e["job_id"] for e in state["runs"].values())
    for name in ("label=x", "label=y"):
        assert json.loads((fresh_outputs / "runs" / "toy" / name / "status.json").read_text())["status"] == "finished"
    done = subprocess.run([sys.executable, "-m", "storylab", "status", "cluster"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "cluster: 2 finished (of 2)" in done.stdout
    assert "label=x  finished" in done.stdout


def test_slurm_block_maps_to_submitit_parameters():
    from storylab.runner.sweep_slurm import executor_parameters

    parameters = executor_parameters({"partition": "gpu", "time_min": 90, "mem_gb": 16, "cpus_per_task": 4,
                                      "gpus_per_node": 1, "array_parallelism": 8, "qos": "high",
                                      "additional": {"reservation": "ml"}}, "s")
    assert parameters == {"timeout_min": 90, "name": "storylab-s", "slurm_partition": "gpu", "mem_gb": 16,
                          "cpus_per_task": 4, "gpus_per_node": 1, "slurm_array_parallelism": 8, "slurm_qos": "high",
                          "slurm_additional_parameters": {"reservation": "ml"}}
    with pytest.raises(ParameterError, match="slurm.tasks_per_node: a sweep runs each notebook once per job; .* processes: N"):
        executor_parameters({"tasks_per_node": 2, "gpus_per_node": 2}, "s")


@pytest.mark.parametrize("path", sorted((PARAMS_DIR / "sweeps").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_sweeps_validate_in_full_and_smoke(path):
    full, smoke = load_sweep(path), load_sweep(path, smoke=True)
    assert len(full.runs) >= 2 and 1 <= len(smoke.runs) <= 3
    assert all(r.name.startswith("smoke-") for r in smoke.runs)


def _fake_run(outputs: Path, notebook: str, name: str, params: dict, status: str = "finished") -> Path:
    folder = outputs / "runs" / notebook / name
    folder.mkdir(parents=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    (folder / "status.json").write_text(json.dumps({"status": status, "ended": "2026-01-01T00:00:00+00:00"}))
    return folder


def test_a_run_of_another_sweep_is_never_replaced(toy, fresh_outputs):
    from storylab.runner.notebook_checks import effective_parameters

    path = toy("mine", params={"lr": 0.5}, grid={"rows": [1, 2]})
    sweep = load_sweep(path)
    theirs = effective_parameters(sweep.notebook, {"rows": 1})  # same name, other parameters
    _fake_run(fresh_outputs, "toy", "rows=1", theirs)
    other = fresh_outputs / "sweeps" / "theirs"
    other.mkdir(parents=True)
    (other / "jobs.json").write_text(json.dumps({"notebook": "toy", "runs": {"rows=1": {}}}))
    with pytest.raises(ParameterError, match=r"run 'rows=1' would replace the run of sweep 'theirs'.*prefix"):
        run_sweep(path, progress=False)
    assert not (fresh_outputs / "sweeps" / "mine").exists()


def _tmp_run(outputs: Path, notebook: str, name: str, owner: dict) -> Path:
    """A run in progress as the runner makes it: a hidden folder whose status.json names its owner."""
    folder = outputs / "runs" / notebook / f".tmp-{name}-0123abcd"
    folder.mkdir(parents=True)
    (folder / "params.yaml").write_text("rows: 1\n")
    (folder / "status.json").write_text(json.dumps({"status": "running", "notebook": notebook, "name": name,
                                                    "started": "2026-06-01T00:00:00+00:00", **owner}))
    return folder


def test_status_tells_pending_running_finished_failed_and_dead_jobs(fresh_outputs):
    import os

    from storylab.runner.process import this_process
    from storylab.runner.sweep_state import SweepState, run_standing

    _fake_run(fresh_outputs, "toy", "done", {})
    _fake_run(fresh_outputs, "toy", "old", {}, status="failed")  # ended before this launch: a retry is pending
    _tmp_run(fresh_outputs, "toy", "busy", this_process())
    killed = _tmp_run(fresh_outputs, "toy", "killed", {**this_process(), "pid": 2 ** 22 + 12345})
    later = "2026-06-01T00:00:00+00:00"
    state = SweepState.from_json({"sweep": "s", "backend": "local", "notebook": "toy", "runs": {
        "done": {"submitted": None, "state": "finished"},
        "busy": {"submitted": later, "state": "running", "pid": os.getpid()},
        "old": {"submitted": later, "state": "running", "pid": os.getpid()},
        "dead": {"submitted": later, "state": "running", "pid": 2 ** 22 + 12345},
        "killed": {"submitted": later, "state": "running", "pid": 2 ** 22 + 12345},
    }})
    assert run_standing(state, "done") == ("finished", None)
    assert run_standing(state, "busy") == ("running", None)
    assert run_standing(state, "old") == ("pending", None)
    standing, error = run_standing(state, "dead")
    assert standing == "failed" and "ended without writing the run" in error
    standing, error = run_standing(state, "killed")  # its runner was killed: no longer "running" forever
    assert standing == "failed" and error.startswith("died: its process") and not killed.exists()
    died = json.loads((fresh_outputs / "runs" / "toy" / "killed" / "status.json").read_text())
    assert died["status"] == "failed" and died["died"] is True


@pytest.mark.parametrize("data, message", [
    ({"notebook": "toy", "runs": {"a": {"pid": "123"}}}, "run 'a': 'pid' must be int | None, got \"123\""),
    ({"notebook": "toy", "runs": {"a": {"attempts": True}}}, "run 'a': 'attempts' must be int, got true"),
    ({"notebook": "toy", "swept": "rows"}, "'swept' must be list, got \"rows\""),
    ({"notebook": 2}, "'notebook' must be str, got 2"),
    ({"runs": {}}, "missing 'notebook'"),
])
def test_a_malformed_state_file_is_one_line_naming_the_field(data, message, fresh_outputs):
    """`storylab status` reads jobs.json: a field of the wrong type is a one-line error, not a crash later."""
    from storylab.runner.sweep_state import SweepState, read_state

    with pytest.raises(ParameterError, match="^jobs.json: " + re.escape(message)):
        SweepState.from_json({"sweep": "s", **data})
    folder = fresh_outputs / "sweeps" / "s"
    folder.mkdir(parents=True)
    (folder / "jobs.json").write_text(json.dumps(data))
    with pytest.raises(ParameterError, match=re.escape(message)):
        read_state(folder)
    ok = SweepState.from_json({"sweep": "s", "notebook": "toy", "runs": {"a": {"started_at": 5, "unknown_key": 1}}})
    assert ok.runs["a"].started_at == 5  # an int where a float is expected is fine; keys of other versions are dropped


def test_a_run_the_sweep_never_started_is_pending_only_while_its_launcher_lives(fresh_outputs):
    """A sweep killed outright with more runs than --jobs leaves runs it never gave a process: they
    are pending while the sweep lives, and interrupted (so the sweep can be launched again) once it is gone."""
    import os

    import psutil

    from storylab.runner.process import this_process
    from storylab.runner.sweep_state import SweepState, run_standing

    later = "2026-06-01T00:00:00+00:00"
    recycled = round(psutil.Process().create_time() - 1000, 3)  # this pid, but not the process that started then

    def state(launcher):
        return SweepState.from_json({"sweep": "s", "backend": "local", "notebook": "toy", **launcher, "runs": {
            "queued": {"submitted": later, "state": "pending"},
            "recycled": {"submitted": later, "state": "running", "pid": os.getpid(), "started_at": recycled}}})

    alive = state({"launcher": this_process()})
    assert run_standing(alive, "queued") == ("pending", None)
    standing, error = run_standing(alive, "recycled")
    assert standing == "failed" and "ended without writing the run" in error
    for gone in ({"launcher": {**this_process(), "pid": 2 ** 22 + 12345}}, {}):  # killed; a file from before launchers
        standing, error = run_standing(state(gone), "queued")
        assert standing == "interrupted" and "not started" in error


def test_a_failed_submission_is_one_line_and_leaves_the_sweep_relaunchable(toy, fresh_outputs, monkeypatch, capsys):
    from storylab import cli
    from storylab.runner import sweep_slurm
    from storylab.runner.sweep_launch import _refuse_if_still_running

    class Refused:
        def map_array(self, *args):
            raise RuntimeError("Could not submit\nsbatch: error: Batch job submission failed: Invalid partition name")

    monkeypatch.setattr(sweep_slurm, "make_executor", lambda sweep, cluster: Refused())
    monkeypatch.setattr(cli, "raise_on_sigterm", lambda: None)
    path = toy("refused", grid={"rows": [1, 2]}, slurm={"partition": "nope"})
    assert cli.main(["sweep", str(path), "--backend", "slurm", "--cluster", "local"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sweep refused: submitting 2 runs failed" in err and "Could not submit" in err
    state = json.loads((fresh_outputs / "sweeps" / "refused" / "jobs.json").read_text())
    assert {e["state"] for e in state["runs"].values()} == {"interrupted"}
    _refuse_if_still_running(load_sweep(path))  # a relaunch is not refused
    assert (fresh_outputs / "index.html").exists()  # something was written: the dashboard shows it


def test_a_failure_after_runs_were_made_is_exit_1_with_the_dashboard_not_bad_input(toy, fresh_outputs, monkeypatch,
                                                                                  capsys):
    """Exit 2 ("bad input, nothing was written") is for checks before anything runs; a ValueError once
    runs exist (here the summary's plotting) is exit 1, one line, and the dashboard still shows the runs."""
    from storylab import cli
    from storylab.runner import sweep_launch

    def ran(sweep, todo, state, jobs, progress):  # the runs "happened"
        for run in todo:
            state.runs[run.name].state = "finished"

    def summary_fails(state, stand=None):
        raise ValueError("Invalid value of type 'builtins.str' received for the 'x' property\n    Received value: 'a'")

    monkeypatch.setattr(sweep_launch, "run_local", ran)
    monkeypatch.setattr(sweep_launch, "write_summary", summary_fails)
    monkeypatch.setattr(cli, "raise_on_sigterm", lambda: None)
    assert cli.main(["sweep", str(toy("plots", grid={"rows": [1, 2]}))]) == 1
    err = capsys.readouterr().err
    assert err == "error: ValueError: Invalid value of type 'builtins.str' received for the 'x' property\n"
    assert (fresh_outputs / "index.html").exists() and (fresh_outputs / "sweeps" / "plots" / "jobs.json").exists()
    assert cli.main(["sweep", str(toy("bad", grid={"rows": ["x"]}))]) == 2  # a bad value is still bad input
    assert capsys.readouterr().err.startswith("error: sweep ") and not (fresh_outputs / "sweeps" / "bad").exists()


@pytest.mark.parametrize("error, retried", [
    ({"cell": None, "ename": "RuntimeError", "message": "RuntimeError: Kernel died before replying to kernel_info"}, True),
    ({"cell": None, "ename": "ZMQError", "message": "ZMQError: Address already in use (addr='tcp://127.0.0.1:5555')"}, True),
    ({"cell": None, "ename": "RuntimeError", "message": "RuntimeError: Kernel didn't respond in 60 seconds"}, True),
    ({"cell": None, "ename": "DeadKernelError", "message": "DeadKernelError: Kernel died", "cells_started": 0}, True),
    ({"cell": 3, "ename": "RuntimeError", "message": "cell [3] RuntimeError: Kernel died"}, False),  # the notebook's own
    ({"cell": None, "ename": "FileNotFoundError", "message": "FileNotFoundError: x.ipynb"}, False),
    # killed mid-run (out of memory): papermill names no cell, but cells had started
    ({"cell": None, "ename": "DeadKernelError", "message": "DeadKernelError: Kernel died", "cells_started": 4}, False),
    ({"cell": None, "ename": "DeadKernelError", "message": "DeadKernelError: Kernel died"}, False),  # cannot tell: no
])
def test_only_kernel_start_failures_are_started_again(error, retried):
    from storylab.runner.execute import is_kernel_start_failure

    assert is_kernel_start_failure({"status": "failed", "error": error}) is retried


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hmm_scaling", "architectures", "hmm_learnability", "fuzz_distance"])
def test_the_studies_smoke_variants_run_to_the_end(name, fresh_outputs):
    """The research sweeps' `--smoke` variants: every run finishes and the summary lists it."""
    if name == "fuzz_distance":  # 06 diagnoses an HMM run of the stories corpus
        from storylab.runner import run_notebook

        hmm = run_notebook("02_hmm", {"corpus": {"source": "stories", "n_stories": 60, "validation": 10}, "tokenizer": "char",
                                      "n_states": 4, "n_iter": 1, "kn_orders": [], "neural_bigram_steps": 2,
                                      "max_new_tokens": 2}, name="smoke")
        assert hmm.ok, hmm.error
    outcome = run_sweep(PARAMS_DIR / "sweeps" / f"{name}.yaml", jobs=2, smoke=True, progress=False)
    states = {run: entry.state for run, entry in outcome.state.runs.items()}
    assert set(states.values()) == {"finished"}, states
    summary = list(csv.DictReader((outcome.sweep.folder / "summary.csv").open()))
    assert sorted(r["run"] for r in summary) == sorted(states)
