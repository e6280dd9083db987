"""Run folders: the one reader, unreadable files, runs in progress, dead runs, SIGTERM and SIGKILL."""

import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from types import SimpleNamespace

import nbformat
import pytest
import yaml

from storylab.compare import model_table
from storylab.lm import Score
from storylab.metrics import model_record
from storylab.runner.dashboard import write_index
from storylab.runner.in_progress import reap_dead_runs, runs_in_progress
from storylab.runner.process import this_process
from storylab.runs import find_runs, read_run, resolve_run

STORIES = {"source": "stories", "n_stories": 100, "validation": 20, "seed": 0}


def _record(family, bits_per_char):
    model = SimpleNamespace(family=family, label=f"{family} model", vocab_size=30, n_params=10, train_tokens=100,
                            train_flops=1e3)
    score = Score(bits_per_char * math.log(2) * 100, n_tokens=50, n_chars=100, floor_bits_per_char=0.5)
    return model_record(model, score, tokenizer="char", corpus=STORIES, elapsed_s=1.0)


def _run(outputs, notebook, name, status="finished", metrics=None, **files):
    folder = outputs / "runs" / notebook / name
    folder.mkdir(parents=True)
    (folder / "params.yaml").write_text("seed: 0\n")
    (folder / "status.json").write_text(json.dumps({"status": status, "ended": f"2026-01-0{len(name) % 9 + 1}"}))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    for file, text in files.items():
        (folder / file.replace("_", ".")).write_text(text)
    return folder


MALFORMED = {
    "metrics_json": ("[1, 2]", "metrics.json: expected a JSON object, got [1, 2]"),
    "status_json": ('{"status": "failed", "error": "boom"}', "status.json: 'error' must be an object"),
    "params_yaml": ("- a\n- b\n", "params.yaml: expected a mapping of parameter names"),
}


@pytest.mark.parametrize("file", [*MALFORMED, "ended", "models", "bits", "binary"])
def test_one_malformed_file_makes_one_run_unreadable_and_everything_else_renders(fresh_outputs, file):
    _run(fresh_outputs, "02_hmm", "main", metrics={"models": [_record("hmm", 1.5)], "val_bits_per_char": 1.5})
    _run(fresh_outputs, "03_transformer", "main", metrics={"models": [_record("transformer", 1.2)],
                                                           "val_bits_per_char": 1.2})
    bad, expected = {
        **{k: ({k: text}, why) for k, (text, why) in MALFORMED.items()},
        "ended": ({"status_json": '{"status": "finished", "ended": 5}'}, "'ended' must be an ISO time string, got 5"),
        "models": ({"metrics_json": '{"models": {"a": 1}}'}, "'models' must be a list of model records"),
        "bits": ({"metrics_json": json.dumps({"models": [{**_record("hmm", 1.0), "val_bits_per_char": "low"}]})},
                 "models[0]: 'val_bits_per_char' must be a number or null"),
        "binary": ({"status_json": "\udcff"}, "status.json: not UTF-8 text"),
    }[file]
    folder = _run(fresh_outputs, "02_hmm", "broken")
    for name, text in bad.items():
        path = folder / name.replace("_", ".")
        path.write_bytes(text.encode("utf-8", "surrogateescape"))

    run = read_run(folder)
    assert run.state == "unreadable" and expected in run.problem
    with pytest.warns(UserWarning, match=r"run runs/02_hmm/broken left out: "):
        table = model_table()
    assert sorted(table["run_id"]) == ["runs/02_hmm/main", "runs/03_transformer/main"]
    assert table.attrs["unreadable"] == {"runs/02_hmm/broken": run.problem}
    index = write_index().read_text()
    assert "3 runs, 0 failed, 1 unreadable" in index and ">1.2<" in index and ">1.5<" in index
    with pytest.raises(ValueError, match="cannot be read"):
        resolve_run("broken", "02_hmm")


