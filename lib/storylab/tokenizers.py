"""Train, load and describe tokenizers, and cache encoded corpora.

Kinds (spec strings like "bpe:1024", "word:1000", "byte", "char", or dicts):

- `bpe`  byte-level BPE (`vocab_size`, `min_frequency`): every byte has a token, so
         decode(encode(x)) == x for any text. Below 257 tokens there is no room for all
         bytes; the alphabet is then the bytes seen in training and others become `<unk>`.
- `word` the top-N words (each with its leading space) plus whitespace runs and `<unk>`;
         reports the fraction of tokens it covers.
- `byte` 256 byte tokens: exact round trip, longest sequences.
- `char` the characters seen in training plus `<unk>`.

Every tokenizer has the end-of-text token `<|endoftext|>` (its `eos_token`), written
between stories, and is saved as a `PreTrainedTokenizerFast` folder. The vocabulary a
model must use is always `len(tokenizer)`, never the largest id seen in some data.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from storylab.cache import cached_dir, write_json_atomic
from storylab.corpora import Corpus, load_corpus

EOT = "<|endoftext|>"
UNK = "<unk>"
KINDS = ("bpe", "word", "byte", "char")
DEFAULT_VOCAB = {"bpe": 1024, "word": 1000}
# Words keep their leading space (as in GPT-2), whitespace runs are tokens of their own,
# so a word-level model pays for every character of the text like the others do.
WORD_PATTERN = r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]|\s+(?!\S)|\s+"


def normalize_tokenizer_spec(spec: str | dict[str, Any]) -> dict[str, Any]:
    """`"bpe:1024"` / `{"kind": "bpe", "vocab_size": 1024}` → a full, validated dict."""
    if isinstance(spec, str):
        kind, _, size = spec.partition(":")
        spec = {"kind": kind}
        if size:
            if not size.isdigit():
                raise ValueError(f"tokenizer: expected 'KIND' or 'KIND:VOCAB_SIZE', got {kind}:{size!r}")
            spec["vocab_size"] = int(size)
    if not isinstance(spec, dict):
        raise ValueError(f"tokenizer: expected a string like 'bpe:1024' or a dict, got {spec!r}")
    spec = dict(spec)
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"tokenizer: kind must be one of {list(KINDS)}, got {kind!r}")
    allowed = {"kind"} | ({"vocab_size", "min_frequency"} if kind in DEFAULT_VOCAB else set())
    if set(spec) - allowed:
        raise ValueError(f"tokenizer: unknown option(s) {sorted(set(spec) - allowed)} for kind {kind!r}; expected some of {sorted(allowed)}")
    if kind in DEFAULT_VOCAB:
        spec.setdefault("vocab_size", DEFAULT_VOCAB[kind])
        spec.setdefault("min_frequency", 2 if kind == "bpe" else 1)
        minimum = 8 if kind == "bpe" else 1
        if not isinstance(spec["vocab_size"], int) or spec["vocab_size"] < minimum:
            raise ValueError(f"tokenizer: {kind} vocab_size must be an integer >= {minimum}, got {spec['vocab_size']!r}")
    return spec


def train_tokenizer(spec: str | dict, texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """A new tokenizer of the given kind, trained on `texts` (not cached)."""
    spec = normalize_tokenizer_spec(spec)
    texts = list(texts)
    backend = {"bpe": _train_bpe, "word": _train_word, "byte": _build_byte, "char": _build_char}[spec["kind"]](spec, texts)
    unk = UNK if backend.token_to_id(UNK) is not None else None
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=EOT, unk_token=unk, clean_up_tokenization_spaces=False
    )


def _train_bpe(spec: dict, texts: list[str]) -> Tokenizer:
    all_bytes = spec["vocab_size"] >= 257
    backend = Tokenizer(models.BPE(unk_token=None if all_bytes else UNK))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec["vocab_size"],
        min_frequency=spec["min_frequency"],
        special_tokens=[EOT] if all_bytes else [EOT, UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet() if all_bytes else [],
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    return backend


def _train_word(spec: dict, texts: list[str]) -> Tokenizer:
    backend = Tokenizer(models.WordLevel(unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(WORD_PATTERN), behavior="isolated")
    backend.decoder = decoders.Fuse()
    # vocab_size counts the words; the two special tokens come on top.
    trainer = trainers.WordLevelTrainer(
        vocab_size=spec["vocab_size"] + 2, min_frequency=spec["min_frequency"], special_tokens=[EOT, UNK], show_progress=False
    )
    backend.train_from_iterator(texts, trainer=trainer)
    return backend


def _fixed_vocabulary(symbols: list[str], pre_tokenizer, decoder, unk: str | None) -> Tokenizer:
    """A BPE model with no merges: every symbol is one token."""
    specials = [EOT] + ([unk] if unk else [])
    vocab = {token: i for i, token in enumerate(specials + symbols)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=unk))
    backend.add_special_tokens([EOT])
    if pre_tokenizer is not None:
        backend.pre_tokenizer = pre_tokenizer
    backend.decoder = decoder
    return backend


def _build_byte(spec: dict, texts: list[str]) -> Tokenizer:
    # Token id 1 + b is byte b, so ids read as bytes in a plot.
    alphabet = [byte_to_symbol(b) for b in range(256)]
    return _fixed_vocabulary(alphabet, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False), decoders.ByteLevel(), None)


def byte_to_symbol(value: int) -> str:
    """The printable character byte-level pre-tokenizers use for a byte (GPT-2's table)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1), *range(ord("\xae"), ord("\xff") + 1)]
    if value in printable:
        return chr(value)
    return chr(256 + sum(1 for b in range(value) if b not in printable))


def _build_char(spec: dict, texts: list[str]) -> Tokenizer:
    chars = sorted({c for text in texts for c in text})
    # Split every character apart, so the BPE model sees single characters only.
    return _fixed_vocabulary(chars, pre_tokenizers.Split(Regex("."), behavior="isolated"), decoders.Fuse(), UNK)


def get_tokenizer(spec: str | dict, corpus: str | dict | Corpus) -> PreTrainedTokenizerFast:
    """The tokenizer `spec` trained on `corpus`'s training split, cached after the first call."""
    return load_tokenizer_folder(tokenizer_dir(spec, corpus))


def load_tokenizer_folder(folder: str | Path) -> PreTrainedTokenizerFast:
    """A tokenizer saved with `save_pretrained`; a missing or corrupt `tokenizer.json` is a one-line ValueError."""
    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        raise ValueError(f"tokenizer: {path} does not exist; expected a tokenizer folder written by save_pretrained")
    try:
        Tokenizer.from_file(str(path))  # the Rust parser names what is wrong; transformers would wrap it in a traceback
    except Exception as error:  # noqa: BLE001 - tokenizers raises a bare Exception for malformed files
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"tokenizer: {path} is not a valid tokenizer.json ({reason}); the file may be truncated or corrupt") from error
    return PreTrainedTokenizerFast.from_pretrained(str(folder))


