"""EM per steady iteration: storylab vs pomegranate DenseHMM vs hmmlearn, and storylab's blocked emissions.

    .venv/bin/python benchmarks/hmm_em.py                    # 100 states, vocab 1000, vs the peers
    .venv/bin/python benchmarks/hmm_em.py --quick            # a smaller, faster look
    .venv/bin/python benchmarks/hmm_em.py --states 256 --vocab 1000 --skip-peers
    .venv/bin/python benchmarks/hmm_em.py --blocked --threads 2 --iterations 4   # Chiu & Rush blocks: K=1,024 dense vs blocked, K=4,096/64, K=16,384/128
    .venv/bin/python benchmarks/hmm_em.py --big              # 5M tokens, 100 states: s/iter, peak RSS
    .venv/bin/python benchmarks/hmm_em.py --big --big-states 256 --big-iterations 1

Every implementation is timed per *steady* EM iteration: it is warmed up first (one fit
of one iteration), then a fit of n iterations (--iterations) and a fit of one are timed
and the rate is tokens x (n - 1) / (time of n - time of one). One-off costs —
pomegranate's first call (about 3x slower than its later ones), storylab's packing of
batches, a blocked model's assignment of tokens to blocks and per-batch block indices —
cancel out. A model is built before its timer starts. Each fit length's time is the
best of --repeats.

All implementations start from the same random parameters and see token data sampled
from one random HMM, cut into sequences of story-like lengths (uniform in
[--min-length, --max-length]). The peers are slow, so they get a smaller slice
(--peer-tokens) and the comparison is in tokens/s per EM iteration. pomegranate is
given equal-length sequences (--peer-length) in one 3-D tensor, its fastest layout;
hmmlearn gets the variable-length slice as it is. The processor's fp32 matmul peak is
measured in the same process with a large square matmul and with the `(B, K) @ (K, K)`
shape of one forward step, and storylab's rate is reported as a fraction of both,
counting 6·K² FLOPs per token (forward, backward and transition-statistics matmuls).

--blocked runs each case in a fresh process (so each has its own peak RSS) on the same
data: dense K=1,024 (the baseline) and blocked K=1,024 with 16 blocks on
--compare-tokens, then K=4,096 with 64 blocks and K=16,384 with 128 blocks on
--blocked-tokens. A blocked step is a gather-and-sum of one k×k transition block per
token (k = K/M): 2k² FLOPs on 4k² bytes, far below the processor's FLOP-per-byte
balance, so memory bandwidth binds, not the matmul peak. The script measures both
limits (a large-array sum for read bandwidth) and prints each case's fraction of each,
counting 2 × 4k² bytes per token (forward and backward each read the token's block).

The machine is shared and timing is noisy: the ratios are what to read. When other
processes keep the cores busy, torch's OpenMP threads stall waiting for each other
(tens of times slower); measure with --threads 1 there, and with --threads 2 on a
quiet machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from storylab.devices import resolve_device
from storylab.hmm import CategoricalHMM


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--states", type=int, default=100, help="hidden states K")
    parser.add_argument("--vocab", type=int, default=1000, help="vocabulary size V")
    parser.add_argument("--tokens", type=int, default=1_000_000, help="tokens for storylab")
    parser.add_argument("--peer-tokens", type=int, default=20_000, help="tokens for pomegranate and hmmlearn")
    parser.add_argument("--peer-length", type=int, default=500, help="pomegranate's (equal) sequence length")
    parser.add_argument("--min-length", type=int, default=200)
    parser.add_argument("--max-length", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2, help="best of this many timings")
    parser.add_argument("--iterations", type=int, default=3, help="n: the long fit's EM iterations (steady rate from n minus one)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip-peers", action="store_true", help="time storylab and the matmul peak only")
    parser.add_argument("--quick", action="store_true", help="tokens=200k, peer-tokens=5k, repeats=1")
    parser.add_argument("--big", action="store_true", help="EM on a 5M-token corpus (--big-states) in a subprocess")
    parser.add_argument("--big-tokens", type=int, default=5_000_000)
    parser.add_argument("--big-iterations", type=int, default=2)
    parser.add_argument("--big-states", type=int, default=100)
    parser.add_argument("--big-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--blocked", action="store_true", help="blocked emissions: K=1,024 dense vs blocked, K=4,096/64, K=16,384/128")
    parser.add_argument("--blocked-tokens", type=int, default=1_000_000, help="tokens for the K=4,096 and K=16,384 blocked cases")
    parser.add_argument("--compare-tokens", type=int, default=200_000, help="tokens for the K=1,024 dense vs blocked comparison")
    parser.add_argument("--blocked-vocab", type=int, default=1024, help="vocabulary of the blocked cases (a BPE-1024 tokenizer's)")
    parser.add_argument("--case-child", nargs=3, type=int, metavar=("K", "M", "TOKENS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.tokens, args.peer_tokens, args.repeats = 200_000, 5_000, 1
    for name in ("states", "vocab", "tokens", "peer_tokens", "peer_length", "min_length", "repeats", "blocked_tokens", "compare_tokens", "blocked_vocab"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.iterations < 2:
        parser.error("--iterations must be >= 2 (the steady rate is a fit of n minus a fit of one)")
    if args.max_length < args.min_length:
        parser.error("--max-length must be >= --min-length")
    return args


def synthetic_sequences(n_tokens: int, vocab_size: int, min_length: int, max_length: int, seed: int = 0) -> list[np.ndarray]:
    """Token sequences sampled from a random 32-state HMM, lengths uniform in [min, max]."""
    rng = np.random.default_rng(seed)
    lengths = []
    while sum(lengths) < n_tokens:
        lengths.append(int(rng.integers(min_length, max_length + 1)))
    source = CategoricalHMM(n_states=32, vocab_size=vocab_size, seed=seed, device="cpu", concentration=0.1)
    tokens, _ = source.sample(len(lengths), max(lengths), seed=seed)
    return [tokens[i, :length] for i, length in enumerate(lengths)]


def best_time(run, repeats: int, device: torch.device | None = None) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - started)
    return best


def steady_rate(make, fit, n_tokens: int, iterations: int, repeats: int) -> float:
    """Tokens/s per steady EM iteration: warm up, then (best fit of n) minus (best fit of one).

    `make()` builds a fresh model (not timed), `fit(model, n)` runs n EM iterations. The
    best of `repeats` is taken for each fit length separately: on a shared machine a
    difference of two single timings can even come out negative.
    """
    fit(make(), 1)  # warm-up: first-call costs (allocator, thread pools, pomegranate's set-up)
    best = {1: float("inf"), iterations: float("inf")}
    for _ in range(repeats):
        for n in best:
            model = make()
            started = time.perf_counter()
            fit(model, n)
            best[n] = min(best[n], time.perf_counter() - started)
            del model
    per_iteration_s = (best[iterations] - best[1]) / (iterations - 1)
    if per_iteration_s <= 0:
        raise RuntimeError(f"timing noise exceeds {iterations - 1} EM iterations ({best}); raise --iterations or --repeats")
    return n_tokens / per_iteration_s


def time_storylab(seqs, args) -> float:
    return steady_rate(
        lambda: CategoricalHMM(args.states, args.vocab, seed=1, device=args.device),
        lambda model, n: model.fit(seqs, n_iter=n, tol=0.0, progress=False),
        sum(len(s) for s in seqs), args.iterations, args.repeats,
    )


def time_pomegranate(seqs, args) -> float:
    flat = np.concatenate(seqs)
    n_rows = max(1, len(flat) // args.peer_length)
    blob = torch.as_tensor(flat[: n_rows * args.peer_length].reshape(n_rows, args.peer_length, 1))
    init = CategoricalHMM(args.states, args.vocab, seed=1, device="cpu")

    def fit(model, n):
        model.max_iter, model.tol = n, 0.0  # tol 0: EM never improves by less, so all n iterations run
        model.fit(blob)

    return steady_rate(init.to_pomegranate, fit, blob.numel(), args.iterations, args.repeats)


def time_hmmlearn(seqs, args, implementation: str) -> float:
    import logging

    from hmmlearn.hmm import CategoricalHMM as HmmlearnHMM

    logging.getLogger("hmmlearn").setLevel(logging.ERROR)  # its "degenerate solution" warning on every fit of the small slice

    init = CategoricalHMM(args.states, args.vocab, seed=1, device="cpu")
    x = np.concatenate(seqs).reshape(-1, 1)
    lengths = [len(s) for s in seqs]

    def make():
        model = HmmlearnHMM(n_components=args.states, n_features=args.vocab, tol=-np.inf, init_params="", params="ste", implementation=implementation)
        model.startprob_ = init.start.double().numpy()
        model.transmat_ = init.trans.double().numpy()
        model.emissionprob_ = init.emit.double().numpy()
        return model

    def fit(model, n):
        model.n_iter = n
        model.fit(x, lengths)

    return steady_rate(make, fit, len(x), args.iterations, args.repeats)


def matmul_peaks_gflops(n_states: int, repeats: int, device: torch.device | None = None) -> tuple[float, float]:
    """fp32 GFLOP/s of a 4096² square matmul and of a chain of (1024, K) @ (K, K) steps."""
    square = torch.randn(4096, 4096, device=device)
    square_s = best_time(lambda: square @ square, repeats + 1, device)
    rows, steps = 1024, 200
    trans = torch.rand(n_states, n_states, device=device)
    chain = torch.rand(steps, rows, n_states, device=device)

    def run_chain():
        for t in range(1, steps):
            torch.mm(chain[t - 1], trans, out=chain[t])
            chain[t].div_(n_states)  # keep values in range without changing the matmul's shape

    chain_s = best_time(run_chain, repeats + 1, device)
    return 2 * 4096**3 / square_s / 1e9, 2 * rows * n_states**2 * (steps - 1) / chain_s / 1e9


def run_comparison(args) -> None:
    seqs = synthetic_sequences(args.tokens, args.vocab, args.min_length, args.max_length)
    peer_seqs = []
    for seq in seqs:
        if sum(len(s) for s in peer_seqs) >= args.peer_tokens:
            break
        peer_seqs.append(seq)
    flops_per_token = 6 * args.states**2
    print(f"# {args.states} states, vocab {args.vocab}, torch threads {torch.get_num_threads()}, device {args.device}, "
          f"per steady EM iteration (fit of {args.iterations} minus fit of 1)")
    square_gflops, step_gflops = matmul_peaks_gflops(args.states, args.repeats, resolve_device(args.device))
    rates = {"storylab": (time_storylab(seqs, args), sum(len(s) for s in seqs))}
    if not args.skip_peers:
        rates["pomegranate DenseHMM"] = (time_pomegranate(peer_seqs, args), sum(len(s) for s in peer_seqs))
        rates["hmmlearn scaling"] = (time_hmmlearn(peer_seqs, args, "scaling"), sum(len(s) for s in peer_seqs))
        rates["hmmlearn log"] = (time_hmmlearn(peer_seqs, args, "log"), sum(len(s) for s in peer_seqs))
    ours = rates["storylab"][0]
    print(f"{'implementation':<22}{'tokens':>10}{'tokens/s':>14}{'storylab is':>14}")
    for name, (rate, n_tokens) in rates.items():
        ratio = "" if name == "storylab" else f"{ours / rate:.0f}x"
        print(f"{name:<22}{n_tokens:>10,}{rate:>14,.0f}{ratio:>14}")
    achieved = ours * flops_per_token / 1e9
    print(f"storylab: {achieved:.1f} GFLOP/s counting 6*K^2 per token")
    print(f"fp32 matmul peak: square 4096^2 {square_gflops:.1f} GFLOP/s -> {achieved / square_gflops:.0%} of peak; "
          f"(1024,{args.states})@({args.states},{args.states}) steps {step_gflops:.1f} GFLOP/s -> {achieved / step_gflops:.0%}")


def run_big_child(args) -> None:
    """In a fresh process: EM on a big random-token corpus; prints one JSON line."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(args.min_length, args.max_length + 1, size=args.big_tokens // ((args.min_length + args.max_length) // 2) + 1)
    flat = rng.integers(0, args.vocab, size=int(lengths.sum()), dtype=np.int64)
    seqs = np.split(flat, np.cumsum(lengths)[:-1])
    hmm = CategoricalHMM(args.big_states, args.vocab, seed=0, device=args.device)
    history = hmm.fit(seqs, n_iter=args.big_iterations, tol=0.0, progress=False)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n_tokens": int(lengths.sum()), "s_per_iteration": [round(r["elapsed_s"], 2) for r in history], "peak_rss_mb": round(peak_rss_mb)}))


