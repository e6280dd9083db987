"""Write a 1-D `.npy` file whose length is not known in advance, a chunk at a time.

    with NpyWriter(folder / "train_ids.npy", np.uint16) as ids:
        for batch in batches:
            ids.append(encoded(batch))

Chunks go to a raw sibling file as they come; closing writes the `.npy` header (now that the
length is known) and copies the raw bytes behind it. Memory stays one chunk, however long
the array; the result loads with `np.load(path, mmap_mode="r")` like any `.npy`. A writer
left by an exception removes its files, so no half-written array is ever found.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

COPY_BYTES = 1 << 20


class NpyWriter:
    def __init__(self, path: str | Path, dtype) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.length = 0
        self._raw_path = self.path.with_name(f".{self.path.name}.raw")
        self._raw = open(self._raw_path, "wb")

    def append(self, values) -> None:
        """Append values (cast to the writer's dtype) at the end of the array."""
        array = np.asarray(values, dtype=self.dtype).ravel()
        self._raw.write(array.tobytes())
        self.length += array.size

    def close(self) -> None:
        self._raw.close()
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (self.length,)}
        with open(self.path, "wb") as out, open(self._raw_path, "rb") as raw:
            np.lib.format.write_array_header_1_0(out, header)
            shutil.copyfileobj(raw, out, COPY_BYTES)
        self._raw_path.unlink()

    def discard(self) -> None:
        self._raw.close()
        self._raw_path.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> "NpyWriter":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()
