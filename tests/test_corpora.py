"""Corpus sources on small data the tests make themselves, the shared options and the floor."""

import math
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from datasets import Dataset, DatasetDict, Value

from storylab.corpora import Corpus, corpus_spec, held_out_addition_pairs, load_corpus, normalize_spec
from storylab.corpora.addition import permute_pair_indices
from storylab.corpora.sources import split_text_file

STORIES = [f"Story {i}. Tim saw a {'red' if i % 2 else 'blue'} ball.\nIt was fun." for i in range(40)]


def test_addition_lines_and_exact_floor():
    corpus = load_corpus({"source": "addition", "n_problems": 50, "validation": 20, "min_operand": 0, "max_operand": 9})
    texts = corpus.texts("validation")
    assert len(texts) == 20 and len(corpus.texts("train")) == 50
    for line in texts:
        left, right = line.rstrip(";").split(" = ")
        a, b = map(int, left.split(" + "))
        assert 0 <= a <= 9 and 0 <= b <= 9 and int(right) == a + b and line.endswith(";")
    # 10% of the 100 operand pairs are held out, each equally likely: log2(10) bits per problem.
    expected = 20 * math.log2(10) / sum(len(t) for t in texts)
    assert corpus.floor_bits_per_char == pytest.approx(expected, rel=1e-12)
    assert corpus.meta["n_stories"] == {"train": 50, "validation": 20}


def test_addition_validation_problems_never_occur_in_training():
    corpus = load_corpus({"source": "addition", "n_problems": 300, "validation": 60, "max_operand": 9})
    train, val = corpus.texts("train"), corpus.texts("validation")
    assert not set(val) & set(train)
    distinct = len(set(val))
    assert corpus.meta["held_out_pairs"] == {"validation_problems": 60, "validation_pairs": distinct, "unseen": distinct,
                                             "unseen_either_order": held_out_addition_pairs(corpus).unseen_either_order}
    assert str(held_out_addition_pairs(corpus)).startswith(f"{distinct} of {distinct} validation operand pairs never seen")
    recorded = Corpus(corpus.dataset, {**corpus.meta, "held_out_pairs": {**corpus.meta["held_out_pairs"], "unseen": 7}})
    assert held_out_addition_pairs(recorded).unseen == 7  # the count the corpus recorded is read, not redone


def test_addition_floor_by_brute_force_on_a_tiny_range():
    """Operands 0..2: enumerate all 9 pairs and check the splits and the floor against them."""
    n_val = 3000
    corpus = load_corpus({"source": "addition", "n_problems": 3000, "validation": n_val, "max_operand": 2,
                          "validation_pairs": 3, "seed": 5})
    pairs = {split: [tuple(map(int, t.split(" = ")[0].split(" + "))) for t in corpus.texts(split)]
             for split in ("train", "validation")}
    every_pair = {(a, b) for a in range(3) for b in range(3)}
    held_out, trained = set(pairs["validation"]), set(pairs["train"])
    # 3000 draws each: every pair of a split shows up, and the splits partition all pairs.
    assert len(held_out) == 3 and held_out | trained == every_pair and not held_out & trained
    counts = Counter(pairs["validation"])
    sd = math.sqrt(n_val * (1 / 3) * (2 / 3))  # each held-out pair is drawn with probability 1/3
    assert all(abs(c - n_val / 3) < 5 * sd for c in counts.values())
    texts = corpus.texts("validation")
    assert corpus.floor_bits_per_char == pytest.approx(n_val * math.log2(len(held_out)) / sum(map(len, texts)), rel=1e-12)
    train = corpus.texts("train")
    assert corpus.meta["train_floor_bits_per_char"] == pytest.approx(
        len(train) * math.log2(len(trained)) / sum(map(len, train)), rel=1e-12)


def test_addition_operands_start_at_min_operand_and_every_sum_is_right():
    spec = {"source": "addition", "n_problems": 400, "validation": 100, "min_operand": 3, "max_operand": 14, "seed": 1}
    corpus = load_corpus(spec)
    pairs = {split: [tuple(map(int, t.split(" = ")[0].split(" + "))) for t in corpus.texts(split)] for split in ("train", "validation")}
    for split in ("train", "validation"):
        for text, (a, b) in zip(corpus.texts(split), pairs[split]):
            assert 3 <= a <= 14 and 3 <= b <= 14 and text == f"{a} + {b} = {a + b};"
    assert min(a for a, _ in pairs["train"]) == 3 and max(b for _, b in pairs["train"]) == 14  # the whole range is used
    assert corpus.meta["operand_pairs"] == {"train": 144 - 14, "validation": 14}  # 10% of 12 * 12 pairs held out


