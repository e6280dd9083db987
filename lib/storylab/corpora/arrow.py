"""Move corpus text through Arrow without holding a whole corpus in Python lists.

`write_texts(path, batches)` streams batches of stories into an Arrow file that `datasets`
memory-maps; `text_batches(data)` reads a split back one batch at a time; `count_chars(data)`
sums characters with Arrow's compute kernels. Together they keep memory bounded by a batch,
not by the corpus, whether the corpus holds four thousand stories or two million.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset

TEXT_SCHEMA = pa.schema([("text", pa.string())])


def write_texts(path: Path, batches: Iterable[list[str]]) -> Dataset:
    """Write each batch of stories to an Arrow stream file at `path`; the file as a memory-mapped Dataset."""
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, TEXT_SCHEMA) as writer:
        for batch in batches:
            if batch:
                writer.write_batch(pa.record_batch([pa.array(batch, type=pa.string())], schema=TEXT_SCHEMA))
    return Dataset.from_file(str(path))


def text_batches(data: Dataset, batch_size: int = 1000) -> Iterator[list[str]]:
    """The `text` column of a split, `batch_size` stories at a time."""
    for table in data.select_columns(["text"]).with_format("arrow").iter(batch_size=batch_size):
        yield table.column("text").to_pylist()


def count_chars(data: Dataset, batch_size: int = 65536) -> int:
    """Σ characters of the `text` column (Unicode code points, like `len(str)`), batch by batch."""
    return int(column_sum(data, "text", pc.utf8_length, batch_size))


def column_sum(data: Dataset, column: str, transform=None, batch_size: int = 65536) -> float:
    """Σ of a numeric column (or of `transform(column)`), batch by batch in Arrow's kernels."""
    total = 0
    for table in data.select_columns([column]).with_format("arrow").iter(batch_size=batch_size):
        values = table.column(column)
        total += pc.sum(transform(values) if transform else values).as_py() or 0
    return total
