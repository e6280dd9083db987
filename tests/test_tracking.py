"""TensorBoard event files carry the logged numbers; W&B stays offline unless logged in."""

import math

import pytest

from storylab.tracking import Tracker, check_tracking, wandb_logged_in


def read_scalars(folder):
    """{tag: [(step, value), ...]} read back with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_scalars_round_trip_through_tensorboard(tmp_path):
    with Tracker(tmp_path / "tb") as tracker:
        for step in range(1, 4):
            tracker.log(step, {"train/loss": 1.0 / step, "lr": 0.1 * step, "note": "text", "bad": math.nan})
    scalars = read_scalars(tmp_path / "tb")
    assert set(scalars) == {"train/loss", "lr"}  # text and NaN are skipped
    assert [s for s, _ in scalars["train/loss"]] == [1, 2, 3]
    assert [v for _, v in scalars["train/loss"]] == pytest.approx([1.0, 0.5, 1 / 3], rel=1e-6)


def test_replay_writes_the_rows_of_a_resumed_run(tmp_path):
    rows = [{"iteration": i, "train_nats_per_token": 2.0 - 0.1 * i} for i in (1, 2)]
    with Tracker(tmp_path / "tb") as tracker:
        tracker.replay(rows, "iteration", {"train_nats_per_token": "em/train_nats_per_token"})
    replayed = read_scalars(tmp_path / "tb")["em/train_nats_per_token"]
    assert [s for s, _ in replayed] == [1, 2] and [v for _, v in replayed] == pytest.approx([1.9, 1.8])


def test_a_tracker_without_folder_records_nothing(tmp_path, fresh_outputs, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a default SummaryWriter would write (./runs/...)
    tracker = Tracker(None)
    tracker.log(1, {"x": 1.0})
    tracker.flush()
    tracker.close()
    assert not tracker.active
    assert list(tmp_path.iterdir()) == []  # no event file here, nor in outputs/ (fresh_outputs is tmp_path/outputs)


def test_tracking_choices_and_offline_default(monkeypatch, tmp_path):
    assert check_tracking("none") is False and check_tracking("wandb") is True
    with pytest.raises(ValueError, match="tracking: expected one of"):
        check_tracking("tensorboard-and-more")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert not wandb_logged_in()
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_logged_in()


def test_wandb_runs_offline_without_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    with Tracker(tmp_path / "tb", name="02_hmm/test", config={"n_states": 4}, wandb=True) as tracker:
        tracker.log(1, {"loss": 0.5})
    assert list((tmp_path / "tb" / "wandb").glob("offline-run-*"))  # W&B writes this folder only in offline mode


def test_a_run_tracker_is_named_after_the_run_not_its_temporary_folder(monkeypatch, fresh_outputs):
    """Under the runner a notebook's run folder is `.tmp-<name>-<hex>` until it ends: TensorBoard and
    W&B must show the run's name."""
    from storylab.tracking import run_tracker_options

    for folder, name in ((fresh_outputs / "runs" / "02_hmm" / ".tmp-main-1a2b3c4d", "02_hmm/main"),
                         (fresh_outputs / "runs" / "02_hmm" / "main", "02_hmm/main"),
                         (fresh_outputs / "interactive" / "02_hmm", "02_hmm/interactive")):
        monkeypatch.setenv("STORYLAB_RUN_DIR", str(folder))
        options = run_tracker_options("02_hmm", "none")
        assert options["name"] == name and options["folder"] == folder / "tensorboard"


def test_em_writes_its_history_as_tensorboard_scalars_and_a_resumed_fit_replays_it(tmp_path):
    import numpy as np

    from storylab.hmm import CategoricalHMM

    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 5, size=30) for _ in range(20)]
    first = CategoricalHMM(3, 5, seed=0, device="cpu")
    first.fit(seqs, n_iter=2, val=seqs[:5], checkpoint=tmp_path / "ckpt", progress=False)
    with Tracker(tmp_path / "tb") as tracker:  # a new process resuming the same fit
        resumed = CategoricalHMM(3, 5, seed=0, device="cpu")
        history = resumed.fit(seqs, n_iter=4, val=seqs[:5], checkpoint=tmp_path / "ckpt", progress=False, tracker=tracker)
    scalars = read_scalars(tmp_path / "tb")
    assert [s for s, _ in scalars["em/train_nats_per_token"]] == [1, 2, 3, 4]
    assert [v for _, v in scalars["em/val_nats_per_token"]] == pytest.approx([r["val_nats_per_token"] for r in history], rel=1e-6)


@pytest.mark.slow
def test_board_serves_the_runs_event_files(fresh_outputs):
    """`python -m storylab board` starts TensorBoard on outputs/ and lists a run's scalars."""
    import json
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with Tracker(fresh_outputs / "runs" / "02_hmm" / "main" / "tensorboard") as tracker:
        tracker.log(1, {"em/train_nats_per_token": 2.5})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    board = subprocess.Popen([sys.executable, "-m", "storylab", "board", "--port", str(port)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert "TensorBoard on" in board.stdout.readline()
        deadline, runs = time.monotonic() + 60, {}
        while time.monotonic() < deadline and not runs:
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/data/plugin/scalars/tags", timeout=5) as page:
                    runs = json.loads(page.read())
            except OSError:
                time.sleep(1)
        assert "runs/02_hmm/main/tensorboard" in runs and "em/train_nats_per_token" in runs["runs/02_hmm/main/tensorboard"]
    finally:
        board.terminate()
        board.wait(timeout=30)


def test_a_sweep_run_is_one_hparams_entry_rewritten_only_when_the_run_ends_again(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from storylab.tracking import write_sweep_run

    def logged(folder):
        events = EventAccumulator(str(folder))
        events.Reload()
        return [e.value for e in events.Scalars("sweep/val_bits_per_char")]

    entry, first, rerun = tmp_path / "n_states=4", "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00"
    assert write_sweep_run(entry, {"n_states": 4, "tokenizer": {"kind": "bpe"}}, {"val_bits_per_char": 2.5, "note": "x"},
                           ended=first)
    assert not write_sweep_run(entry, {"n_states": 4}, {"val_bits_per_char": 9.0}, ended=first)  # the same ending
    assert logged(entry) == [2.5]
    # the run was made again (the sweep's parameters changed, --force): its entry follows
    assert write_sweep_run(entry, {"n_states": 4}, {"val_bits_per_char": 1.5}, ended=rerun)
    assert logged(entry) == [1.5] and sorted(p.name for p in tmp_path.iterdir()) == ["n_states=4"]