def test_the_dashboard_shows_why_a_run_has_no_bits_per_char(fresh_outputs):
    """Text with <unk> has no comparable bits/char: the index shows the reason and the <unk> rate, not a number."""
    model = SimpleNamespace(family="bigram", label="bigram", vocab_size=30, n_params=10, train_tokens=100, train_flops=1e3)
    record = model_record(model, Score(80.0, n_tokens=50, n_chars=100, floor_bits_per_char=None, n_unk=5),
                          tokenizer="word:30", corpus=STORIES, elapsed_s=1.0)
    assert record["val_bits_per_char"] is None and record["val_unk_rate"] == pytest.approx(0.1)
    _run(fresh_outputs, "02_hmm", "words", metrics={**record, "models": [record]})
    _run(fresh_outputs, "02_hmm", "chars", metrics={"models": [_record("hmm", 1.5)], "val_bits_per_char": 1.5})
    page = write_index().read_text()
    assert "n/a: " + record["val_bits_per_char_note"].split("<unk>")[0] in page.replace("&lt;unk&gt;", "<unk>")
    assert ">0.1</td>" in page and ">1.5</td>" in page  # the <unk> rate; the other run's number


def test_model_table_tells_runs_of_the_same_name_apart(fresh_outputs):
    """Two runs named `main` (of 02 and 03) and a third run: three runs, not two."""
    _run(fresh_outputs, "02_hmm", "main", metrics={"models": [_record("hmm", 1.5), _record("bigram", 2.5)]})
    _run(fresh_outputs, "03_transformer", "main", metrics={"models": [_record("transformer", 1.2)]})
    _run(fresh_outputs, "03_transformer", "small", metrics={"models": [_record("transformer", 1.4)]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing unreadable: no warning
        table = model_table()
    assert len(table) == 4 and table["run"].nunique() == 2 and table["run_id"].nunique() == 3
    assert set(table["run_id"]) == {"runs/02_hmm/main", "runs/03_transformer/main", "runs/03_transformer/small"}
    assert all(os.path.isabs(folder) for folder in table["run_folder"])


def _tmp_run(outputs, notebook, name, owner, last_line=None):
    folder = outputs / "runs" / notebook / f".tmp-{name}-0123abcd"
    folder.mkdir(parents=True)
    (folder / "params.yaml").write_text("rows: 1\n")
    status = {"status": "running", "notebook": notebook, "name": name, "overrides": {"rows": 1},
              "started": "2026-06-01T00:00:00+00:00", **owner}
    (folder / "status.json").write_text(json.dumps(status))
    if last_line:
        cell = nbformat.v4.new_code_cell("train()")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"step 1\n{last_line}\n")]
        nb = nbformat.v4.new_notebook()
        nb.cells = [cell]
        nbformat.write(nb, str(folder / "notebook.ipynb"))
    return folder


DEAD_PID = 2 ** 22 + 12345  # above the default pid_max: never a live process


