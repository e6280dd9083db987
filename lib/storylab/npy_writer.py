"""Write a 1-D `.npy` file whose length is not known in advance, a chunk at a time.

    with NpyWriter(folder / "train_ids.npy", np.uint16) as ids:
        for batch in batches:
            ids.append(encoded(batch))

The trick: a `.npy` file is a header, then the raw array. The header is a text dict
(`{'descr': '<u2', 'fortran_order': False, 'shape': (n,)}`) whose length the file states
in its first bytes, and numpy reads any amount of space padding before its closing
newline (it pads headers itself, to align the data). So the writer starts with a header
padded to a fixed `HEADER_BYTES`, long enough for any 1-D length, appends the chunks
behind it as they come, and on closing rewrites that header in place with the real length
— the same number of bytes, so the data never moves: every byte is written once, and
memory stays one chunk, however long the array. The file is built under a hidden
temporary name and renamed into place on closing; a writer left by an exception removes
it, so no half-written array is ever found. The result loads with
`np.load(path, mmap_mode="r")` like any `.npy`.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

# magic (6 bytes), version (2), header length (2) and the dict padded with spaces: room for a
# shape of 20 digits, and a multiple of 64 bytes, the alignment numpy gives its own data
HEADER_BYTES = 128


def npy_header(dtype, length: int) -> bytes:
    """A version 1.0 `.npy` header of exactly `HEADER_BYTES` bytes for a 1-D array of `length` items."""
    dtype = np.dtype(dtype)
    text = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (int(length),)})
    prefix = np.lib.format.magic(1, 0)
    room = HEADER_BYTES - len(prefix) - 2 - len(text) - 1  # 2: the header length; 1: the closing newline
    if room < 0:
        raise ValueError(f"dtype: {dtype} needs a longer .npy header than {HEADER_BYTES} bytes; use a plain dtype")
    return prefix + struct.pack("<H", HEADER_BYTES - len(prefix) - 2) + (text + " " * room + "\n").encode("latin1")


class NpyWriter:
    def __init__(self, path: str | Path, dtype) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.length = 0
        header = npy_header(self.dtype, 0)
        npy_header(self.dtype, np.iinfo(np.int64).max)  # the longest length fits too: fail now, not at the end
        self._tmp_path = self.path.with_name(f".{self.path.name}.tmp")
        self._file = open(self._tmp_path, "wb")
        self._file.write(header)

    def append(self, values) -> None:
        """Append values (cast to the writer's dtype) at the end of the array."""
        array = np.asarray(values, dtype=self.dtype).ravel()
        self._file.write(array.tobytes())
        self.length += array.size

    def close(self) -> None:
        """The header with the real length over the placeholder, then the file renamed into place."""
        self._file.seek(0)
        self._file.write(npy_header(self.dtype, self.length))
        self._file.close()
        os.replace(self._tmp_path, self.path)

    def discard(self) -> None:
        self._file.close()
        self._tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> "NpyWriter":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()