def test_addition_corpora_are_the_same_on_every_machine_and_version():
    """The cache key is the spec: these pin the pair permutation, the seeded draws and the text."""
    corpus = load_corpus({"source": "addition", "n_problems": 4, "validation": 3, "min_operand": 3, "max_operand": 14, "seed": 1})
    assert corpus.texts("train") == ["7 + 8 = 15;", "11 + 7 = 18;", "10 + 14 = 24;", "10 + 11 = 21;"]
    assert corpus.texts("validation") == ["11 + 4 = 15;", "11 + 5 = 16;", "9 + 3 = 12;"]
    assert permute_pair_indices(np.arange(4), 4, seed=0).tolist() == [3, 1, 2, 0]
    assert permute_pair_indices(np.arange(12), 16, seed=0).tolist() == [1, 9, 6, 10, 15, 0, 14, 3, 5, 12, 4, 8]
    assert permute_pair_indices(np.arange(6), 10000, seed=0).tolist() == [4753, 2859, 4223, 3218, 7604, 5181]


@pytest.mark.parametrize("n_pairs", [2, 9, 100, 1000, 4097])
def test_pair_permutation_is_a_seeded_bijection(n_pairs):
    image = permute_pair_indices(np.arange(n_pairs), n_pairs, seed=7)
    assert sorted(image.tolist()) == list(range(n_pairs))
    assert np.array_equal(image, permute_pair_indices(np.arange(n_pairs), n_pairs, seed=7))
    if n_pairs >= 100:  # another seed, another order (2 pairs have only 2 orders)
        assert not np.array_equal(image, permute_pair_indices(np.arange(n_pairs), n_pairs, seed=8))


def test_held_out_pairs_of_a_file_of_problems(tmp_path):
    train = ["1 + 2 = 3;", "2 + 1 = 3;", "4 + 5 = 9;", "6 + 6 = 12;"]
    val = ["1 + 2 = 3;", "7 + 8 = 15;", "5 + 4 = 9;", "7 + 8 = 15;"]
    path = tmp_path / "sums.txt"
    path.write_text("\n<|endoftext|>\n".join(train + val))
    held = held_out_addition_pairs({"source": "file", "path": str(path), "validation": 4})
    assert held.as_dict() == {"validation_problems": 4, "validation_pairs": 3, "unseen": 2, "unseen_either_order": 1}
    assert str(held).startswith("2 of 3 validation operand pairs never seen in training")
    (tmp_path / "prose.txt").write_text("a\n<|endoftext|>\nb\n<|endoftext|>\nc")
    with pytest.raises(ValueError, match="no addition problems"):
        held_out_addition_pairs({"source": "file", "path": str(tmp_path / "prose.txt"), "validation": 1})


def test_generated_corpus_is_deterministic_and_cached(isolated_outputs):
    spec = {"source": "addition", "n_problems": 30, "validation": 10, "seed": 3}
    first, second = load_corpus(spec), load_corpus(dict(spec))
    assert first.texts("train") == second.texts("train")
    other = load_corpus({**spec, "seed": 4})
    assert other.texts("train") != first.texts("train")
    assert not list((isolated_outputs / "cache" / "corpus").glob(".tmp-*"))


@pytest.mark.parametrize("separator, joiner", [("eot", "\n<|endoftext|>\n"), ("blank", "\n\n")])
def test_txt_file_source(tmp_path, separator, joiner):
    stories = [s.replace("\n", " ") for s in STORIES] if separator == "blank" else STORIES
    path = tmp_path / "stories.txt"
    path.write_text(joiner.join(stories))
    corpus = load_corpus({"source": "file", "path": str(path), "separator": separator, "validation": 10})
    assert corpus.texts("train") + corpus.texts("validation") == stories
    assert corpus.floor_bits_per_char is None


