"""The corpus sources: each turns a normalised spec into (DatasetDict, metadata).

Local files stream into Arrow (`corpora.files`, `corpora.arrow`); hub datasets and
`save_to_disk` folders are Arrow already, and stay so: splits are row ranges, not lists.

Generated sources (stories, addition, hmm) know the exact probability of what they
print, so their metadata carries `floor_bits_per_char` of the validation split.
"""

from __future__ import annotations

import math
import socket
from contextlib import contextmanager
from urllib.parse import urlparse
from pathlib import Path
from typing import Any, Callable

import numpy as np
from datasets import Dataset, DatasetDict, Value, load_from_disk

from storylab.corpora.arrow import write_texts
from storylab.corpora.files import EOT_MARKER, split_text_file, story_batches  # noqa: F401 (public names)
from storylab.corpora.options import texts_to_dataset, validation_count


def floor_bits_per_char(neg_log2_probs, texts: list[str]) -> float:
    """Σ −log2 p(story) / Σ characters: the entropy rate of the text, per character."""
    return float(np.sum(neg_log2_probs) / sum(len(t) for t in texts))


def stories_source(spec: dict[str, Any], scratch: Path) -> tuple[DatasetDict, dict]:
    from storylab.corpora.stories import generate_stories

    # Separate seeded streams, so growing the training set never changes the validation set.
    train, train_bits = generate_stories(spec["n_stories"], seed=2 * spec["seed"])
    val, val_bits = generate_stories(spec["validation"], seed=2 * spec["seed"] + 1)
    dataset = texts_to_dataset(train, val, neg_log2_prob=(list(map(float, train_bits)), list(map(float, val_bits))))
    return dataset, {"floor_bits_per_char": floor_bits_per_char(val_bits, val),
                     "train_floor_bits_per_char": floor_bits_per_char(train_bits, train)}


def addition_source(spec: dict[str, Any], scratch: Path) -> tuple[DatasetDict, dict]:
    from storylab.corpora.addition import addition_splits

    train, val, meta = addition_splits(spec)
    bits = {split: math.log2(n) for split, n in meta["operand_pairs"].items()}  # every problem of a split alike
    return texts_to_dataset(train, val, neg_log2_prob=([bits["train"]] * len(train), [bits["validation"]] * len(val))), meta


def hmm_source(spec: dict[str, Any], scratch: Path) -> tuple[DatasetDict, dict]:
    from storylab.corpora.hmm_source import build_hmm_corpus

    built = build_hmm_corpus(spec)
    dataset = texts_to_dataset(
        built["train"]["text"], built["validation"]["text"],
        states=(built["train"]["states"], built["validation"]["states"]),
    )
    return dataset, built["meta"]  # floor, alphabet, true n_states, mixing time (+ CoT alphabet)


def hub_source(spec: dict[str, Any], scratch: Path) -> tuple[DatasetDict, dict]:
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


def file_source(spec: dict[str, Any], scratch: Path) -> tuple[DatasetDict, dict]:
    """A `save_to_disk` folder (already Arrow), or a text file streamed into an Arrow file in `scratch`."""
    path = Path(spec["path"])
    if path.is_dir():
        try:
            loaded = load_from_disk(str(path))
        except FileNotFoundError:
            raise ValueError(f"corpus: folder {str(path)!r} is not a dataset; expected a folder written by "
                             "Dataset.save_to_disk or DatasetDict.save_to_disk") from None
    else:
        batches = story_batches(path, spec["separator"], spec.get("text_column") or "text")
        loaded = write_texts(scratch / "stories.arrow", batches)
        spec = {**spec, "text_column": "text"}  # streamed from `text_column` into `text` already
    return _dataset_from_loaded(loaded, spec), {}


def _dataset_from_loaded(loaded: Dataset | DatasetDict, spec: dict[str, Any]) -> DatasetDict:
    """Pick a train and a validation split out of whatever a file or the hub gave us.

    Only Arrow operations (column selection, contiguous row ranges): no split is copied into
    Python lists, so a memory-mapped corpus stays memory-mapped.
    """
    column = spec.get("text_column") or "text"
    validation = spec["validation"]
    if isinstance(loaded, DatasetDict):
        train_split = spec.get("split", "train") if spec.get("split") in loaded else "train"
        if isinstance(validation, str) and validation in loaded:
            return DatasetDict({"train": _text_column(loaded[train_split], column),
                                "validation": _text_column(loaded[validation], column)})
        loaded = loaded[train_split] if train_split in loaded else next(iter(loaded.values()))
    data = _text_column(loaded, column)
    n_val = validation_count(len(data), 0.05 if isinstance(validation, str) else validation)
    return DatasetDict({"train": data.select(range(len(data) - n_val)),
                        "validation": data.select(range(len(data) - n_val, len(data)))})


def _text_column(data: Dataset, column: str) -> Dataset:
    """Only the text, in a string column named `text`."""
    if column not in data.column_names:
        raise ValueError(f"corpus: the data has no {column!r} column (columns: {data.column_names}); set text_column")
    data = data.select_columns([column])
    if column != "text":
        data = data.rename_column(column, "text")
    if data.features["text"] != Value("string"):
        data = data.cast_column("text", Value("string"))
    return data


# Each source: (normalised spec, a scratch folder inside the cache build) -> (DatasetDict, metadata).
SOURCES: dict[str, Callable[[dict[str, Any], Path], tuple[DatasetDict, dict]]] = {
    "stories": stories_source,
    "addition": addition_source,
    "hmm": hmm_source,
    "hub": hub_source,
    "file": file_source,
}
