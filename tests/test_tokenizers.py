"""Tokenizer round trips, vocabulary sizes, save/load, and the encoded-corpus cache."""

import warnings

import numpy as np
import pytest
from transformers import PreTrainedTokenizerFast

from storylab.corpora import load_corpus
from storylab.tokenizers import (
    EOT,
    describe_tokenizer,
    encode_corpus,
    encode_texts,
    get_tokenizer,
    load_saved_tokenizer,
    normalize_tokenizer_spec,
    show_tokens,
    token_frequencies,
    tokenizer_dir,
    train_tokenizer,
    vocab_size_note,
)
from storylab.metrics import tokenizer_label

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
    assert encode_texts(tokenizer, texts[:2]) == [tokenizer.encode(t) for t in texts[:2]]


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
