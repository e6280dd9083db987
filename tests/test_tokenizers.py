"""Tokenizer round trips, vocabulary sizes, save/load, and the encoded-corpus cache."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from transformers import PreTrainedTokenizerFast

from storylab.corpora import load_corpus
from storylab.tokenizers import (
    EOT,
    EncodedSplit,
    describe_tokenizer,
    encode_corpus,
    encode_texts,
    get_tokenizer,
    load_saved_tokenizer,
    normalize_tokenizer_spec,
    show_tokens,
    token_frequencies,
    tokenizer_dir,
    tokenizer_label,
    train_tokenizer,
    vocab_size_note,
)
from storylab.npy_writer import NpyWriter

TRAIN = [
    'Once upon a time, Lily found a "shiny" ball.\n\nShe said, "Mom, look!"',
    "Tim went to the park.  He played\twith his dog.\nThe end.",
    "Café crème, naïve façade — 東京 😀 ok",
] * 30
TRICKY = [
    "",
    " ",
    "  leading and trailing spaces  ",
    "line one\nline two\n\n\nthree newlines\r\n",
    'quotes: "double" \'single\' `back` “curly” ‘also’',
    "non-ASCII: é ñ ü ß Ω 東京 😀 \u200b zero-width",
    "tabs\tand\x00control\x07chars",
    "bytes never seen in training: ☃ ♞ 𝄞",
]


@pytest.mark.parametrize("spec", ["bpe:300", "bpe:1024", "byte"])
def test_round_trip_is_exact(spec):
    tokenizer = train_tokenizer(spec, TRAIN)
    for text in TRICKY + TRAIN[:3]:
        assert tokenizer.decode(tokenizer.encode(text)) == text


@pytest.mark.parametrize("spec", ["bpe:300", "byte", "char", "word:20"])
def test_vocabulary_covers_every_id_and_has_end_of_text(spec):
    tokenizer = train_tokenizer(spec, TRAIN)
    assert tokenizer.eos_token == EOT and tokenizer.convert_tokens_to_ids(EOT) == tokenizer.eos_token_id
    ids = [i for text in TRICKY + TRAIN for i in tokenizer.encode(text)]
    assert max(ids) < len(tokenizer)
    assert tokenizer.decode([tokenizer.eos_token_id]) == EOT


def test_byte_tokenizer_has_one_token_per_byte():
    tokenizer = train_tokenizer("byte", [])
    assert len(tokenizer) == 257
    text = "é😀"
    assert len(tokenizer.encode(text)) == len(text.encode("utf-8"))


def test_char_and_word_tokenizers():
    char = train_tokenizer("char", ["abc ab", "cab"])
    assert len(char) == 4 + 2  # a, b, c, space + end-of-text + <unk>
    assert char.decode(char.encode("ab ca")) == "ab ca"
    assert char.unk_token_id in char.encode("abz")
    word = train_tokenizer("word:3", ["the cat sat on the mat"] * 5 + ["the dog"])
    stats = describe_tokenizer(word, ["the cat", "the zebra"])
    assert 0 < stats["coverage"] < 1
    assert word.decode(word.encode("the cat")) == "the cat"


def test_small_bpe_maps_unseen_bytes_to_unk():
    tokenizer = train_tokenizer("bpe:100", ["abc abc abd"] * 10)
    assert tokenizer.unk_token_id is not None
    assert tokenizer.unk_token_id in tokenizer.encode("xyz")


def test_save_and_load_pretrained(tmp_path):
    tokenizer = train_tokenizer("bpe:300", TRAIN)
    tokenizer.save_pretrained(str(tmp_path))
    loaded = PreTrainedTokenizerFast.from_pretrained(str(tmp_path))
    assert len(loaded) == len(tokenizer) and loaded.eos_token_id == tokenizer.eos_token_id
    assert loaded.encode(TRAIN[0]) == tokenizer.encode(TRAIN[0])


@pytest.mark.parametrize("spec, message", [("bpe:abc", "KIND:VOCAB_SIZE"), ("sentencepiece", "kind must be one of"),
                                           ({"kind": "bpe", "vocab_size": 2}, "vocab_size must be"),
                                           ({"kind": "byte", "vocab_size": 300}, "unknown option")])
def test_bad_tokenizer_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        normalize_tokenizer_spec(spec)


def test_token_frequencies_and_show_tokens():
    tokenizer = train_tokenizer("byte", [])
    counts = token_frequencies(tokenizer, ["aab"])
    assert counts.sum() == 3 and counts[tokenizer.encode("a")[0]] == 2 and len(counts) == len(tokenizer)
    assert show_tokens(tokenizer, "hi!") == ["h", "i", "!"]


def test_encoded_corpus_layout_and_cache(isolated_outputs):
    spec = {"source": "addition", "n_problems": 40, "validation": 10, "max_operand": 20}
    encoded = encode_corpus(spec, "char")
    again = encode_corpus(spec, "char")
    assert encoded.folder == again.folder
    tokenizer = get_tokenizer("char", spec)
    assert encoded.vocab_size == len(tokenizer)
    val = encoded.validation
    assert val.ids.dtype == np.uint16 and val.n_stories == 10
    texts = load_corpus(spec).texts("validation")
    assert [tokenizer.decode(val.story(i)) for i in range(val.n_stories)] == texts
    assert val.n_chars == sum(len(t) for t in texts)
    sequences = val.sequences()
    assert all(s[-1] == encoded.eot_id for s in sequences)
    stream = val.stream()
    assert len(stream) == val.n_tokens == sum(len(s) for s in sequences)
    assert np.array_equal(stream, np.concatenate(sequences))
    chunks = val.sequences(max_len=4)
    assert max(len(c) for c in chunks) == 4 and np.array_equal(np.concatenate(chunks), stream)
    heads = val.sequences(max_len=4, mode="truncate")
    assert len(heads) == val.n_stories and all(np.array_equal(h, s[:4]) for h, s in zip(heads, sequences))
    with pytest.raises(ValueError, match="mode: expected 'split' or 'truncate'"):
        val.sequences(max_len=4, mode="cut")
    assert encode_texts(tokenizer, texts[:2]) == [tokenizer.encode(t) for t in texts[:2]]


def test_the_stream_is_written_once_beside_the_ids_and_memory_mapped(isolated_outputs):
    encoded = encode_corpus({"source": "addition", "n_problems": 30, "validation": 6, "max_operand": 9}, "char")
    for split in (encoded.train, encoded.validation):
        stream = split.stream()
        assert isinstance(stream, np.memmap) and stream.dtype == np.uint16 and str(stream.filename) == str(split.stream_path)
        expected = np.concatenate(split.sequences())  # every story, then its end-of-text
        assert np.array_equal(stream, expected)
        in_memory = EncodedSplit(np.asarray(split.ids), split.offsets, split.n_chars, split.eot_id).stream()
        assert np.array_equal(in_memory, expected) and in_memory.dtype == np.uint16
    path = encoded.train.stream_path
    path.unlink()  # a cache written before the encoder wrote streams
    assert np.array_equal(encoded.train.stream(), np.concatenate(encoded.train.sequences()))
    assert sorted(p.name for p in path.parent.glob("*stream*")) == ["train_stream.npy", "validation_stream.npy"]  # no temporaries


SUMS = {"source": "addition", "n_problems": 40, "validation": 10, "max_operand": 20}


def test_a_vocabulary_smaller_than_asked_is_labelled_as_trained_and_said():
    with pytest.warns(UserWarning, match=r"^tokenizer: asked for bpe:100000000, trained bpe:\d+ \(") as caught:
        tokenizer = get_tokenizer("bpe:100000000", SUMS)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert len(tokenizer) < 1000  # digits, " + = ;" and their merges: far below the asked size
    assert tokenizer_label("bpe:100000000", tokenizer) == f"bpe:{len(tokenizer)}"
    assert tokenizer_label({"kind": "bpe", "vocab_size": 100000000}) == "bpe:100000000"  # what was asked
    assert f"results are labelled bpe:{len(tokenizer)}" in str(caught[0].message)


def test_word_labels_count_words_and_exact_sizes_say_nothing():
    texts = ["the cat sat on the mat"] * 5 + ["the dog"]
    word = train_tokenizer("word:1000", texts)
    # Pieces: "the" (story start), " the", " cat", " sat", " on", " mat", " dog": seven words.
    assert tokenizer_label("word:1000", word) == "word:7"
    assert vocab_size_note("word:1000", word).startswith("tokenizer: asked for word:1000, trained word:7 (")
    exact = train_tokenizer("word:3", texts)
    assert tokenizer_label("word:3", exact) == "word:3" and vocab_size_note("word:3", exact) is None
    byte = train_tokenizer("byte", [])
    assert tokenizer_label("byte", byte) == "byte" and vocab_size_note("byte", byte) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an exact size warns about nothing
        assert len(get_tokenizer("char", SUMS)) > 2


@pytest.mark.parametrize("content, message", [
    (b"{not json", r"tokenizer.json' is not valid JSON \(Expecting property name"),
    (b"", r"tokenizer.json' is not valid JSON \(Expecting value"),
    (b'{"a": 1}', r"tokenizer.json' is not a valid tokenizer \(KeyError"),
])
def test_a_corrupt_cached_tokenizer_is_named_with_the_fix(fresh_outputs, content, message):
    get_tokenizer("char", SUMS)
    folder = tokenizer_dir("char", SUMS)
    (folder / "tokenizer.json").write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        get_tokenizer("char", SUMS)
    assert "\n" not in str(error.value) and str(folder / "tokenizer.json") in str(error.value)
    assert f"delete {str(folder)!r} to rebuild it" in str(error.value)


def test_a_corrupt_tokenizer_in_a_run_folder_is_named(tmp_path):
    from storylab.transformer.runs import load_tokenizer

    (tmp_path / "model" / "tokenizer").mkdir(parents=True)
    (tmp_path / "model" / "config.yaml").write_text("{}\n")
    train_tokenizer("char", ["abc"]).save_pretrained(str(tmp_path / "model" / "tokenizer"))
    assert load_tokenizer(tmp_path).decode(load_tokenizer(tmp_path).encode("cab")) == "cab"
    (tmp_path / "model" / "tokenizer" / "tokenizer_config.json").write_text("{truncated")
    with pytest.raises(ValueError, match=r"tokenizer_config.json' is not valid JSON") as error:
        load_tokenizer(tmp_path)
    assert "\n" not in str(error.value) and "delete" not in str(error.value)
    with pytest.raises(ValueError, match=r"no tokenizer.json in"):
        load_saved_tokenizer(tmp_path)


def test_npy_writer_appends_chunks_into_one_loadable_array(tmp_path):
    with NpyWriter(tmp_path / "a.npy", np.uint16) as writer:
        for chunk in ([1, 2, 3], [], np.array([65535, 0])):
            writer.append(chunk)
    loaded = np.load(tmp_path / "a.npy", mmap_mode="r")
    assert loaded.dtype == np.uint16 and loaded.tolist() == [1, 2, 3, 65535, 0]
    with NpyWriter(tmp_path / "empty.npy", np.int64):
        pass
    assert np.load(tmp_path / "empty.npy").shape == (0,)
    with pytest.raises(RuntimeError):
        with NpyWriter(tmp_path / "broken.npy", np.int64) as writer:
            writer.append([1])
            raise RuntimeError("killed mid-way")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "empty.npy"]  # nothing half-written is left


def test_npy_writer_writes_each_byte_once_behind_a_header_rewritten_in_place(tmp_path):
    from storylab.npy_writer import HEADER_BYTES

    writer = NpyWriter(tmp_path / "ids.npy", np.uint32)
    writer.append(np.arange(1000))
    building = next(tmp_path.iterdir())  # the hidden file being written
    assert building.name.startswith(".") and not (tmp_path / "ids.npy").exists()
    inode = building.stat().st_ino
    writer.close()
    final = tmp_path / "ids.npy"
    assert final.stat().st_ino == inode  # renamed into place, not copied behind a new header
    assert final.stat().st_size == HEADER_BYTES + 1000 * 4
    with open(final, "rb") as file:
        assert np.lib.format.read_magic(file) == (1, 0)
        assert np.lib.format.read_array_header_1_0(file) == ((1000,), False, np.dtype(np.uint32))
        assert file.tell() == HEADER_BYTES
    assert np.array_equal(np.load(final, mmap_mode="r"), np.arange(1000))


def test_encoding_in_small_batches_gives_the_same_arrays(fresh_outputs, tmp_path):
    stories = [f"Story {i}: {'ab ' * (i % 7)}the end." for i in range(50)]
    path = tmp_path / "s.txt"
    path.write_text("\n<|endoftext|>\n".join(stories))
    spec = {"source": "file", "path": str(path), "validation": 8, "rows": 30}
    encoded = encode_corpus(spec, "char", batch_size=4, progress=False)
    tokenizer = encoded.tokenizer
    for split, texts in (("train", stories[:30]), ("validation", stories[42:])):
        ids = encode_texts(tokenizer, texts)
        part = encoded.split(split)
        assert np.array_equal(part.ids, np.concatenate(ids)) and part.ids.dtype == np.uint16
        assert part.offsets.tolist() == np.concatenate([[0], np.cumsum([len(x) for x in ids])]).tolist()
        assert encoded.meta[split]["n_tokens"] == sum(map(len, ids)) and part.n_chars == sum(map(len, texts))
        assert encoded.meta[split]["encode_tokens_per_s"] > 0
    assert not [p for p in encoded.folder.iterdir() if p.name.startswith(".")]


def test_tokenizer_trains_on_an_evenly_spaced_sample(fresh_outputs, tmp_path):
    stories = [f"{chr(ord('a') + i)}{chr(ord('A') + i)}" for i in range(20)]  # two characters of its own each
    path = tmp_path / "s.txt"
    path.write_text("\n<|endoftext|>\n".join(stories))
    spec = {"source": "file", "path": str(path), "validation": 4}  # 16 training stories
    sampled = get_tokenizer({"kind": "char", "sample_stories": 4}, spec)
    learned = set(sampled.get_vocab()) - {EOT, "<unk>"}
    assert learned == set("".join(stories[i] for i in (0, 4, 8, 12)))  # every 4th of the 16
    assert len(get_tokenizer("char", spec)) == 2 * 16 + 2
    with pytest.raises(ValueError, match="sample_stories: expected an integer >= 1"):
        normalize_tokenizer_spec({"kind": "bpe", "sample_stories": 0})


PEAK_PROBE = r"""
import json, sys
from storylab.corpora import load_corpus
from storylab.tokenizers import encode_corpus, get_tokenizer