def test_dashboard_and_status_show_live_runs_and_turn_dead_ones_into_failed_runs(fresh_outputs):
    live = _tmp_run(fresh_outputs, "03_transformer", "live", this_process(), last_line="step 40: loss 1.234")
    recycled = {**this_process(), "pid_started": this_process()["pid_started"] - 1000}  # same pid, another process
    dead = _tmp_run(fresh_outputs, "02_hmm", "dead", {**this_process(), "pid": DEAD_PID})
    reused = _tmp_run(fresh_outputs, "02_hmm", "reused", recycled)
    elsewhere = _tmp_run(fresh_outputs, "02_hmm", "elsewhere", {"host": "node-17.cluster", "pid": 99})

    found = {p.run.name: p for p in runs_in_progress()}
    assert {n: p.liveness for n, p in found.items()} == {"live": "alive", "dead": "dead", "reused": "dead",
                                                         "elsewhere": "unknown"}
    assert found["live"].last_line == "step 40: loss 1.234" and "node-17.cluster" in found["elsewhere"].why
    done = subprocess.run([sys.executable, "-m", "storylab", "status"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "died: 02_hmm/dead: now a failed run" in done.stdout and "died: 02_hmm/reused" in done.stdout
    assert "running: 03_transformer/live since 2026-06-01T00:00:00+00:00" in done.stdout
    assert "step 40: loss 1.234" in done.stdout and "running?: 02_hmm/elsewhere" in done.stdout

    assert live.exists() and not dead.exists() and not reused.exists() and elsewhere.exists()
    status = json.loads((fresh_outputs / "runs" / "02_hmm" / "dead" / "status.json").read_text())
    assert status["status"] == "failed" and status["died"] and status["error"]["message"].startswith("died: its process")
    assert (fresh_outputs / "runs" / "02_hmm" / "dead" / "params.yaml").exists()  # what it was running is kept
    index = (fresh_outputs / "index.html").read_text()
    assert 'id="in-progress"' in index and "step 40: loss 1.234" in index and "node-17.cluster" in index
    assert "2 runs, 2 failed (2 died); 2 in progress" in index
    assert [r.name for r in find_runs(finished_only=True)] == []


def test_a_live_run_with_odd_files_is_judged_by_its_owner_not_reaped(fresh_outputs):
    """Liveness comes from status.json alone: a running notebook whose metrics.json (or params.yaml,
    or a field of status.json) has a bad shape is still running while its process lives."""
    odd_metrics = _tmp_run(fresh_outputs, "02_hmm", "metrics", this_process())
    (odd_metrics / "metrics.json").write_text("[1, 2]")
    odd_params = _tmp_run(fresh_outputs, "02_hmm", "params", this_process())
    (odd_params / "params.yaml").write_text("- a\n- b\n")
    odd_status = _tmp_run(fresh_outputs, "02_hmm", "status", {**this_process(), "elapsed_s": "soon"})
    dead = _tmp_run(fresh_outputs, "02_hmm", "dead", {**this_process(), "pid": DEAD_PID, "elapsed_s": "soon"})
    long_ago = time.time() - 3600  # far past the start-up grace of a folder without an owner
    for folder in (odd_metrics, odd_params, odd_status, dead):
        os.utime(folder, (long_ago, long_ago))
    found = {p.run.name: p.liveness for p in runs_in_progress()}
    assert found == {"metrics": "alive", "params": "alive", "status": "alive", "dead": "dead"}
    assert reap_dead_runs() == [fresh_outputs / "runs" / "02_hmm" / "dead"]
    assert odd_metrics.exists() and odd_params.exists() and odd_status.exists()
    status = json.loads((fresh_outputs / "runs" / "02_hmm" / "dead" / "status.json").read_text())
    assert status["died"] and status["pid"] == DEAD_PID  # the owner it had is kept


def test_a_run_on_another_host_is_judged_by_its_slurm_job(monkeypatch):
    from storylab.runner import process

    record = {"host": "gpu-node-3", "pid": 4242, "slurm_job_id": "777_1"}
    assert process.owner_state(record)[0] == "unknown"  # no sacct here: cannot say, so it counts as running
    for state, liveness in (("RUNNING", "alive"), ("PENDING", "alive"), ("TIMEOUT", "dead"), ("OUT_OF_MEMORY", "dead"),
                            ("CANCELLED", "dead")):
        monkeypatch.setattr(process, "slurm_job_state", lambda job, folder="": state)
        found, why = process.owner_state(record)
        assert found == liveness and "777_1" in why and "gpu-node-3" in why
    monkeypatch.setenv("SLURM_JOB_ID", "900")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "899")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert process.this_process()["slurm_job_id"] == "899_3"


def test_the_runs_in_progress_of_one_name_are_found_without_reading_the_others(fresh_outputs, monkeypatch):
    """A sweep's status asks this once per run: it must not read every run in progress each time."""
    from pathlib import Path

    from storylab.runner import in_progress

    for name in ("a", "b", "c"):
        _tmp_run(fresh_outputs, "02_hmm", name, this_process())
    read, real = [], in_progress.read_run
    monkeypatch.setattr(in_progress, "read_run", lambda folder: read.append(Path(folder).name) or real(folder))
    live, died = in_progress.check_runs_in_progress("02_hmm", "b")
    assert [p.run.name for p in live] == ["b"] and died == [] and read == [".tmp-b-0123abcd"]


def test_a_dead_attempt_never_replaces_a_finished_run(fresh_outputs):
    finished = _run(fresh_outputs, "02_hmm", "main", metrics={"val_bits_per_char": 1.0})
    _tmp_run(fresh_outputs, "02_hmm", "main", {**this_process(), "pid": DEAD_PID})  # a --force rerun, killed
    assert reap_dead_runs() == []
    assert read_run(finished).finished and list(finished.parent.iterdir()) == [finished]


def test_a_run_already_in_progress_is_not_started_twice(fresh_outputs, tmp_path):
    from storylab.runner.execute import run_notebook
    from storylab.runner.params import ParameterError

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("rows = 1   # rows\n")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params]
    nbformat.write(nb, str(tmp_path / "02_hmm.ipynb"))
    _tmp_run(fresh_outputs, "02_hmm", "main", this_process())
    with pytest.raises(ParameterError, match=r"--name main: a run of 02_hmm named 'main' is in progress \(pid "):
        run_notebook(tmp_path / "02_hmm.ipynb", {}, name="main")
    assert [p.name for p in (fresh_outputs / "runs" / "02_hmm").iterdir()] == [".tmp-main-0123abcd"]