def test_jsonl_json_parquet_and_saved_folder(tmp_path):
    frame = pd.DataFrame({"text": STORIES, "id": range(len(STORIES))})
    frame.to_json(tmp_path / "s.jsonl", orient="records", lines=True)
    frame.to_json(tmp_path / "s.json", orient="records")
    frame.to_parquet(tmp_path / "s.parquet")
    DatasetDict({"train": Dataset.from_dict({"text": STORIES[:30]}),
                 "validation": Dataset.from_dict({"text": STORIES[30:]})}).save_to_disk(str(tmp_path / "saved"))
    for name in ("s.jsonl", "s.json", "s.parquet"):
        corpus = load_corpus({"source": "file", "path": str(tmp_path / name), "validation": 5})
        assert corpus.texts("train") == STORIES[:35] and corpus.texts("validation") == STORIES[35:]
    saved = load_corpus(str(tmp_path / "saved"))  # a bare path works as a spec
    assert saved.texts("train") == STORIES[:30] and saved.texts("validation") == STORIES[30:]


def test_text_column_is_renamed_and_made_text(tmp_path):
    frame = pd.DataFrame({"story": STORIES, "id": range(len(STORIES))})
    frame.to_json(tmp_path / "s.jsonl", orient="records", lines=True)
    corpus = load_corpus({"source": "file", "path": str(tmp_path / "s.jsonl"), "text_column": "story", "validation": 5})
    assert corpus.texts("train") == STORIES[:35] and corpus.texts("validation") == STORIES[35:]
    DatasetDict({"train": Dataset.from_dict({"n": list(range(20))})}).save_to_disk(str(tmp_path / "numbers"))
    numbers = load_corpus({"source": "file", "path": str(tmp_path / "numbers"), "text_column": "n", "validation": 4})
    assert numbers.texts("train") == [str(i) for i in range(16)] and numbers.texts("validation") == ["16", "17", "18", "19"]
    assert numbers.dataset["train"].features["text"] == Value("string")
    with pytest.raises(ValueError, match=r"^corpus: the data has no 'story' column \(columns: \['n'\]\); set text_column$"):
        load_corpus({"source": "file", "path": str(tmp_path / "numbers"), "text_column": "story"})


def test_a_text_file_corpus_writes_nothing_outside_its_cache_folder(tmp_path, fresh_outputs, monkeypatch):
    (tmp_path / "s.txt").write_text("\n<|endoftext|>\n".join(STORIES))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    corpus = load_corpus({"source": "file", "path": str(tmp_path / "s.txt"), "validation": 5})
    assert corpus.texts("validation") == STORIES[35:]
    assert list((tmp_path / "cwd").iterdir()) == [] and [p.name for p in fresh_outputs.iterdir()] == ["cache"]
    assert all(Path(f["filename"]).is_relative_to(fresh_outputs.resolve() / "cache" / "corpus")
               for f in corpus.dataset["train"].cache_files)


def test_rows_and_vocab_filter():
    texts = ["the cat sat", "the dog sat", "a zebra quietly sat", "the cat ran", "the dog ran"] * 4
    corpus = load_corpus({"source": "addition", "n_problems": 100, "validation": 10, "rows": 7})
    assert len(corpus.texts("train")) == 7 and len(corpus.texts("validation")) == 10
    # vocab_filter: only stories whose words are all among the top-N training words survive.
    from storylab.corpora.options import apply_vocab_filter, texts_to_dataset

    dataset, meta = apply_vocab_filter(texts_to_dataset(texts, texts[:5]), {"floor_bits_per_char": 1.0}, 5)
    assert all("zebra" not in t for t in dataset["train"]["text"])
    assert len(dataset["train"]) == 16 and meta["floor_bits_per_char"] is None


def test_rows_is_a_view_of_one_cached_corpus(fresh_outputs, tmp_path):
    path = tmp_path / "stories.txt"
    path.write_text("\n<|endoftext|>\n".join(STORIES))
    full = load_corpus({"source": "file", "path": str(path), "validation": 10})
    for rows in (5, 12, 1000):
        view = load_corpus({"source": "file", "path": str(path), "validation": 10, "rows": rows})
        kept = STORIES[:min(rows, 30)]
        assert view.texts("train") == kept and view.texts("validation") == full.texts("validation")
        assert view.meta["n_stories"] == {"train": len(kept), "validation": 10}
        assert view.meta["n_chars"]["train"] == sum(map(len, kept)) and view.spec["rows"] == rows
    assert len(list((fresh_outputs / "cache" / "corpus").iterdir())) == 1  # every rows value reads one build
    assert "rows" not in full.spec and full.meta["n_stories"]["train"] == 30
    # the first n stories without reading the split into a list
    assert full.texts("train", limit=4) == STORIES[:4] == list(full.iter_texts("train", limit=4))
    assert full.texts("validation", limit=100) == full.texts("validation") and full.texts("train", limit=0) == []
    assert [len(b) for b in full.text_batches("train", batch_size=3, limit=7)] == [3, 3, 1]
    with pytest.raises(ValueError, match="^limit: expected an integer >= 0"):
        full.texts("train", limit=-1)