def status_mb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024

corpus = load_corpus(json.loads(sys.argv[1]))
tokenizer_spec = json.loads(sys.argv[2])
get_tokenizer(tokenizer_spec, corpus)  # built by the test already: only encoding is measured
before_mb = status_mb("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
encoded = encode_corpus(corpus, tokenizer_spec, progress=False, batch_size=256)
print(json.dumps({"peak_growth_mb": status_mb("VmHWM:") - before_mb, "train_tokens": encoded.meta["train"]["n_tokens"]}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="resetting the peak RSS needs Linux /proc")
def test_encoding_peak_memory_does_not_grow_with_the_corpus(fresh_outputs, tmp_path):
    """Encoding 20,000 stories must peak within 12 MiB of encoding 10,000 (about 15 s: two fresh processes).

    The extra 10,000 stories are 1M word tokens. An encoder that collects the ids in Python
    lists first holds an 8-byte list slot plus a 32-byte int per token, about 40 MB more
    (measured with such an encoder planted: +34 MiB); the streaming encoder peaks at one batch
    whatever the corpus (measured: -0.2 to +0.1 MiB; up to 5 MiB of allocator noise seen with
    larger batches). 12 MiB sits well between the two.
    """
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, size=n)) for n in rng.integers(2, 7, size=2000)]
    chosen = rng.integers(0, len(words), size=(20000, 100))
    path = tmp_path / "stories.txt"
    path.write_text("\n<|endoftext|>\n".join(" ".join(words[i] for i in row) + "." for row in chosen))
    tokenizer_spec = {"kind": "word", "vocab_size": 2000, "sample_stories": 2000}
    measured = {}
    for rows in (10000, 20000):
        spec = {"source": "file", "path": str(path), "validation": 100, "rows": rows}
        get_tokenizer(tokenizer_spec, spec)
        result = subprocess.run([sys.executable, "-c", PEAK_PROBE, json.dumps(spec), json.dumps(tokenizer_spec)],
                                capture_output=True, text=True, check=True)
        measured[rows] = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured[20000]["train_tokens"] - measured[10000]["train_tokens"] > 900_000
    growth_mb = measured[20000]["peak_growth_mb"] - measured[10000]["peak_growth_mb"]
    assert growth_mb < 12, measured
