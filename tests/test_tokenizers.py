"""Tokenizer round trips, vocabulary sizes, save/load, and the encoded-corpus cache."""

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
    normalize_tokenizer_spec,
    show_tokens,
    token_frequencies,
    train_tokenizer,
)

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
