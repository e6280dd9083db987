"""Unit conversions, model records, the comparison table and the artifact cache."""

import json
import math
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from storylab.cache import atomic_dir, cached_dir
from storylab.compare import model_table, validation_key
from storylab.lm import Score
from storylab.metrics import (bits_per_char, model_record, nats_per_token, peak_rss_mb, read_metrics, save_metrics,
                              validation_summary)
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
    # the run ids and notebook/name of 06_diagnostics name the same run in 04
    for reference in ("runs/03_transformer/b", "03_transformer/b", str(fresh_outputs / "runs" / "03_transformer" / "b")):
        assert resolve_run(reference, "03_transformer").folder == fresh_outputs / "runs" / "03_transformer" / "b"
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


def test_hmm_curves_are_one_line_per_tokenizer_and_training_size():
    import pandas as pd

    from storylab.compare import best_per_family, hmm_state_curves

    rows = [{"corpus_label": "stories [a]", "family": "hmm", "model": f"HMM K={k}", "tokenizer": tok, "train_tokens": n,
             "n_states": k, "val_bits_per_char": bpc, "run_id": f"runs/02_hmm/{k}-{n}"}
            for tok, n, k, bpc in (("char", 100, 8, 3.0), ("char", 100, 4, 3.5), ("char", 500, 8, 2.5), ("bpe:300", 80, 8, 2.0))]
    rows.append({"corpus_label": "stories [a]", "family": "kneser-ney", "model": "KN 5-gram", "tokenizer": "char",
                 "train_tokens": 100, "val_bits_per_char": 1.0, "run_id": "runs/02_hmm/x"})
    table = pd.DataFrame(rows)
    curves = hmm_state_curves(table)["stories [a]"]
    assert set(curves) == {"char, 100 training tokens", "char, 500 training tokens", "bpe:300, 80 training tokens"}
    assert list(curves["char, 100 training tokens"]["n_states"]) == [4, 8]
    assert best_per_family(table, ("kneser-ney", "bigram")) == {"KN 5-gram (runs/02_hmm/x)": 1.0}


def test_learnability_table_reads_the_process_from_the_corpus_spec():
    import pandas as pd

    from storylab.compare import learnability_table

    table = pd.DataFrame([
        {"corpus": {"source": "hmm", "kind": "cyclic", "epsilon": 0.01, "length": 63}, "family": "transformer",
         "model": "transformer L2", "n_layers": 2, "gap_to_floor_bits_per_char": 0.1, "mixing_time_steps": 100.0},
        {"corpus": {"source": "stories"}, "family": "transformer", "model": "t", "gap_to_floor_bits_per_char": 1.0},
    ])
    learn = learnability_table(table)
    assert len(learn) == 1 and learn.loc[0, "corpus_kind"] == "cyclic" and learn.loc[0, "length"] == 63
    assert learn.loc[0, "mixing_time_steps"] == 100.0 and learn.loc[0, "belief_kl_bits_per_symbol"] is None


def test_diagnostics_join_the_latest_06_figures_onto_each_model():
    import pandas as pd

    from storylab.compare import diagnostics_table

    class Run06:
        def __init__(self, records):
            self.metrics = {"diagnostics": records}

    table = pd.DataFrame([{"corpus_label": "stories [a]", "model": "HMM K=8", "val_bits_per_char": 3.0, "run_id": "runs/02_hmm/main"},
                          {"corpus_label": "stories [a]", "model": "bigram", "val_bits_per_char": 3.4, "run_id": "runs/02_hmm/main"}])
    old = Run06([{"run_id": "runs/02_hmm/main", "model": "HMM K=8", "pair_accuracy": 0.1, "label": "HMM"}])
    new = Run06([{"run_id": "runs/02_hmm/main", "model": "HMM K=8", "pair_accuracy": 0.6,
                  "pair_accuracy/pronoun": 0.7, "excess_bits_per_char/name recalled": 0.2, "label": "HMM"}])
    joined = diagnostics_table(table, runs=[old, new])
    assert list(joined["model"]) == ["HMM K=8"] and joined.loc[0, "pair_accuracy"] == 0.6
    assert joined.loc[0, "pair_accuracy/pronoun"] == 0.7 and "label" not in joined
    assert diagnostics_table(table, runs=[]).empty


