"""The whole pipeline's memory does not grow with the corpus: 10,000 vs 20,000 stories (benchmarks/scale.py).

About 60 s on the shared 2-core machine (load ~5): two pipelines of generate → corpus →
tokenizer → encode → one EM iteration → two training steps, each stage in a process
forked for it. What is compared, stage by stage, is the memory the work adds over the
process's RSS just before it:

- anonymous memory (sampled every 2 ms): what the code holds. It must not grow by more
  than 3 MB. The extra 10,000 stories are ~9 MB of text and ~2.9M tokens: holding them in
  any form costs more — their tokens as uint16 5.8 MB, as int64 23 MB, as Python ints
  ~100 MB, the text as strings ~9.5 MB — while the per-sequence bookkeeping a split view
  and a batch plan keep (~90 bytes a sequence) is ~0.9 MB. Measured: 0.0 to 0.9 MB.
- the exact peak RSS, which also counts the pages of the memory-mapped files a stage
  reads (the Arrow text, the uint16 tokens). At these sizes a stage reads them nearly
  whole (the kernel maps 64 KB around each page a scattered read touches), so its peak
  may grow by up to the extra file bytes, ~15 MB, pages the kernel drops when it needs
  the room. It must stay within that plus 3 MB, which a copy of the tokens as int64, the
  lists the EM used to build or the int64 stream training used to build all exceed.
  Measured: +1.3 (EM) to +10.4 MB (encode, which reads the text and writes the tokens).

Allocators keep memory a program freed for reuse — glibc's per-thread arenas (the
tokenizer's Rust threads), its heap below a moving mmap threshold, Arrow's jemalloc
pool — and keep more after more work, by amounts that vary run to run (measured: up to
+8 MB for the encoder, ±14 MB for training). The measured processes therefore run with
one glibc arena, a fixed mmap threshold and the system allocator for Arrow, so that a
freed buffer is returned at once and what remains is what the code holds. The benchmark
itself runs with the defaults.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storylab.paths import PROJECT_ROOT

STAGES = ("corpus", "tokenizer", "encode", "em", "train")
ANONYMOUS_TOLERANCE_MB = 3.0
ALLOCATORS_THAT_RETURN_FREED_MEMORY = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "65536", "ARROW_DEFAULT_MEMORY_POOL": "system"}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="reads and resets the peak RSS through Linux /proc")
def test_every_stage_peaks_the_same_at_10000_and_20000_stories(tmp_path):
    command = [sys.executable, str(PROJECT_ROOT / "benchmarks" / "scale.py"), "--stories", "10000", "20000", "--start", "fork",
               "--work", str(tmp_path), "--tokenizer-sample", "1000", "--states", "16", "--em-memory-mb", "8", "--steps", "2",
               "--val-tokens", "512", "--json", "--results", str(tmp_path / "scale.json")]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **ALLOCATORS_THAT_RETURN_FREED_MEMORY})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    small, large = ({r["stage"]: r for r in report["results"][n]} for n in ("10000", "20000"))
    assert large["encode"]["train_tokens"] > 1.9 * small["encode"]["train_tokens"]  # twice the work ...
    extra_file_mb = (large["generate"]["text_mb"] - small["generate"]["text_mb"]) * 1e6 / 2**20 + 2 * (
        large["encode"]["train_tokens"] - small["encode"]["train_tokens"]) / 2**20  # the text and its uint16 tokens
    growth = {stage: (large[stage]["anonymous_growth_mb"] - small[stage]["anonymous_growth_mb"],
                      large[stage]["peak_growth_mb"] - small[stage]["peak_growth_mb"]) for stage in STAGES}
    print(f"growth from 10,000 to 20,000 stories (anonymous, peak RSS), MB; extra file bytes {extra_file_mb:.1f} MB:", growth)
    for stage, (anonymous, peak) in growth.items():  # ... the same memory
        assert anonymous < ANONYMOUS_TOLERANCE_MB, (stage, growth)
        assert peak < extra_file_mb + ANONYMOUS_TOLERANCE_MB, (stage, growth)