def tokenizer_dir(spec: str | dict, corpus: str | dict | Corpus) -> Path:
    spec = normalize_tokenizer_spec(spec)
    corpus = load_corpus(corpus)

    def build(folder: Path) -> None:
        train_tokenizer(spec, corpus.texts("train")).save_pretrained(str(folder))

    return cached_dir("tokenizer", {"tokenizer": spec, "corpus": corpus.spec}, build)


def encode_texts(tokenizer: PreTrainedTokenizerFast, texts: list[str], batch_size: int = 2048) -> list[list[int]]:
    """Token ids of each text, through the fast Rust batch path, no special tokens added."""
    backend = tokenizer.backend_tokenizer
    ids: list[list[int]] = []
    for start in range(0, len(texts), batch_size):
        ids.extend(e.ids for e in backend.encode_batch(texts[start : start + batch_size], add_special_tokens=False))
    return ids


def describe_tokenizer(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> dict[str, Any]:
    """Vocabulary size, chars per token, token-per-story percentiles, `<unk>` coverage, encoding speed."""
    started = time.perf_counter()
    ids = encode_texts(tokenizer, texts)
    encode_s = time.perf_counter() - started
    lengths = np.array([len(x) for x in ids])
    n_tokens = int(lengths.sum())
    unk_id = tokenizer.unk_token_id
    n_unk = sum(x.count(unk_id) for x in ids) if unk_id is not None else 0
    q = np.percentile(lengths, [25, 50, 75, 90, 99]) if len(lengths) else [0] * 5
    return {
        "vocab_size": len(tokenizer),
        "tokens": n_tokens,
        "chars_per_token": sum(len(t) for t in texts) / max(n_tokens, 1),
        "coverage": 1 - n_unk / max(n_tokens, 1),
        "encode_tokens_per_s": n_tokens / max(encode_s, 1e-9),
        "tokens_per_story": {"q1": float(q[0]), "median": float(q[1]), "q3": float(q[2]), "p90": float(q[3]),
                             "p99": float(q[4]), "max": int(lengths.max()) if len(lengths) else 0},
    }


@dataclass
class EncodedSplit:
    """One split as flat token ids (no separators) plus story offsets, memory-mapped.

    `unk_id` is the tokenizer's `<unk>` id (None if it has none): `storylab.lm.score`
    counts `<unk>` tokens with it, since bits/char over `<unk>` is not comparable.
    """

    ids: np.ndarray
    offsets: np.ndarray
    n_chars: int
    eot_id: int
    unk_id: int | None = None

    @property
    def n_stories(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_tokens(self) -> int:
        """Tokens a model predicts: every story token plus the end-of-text after each story."""
        return int(len(self.ids) + self.n_stories)

    def story(self, index: int) -> np.ndarray:
        return np.asarray(self.ids[self.offsets[index] : self.offsets[index + 1]])

    def sequences(self, append_eot: bool = True, max_len: int | None = None) -> list[np.ndarray]:
        """One array per story (ending in end-of-text); stories longer than `max_len` are cut into chunks."""
        if max_len is not None and max_len < 1:
            raise ValueError(f"max_len: expected a positive integer or None, got {max_len!r}")
        ids = np.asarray(self.ids).astype(np.int64)
        out = []
        for i in range(self.n_stories):
            seq = ids[self.offsets[i] : self.offsets[i + 1]]
            if append_eot:
                seq = np.append(seq, self.eot_id)
            if max_len is None:
                out.append(seq)
            else:
                out.extend(seq[j : j + max_len] for j in range(0, len(seq), max_len))
        return out

    def stream(self) -> np.ndarray:
        """All stories, each followed by end-of-text, as one flat int64 array (for transformer windows)."""
        ids = np.asarray(self.ids).astype(np.int64)
        out = np.empty(len(ids) + self.n_stories, dtype=np.int64)
        positions = np.arange(len(ids)) + np.repeat(np.arange(self.n_stories), np.diff(self.offsets))
        out[positions] = ids
        out[self.offsets[1:] + np.arange(self.n_stories)] = self.eot_id
        return out


@dataclass
class EncodedCorpus:
    tokenizer: PreTrainedTokenizerFast
    train: EncodedSplit
    validation: EncodedSplit
    meta: dict[str, Any]
    folder: Path

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    @property
    def eot_id(self) -> int:
        return self.tokenizer.eos_token_id

    def split(self, name: str) -> EncodedSplit:
        return {"train": self.train, "validation": self.validation}[name]


def encode_corpus(corpus: str | dict | Corpus, tokenizer_spec: str | dict) -> EncodedCorpus:
    """The corpus as token ids under the tokenizer, cached by (corpus spec, tokenizer spec)."""
    corpus = load_corpus(corpus)
    spec = normalize_tokenizer_spec(tokenizer_spec)
    tokenizer = load_tokenizer_folder(tokenizer_dir(spec, corpus))

    def build(folder: Path) -> None:
        meta: dict[str, Any] = {"vocab_size": len(tokenizer), "eot_id": tokenizer.eos_token_id}
        dtype = np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max + 1 else np.uint32
        for split in ("train", "validation"):
            texts = corpus.texts(split)
            start = time.perf_counter()
            ids = encode_texts(tokenizer, texts)
            elapsed_s = time.perf_counter() - start
            lengths = np.array([len(x) for x in ids], dtype=np.int64)
            flat = np.fromiter((t for x in ids for t in x), dtype=dtype, count=int(lengths.sum()))
            np.save(folder / f"{split}_ids.npy", flat)
            np.save(folder / f"{split}_offsets.npy", np.concatenate([[0], np.cumsum(lengths)]))
            meta[split] = {"n_stories": len(texts), "n_tokens": int(lengths.sum()), "n_chars": sum(len(t) for t in texts),
                           "encode_tokens_per_s": float(lengths.sum() / max(elapsed_s, 1e-9))}
        write_json_atomic(folder / "meta.json", meta)

    folder = cached_dir("encoded", {"tokenizer": spec, "corpus": corpus.spec}, build)
    meta = json.loads((folder / "meta.json").read_text())

    def load_split(name: str) -> EncodedSplit:
        return EncodedSplit(
            ids=np.load(folder / f"{name}_ids.npy", mmap_mode="r"),
            offsets=np.load(folder / f"{name}_offsets.npy"),
            n_chars=meta[name]["n_chars"],
            eot_id=tokenizer.eos_token_id,
            unk_id=tokenizer.unk_token_id,
        )

    return EncodedCorpus(tokenizer, load_split("train"), load_split("validation"), meta, folder)


def token_frequencies(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> np.ndarray:
    """Count of each token id over `texts` (length `len(tokenizer)`, zeros included)."""
    counts = np.zeros(len(tokenizer), dtype=np.int64)
    for ids in encode_texts(tokenizer, texts):
        np.add.at(counts, ids, 1)
    return counts


def show_tokens(tokenizer: PreTrainedTokenizerFast, text: str) -> list[str]:
    """The text cut into its tokens, each decoded on its own (spaces and newlines made visible)."""
    return [tokenizer.decode([i]) for i in encode_texts(tokenizer, [text])[0]]
