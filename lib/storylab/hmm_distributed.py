"""EM across processes: each process runs the E-step on its share of the sequences, and the
sufficient statistics are summed with `all_reduce` before the M-step — one model, any
number of processes, GPUs or nodes.

    # torchrun --nproc_per_node 4 fit_hmm.py   (or the 4 tasks of a SLURM job through submitit)
    exp = load_experiment("hub:roneneldan/TinyStories", "bpe:4096")
    hmm = CategoricalHMM(n_states=1024, vocab_size=exp.vocab_size, dtype="float32")
    hmm.fit(exp.train, n_iter=50, val=exp.validation, distributed=True, checkpoint=folder)

`CategoricalHMM.fit(..., distributed=True)` joins the process group the launcher described
(`storylab.distributed.init_distributed`: NCCL on GPUs, each process on `cuda:<local rank>`;
gloo on CPUs), and then every process:

- reads the whole data (an encoded split is memory-mapped, so this costs nothing) and
  fingerprints it: a checkpoint names the data, not a share of it, so a fit resumes with
  any number of processes;
- starts from rank 0's tables (broadcast once), whatever it computed itself;
- takes its `share`: the sequences sorted by length and dealt out in turn, so every
  process gets about the same number of tokens in batches of the same shapes;
- sums its statistics with everyone else's (`sum_over_processes`) and takes the M-step,
  which then gives every process the same tables.

Rank 0 alone writes the checkpoint and the tracker and shows the progress bar; every
process returns once the checkpoint is written.

How equal is "the same"? A share is cut into other batches than the whole, and in
float32 a sum in another order moves the last bits: two processes' statistics differ
from one process's by up to ~5e-7 relative, the parameters after a few iterations by
~1e-6. A model made with `dtype="float64"` keeps both within ~1e-15
(tests/test_hmm_distributed.py measures them).
"""

from __future__ import annotations

import numpy as np
import torch

from storylab.distributed import DistributedContext, all_reduce_sum_, shard
from storylab.hmm_engine import SufficientStats, length_order
from storylab.token_sequences import Subset


def share(data, context: DistributedContext):
    """This process's sequences of `data` (a `TokenSequences`): every world_size-th by length, from
    its rank on; all of them for a single process. None stays None."""
    if data is None or not context.active:
        return data
    return Subset(data, np.asarray(shard(length_order(data.lengths), context), dtype=np.int64))


def sum_over_processes(stats: SufficientStats, context: DistributedContext, val_log_likelihood: float | None = None) -> float | None:
    """Sum `stats` (counts, log-likelihood, token count) over the processes in place; returns the summed
    `val_log_likelihood` (None stays None). Nothing to do for a single process."""
    if not context.active:
        return val_log_likelihood
    totals = torch.tensor([stats.log_likelihood, float(stats.n_tokens), val_log_likelihood or 0.0], dtype=torch.float64,
                          device=stats.start.device)
    all_reduce_sum_([stats.start, stats.pairs, stats.emit, totals], context)
    stats.log_likelihood, stats.n_tokens = float(totals[0]), int(round(float(totals[1])))
    return None if val_log_likelihood is None else float(totals[2])
