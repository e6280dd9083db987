"""The set-up every modelling notebook shares: corpus, tokens, floor, checkpoint folders."""

import pytest

from storylab import experiment
from storylab.experiment import checkpoint_folder, code_version, load_experiment

TINY = {"source": "stories", "n_stories": 40, "validation": 10}


def test_load_experiment_applies_rows_and_exposes_splits():
    exp = load_experiment(TINY, "char", rows=25)
    assert exp.spec["rows"] == 25 and exp.train.n_stories == 25 and exp.validation.n_stories == 10
    assert exp.vocab_size == len(exp.tokenizer) and exp.eot_id == exp.tokenizer.eos_token_id
    assert exp.floor_bits_per_char == exp.corpus.floor_bits_per_char > 0
    assert "25 training stories" in exp.describe() and "char" in exp.describe()


def test_checkpoint_folder_changes_with_settings_and_with_the_code_of_that_fit(tmp_path, monkeypatch):
    first = checkpoint_folder("hmm", ["spec", 10])
    assert checkpoint_folder("hmm", ["spec", 10]) == first != checkpoint_folder("hmm", ["spec", 11])
    library = tmp_path / "lib"
    (library / "transformer").mkdir(parents=True)
    for name in ("hmm.py", "plots.py", "transformer/model.py"):
        (library / name).write_text("STEP = 1\n")
    monkeypatch.setattr(experiment, "LIBRARY_DIR", library)

    def folders():
        code_version.cache_clear()
        return checkpoint_folder("hmm", ["spec", 10]), checkpoint_folder("transformer", ["spec", 10])

    try:
        hmm, transformer = folders()
        (library / "plots.py").write_text("STEP = 2\n")  # code no fit runs: both fits resume
        assert folders() == (hmm, transformer)
        (library / "hmm.py").write_text("STEP = 2\n")  # the HMM's code: its fit starts afresh, not the transformer's
        assert folders()[0] != hmm and folders()[1] == transformer
        (library / "transformer" / "model.py").write_text("STEP = 2\n")
        assert folders()[1] != transformer
    finally:
        code_version.cache_clear()


def test_baselines_are_fitted_scored_and_tabled():
    from storylab.experiment import fit_baselines, model_records, results_table
    from storylab.lm import score

    exp = load_experiment(TINY, "byte", rows=25)  # every byte has a token: no <unk>, so bits/char is comparable
    fitted = fit_baselines(exp, add_k=0.1, neural_bigram_steps=5, kn_orders=[2, 3], device="cpu")
    assert [f.model.label for f in fitted] == ["unigram", "bigram", "neural bigram", "KN 2-gram", "KN 3-gram"]
    records = model_records(exp, fitted)
    for f, record in zip(fitted, records):
        assert record["val_bits_per_char"] == score(f.model, exp.validation).bits_per_char
        assert record["corpus"] == exp.spec and record["tokenizer"] == "byte" and record["train_tokens"] > 0
    table = results_table(records)
    assert list(table["val_bits_per_char"]) == sorted(r["val_bits_per_char"] for r in records)
    # only the families asked for are fitted (the neural bigram is not trained for nothing)
    some = fit_baselines(exp, neural_bigram_steps=5, kn_orders=[2, 3], device="cpu", families=["kneser-ney", "bigram"])
    assert [f.model.label for f in some] == ["bigram", "KN 2-gram", "KN 3-gram"]
    with pytest.raises(ValueError, match=r"^families: expected a list of some of .*, got 'bigram'$"):
        fit_baselines(exp, families="bigram")


def test_results_table_puts_models_without_bits_per_char_last():
    from storylab.experiment import results_table

    rows = [{"model": m, "val_bits_per_char": b, "val_bits_per_char_note": None if b else "<unk> in text"}
            for m, b in (("a", None), ("b", 2.0), ("c", 1.0))]
    rows = [{**r, **{c: 0 for c in ("params", "val_nats_per_token", "val_perplexity", "floor_bits_per_char",
                                      "gap_to_floor_bits_per_char", "elapsed_s")}} for r in rows]
    table = results_table(rows)
    assert list(table["model"]) == ["c", "b", "a"] and "val_bits_per_char_note" in table


def test_reference_lines_convert_the_best_of_each_family_with_this_runs_counts(fresh_outputs):
    from storylab.experiment import fit_baselines, model_records, reference_lines
    from storylab.metrics import LN2, save_metrics

    exp = load_experiment(TINY, "byte", rows=25)
    per_token = exp.validation.n_chars * LN2 / exp.validation.n_tokens
    assert reference_lines(exp) == {"floor": exp.floor_bits_per_char * per_token}  # no runs yet
    records = model_records(exp, fit_baselines(exp, neural_bigram_steps=2, kn_orders=[2, 3], device="cpu"))
    folder = fresh_outputs / "runs" / "02_hmm" / "main"
    folder.mkdir(parents=True)
    (folder / "status.json").write_text('{"status": "finished", "ended": "2026-01-01T00:00:00+00:00"}')
    save_metrics({"models": records}, folder)
    lines = reference_lines(exp, families=("bigram", "kneser-ney"))
    best_kn = min((r for r in records if r["family"] == "kneser-ney"), key=lambda r: r["val_bits_per_char"])
    bigram = next(r for r in records if r["family"] == "bigram")
    assert lines == {"floor": exp.floor_bits_per_char * per_token,
                     "bigram (runs/02_hmm/main)": bigram["val_bits_per_char"] * per_token,
                     f"{best_kn['model']} (runs/02_hmm/main)": best_kn["val_bits_per_char"] * per_token}
