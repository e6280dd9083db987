"""The set-up every modelling notebook shares: corpus, tokens, floor, checkpoint folders."""

from storylab import experiment
from storylab.experiment import checkpoint_folder, code_version, load_experiment

TINY = {"source": "stories", "n_stories": 40, "validation": 10}


def test_load_experiment_applies_rows_and_exposes_splits():
    exp = load_experiment(TINY, "char", rows=25)
    assert exp.spec["rows"] == 25 and exp.train.n_stories == 25 and exp.validation.n_stories == 10
    assert exp.vocab_size == len(exp.tokenizer) and exp.eot_id == exp.tokenizer.eos_token_id
    assert exp.floor_bits_per_char == exp.corpus.floor_bits_per_char > 0
    assert "25 training stories" in exp.describe() and "char" in exp.describe()


def test_checkpoint_folder_changes_with_settings_and_with_the_code(tmp_path, monkeypatch):
    first = checkpoint_folder("hmm", ["spec", 10])
    assert checkpoint_folder("hmm", ["spec", 10]) == first != checkpoint_folder("hmm", ["spec", 11])
    library = tmp_path / "lib"
    library.mkdir()
    (library / "model.py").write_text("STEP = 1\n")
    monkeypatch.setattr(experiment, "LIBRARY_DIR", library)
    code_version.cache_clear()
    try:
        before = code_version()
        before_folder = checkpoint_folder("hmm", ["spec", 10])
        (library / "model.py").write_text("STEP = 2\n")  # an edited library
        code_version.cache_clear()
        assert code_version() != before and checkpoint_folder("hmm", ["spec", 10]) != before_folder
    finally:
        code_version.cache_clear()