@pytest.mark.parametrize("separator", ["eot", "blank"])
def test_txt_read_in_chunks_gives_the_stories_of_the_whole_text(tmp_path, monkeypatch, separator):
    from storylab.corpora import files

    # Multi-byte characters, \r\n pairs and separators all get cut by 5-byte chunks somewhere.
    text = "Zoë saw 東京.\r\n\r\nIt was 😀 fun.\r\r\n\n<|endoftext|>\nB\n\n\nC<|endoftext|><|endoftext|>  \r\n\r\nend ☃"
    path = tmp_path / "s.txt"
    path.write_bytes(text.encode("utf-8"))
    monkeypatch.setattr(files, "CHUNK_BYTES", 5)
    streamed = [story for batch in files.story_batches(path, separator) for story in batch]
    assert streamed == split_text_file(text, separator) and len(streamed) > 2
    path.write_bytes(text.encode("utf-8")[:23] + b"\xff" + text.encode("utf-8")[23:])  # the position is the file's
    with pytest.raises(ValueError, match=r"is not UTF-8 \(byte 0xff at position 23\)"):
        list(files.story_batches(path, separator))


def test_txt_separators():
    assert split_text_file("a\n<|endoftext|>\nb c\n<|endoftext|>\n", "eot") == ["a", "b c"]
    assert split_text_file("a\nb\n\n\nc\n", "blank") == ["a\nb", "c"]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no-such-corpus", "not a known corpus"),
        ({"source": "nope"}, "unknown source"),
        ({"source": "stories", "n_storys": 3}, "unknown option"),
        ({"source": "addition", "rows": 0}, "'rows' must be a positive integer"),
        ({"source": "addition", "validation_pairs": 1.5}, "validation_pairs must be a fraction"),
        ({"source": "addition", "max_operand": 0}, "at least 2 operand pairs"),
        ({"source": "addition", "n_problems": 2.5}, "n_problems: expected an integer"),
        ({"source": "file", "path": "/does/not/exist.txt"}, "does not exist"),
        (42, "expected a name, a path or a dict"),
    ],
)
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(ValueError, match=message) as error:
        normalize_spec(spec)
    assert "\n" not in str(error.value)


@pytest.fixture
def fake_hub(monkeypatch):
    """`datasets.load_dataset` answering from a dict of DatasetDicts, with the hub unreachable."""
    import socket

    import datasets

    calls, hub = [], {}

    def load_dataset(name, config=None):
        calls.append((name, config, datasets.config.HF_HUB_OFFLINE))
        if isinstance(hub[name], Exception):
            raise hub[name]
        return hub[name]

    def unreachable(*args, **kwargs):
        raise OSError("no route")

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(socket, "create_connection", unreachable)
    return SimpleNamespace(calls=calls, datasets=hub)


def test_hub_corpus_takes_the_named_config_splits_and_column(fake_hub, fresh_outputs):
    import datasets

    fake_hub.datasets["me/tales"] = DatasetDict({
        "train": Dataset.from_dict({"id": [0, 1], "story": ["not", "this"]}),
        "full": Dataset.from_dict({"id": list(range(30)), "story": STORIES[:30]}),
        "test": Dataset.from_dict({"id": list(range(10)), "story": STORIES[30:]}),
    })
    offline_before = datasets.config.HF_HUB_OFFLINE
    corpus = load_corpus({"source": "hub", "name": "me/tales", "config": "small", "split": "full", "validation": "test",
                          "text_column": "story"})
    assert corpus.texts("train") == STORIES[:30] and corpus.texts("validation") == STORIES[30:]
    assert fake_hub.calls == [("me/tales", "small", True)]  # offline while the hub is unreachable: fail fast
    assert datasets.config.HF_HUB_OFFLINE == offline_before
    # a split name the data lacks: its "train" split, or else its first; no validation split: the last 5%
    fake_hub.datasets["me/one"] = DatasetDict({"all": Dataset.from_dict({"text": STORIES})})
    one = load_corpus({"source": "hub", "name": "me/one", "split": "nope"})
    assert one.texts("train") == STORIES[:38] and one.texts("validation") == STORIES[38:]
    fake_hub.datasets["me/two"] = DatasetDict({"extra": Dataset.from_dict({"text": ["x"] * 5}),
                                               "train": Dataset.from_dict({"text": STORIES})})
    two = load_corpus({"source": "hub", "name": "me/two", "split": "nope", "validation": 4})
    assert two.texts("train") == STORIES[:36] and two.texts("validation") == STORIES[36:]


