"""Unit conversions, model records, the comparison table and the artifact cache."""

import json
import math
import threading
from types import SimpleNamespace

import pytest

from storylab.cache import atomic_dir, cached_dir
from storylab.compare import model_table, validation_key
from storylab.lm import Score
from storylab.metrics import bits_per_char, model_record, nats_per_token, save_metrics, validation_summary
from storylab.runs import find_runs, latest_run, resolve_run


def test_bits_per_char_is_tokenizer_independent():
    # 100 chars cost 100 bits whether they came as 50 tokens or 25 tokens.
    assert bits_per_char(100 * math.log(2), 100) == pytest.approx(1.0)
    assert nats_per_token(10.0, 4) == 2.5
    summary = validation_summary(100 * math.log(2), 25, 100, 0.75)
    assert summary["gap_to_floor_bits_per_char"] == pytest.approx(0.25)
    assert summary["val_perplexity"] == pytest.approx(math.exp(4 * math.log(2)))
    assert validation_summary(1.0, 1, 1, None)["gap_to_floor_bits_per_char"] is None


def fake_model(family, label="x"):
    return SimpleNamespace(family=family, label=label, vocab_size=512, n_params=10, train_tokens=100, train_flops=1e3)


def test_model_record_rejects_unknown_family():
    with pytest.raises(ValueError, match="^model.family"):
        model_record(fake_model("lstm"), Score(1.0, 1, 1), tokenizer="byte", corpus={}, elapsed_s=1)


def _fake_run(root, notebook, name, models, ended, status="finished"):
    folder = root / "runs" / notebook / name
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps({"status": status, "ended": ended}))
    (folder / "params.yaml").write_text("seed: 0\n")
    save_metrics({"models": models}, folder)
    return folder


def _record(family, bpc, corpus, tokenizer="bpe:512", **extra):
    return model_record(fake_model(family, f"{family} model"), Score(bpc * math.log(2) * 100, 50, 100, floor_bits_per_char=0.5),
                        tokenizer=tokenizer, corpus=corpus, elapsed_s=1.0, **extra)


def test_model_table_groups_by_validation_set(fresh_outputs):
    stories = {"source": "stories", "n_stories": 100, "validation": 20, "seed": 0}
    more_rows = {**stories, "rows": 50}
    other = {**stories, "validation": 30}
    _fake_run(fresh_outputs, "02_hmm", "a", [_record("hmm", 1.2, stories, n_states=8), _record("bigram", 2.0, stories)], "2026-01-01")
    _fake_run(fresh_outputs, "03_transformer", "b", [_record("transformer", 0.9, more_rows)], "2026-01-02")
    _fake_run(fresh_outputs, "03_transformer", "c", [_record("transformer", 0.1, other)], "2026-01-03")
    _fake_run(fresh_outputs, "03_transformer", "d", [_record("transformer", 0.0, stories)], "2026-01-04", status="failed")
    table = model_table()
    assert len(table) == 4  # the failed run is left out
    assert validation_key(stories) == validation_key(more_rows) != validation_key(other)
    group = table[table["corpus_label"] == table.loc[table["family"] == "hmm", "corpus_label"].iloc[0]]
    assert list(group["family"]) == ["transformer", "hmm", "bigram"]  # best first
    assert group["gap_to_floor_bits_per_char"].iloc[0] == pytest.approx(0.4)
    assert latest_run("03_transformer").name == "c"
    assert [r.name for r in find_runs("03", finished_only=True)] == ["b", "c"]
    assert resolve_run("b", "03_transformer").name == "b"
    with pytest.raises(ValueError, match="not a run folder"):
        resolve_run("zzz", "03_transformer")


def test_cache_builds_once_and_concurrent_builders_agree(fresh_outputs):
    calls = []

    def build(folder):
        calls.append(folder)
        (folder / "data.txt").write_text("x")

    first = cached_dir("thing", {"a": 1}, build)
    assert cached_dir("thing", {"a": 1}, build) == first and len(calls) == 1
    assert json.loads((first / "spec.json").read_text()) == {"a": 1}

    def failing(folder):
        (folder / "half.txt").write_text("half")
        raise RuntimeError("crash mid-build")

    with pytest.raises(RuntimeError):
        cached_dir("thing", {"a": 2}, failing)
    assert sorted(p.name for p in (fresh_outputs / "cache" / "thing").iterdir()) == [first.name]

    target = fresh_outputs / "race"
    barrier = threading.Barrier(4)

    def slow_build(folder):
        barrier.wait()
        (folder / "who.txt").write_text(folder.name)

    threads = [threading.Thread(target=atomic_dir, args=(target, slow_build)) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert (target / "who.txt").exists() and [p.name for p in fresh_outputs.iterdir() if p.name.startswith(".tmp")] == []