def run_big(args) -> None:
    command = [sys.executable, __file__, "--big-child", "--vocab", str(args.vocab), "--big-tokens", str(args.big_tokens),
               "--big-iterations", str(args.big_iterations), "--big-states", str(args.big_states), "--device", args.device, "--min-length", str(args.min_length), "--max-length", str(args.max_length)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"# big: {report['n_tokens']:,} tokens, {args.big_states} states, vocab {args.vocab}")
    print(f"s per EM iteration: {report['s_per_iteration']}  (target at 100 states: < 5)")
    print(f"peak RSS: {report['peak_rss_mb']} MB  (target < 2048)")


BLOCKED_CASES = (  # (label, K, M, which token count)
    ("dense K=1,024 (baseline)", 1024, 1, "compare_tokens"),
    ("blocked K=1,024, M=16", 1024, 16, "compare_tokens"),
    ("blocked K=4,096, M=64", 4096, 64, "blocked_tokens"),
    ("blocked K=16,384, M=128", 16384, 128, "blocked_tokens"),
)
BLOCKED_TARGETS = {(4096, 64): (200_000, None), (16384, 128): (50_000, 8192)}  # tokens/s at least, peak RSS MB below


def read_bandwidth_gbs(repeats: int, device: torch.device) -> float:
    """GB/s of a sum over a 1 GiB float32 array: the memory read bandwidth torch reaches here."""
    array = torch.ones(2**28, device=device)
    return array.numel() * 4 / best_time(lambda: array.sum(), repeats + 1, device) / 1e9