def test_validation_summary_names_the_unk_share_and_keeps_every_key():
    clean = validation_summary(100 * math.log(2), 50, 100, 0.75)
    assert clean["val_bits_per_char_note"] is None and clean["floor_bits_per_char"] == 0.75
    assert clean["val_unk_rate"] == 0.0 and clean["val_nats_per_token"] == pytest.approx(100 * math.log(2) / 50)
    with_unk = validation_summary(100 * math.log(2), 8, 100, 0.75, n_unk=2)
    assert with_unk["val_bits_per_char"] is None and with_unk["gap_to_floor_bits_per_char"] is None
    assert with_unk["val_unk_rate"] == 0.25 and with_unk["floor_bits_per_char"] == 0.75
    assert with_unk["val_bits_per_char_note"] == ("not comparable: 2 of 8 validation tokens (25.00%) are <unk>, "
                                                  "each standing for text the tokenizer cannot spell")


def test_model_record_is_the_row_05_compare_reads():
    record = model_record(fake_model("bigram", "bigram (counts)"), Score(200 * math.log(2), 80, 100, floor_bits_per_char=1.5),
                          tokenizer="bpe:512", corpus={"source": "stories"}, elapsed_s=2, seed=3)
    assert {key: record[key] for key in ("family", "model", "tokenizer", "vocab_size", "corpus", "params", "train_tokens",
                                          "train_flops", "elapsed_s", "seed")} == {
        "family": "bigram", "model": "bigram (counts)", "tokenizer": "bpe:512", "vocab_size": 512,
        "corpus": {"source": "stories"}, "params": 10, "train_tokens": 100, "train_flops": 1e3, "elapsed_s": 2.0, "seed": 3}
    assert record["val_bits_per_char"] == pytest.approx(2.0) and record["gap_to_floor_bits_per_char"] == pytest.approx(0.5)
    assert record["val_tokens"] == 80 and record["val_chars"] == 100
    assert record["peak_rss_mb"] == pytest.approx(peak_rss_mb(), rel=0.5)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc for the reference figure")
def test_peak_rss_mb_is_the_kernels_high_water_mark_in_mib():
    before = peak_rss_mb()
    status = Path("/proc/self/status").read_text()
    high_water_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    assert before <= high_water_kib / 1024 <= peak_rss_mb() + 1  # the peak only grows between the two reads


@pytest.mark.parametrize("platform, ru_maxrss", [("linux", 3 * 2**10), ("darwin", 3 * 2**20)])  # KiB on Linux, bytes on macOS
def test_peak_rss_mb_reads_the_platforms_unit(monkeypatch, platform, ru_maxrss):
    import storylab.metrics as metrics

    monkeypatch.setattr(metrics, "sys", SimpleNamespace(platform=platform))
    monkeypatch.setattr(metrics.resource, "getrusage", lambda who: SimpleNamespace(ru_maxrss=ru_maxrss))
    assert peak_rss_mb() == 3.0


def test_save_metrics_merges_into_metrics_json(tmp_path, monkeypatch):
    assert read_metrics(tmp_path) == {}
    save_metrics({"a": 1, "b": 2}, tmp_path)
    save_metrics({"b": 3, "c": [4]}, tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"a": 1, "b": 3, "c": [4]}
    assert read_metrics(tmp_path) == {"a": 1, "b": 3, "c": [4]}
    run = tmp_path / "run"
    monkeypatch.setenv("STORYLAB_RUN_DIR", str(run))
    save_metrics({"d": 5})  # no folder: the run being executed
    assert read_metrics(run) == {"d": 5}
