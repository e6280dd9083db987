"""Training writes TensorBoard event files with the numbers of its JSONL logs, whole after a resume;
its progress bar is the one of storylab.progress."""

import json
from dataclasses import replace

import numpy as np
import pytest
from test_tracking import read_scalars

from storylab.tokenizers import train_tokenizer
from storylab.tracking import Tracker
from storylab.transformer import ModelConfig, TrainConfig, equal_active_moe, train

TEXTS = ["12 + 30 = 42;", "7 + 8 = 15;", "Once upon a time, Lily ran.", "Tim sat."] * 3
TINY = ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32, n_ctx=8)
RECIPE = TrainConfig(batch_size=4, base_lr=1e-2, min_lr=1e-3, warmup_steps=2, decay_steps=4, max_steps=6, eval_every=3,
                     eval_tokens=32, save_every=3, seed=1)


@pytest.fixture(scope="module")
def data():
    tokenizer = train_tokenizer("char", TEXTS)
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for t in TEXTS]
    stream = np.concatenate(ids).astype(np.uint16)
    return tokenizer, stream, stream[:40]


def log_rows(folder, name):
    return [json.loads(line) for line in (folder / name).read_text().splitlines()]


def curve(scalars, tag):
    steps, values = zip(*scalars[tag])
    return list(steps), list(values)


def test_the_event_files_hold_the_losses_of_the_jsonl_logs(tmp_path, data):
    tokenizer, stream, val = data
    with Tracker(tmp_path / "tb") as tracker:
        train(TINY, RECIPE, stream, val, tmp_path / "run", tokenizer=tokenizer, progress=False, tracker=tracker)
    scalars = read_scalars(tmp_path / "tb")
    train_rows, eval_rows = log_rows(tmp_path / "run", "train_log.jsonl"), log_rows(tmp_path / "run", "eval_log.jsonl")
    for tag, field, rows in (("train/loss", "train_loss", train_rows), ("train/lr", "lr", train_rows),
                             ("train/grad_norm", "grad_norm", train_rows), ("val/loss", "val_loss", eval_rows)):
        steps, values = curve(scalars, tag)
        assert steps == [row["step"] for row in rows], tag
        assert values == pytest.approx([row[field] for row in rows], rel=1e-6), tag  # event files store float32
    assert {"train/tokens_per_s", "memory/peak_rss_mb"} <= set(scalars)


def test_a_resumed_run_replays_its_rows_so_the_new_event_file_has_the_whole_curve(tmp_path, data):
    tokenizer, stream, val = data
    with Tracker(tmp_path / "first") as tracker:
        train(TINY, replace(RECIPE, max_steps=3), stream, val, tmp_path / "run",
              tokenizer=tokenizer, progress=False, tracker=tracker)
    with Tracker(tmp_path / "second") as tracker:  # a new attempt: a fresh folder, as notebooks' run_tracker gives
        train(TINY, RECIPE, stream, val, tmp_path / "run", tokenizer=tokenizer, progress=False, tracker=tracker)
    scalars = read_scalars(tmp_path / "second")
    rows = log_rows(tmp_path / "run", "train_log.jsonl")
    assert curve(scalars, "train/loss")[0] == [1, 2, 3, 4, 5, 6]
    assert curve(scalars, "train/loss")[1] == pytest.approx([row["train_loss"] for row in rows], rel=1e-6)
    assert curve(scalars, "val/loss")[0] == [3, 6]


def test_a_mixture_of_experts_logs_its_aux_loss_and_expert_load(tmp_path, data):
    tokenizer, stream, val = data
    with Tracker(tmp_path / "tb") as tracker:
        train(equal_active_moe(TINY, 2), replace(RECIPE, max_steps=2, warmup_steps=1),
              stream, val, tmp_path / "run", tokenizer=tokenizer, progress=False, tracker=tracker)
    scalars = read_scalars(tmp_path / "tb")
    rows = log_rows(tmp_path / "run", "train_log.jsonl")
    assert curve(scalars, "moe/aux_loss")[1] == pytest.approx([row["aux_loss"] for row in rows], rel=1e-6)
    assert curve(scalars, "moe/layer0/expert1_load")[1] == pytest.approx([row["expert_load"][0][1] for row in rows])


def test_under_the_runner_the_progress_bar_is_one_final_line(tmp_path, data, monkeypatch, capsys):
    tokenizer, stream, val = data
    monkeypatch.setenv("STORYLAB_HEADLESS", "1")  # what the runner sets in a papermill kernel
    train(TINY, RECIPE, stream, val, tmp_path / "run", tokenizer=tokenizer, progress=True)
    lines = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("train: 100%") and "6/6" in lines[0]