def run_case_child(args) -> None:
    """In a fresh process: one blocked (or dense) case; prints one JSON line."""
    n_states, n_blocks, n_tokens = args.case_child
    seqs = synthetic_sequences(n_tokens, args.blocked_vocab, args.min_length, args.max_length)
    rate = steady_rate(
        lambda: CategoricalHMM(n_states, args.blocked_vocab, seed=1, device=args.device, emission_blocks=n_blocks),
        lambda model, n: model.fit(seqs, n_iter=n, tol=0.0, progress=False),
        sum(len(s) for s in seqs), args.iterations, args.repeats,
    )
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    device = resolve_device(args.device)
    peak_gpu_mb = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    print(json.dumps({"tokens_per_s": rate, "n_tokens": sum(len(s) for s in seqs), "peak_rss_mb": round(peak_rss_mb),
                      "peak_gpu_mb": None if peak_gpu_mb is None else round(peak_gpu_mb)}))


def run_blocked(args) -> None:
    threads = torch.get_num_threads()
    device = resolve_device(args.device)
    bandwidth = read_bandwidth_gbs(args.repeats, device)
    square_gflops, _ = matmul_peaks_gflops(64, args.repeats, device)
    print(f"# blocked emissions, vocab {args.blocked_vocab}, torch threads {threads}, device {device}, "
          f"per steady EM iteration (fit of {args.iterations} minus fit of 1, best of {args.repeats})")
    print(f"# machine limits measured here: fp32 matmul {square_gflops:.0f} GFLOP/s (4096^2 square), read bandwidth {bandwidth:.1f} GB/s (1 GiB sum)")
    print(f"{'case':<26}{'tokens':>11}{'tokens/s':>12}{'peak RSS MB':>13}{'GPU MB':>9}{'GB/s blocks':>13}{'% bandwidth':>13}{'% matmul':>10}  target")
    results = {}
    for label, n_states, n_blocks, tokens_arg in BLOCKED_CASES:
        command = [sys.executable, __file__, "--case-child", str(n_states), str(n_blocks), str(getattr(args, tokens_arg)),
                   "--blocked-vocab", str(args.blocked_vocab), "--iterations", str(args.iterations), "--repeats", str(args.repeats),
                   "--device", args.device, "--min-length", str(args.min_length), "--max-length", str(args.max_length), "--threads", str(threads)]
        report = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        live = n_states // n_blocks
        rate = report["tokens_per_s"]
        flops_fraction = rate * 6 * live**2 / 1e9 / square_gflops
        # blocked: forward and backward each read one live x live block per token (counted as if from
        # memory: above 100%, frequent block pairs come from cache). Dense: one K x K table serves
        # every sequence of a step, so it is matmul-bound and bytes per token do not apply.
        block_gbs = rate * 2 * 4 * live**2 / 1e9 if n_blocks > 1 else None
        target = ""
        if (n_states, n_blocks) in BLOCKED_TARGETS:
            min_rate, max_rss = BLOCKED_TARGETS[(n_states, n_blocks)]
            peak_mb = report["peak_gpu_mb"] if report["peak_gpu_mb"] is not None else report["peak_rss_mb"]
            met = rate >= min_rate and (max_rss is None or peak_mb < max_rss)
            target = f">= {min_rate:,} tok/s" + (f", < {max_rss:,} MB" if max_rss else "") + (": met" if met else ": NOT met")
        results[(n_states, n_blocks)] = rate
        gpu_mb = "-" if report["peak_gpu_mb"] is None else f"{report['peak_gpu_mb']:,}"
        gbs, fraction = ("-", "-") if block_gbs is None else (f"{block_gbs:.1f}", f"{block_gbs / bandwidth:.0%}")
        print(f"{label:<26}{report['n_tokens']:>11,}{rate:>12,.0f}{report['peak_rss_mb']:>13,}{gpu_mb:>9}{gbs:>13}{fraction:>13}{flops_fraction:>10.0%}  {target}", flush=True)
    print(f"blocked (M=16) vs dense at K=1,024 on the same data: {results[(1024, 16)] / results[(1024, 1)]:.1f}x")


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.big_child:
        run_big_child(args)
    elif args.case_child:
        run_case_child(args)
    elif args.big:
        run_big(args)
    elif args.blocked:
        run_blocked(args)
    else:
        run_comparison(args)


if __name__ == "__main__":
    main()
