"""The CUDA path in one short script: the same code as on the CPU, checked on a GPU.

    python benchmarks/gpu_check.py            # a few minutes on one GPU; prints one line per check

1. HMM EM: dense and blocked models give the same likelihood and the same EM step on
   CUDA as on the CPU (float32 tolerances), and their EM speed on the GPU;
2. transformer training: `train()` on CUDA (dense, top-k, MoE, masked, LSTM) runs, and a
   resumed run ends where an unbroken one does;
3. training across processes: two processes on the GPU (gloo when they share one GPU,
   which NCCL refuses; NCCL with one process per GPU) follow the single-process loss curve;
4. EM across processes: the same statistics and parameters as one process.

It needs only what the GPU machines have (torch, numpy, safetensors, transformers), not the
corpora stack: the data are synthetic token streams.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.multiprocessing as mp

from storylab.hmm import CategoricalHMM
from storylab.transformer import ModelConfig, TrainConfig, train

V = 64
RECIPE = TrainConfig(batch_size=8, base_lr=3e-3, min_lr=3e-4, warmup_steps=5, decay_steps=40, max_steps=40,
                     eval_every=20, eval_tokens=2048, save_every=20, seed=0)
MODEL = ModelConfig(n_layers=2, d_model=64, n_heads=4, n_ctx=64)


def stream(n: int = 50_000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)  # a Markov chain, so there is something to learn
    trans = rng.dirichlet(np.full(V, 0.1), size=V)
    out = np.empty(n, dtype=np.int64)
    out[0] = 0
    for i in range(1, n):
        out[i] = rng.choice(V, p=trans[out[i - 1]])
    return out


def sequences(n: int, seed: int = 1) -> list[np.ndarray]:
    data = stream(n * 100, seed)
    return [data[i : i + 100] for i in range(0, len(data), 100)]


def check(name: str, ok: bool, detail: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)
    return ok


def hmm_checks() -> list[bool]:
    results = []
    seqs = sequences(200)
    for label, blocks in (("dense K=64", 1), ("blocked K=64 M=8", 8)):
        cpu = CategoricalHMM(64, V, seed=0, device="cpu", emission_blocks=blocks)
        gpu = CategoricalHMM(64, V, seed=0, device="cuda", emission_blocks=blocks)
        cpu.fit(seqs, n_iter=2, progress=False)
        gpu.fit(seqs, n_iter=2, progress=False)
        ll_cpu, ll_gpu = cpu.log_likelihood(seqs).sum(), gpu.log_likelihood(seqs).sum()
        emit_gap = float((cpu.emit - gpu.emit.cpu()).abs().max())
        results.append(check(f"HMM {label} on CUDA equals CPU", abs(ll_cpu - ll_gpu) / abs(ll_cpu) < 1e-5 and emit_gap < 1e-4,
                             f"log-likelihood {ll_gpu:.6g} vs {ll_cpu:.6g}, emission gap {emit_gap:.1e}"))
    for k, m, n_tokens in ((1024, 1, 2_000_000), (4096, 64, 5_000_000), (16384, 128, 5_000_000)):
        data = sequences(n_tokens // 100, seed=2)
        hmm = CategoricalHMM(k, V * 16, seed=0, device="cuda", emission_blocks=m)
        data = [s * 16 + s % 16 for s in data]  # spread over the larger vocabulary
        hmm.fit(data, n_iter=1, progress=False)  # warm-up: packing, block assignment
        torch.cuda.synchronize()
        started = time.perf_counter()
        hmm.fit(data, n_iter=2, progress=False)
        torch.cuda.synchronize()
        rate = n_tokens * 2 / (time.perf_counter() - started)
        results.append(check(f"HMM EM speed K={k} M={m}", rate > 0, f"{rate:,.0f} tokens/s per iteration on the GPU"))
    return results


def training_checks(folder: Path) -> list[bool]:
    results = []
    train_stream, val_stream = stream(), stream(5_000, seed=9)
    options = {"dense": MODEL, "top-k 8": replace(MODEL, attention="topk", attention_k=8),
               "MoE 4x1": replace(MODEL, mlp="moe", n_experts=4, experts_per_token=1),
               "masked LM": replace(MODEL, objective="masked", mask_id=V), "LSTM": replace(MODEL, architecture="lstm")}
    for label, config in options.items():
        vocab = V + 1 if config.objective == "masked" else V
        started = time.perf_counter()
        result = train(config, RECIPE, train_stream, val_stream, folder / label, vocab_size=vocab, eot_id=0,
                       device="cuda", progress=False)
        first, last = result.log["train_loss"].iloc[0], result.log["train_loss"].iloc[-1]
        results.append(check(f"train() on CUDA, {label}", last < first and next(result.model.parameters()).is_cuda,
                             f"loss {first:.3f} -> {last:.3f}, {result.train_tokens_per_s:,.0f} tokens/s, "
                             f"{time.perf_counter() - started:.1f} s"))
    half = train(MODEL, replace(RECIPE, max_steps=20), train_stream, val_stream, folder / "resumed", vocab_size=V, eot_id=0,
                 device="cuda", progress=False)
    resumed = train(MODEL, RECIPE, train_stream, val_stream, folder / "resumed", vocab_size=V, eot_id=0, device="cuda",
                    progress=False)
    whole = train(MODEL, RECIPE, train_stream, val_stream, folder / "whole", vocab_size=V, eot_id=0, device="cuda",
                  progress=False)
    gap = max(float((a - b).abs().max()) for a, b in zip(resumed.model.state_dict().values(), whole.model.state_dict().values()))
    results.append(check("a resumed CUDA run ends where an unbroken one does", gap < 1e-5 and half.train_tokens > 0,
                         f"largest weight difference {gap:.1e} (CUDA kernels may reorder sums)"))
    return results


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, folder: str, backend: str) -> None:
    from storylab.distributed import close_distributed, init_distributed

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), STORYLAB_DIST_BACKEND=backend)
    context = init_distributed("cuda")
    train(MODEL, RECIPE, stream(), stream(5_000, seed=9), folder, vocab_size=V, eot_id=0, progress=False,
          distributed=context)
    close_distributed(context)


def distributed_checks(folder: Path) -> list[bool]:
    import json

    backend = "nccl" if torch.cuda.device_count() >= 2 else "gloo"  # NCCL refuses two processes on one GPU
    single = train(MODEL, RECIPE, stream(), stream(5_000, seed=9), folder / "one", vocab_size=V, eot_id=0, device="cuda",
                   progress=False)
    mp.start_processes(_ddp_worker, args=(2, _free_port(), str(folder / "two"), backend), nprocs=2, join=True,
                       start_method="spawn")
    rows = [json.loads(line) for line in (folder / "two" / "train_log.jsonl").read_text().splitlines()]
    gap = max(abs(a - b["train_loss"]) for a, b in zip(single.log["train_loss"], rows))
    return [check(f"DDP on CUDA, 2 processes ({backend}) follow 1 process", gap < 1e-3 and len(rows) == RECIPE.max_steps,
                  f"largest train-loss difference {gap:.1e} over {len(rows)} steps")]


def _em_worker(rank: int, world: int, port: int, folder: str, backend: str) -> None:
    from storylab.distributed import close_distributed, init_distributed

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), STORYLAB_DIST_BACKEND=backend)
    context = init_distributed("cuda")
    hmm = CategoricalHMM(64, V, seed=0, device=context.device, dtype="float64")
    hmm.fit(sequences(400), n_iter=3, tol=0, progress=False, distributed=context)
    if rank == 0:
        hmm.save(folder)
    close_distributed(context)


def distributed_em_checks(folder: Path) -> list[bool]:
    """float64 tables, so summing the statistics in another order moves nothing that matters."""
    backend = "nccl" if torch.cuda.device_count() >= 2 else "gloo"
    single = CategoricalHMM(64, V, seed=0, device="cuda", dtype="float64")
    single.fit(sequences(400), n_iter=3, tol=0, progress=False)
    mp.start_processes(_em_worker, args=(2, _free_port(), str(folder / "em"), backend), nprocs=2, join=True,
                       start_method="spawn")
    two = CategoricalHMM.load(folder / "em", device="cuda")
    gap = max(float((getattr(single, n) - getattr(two, n)).abs().max()) for n in ("start", "trans", "emit"))
    return [check(f"EM on CUDA, 2 processes ({backend}) equal 1 process (float64)", gap < 1e-9 and len(two.history) == 3,
                  f"largest parameter difference {gap:.1e} after {len(two.history)} iterations")]


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device here: nothing to check")
        return 1
    print(f"{torch.cuda.get_device_name()} , torch {torch.__version__}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = hmm_checks() + training_checks(folder) + distributed_checks(folder) + distributed_em_checks(folder)
    print(f"{sum(results)} of {len(results)} checks passed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