@pytest.mark.parametrize("error, shown", [
    (ConnectionError("first line\nsecond line"), "ConnectionError: first line"),
    (RuntimeError(), "RuntimeError: no message"),
    (ValueError("x" * 300), "ValueError: " + "x" * 160),
])
def test_hub_failures_are_one_line_errors_saying_what_to_do(fake_hub, fresh_outputs, error, shown):
    fake_hub.datasets["me/gone"] = error
    with pytest.raises(ValueError) as raised:
        load_corpus("hub:me/gone")
    assert str(raised.value) == (
        f"corpus: could not load 'me/gone' from the Hugging Face hub ({shown}); the hub is unreachable or the dataset "
        "is unknown. Download it where there is network (datasets.load_dataset('me/gone').save_to_disk('DIR')) and use "
        "corpus={'source': 'file', 'path': 'DIR'}")


def test_hub_offline_is_a_clear_error(isolated_outputs):
    with pytest.raises(ValueError, match="hub is unreachable") as error:
        load_corpus("hub:roneneldan/TinyStories")
    assert "\n" not in str(error.value) and "save_to_disk" in str(error.value)
    assert not list((isolated_outputs / "cache").glob("corpus/.tmp-*"))


def test_corpus_spec_applies_notebook_options():
    assert corpus_spec("addition", rows=5, vocab_filter=None)["rows"] == 5
    assert corpus_spec("addition", vocab_filter=50)["vocab_filter"] == 50
    # A None option leaves the spec as it was: it neither adds the key nor overrides a value.
    assert corpus_spec("addition", rows=None, vocab_filter=None) == normalize_spec("addition")
    assert corpus_spec({"source": "addition", "rows": 3}, rows=None)["rows"] == 3


@pytest.mark.parametrize("name, content, message", [
    ("latin1.txt", "Caf\xe9 au lait.".encode("latin-1"), r"latin1.txt' is not UTF-8 \(byte 0xe9 at position 3\); expected UTF-8 text"),
    ("bom16.txt", "hello".encode("utf-16"), r"bom16.txt' is not UTF-8 \(byte 0xff at position 0\)"),
    ("broken.jsonl", b'{"text": "a"}\n{oops\n', r"broken.jsonl' line 2 is not valid JSON \(.*\); expected UTF-8 JSON lines"),
    ("latin1.jsonl", b'{"text": "a"}\n{"text": "caf\xe9"}\n', r"latin1.jsonl' is not UTF-8 \(byte 0xe9 at position 27, line 2\)"),
    ("fields.jsonl", b'{"text": "a"}\n{"story": "b"}\n', r"fields.jsonl' line 2 has no 'text' field \(\['story'\]\); set text_column"),
    ("broken.parquet", b"garbage", r"broken.parquet' could not be read \(.*\); expected a Parquet table"),
    ("empty.txt", b"  \n<|endoftext|>\n", r"empty.txt' holds no stories; expected text separated by '<\|endoftext\|>'"),
])
def test_unreadable_files_are_one_line_errors_naming_the_file(tmp_path, isolated_outputs, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        load_corpus({"source": "file", "path": str(tmp_path / name)})
    assert "\n" not in str(error.value) and str(tmp_path / name) in str(error.value)
    assert not list((isolated_outputs / "cache").glob("corpus/.tmp-*"))


def test_a_folder_that_is_not_a_dataset_is_named(tmp_path):
    (tmp_path / "notes").mkdir()
    with pytest.raises(ValueError, match=r"notes' is not a dataset; expected a folder written by "
                                         r"Dataset.save_to_disk or DatasetDict.save_to_disk$"):
        load_corpus({"source": "file", "path": str(tmp_path / "notes")})
