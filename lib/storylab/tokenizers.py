"""Train, load and describe tokenizers, and cache encoded corpora.

Kinds (spec strings like "bpe:1024", "word:1000", "byte", "char", or dicts):

- `bpe`  byte-level BPE (`vocab_size`, `min_frequency`): every byte has a token, so
         decode(encode(x)) == x for any text. Below 257 tokens there is no room for all
         bytes; the alphabet is then the bytes seen in training and others become `<unk>`.
- `word` the top-N words (each with its leading space) plus whitespace runs and `<unk>`;
         reports the fraction of tokens it covers.
- `byte` 256 byte tokens: exact round trip, longest sequences.
- `char` the characters seen in training plus `<unk>`.

Any kind but `byte` takes `sample_stories` (dict specs): train on that many evenly spaced
training stories instead of all, for a large corpus. Training and encoding stream the corpus
batch by batch, so neither holds it in memory.

Every tokenizer has the end-of-text token `<|endoftext|>` (its `eos_token`), written
between stories, and is saved as a `PreTrainedTokenizerFast` folder. The vocabulary a
model must use is always `len(tokenizer)`, never the largest id seen in some data.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from storylab.cache import atomic_path, cached_dir, write_json_atomic
from storylab.checks import check_int
from storylab.corpora import Corpus, load_corpus
from storylab.corpora.arrow import text_batches
from storylab.memory_maps import release_pages
from storylab.npy_writer import NpyWriter
from storylab.progress import progress_bar
from storylab.split_chunks import SplitChunks

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
    allowed = {"kind"} | ({"vocab_size", "min_frequency"} if kind in DEFAULT_VOCAB else set()) | (
        {"sample_stories"} if kind != "byte" else set())
    if set(spec) - allowed:
        raise ValueError(f"tokenizer: unknown option(s) {sorted(set(spec) - allowed)} for kind {kind!r}; expected some of {sorted(allowed)}")
    if kind in DEFAULT_VOCAB:
        spec.setdefault("vocab_size", DEFAULT_VOCAB[kind])
        spec.setdefault("min_frequency", 2 if kind == "bpe" else 1)
        minimum = 8 if kind == "bpe" else 1
        if not isinstance(spec["vocab_size"], int) or spec["vocab_size"] < minimum:
            raise ValueError(f"tokenizer: {kind} vocab_size must be an integer >= {minimum}, got {spec['vocab_size']!r}")
    if "sample_stories" in spec:
        check_int("tokenizer: sample_stories", spec["sample_stories"], minimum=1)
    return spec


def train_tokenizer(spec: str | dict, texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """A new tokenizer of the given kind, trained on `texts` (not cached).

    `texts` may be any iterable, read once (a generator over a memory-mapped corpus keeps
    training memory at what the trainer itself counts, not the corpus).
    """
    spec = normalize_tokenizer_spec(spec)
    texts = iter(texts)
    backend = {"bpe": _train_bpe, "word": _train_word, "byte": _build_byte, "char": _build_char}[spec["kind"]](spec, texts)
    unk = UNK if backend.token_to_id(UNK) is not None else None
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=EOT, unk_token=unk, clean_up_tokenization_spaces=False
    )


def _train_bpe(spec: dict, texts: Iterator[str]) -> Tokenizer:
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


def _train_word(spec: dict, texts: Iterator[str]) -> Tokenizer:
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


def _build_byte(spec: dict, texts: Iterator[str]) -> Tokenizer:
    # Token id 1 + b is byte b, so ids read as bytes in a plot.
    alphabet = [byte_to_symbol(b) for b in range(256)]
    return _fixed_vocabulary(alphabet, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False), decoders.ByteLevel(), None)


def byte_to_symbol(value: int) -> str:
    """The printable character byte-level pre-tokenizers use for a byte (GPT-2's table)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1), *range(ord("\xae"), ord("\xff") + 1)]
    if value in printable:
        return chr(value)
    return chr(256 + sum(1 for b in range(value) if b not in printable))


def _build_char(spec: dict, texts: Iterator[str]) -> Tokenizer:
    seen: set[str] = set()
    for text in texts:
        seen.update(text)
    chars = sorted(seen)
    # Split every character apart, so the BPE model sees single characters only.
    return _fixed_vocabulary(chars, pre_tokenizers.Split(Regex("."), behavior="isolated"), decoders.Fuse(), UNK)


def trained_vocab_size(spec: str | dict, tokenizer: PreTrainedTokenizerFast) -> int:
    """What the spec's number counts, as trained: every token for `bpe`, the words for `word`."""
    spec = normalize_tokenizer_spec(spec)
    return len(tokenizer) - (2 if spec["kind"] == "word" else 0)  # word:N counts words, not EOT and <unk>


def tokenizer_label(spec: str | dict[str, Any], tokenizer: Any = None) -> str:
    """"bpe:512" for {"kind": "bpe", "vocab_size": 512}; "byte" for {"kind": "byte"}.

    Given the trained `tokenizer`, the number is the vocabulary it really has: "bpe:3091" for a
    `bpe:100000000` whose corpus ran out of merges, so a label never claims more than was trained
    (record `tokenizer_label(spec)` beside it for what was asked).
    """
    if tokenizer is not None:
        spec = normalize_tokenizer_spec(spec)
        if "vocab_size" in spec:
            spec = {**spec, "vocab_size": trained_vocab_size(spec, tokenizer)}
    if isinstance(spec, str):
        return spec
    return spec["kind"] + (f":{spec['vocab_size']}" if "vocab_size" in spec else "")


def vocab_size_note(spec: str | dict, tokenizer: PreTrainedTokenizerFast) -> str | None:
    """One line when the trained vocabulary is not the size asked for (else None)."""
    spec = normalize_tokenizer_spec(spec)
    if "vocab_size" not in spec:
        return None
    kind, asked, trained = spec["kind"], spec["vocab_size"], trained_vocab_size(spec, tokenizer)
    if trained == asked:
        return None
    if trained < asked:
        why = ("the training text has no more words" if kind == "word" else
               f"the training text has no more pairs seen at least min_frequency={spec['min_frequency']} times")
    else:
        why = "the characters of the training text alone need more"
    return f"tokenizer: asked for {kind}:{asked}, trained {kind}:{trained} ({why}); results are labelled {kind}:{trained}"


def get_tokenizer(spec: str | dict, corpus: str | dict | Corpus) -> PreTrainedTokenizerFast:
    """The tokenizer `spec` trained on `corpus`'s training split, cached after the first call.

    Warns (one line) when the trained vocabulary is not the size asked for, e.g. `bpe:100000000`
    on a corpus that runs out of merges at 3,091 tokens.
    """
    spec = normalize_tokenizer_spec(spec)
    tokenizer = load_saved_tokenizer(tokenizer_dir(spec, corpus), cached=True)
    note = vocab_size_note(spec, tokenizer)
    if note:
        warnings.warn(note, stacklevel=2)
    return tokenizer


def load_saved_tokenizer(folder: str | Path, cached: bool = False) -> PreTrainedTokenizerFast:
    """A tokenizer folder written by `save_pretrained`; a missing or corrupt file is a one-line
    ValueError naming it (`cached`: the folder is a cache entry, so say that deleting it rebuilds it)."""
    folder = Path(folder)
    fix = f"; delete {str(folder)!r} to rebuild it" if cached else ""
    expected = "expected a tokenizer folder written by save_pretrained"
    if not (folder / "tokenizer.json").is_file():
        raise ValueError(f"tokenizer: no tokenizer.json in {str(folder)!r}; {expected}{fix}")
    try:
        return PreTrainedTokenizerFast.from_pretrained(str(folder))
    except Exception as error:  # KeyError, ValueError, Rust errors: find which file, to name it
        failure = error
    # only now is each file parsed on its own (a good folder is parsed once, by from_pretrained)
    for path in sorted(folder.glob("*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ValueError(f"tokenizer: {str(path)!r} is not valid JSON ({_first_line(error)}); {expected}{fix}") from None
    # well-formed JSON that is not a tokenizer
    raise ValueError(f"tokenizer: {str(folder / 'tokenizer.json')!r} is not a valid tokenizer "
                     f"({type(failure).__name__}: {_first_line(failure)}); {expected}{fix}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def tokenizer_dir(spec: str | dict, corpus: str | dict | Corpus) -> Path:
    spec = normalize_tokenizer_spec(spec)
    corpus = load_corpus(corpus)

    def build(folder: Path) -> None:
        train_tokenizer(spec, training_texts(corpus, spec.get("sample_stories"))).save_pretrained(str(folder))

    return cached_dir("tokenizer", {"tokenizer": spec, "corpus": corpus.spec}, build)


def training_texts(corpus: Corpus, sample_stories: int | None = None) -> Iterator[str]:
    """The training stories a tokenizer learns from, streamed: all, or `sample_stories` evenly spaced ones."""
    data = corpus.dataset["train"]
    if sample_stories is not None and sample_stories < len(data):
        # Evenly spaced rather than the first N: a sample of the whole corpus, and no seed to record.
        data = data.select(np.arange(sample_stories, dtype=np.int64) * len(data) // sample_stories)
    return chain.from_iterable(text_batches(data))


def _backend(tokenizer) -> Tokenizer:
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not hasattr(backend, "encode_batch_fast"):
        raise ValueError(f"tokenizer: expected a PreTrainedTokenizerFast or tokenizers.Tokenizer, got {type(tokenizer).__name__}")
    return backend


def encode_texts(tokenizer: PreTrainedTokenizerFast, texts: list[str], batch_size: int = 2048) -> list[list[int]]:
    """Token ids of each text, through the fast Rust batch path, no special tokens added."""
    backend = _backend(tokenizer)
    ids: list[list[int]] = []
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start : start + batch_size])
        ids.extend(e.ids for e in backend.encode_batch_fast(batch, add_special_tokens=False))
    return ids


def encode_with_offsets(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
    """(token ids, character offsets) of each text, no special tokens: the ids `encode_texts` gives and the
    characters each token covers (the slower path that computes offsets; use `encode_texts` for ids alone)."""
    return [(e.ids, e.offsets) for e in _backend(tokenizer).encode_batch(list(texts), add_special_tokens=False)]


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
    `stream_path` is where the cached split keeps its stream (`stream()`); None for a
    split made in memory.
    """

    ids: np.ndarray
    offsets: np.ndarray
    n_chars: int
    eot_id: int
    unk_id: int | None = None
    stream_path: Path | None = None

    @property
    def n_stories(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_tokens(self) -> int:
        """Tokens a model predicts: every story token plus the end-of-text after each story."""
        return int(len(self.ids) + self.n_stories)

    def story(self, index: int) -> np.ndarray:
        return np.asarray(self.ids[self.offsets[index] : self.offsets[index + 1]])

    def chunks(self, max_len: int | None = None, mode: str = "split", append_eot: bool = True) -> SplitChunks:
        """The stories as model sequences, read lazily from the memory map (`storylab.split_chunks`):
        each ends in end-of-text; one longer than `max_len` tokens is cut into chunks (`mode="split"`)
        or keeps only its first `max_len` tokens (`"truncate"`). What `CategoricalHMM.fit` reads a
        batch at a time."""
        return SplitChunks(self.ids, self.offsets, self.eot_id, append_eot, max_len, mode)

    def sequences(self, append_eot: bool = True, max_len: int | None = None, mode: str = "split") -> list[np.ndarray]:
        """`chunks(max_len, mode, append_eot)` as a list of int64 arrays, all in memory (for small splits)."""
        return list(self.chunks(max_len, mode, append_eot))

    def stream(self) -> np.ndarray:
        """All stories, each followed by end-of-text, as one flat array in the ids' dtype (for transformer windows).

        A cached split's stream is the file `stream_path` (written by the encoder, or here once,
        atomically, for a cache written before streams were), memory-mapped: 2 bytes a token
        on disk and nothing in memory until windows are read.
        """
        if self.stream_path is None:
            return with_end_of_text(np.asarray(self.ids), np.diff(self.offsets), self.eot_id)
        if not self.stream_path.exists():
            write_stream(self.stream_path, self.ids, self.offsets, self.eot_id)
        return np.load(self.stream_path, mmap_mode="r")


STREAM_STORIES = 65536  # stories per chunk when a stream is written from the ids


def with_end_of_text(ids: np.ndarray, story_lengths: np.ndarray, eot_id: int) -> np.ndarray:
    """Consecutive stories' `ids` with `eot_id` after each (of `story_lengths` tokens), in the ids' dtype."""
    return np.insert(ids, np.cumsum(story_lengths), np.asarray(eot_id, dtype=ids.dtype))


def write_stream(path: Path, ids: np.ndarray, offsets: np.ndarray, eot_id: int) -> None:
    """Write the stream of a split's `ids` and story `offsets` to `path`, a chunk of stories at a time, atomically."""
    with atomic_path(path) as tmp, NpyWriter(tmp, ids.dtype) as stream:
        for first in range(0, len(offsets) - 1, STREAM_STORIES):
            bounds = offsets[first : first + STREAM_STORIES + 1]
            stream.append(with_end_of_text(np.asarray(ids[bounds[0] : bounds[-1]]), np.diff(bounds), eot_id))
            release_pages(ids)


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


def encode_corpus(corpus: str | dict | Corpus, tokenizer_spec: str | dict, progress: bool = True,
                  batch_size: int = 1024) -> EncodedCorpus:
    """The corpus as token ids under the tokenizer, cached by (corpus spec, tokenizer spec).

    Built by streaming `batch_size` stories at a time through the fast tokenizer (its Rust
    batch path uses every core) into the `.npy` files, so memory does not grow with the corpus;
    `progress` shows a bar with tokens/s.
    """
    corpus = load_corpus(corpus)
    spec = normalize_tokenizer_spec(tokenizer_spec)
    tokenizer = get_tokenizer(spec, corpus)

    def build(folder: Path) -> None:
        meta: dict[str, Any] = {"vocab_size": len(tokenizer), "eot_id": tokenizer.eos_token_id}
        dtype = np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max + 1 else np.uint32
        for split in ("train", "validation"):
            meta[split] = _encode_split(tokenizer, corpus, split, folder, dtype, progress, batch_size)
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
            stream_path=folder / f"{name}_stream.npy",
        )

    return EncodedCorpus(tokenizer, load_split("train"), load_split("validation"), meta, folder)


def _encode_split(tokenizer: PreTrainedTokenizerFast, corpus: Corpus, split: str, folder: Path, dtype,
                  progress: bool, batch_size: int) -> dict[str, Any]:
    """Encode one split batch by batch into `<split>_ids.npy`, `<split>_offsets.npy` and `<split>_stream.npy`
    (the ids with end-of-text after each story: what a transformer trains on); its sizes and speed."""
    n_stories, n_tokens, n_chars = len(corpus.dataset[split]), 0, 0
    bar = progress_bar(total=n_stories, desc=f"encode {split}", unit="story", disable=not progress, mininterval=1.0)
    started = time.perf_counter()
    with (NpyWriter(folder / f"{split}_ids.npy", dtype) as ids, NpyWriter(folder / f"{split}_offsets.npy", np.int64) as offsets,
          NpyWriter(folder / f"{split}_stream.npy", dtype) as stream):
        offsets.append([0])
        for texts in corpus.text_batches(split, batch_size):
            encoded = encode_texts(tokenizer, texts, batch_size)
            lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
            batch_ids = np.fromiter(chain.from_iterable(encoded), dtype=dtype, count=int(lengths.sum()))
            ids.append(batch_ids)
            stream.append(with_end_of_text(batch_ids, lengths, tokenizer.eos_token_id))
            offsets.append(n_tokens + np.cumsum(lengths))
            n_tokens += int(lengths.sum())
            n_chars += sum(map(len, texts))
            bar.update(len(texts))
            bar.set_postfix_str(f"{n_tokens / max(time.perf_counter() - started, 1e-9):,.0f} tokens/s", refresh=False)
    elapsed_s = time.perf_counter() - started
    bar.close()
    return {"n_stories": n_stories, "n_tokens": n_tokens, "n_chars": n_chars, "encode_elapsed_s": elapsed_s,
            "encode_tokens_per_s": n_tokens / max(elapsed_s, 1e-9), "encode_chars_per_s": n_chars / max(elapsed_s, 1e-9)}


def token_frequencies(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> np.ndarray:
    """Count of each token id over `texts` (length `len(tokenizer)`, zeros included)."""
    ids = np.fromiter(chain.from_iterable(encode_texts(tokenizer, texts)), dtype=np.int64)
    return np.bincount(ids, minlength=len(tokenizer))


def show_tokens(tokenizer: PreTrainedTokenizerFast, text: str) -> list[str]:
    """The text cut into its tokens, each decoded on its own (spaces and newlines made visible)."""
    return [tokenizer.decode([i]) for i in encode_texts(tokenizer, [text])[0]]
