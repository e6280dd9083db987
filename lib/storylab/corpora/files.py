"""Stories out of local files (.txt, .jsonl, .json, .parquet), read in chunks.

`story_batches(path, separator, column)` yields lists of stories as it reads, so a 2 GB
TinyStories file never sits in memory at once; `corpora.arrow.write_texts` streams the
batches into the corpus cache. A file that cannot be read is a one-line ValueError naming
the file, the place (byte position or line) and what was expected.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Iterator

EOT_MARKER = "<|endoftext|>"
CHUNK_BYTES = 1 << 22  # 4 MiB of text per read: large enough for speed, small next to any corpus
EXPECTED = {".txt": "UTF-8 text", ".jsonl": "UTF-8 JSON lines", ".json": "a UTF-8 JSON array of records",
            ".parquet": "a Parquet table"}


def story_batches(path: Path, separator: str = "eot", column: str = "text") -> Iterator[list[str]]:
    """Stories of a file, in batches, in file order."""
    suffix = path.suffix.lower()
    if suffix not in EXPECTED:
        raise ValueError(f"corpus: file {str(path)!r}: expected .txt, .jsonl, .json, .parquet or a save_to_disk folder")
    if suffix == ".txt":
        return _txt_batches(path, separator)
    if suffix == ".jsonl":
        return _jsonl_batches(path, column)
    return _table_batches(path, column)


def split_text_file(text: str, separator: str, name: str | None = None) -> list[str]:
    """Stories from a .txt: separated by `<|endoftext|>` lines ("eot") or by blank lines ("blank")."""
    marker = _separator(separator)
    if separator == "blank":
        text = text.replace("\r\n", "\n")
    stories = _stories(text.split(marker))
    if not stories:
        _no_stories(name, separator)
    return stories


def _separator(separator: str) -> str:
    if separator not in ("eot", "blank"):
        raise ValueError(f"corpus: separator must be 'eot' or 'blank', got {separator!r}")
    return EOT_MARKER if separator == "eot" else "\n\n"


def _stories(parts: list[str]) -> list[str]:
    return [p.strip() for p in parts if p.strip()]


def _no_stories(name: str | None, separator: str) -> None:
    where = f"file {name!r}" if name else "the text"
    raise ValueError(f"corpus: {where} holds no stories; expected text separated by "
                     + ("'<|endoftext|>'" if separator == "eot" else "blank lines"))


def _txt_batches(path: Path, separator: str) -> Iterator[list[str]]:
    """`split_text_file` on the whole file, done chunk by chunk with the same result.

    The text after the last separator of a chunk is carried into the next one, so a separator
    cut in two by a chunk boundary is still found; with blank-line separators a chunk's final
    `\\r` waits for the next chunk, in case it is half of a `\\r\\n`.
    """
    marker = _separator(separator)
    decoder = codecs.getincrementaldecoder("utf-8")()
    carry, held, position, found = "", "", 0, False
    with open(path, "rb") as file:
        while True:
            raw = file.read(CHUNK_BYTES)
            final = not raw
            pending = len(decoder.getstate()[0])  # bytes of a character cut by the previous chunk
            try:
                new = held + decoder.decode(raw, final=final)
            except UnicodeDecodeError as error:
                start = position - pending + error.start
                raise ValueError(f"corpus: file {str(path)!r} is not UTF-8 (byte 0x{error.object[error.start]:02x} at "
                                 f"position {start}); expected {EXPECTED['.txt']}") from None
            position += len(raw)
            held = ""
            if separator == "blank":
                if not final and new.endswith("\r"):
                    new, held = new[:-1], "\r"
                new = new.replace("\r\n", "\n")
            parts = (carry + new).split(marker)
            carry = "" if final else parts.pop()
            stories = _stories(parts)
            found = found or bool(stories)
            yield stories
            if final:
                break
    if not found:
        _no_stories(str(path), separator)


def _jsonl_batches(path: Path, column: str, batch_size: int = 10000) -> Iterator[list[str]]:
    """One JSON object per line; its `column` field (made a string) is the story. Blank lines are skipped."""
    batch: list[str] = []
    position = 0
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"corpus: file {str(path)!r} is not UTF-8 (byte 0x{raw[error.start]:02x} at position "
                                 f"{position + error.start}, line {number}); expected {EXPECTED['.jsonl']}") from None
            position += len(raw)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"corpus: file {str(path)!r} line {number} is not valid JSON ({error.msg}, column "
                                 f"{error.colno}); expected {EXPECTED['.jsonl']}") from None
            if not isinstance(record, dict) or column not in record:
                fields = sorted(record) if isinstance(record, dict) else type(record).__name__
                raise ValueError(f"corpus: file {str(path)!r} line {number} has no {column!r} field ({fields}); set text_column")
            batch.append(str(record[column]))
            if len(batch) == batch_size:
                yield batch
                batch = []
    yield batch


def _table_batches(path: Path, column: str) -> Iterator[list[str]]:
    """A .parquet file batch by batch; a .json array of records at once (JSON arrays do not stream)."""
    import pandas as pd
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            table = pq.ParquetFile(path)
            columns = table.schema_arrow.names
        else:
            frame = pd.read_json(path, encoding="utf-8")
            columns = list(frame.columns)
    except UnicodeDecodeError as error:
        raise ValueError(f"corpus: file {str(path)!r} is not UTF-8 (byte 0x{error.object[error.start]:02x} at "
                         f"position {error.start}); expected {EXPECTED[suffix]}") from None
    except Exception as error:  # pandas and pyarrow raise many types for a malformed file
        message = str(error).strip().splitlines()[0][:160] if str(error).strip() else "no message"
        raise ValueError(f"corpus: file {str(path)!r} could not be read ({type(error).__name__}: {message}); "
                         f"expected {EXPECTED[suffix]}") from None
    if column not in columns:
        raise ValueError(f"corpus: file {str(path)!r} has no {column!r} column (columns: {columns}); set text_column")
    if suffix == ".json":
        yield [str(t) for t in frame[column].tolist()]
        return
    for batch in table.iter_batches(batch_size=10000, columns=[column]):
        yield [str(t) for t in batch.column(0).to_pylist()]