# --- replacing a run folder: the two renames, interrupted ----------------------------------------

def _folder(path, text):
    path.mkdir(parents=True)
    (path / "which.txt").write_text(text)
    return path


def test_sigterm_during_the_swap_waits_until_the_new_run_is_in_place(fresh_outputs, monkeypatch):
    """SIGTERM between the two renames of `replace_folder` (old run aside, new one in) is handled once the
    new run is in place: before, it left the old run hidden as `.old-*` and the new one was then deleted."""
    from storylab.runner import in_progress
    from storylab.runner.process import Terminated, raise_on_sigterm

    parent = fresh_outputs / "runs" / "02_hmm"
    final = _folder(parent / "main", "old")
    tmp = _folder(parent / ".tmp-main-0123abcd", "new")
    real_rename = os.rename

    def rename_then_sigterm(source, target):
        real_rename(source, target)
        if ".old-" in str(target):  # the old run is aside, the new one not yet in: SIGTERM arrives now
            os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    raise_on_sigterm()
    try:
        monkeypatch.setattr(in_progress.os, "rename", rename_then_sigterm)
        with pytest.raises(Terminated):
            in_progress.replace_folder(tmp, final)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (final / "which.txt").read_text() == "new" and not tmp.exists()
    monkeypatch.setattr(in_progress, "ORPHAN_GRACE_S", -1.0)
    reap_dead_runs()  # an `.old-*` the interrupted swap had no time to delete goes now
    assert sorted(p.name for p in parent.iterdir()) == ["main"]


def test_a_failed_swap_puts_the_old_run_back(fresh_outputs, monkeypatch):
    from storylab.runner import in_progress

    parent = fresh_outputs / "runs" / "02_hmm"
    final = _folder(parent / "main", "old")
    tmp = _folder(parent / ".tmp-main-0123abcd", "new")
    real_rename = os.rename

    def rename_fails_for_the_new_run(source, target):
        if str(source) == str(tmp):
            raise OSError(28, "No space left on device")
        real_rename(source, target)

    monkeypatch.setattr(in_progress.os, "rename", rename_fails_for_the_new_run)
    with pytest.raises(OSError, match="No space left"):
        in_progress.replace_folder(tmp, final)
    assert (final / "which.txt").read_text() == "old" and not list(parent.glob(".old-*"))


def test_the_reaper_finishes_swaps_and_reaps_that_were_cut_short(fresh_outputs, monkeypatch):
    """Folders a killed process left mid-swap: an `.old-*` run comes back where its run folder is
    missing (else it goes), a claimed `.reap-*` dead run becomes a failed run; young ones are left alone."""
    from storylab.runner import in_progress

    parent = fresh_outputs / "runs" / "02_hmm"
    _run(fresh_outputs, "02_hmm", "kept", metrics={"val_bits_per_char": 1.0})
    hidden = _folder(parent / ".old-kept-0123abcd", "old")          # the swap ended: the new run is in place
    (parent / ".old-lost-0123abcd").mkdir()                        # the swap was cut between its renames
    (parent / ".old-lost-0123abcd" / "status.json").write_text(json.dumps({"status": "finished", "ended": "x"}))
    claimed = _tmp_run(fresh_outputs, "02_hmm", "claimed", {**this_process(), "pid": DEAD_PID})
    os.rename(claimed, parent / ".reap-claimed-0123abcd")          # a reaper killed right after claiming it
    assert reap_dead_runs() == [] and hidden.exists()              # young: perhaps another process is mid-swap
    monkeypatch.setattr(in_progress, "ORPHAN_GRACE_S", -1.0)
    assert reap_dead_runs() == [parent / "claimed"]
    assert sorted(p.name for p in parent.iterdir()) == ["claimed", "kept", "lost"]
    assert read_run(parent / "lost").finished and read_run(parent / "kept").finished
    assert read_run(parent / "claimed").state == "failed" and "died: its process" in read_run(parent / "claimed").error


