"""The corpus sources: each turns a normalised spec into (DatasetDict, metadata).

Generated sources (stories, addition, hmm) know the exact probability of what they
print, so their metadata carries `floor_bits_per_char` of the validation split.
"""

from __future__ import annotations

import socket
from contextlib import contextmanager
from urllib.parse import urlparse
from pathlib import Path
from typing import Any, Callable

import numpy as np
from datasets import Dataset, DatasetDict, load_from_disk

from storylab.corpora.options import split_off_validation, texts_to_dataset

EOT_MARKER = "<|endoftext|>"


def floor_bits_per_char(neg_log2_probs, texts: list[str]) -> float:
    """Σ −log2 p(story) / Σ characters: the entropy rate of the text, per character."""
    return float(np.sum(neg_log2_probs) / sum(len(t) for t in texts))


def stories_source(spec: dict[str, Any]) -> tuple[DatasetDict, dict]:
    from storylab.corpora.stories import generate_stories

    # Separate seeded streams, so growing the training set never changes the validation set.
    train, train_bits = generate_stories(spec["n_stories"], seed=2 * spec["seed"])
    val, val_bits = generate_stories(spec["validation"], seed=2 * spec["seed"] + 1)
    dataset = texts_to_dataset(train, val, neg_log2_prob=(list(map(float, train_bits)), list(map(float, val_bits))))
    return dataset, {"floor_bits_per_char": floor_bits_per_char(val_bits, val),
                     "train_floor_bits_per_char": floor_bits_per_char(train_bits, train)}


def addition_source(spec: dict[str, Any]) -> tuple[DatasetDict, dict]:
    from storylab.corpora.addition import addition_splits

    train, val, meta = addition_splits(spec)
    return texts_to_dataset(train, val), meta


def hmm_source(spec: dict[str, Any]) -> tuple[DatasetDict, dict]:
    from storylab.corpora.hmm_source import build_hmm_corpus

    built = build_hmm_corpus(spec)
    dataset = texts_to_dataset(
        built["train"]["text"], built["validation"]["text"],
        states=(built["train"]["states"], built["validation"]["states"]),
    )
    return dataset, {"floor_bits_per_char": built["floor_bits_per_char"], "alphabet": built["alphabet"]}


def hub_source(spec: dict[str, Any]) -> tuple[DatasetDict, dict]:
    import datasets

    name = spec["name"]
    try:
        with _offline_unless_hub_reachable():
            loaded = datasets.load_dataset(name, spec.get("config"))
    except Exception as error:  # the hub raises many types: connection, offline mode, not found
        raise ValueError(
            f"corpus: could not load {name!r} from the Hugging Face hub ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:160] if str(error) else 'no message'}); the hub is unreachable or the dataset is unknown. "
            f"Download it where there is network (datasets.load_dataset({name!r}).save_to_disk('DIR')) and use "
            f"corpus={{'source': 'file', 'path': 'DIR'}}"
        ) from None
    return _dataset_from_loaded(loaded, spec), {}


@contextmanager
def _offline_unless_hub_reachable(timeout_s: float = 3.0):
    """Without a route to the hub, switch datasets to offline mode: a copy in the local HF cache
    still loads, and a missing one fails at once instead of after a minute of retries."""
    import datasets
    import huggingface_hub.constants as hub

    host = urlparse(hub.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
        reachable = True
    except OSError:
        reachable = False
    saved = (datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE)
    if not reachable:
        datasets.config.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE = saved


def file_source(spec: dict[str, Any]) -> tuple[DatasetDict, dict]:
    path = Path(spec["path"])
    if path.is_dir():
        try:
            loaded = load_from_disk(str(path))
        except FileNotFoundError:
            raise ValueError(f"corpus: folder {str(path)!r} is not a dataset; expected a folder written by "
                             "Dataset.save_to_disk or DatasetDict.save_to_disk") from None
    else:
        loaded = Dataset.from_dict({"text": _read_texts(path, spec)})
    return _dataset_from_loaded(loaded, spec), {}


def _read_texts(path: Path, spec: dict[str, Any]) -> list[str]:
    import pandas as pd

    suffix = path.suffix.lower()
    column = spec.get("text_column") or "text"
    readers = {".txt": "UTF-8 text", ".jsonl": "UTF-8 JSON lines", ".json": "a UTF-8 JSON array of records",
               ".parquet": "a Parquet table"}
    if suffix not in readers:
        raise ValueError(f"corpus: file {str(path)!r}: expected .txt, .jsonl, .json, .parquet or a save_to_disk folder")
    try:
        if suffix == ".txt":
            text = path.read_text(encoding="utf-8")
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, lines=suffix == ".jsonl", encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"corpus: file {str(path)!r} is not UTF-8 (byte 0x{error.object[error.start]:02x} at "
                         f"position {error.start}); expected {readers[suffix]}") from None
    except Exception as error:  # pandas and pyarrow raise many types for a malformed file
        raise ValueError(f"corpus: file {str(path)!r} could not be read ({type(error).__name__}: "
                         f"{str(error).strip().splitlines()[0][:160] if str(error).strip() else 'no message'}); "
                         f"expected {readers[suffix]}") from None
    if suffix == ".txt":
        return split_text_file(text, spec["separator"], name=str(path))
    if column not in frame.columns:
        raise ValueError(f"corpus: file {str(path)!r} has no {column!r} column (columns: {list(frame.columns)}); set text_column")
    return [str(t) for t in frame[column].tolist()]


def split_text_file(text: str, separator: str, name: str | None = None) -> list[str]:
    """Stories from a .txt: separated by `<|endoftext|>` lines ("eot") or by blank lines ("blank")."""
    if separator == "eot":
        parts = text.split(EOT_MARKER)
    elif separator == "blank":
        parts = [p for p in text.replace("\r\n", "\n").split("\n\n")]
    else:
        raise ValueError(f"corpus: separator must be 'eot' or 'blank', got {separator!r}")
    stories = [p.strip() for p in parts if p.strip()]
    if not stories:
        where = f"file {name!r}" if name else "the text"
        raise ValueError(f"corpus: {where} holds no stories; expected text separated by "
                         + ("'<|endoftext|>'" if separator == "eot" else "blank lines"))
    return stories


def _dataset_from_loaded(loaded: Dataset | DatasetDict, spec: dict[str, Any]) -> DatasetDict:
    """Pick a train and a validation split out of whatever a file or the hub gave us."""
    column = spec.get("text_column") or "text"
    validation = spec["validation"]
    if isinstance(loaded, DatasetDict):
        train_split = spec.get("split", "train") if spec.get("split") in loaded else "train"
        if isinstance(validation, str) and validation in loaded:
            pair = (loaded[train_split], loaded[validation])
        else:
            loaded = loaded[train_split] if train_split in loaded else next(iter(loaded.values()))
            pair = None
    else:
        pair = None
    if pair is None:
        if column not in loaded.column_names:
            raise ValueError(f"corpus: the data has no {column!r} column (columns: {loaded.column_names}); set text_column")
        if isinstance(validation, str):
            validation = 0.05
        train, val = split_off_validation(list(loaded[column]), validation)
        return texts_to_dataset(train, val)
    return texts_to_dataset(*(list(map(str, part[column])) for part in pair))


SOURCES: dict[str, Callable[[dict[str, Any]], tuple[DatasetDict, dict]]] = {
    "stories": stories_source,
    "addition": addition_source,
    "hmm": hmm_source,
    "hub": hub_source,
    "file": file_source,
}
