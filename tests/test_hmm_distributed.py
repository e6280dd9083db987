"""EM across processes (gloo, 2 CPU processes): the statistics and the model of a single process.

Two processes cut the data into other batches than one process does (each its share,
sorted by length), so the same expected counts are summed in another order. In float64
that moves nothing that matters: statistics, log-likelihoods and parameters after three
iterations agree within 1e-9 relative (measured: at most 2.2e-15, dense and blocked). In
float32 (the default) they do not: measured on this data, the statistics differ by up to
5.2e-7 relative (float32 partial sums of the transition pairs and marginals, in other
batches), the parameters after three iterations by up to 1.1e-6 and the log-likelihoods
by 2.7e-8 — which is why the exactness checks use `dtype="float64"` and the float32 run
is only held to 1e-4. About 2.5 s (two forked processes).
"""

import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from storylab.distributed import close_distributed, init_distributed
from storylab.hmm import CategoricalHMM

VOCAB, STATES, BATCH_TOKENS = 6, 4, 50
MODELS = {
    "dense64": dict(dtype="float64"),
    "blocked64": dict(dtype="float64", emission_blocks=2),  # token blocks by k-means on every process
    "dense32": dict(),
}


def make(label: str) -> CategoricalHMM:
    return CategoricalHMM(STATES, VOCAB, seed=0, device="cpu", **MODELS[label])


def data():
    rng = np.random.default_rng(3)
    seqs = [rng.integers(0, VOCAB, size=n) for n in rng.integers(1, 40, size=60)]
    val = [rng.integers(0, VOCAB, size=n) for n in rng.integers(1, 30, size=9)]
    return seqs, val


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RecordingTracker:
    def __init__(self):
        self.rows = []

    def replay(self, history, step_field, scalars):
        self.rows.extend(history)

    def log(self, step, values):
        self.rows.append(values)


def stats_arrays(stats) -> dict:
    return {"start": stats.start.numpy(), "pairs": stats.pairs.double().numpy(), "emit": stats.emit.numpy(),
            "totals": np.array([stats.log_likelihood, stats.n_tokens])}


def tables(hmm) -> dict:
    return {name: getattr(hmm, name).double().numpy().copy() for name in ("start", "trans", "emit")}


def fit_args(folder, **extra):
    seqs, val = data()
    return dict(sequences=seqs, n_iter=3, val=val, batch_tokens=BATCH_TOKENS, tol=0, progress=False, checkpoint=folder, **extra)


def _worker(rank: int, world: int, port: int, folder: str, returned) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    context = init_distributed("cpu")
    seqs, _ = data()
    out = {}
    for label in MODELS:
        hmm, tracker = make(label), RecordingTracker()
        stats = hmm.expected_counts(seqs, batch_tokens=BATCH_TOKENS, distributed=context)
        history = hmm.fit(**fit_args(f"{folder}/two_{label}", tracker=tracker, distributed=context))
        out[label] = {"stats": stats_arrays(stats), "tables": tables(hmm), "history": list(history), "tracked": len(tracker.rows)}
    resumed = make("dense64")  # a checkpoint one process wrote, resumed by two
    resumed.fit(**{**fit_args(f"{folder}/from_one", distributed=context), "n_iter": 4})
    out["resumed"] = tables(resumed)
    returned[rank] = out
    close_distributed(context)


def relative_gap(a: dict, b: dict) -> float:
    """The largest elementwise |a - b| / |b| over every array (every count and probability is >= 0, a sum of like terms)."""
    gaps = [np.abs(a[k] - b[k]) / np.maximum(np.abs(b[k]), 1e-300) for k in b]
    return max(float(g.max()) for g in gaps)


def test_two_processes_sum_the_statistics_of_one_and_fit_the_same_model(tmp_path):
    seqs, _ = data()
    single = {}
    for label in MODELS:
        hmm = make(label)
        stats = hmm.expected_counts(seqs, batch_tokens=BATCH_TOKENS)
        history = hmm.fit(**fit_args(tmp_path / f"one_{label}"))
        single[label] = {"stats": stats_arrays(stats), "tables": tables(hmm), "history": list(history)}
    make("dense64").fit(**{**fit_args(tmp_path / "from_one"), "n_iter": 2})
    returned = mp.Manager().dict()
    # fork: the children inherit the imported library (conftest runs torch with one thread, so no OpenMP pool is forked)
    mp.start_processes(_worker, args=(2, free_port(), str(tmp_path), returned), nprocs=2, join=True, start_method="fork")
    zero, one = returned[0], returned[1]

    gaps = {}
    for label in MODELS:
        for key in ("stats", "tables"):
            assert all(np.array_equal(zero[label][key][k], one[label][key][k]) for k in zero[label][key])  # one model everywhere
            gaps[label, key] = relative_gap(zero[label][key], single[label][key])
        two_rows, one_rows = zero[label]["history"], single[label]["history"]
        for field in ("train_log_likelihood", "val_log_likelihood"):
            gaps[label, field] = max(abs(a[field] - b[field]) / abs(b[field]) for a, b in zip(two_rows, one_rows))
        assert (zero[label]["tracked"], one[label]["tracked"]) == (3, 0)  # rank 0 alone reports
    print("largest relative gaps, 2 processes vs 1:", {f"{a}/{b}": f"{g:.1e}" for (a, b), g in gaps.items()})
    assert all(g < 1e-9 for (label, _), g in gaps.items() if label.endswith("64"))
    assert all(g < 1e-4 for (label, _), g in gaps.items() if label.endswith("32"))

    longer = make("dense64")
    longer.fit(**{**fit_args(tmp_path / "longer"), "n_iter": 4})
    assert relative_gap(zero["resumed"], tables(longer)) < 1e-9  # a one-process checkpoint resumed by two
    resumed = make("dense64")  # and the two processes' checkpoint resumed by one
    history = resumed.fit(**{**fit_args(tmp_path / "two_dense64"), "n_iter": 4})
    assert [row["iteration"] for row in history] == [1, 2, 3, 4]
    assert relative_gap(tables(resumed), tables(longer)) < 1e-9


def test_a_bad_distributed_argument_is_a_one_line_error_before_any_compute():
    seqs, _ = data()
    with pytest.raises(ValueError, match="^distributed: expected True, False or a DistributedContext, got 'yes'$"):
        make("dense64").fit(seqs, distributed="yes", progress=False)