# --- real processes: SIGTERM, SIGKILL ---------------------------------------------------------

SLEEPY = '''import os, time
while os.path.exists(wait_while_exists):
    print("still waiting", flush=True)
    time.sleep(0.2)
'''


@pytest.fixture
def sleepy(tmp_path):
    """A notebook that waits while a file exists (so a test can kill it mid-run)."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('wait_while_exists = ""   # a file\n')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(SLEEPY)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "sleepy.ipynb"
    nbformat.write(nb, str(path))
    marker = tmp_path / "wait"
    marker.touch()
    return path, marker


def _start_run(notebook, marker, outputs):
    process = subprocess.Popen([sys.executable, "-m", "storylab", "run", str(notebook), "-p",
                                f"wait_while_exists={marker}", "--name", "r"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    folder = outputs / "runs" / "sleepy"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        tmp = list(folder.glob(".tmp-r-*")) if folder.exists() else []
        if tmp and (tmp[0] / "notebook.ipynb").exists():  # the kernel is running the notebook
            return process, tmp[0]
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"the run did not start: {process.communicate()}")


@pytest.mark.slow
def test_sigterm_is_handled_like_ctrl_c(sleepy, fresh_outputs):
    notebook, marker = sleepy
    process, tmp = _start_run(notebook, marker, fresh_outputs)
    status = json.loads((tmp / "status.json").read_text())
    assert status["status"] == "running" and status["pid"] == process.pid and status["host"] == this_process()["host"]
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143
    assert stderr.strip() == "terminated (SIGTERM): no half-written run was left behind"
    assert list((fresh_outputs / "runs" / "sleepy").iterdir()) == []


@pytest.mark.slow
def test_a_killed_run_is_seen_dead_and_becomes_a_failed_run(sleepy, fresh_outputs):
    notebook, marker = sleepy
    process, tmp = _start_run(notebook, marker, fresh_outputs)
    assert [p.liveness for p in runs_in_progress()] == ["alive"]
    process.kill()  # SIGKILL: the runner cannot clean up (the OOM killer, a time limit)
    process.wait()
    assert [p.liveness for p in runs_in_progress()] == ["dead"]
    done = subprocess.run([sys.executable, "-m", "storylab", "report"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    folder = fresh_outputs / "runs" / "sleepy" / "r"
    assert not tmp.exists() and read_run(folder).state == "failed" and "died:" in read_run(folder).error
    assert yaml.safe_load((folder / "params.yaml").read_text())["wait_while_exists"] == str(marker)
    assert "(1 died)" in (fresh_outputs / "index.html").read_text()


def test_latest_names_the_latest_run_with_results_like_none(fresh_outputs):
    """`model_run="latest"` and `hmm_run="latest"` (a keyword the checks keep) mean what None means."""
    _run(fresh_outputs, "03_transformer", "a", metrics={"val_bits_per_char": 1.0})
    newest = _run(fresh_outputs, "03_transformer", "abc", metrics={"val_bits_per_char": 0.9})  # ended later
    assert resolve_run("latest", "03_transformer").folder == resolve_run(None, "03_transformer").folder == newest
    with pytest.raises(ValueError, match="no finished run of 02_hmm"):
        resolve_run("latest", "02_hmm")


def test_artifacts_are_found_where_the_run_recorded_them(fresh_outputs):
    import json

    from storylab.runs import read_run

    folder = fresh_outputs / "runs" / "02_hmm" / "main"
    (folder / "hmm").mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps({"status": "finished", "ended": "2026-01-01T00:00:00+00:00"}))
    (folder / "metrics.json").write_text(json.dumps({"hmm_path": "hmm", "model_path": "gone"}))
    run = read_run(folder)
    assert run.artifact("hmm_path") == folder / "hmm"
    with pytest.raises(ValueError, match=r"run runs/02_hmm/main: model_path .*gone' does not exist"):
        run.artifact("model_path")
    with pytest.raises(ValueError, match="records no 'hf_path'"):
        run.artifact("hf_path")
