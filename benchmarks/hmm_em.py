"""One Baum–Welch EM iteration: storylab vs pomegranate DenseHMM vs hmmlearn (log, scaling).

    .venv/bin/python benchmarks/hmm_em.py                    # 100 states, vocab 1000
    .venv/bin/python benchmarks/hmm_em.py --quick            # a smaller, faster look
    .venv/bin/python benchmarks/hmm_em.py --states 256 --vocab 1000 --skip-peers
    .venv/bin/python benchmarks/hmm_em.py --big              # 5M tokens, 100 states: s/iter, peak RSS
    .venv/bin/python benchmarks/hmm_em.py --big --big-states 256 --big-iterations 1

All implementations start from the same random parameters and see token data sampled
from one random HMM, cut into sequences of story-like lengths (uniform in
[--min-length, --max-length]). The peers are slow, so they get a smaller slice
(--peer-tokens) and the comparison is in tokens/s per EM iteration. pomegranate is
given equal-length sequences (--peer-length) in one 3-D tensor, its fastest layout;
hmmlearn gets the variable-length slice as it is. The processor's fp32 matmul peak is
measured in the same process with a large square matmul and with the `(B, K) @ (K, K)`
shape of one forward step, and storylab's rate is reported as a fraction of both,
counting 6·K² FLOPs per token (forward, backward and transition-statistics matmuls).

The machine is shared and timing is noisy: each measurement is the best of --repeats,
and the ratios are what to read. When other processes keep the cores busy, torch's
OpenMP threads stall waiting for each other (tens of times slower); measure with
--threads 1 there, and with the default threads on a quiet machine.
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
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip-peers", action="store_true", help="time storylab and the matmul peak only")
    parser.add_argument("--quick", action="store_true", help="tokens=200k, peer-tokens=5k, repeats=1")
    parser.add_argument("--big", action="store_true", help="EM on a 5M-token corpus (--big-states) in a subprocess")
    parser.add_argument("--big-tokens", type=int, default=5_000_000)
    parser.add_argument("--big-iterations", type=int, default=2)
    parser.add_argument("--big-states", type=int, default=100)
    parser.add_argument("--big-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.tokens, args.peer_tokens, args.repeats = 200_000, 5_000, 1
    for name in ("states", "vocab", "tokens", "peer_tokens", "peer_length", "min_length", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
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


def best_time(run, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def time_storylab(seqs, args) -> float:
    n_tokens = sum(len(s) for s in seqs)

    def run():
        CategoricalHMM(args.states, args.vocab, seed=1, device=args.device).fit(seqs, n_iter=1, progress=False)

    return n_tokens / best_time(run, args.repeats)


def time_pomegranate(seqs, args) -> float:
    flat = np.concatenate(seqs)
    n_rows = max(1, len(flat) // args.peer_length)
    blob = torch.as_tensor(flat[: n_rows * args.peer_length].reshape(n_rows, args.peer_length, 1))
    init = CategoricalHMM(args.states, args.vocab, seed=1, device="cpu")

    def run():
        model = init.to_pomegranate()
        model.max_iter = 1
        model.fit(blob)

    return blob.numel() / best_time(run, args.repeats)


def time_hmmlearn(seqs, args, implementation: str) -> float:
    from hmmlearn.hmm import CategoricalHMM as HmmlearnHMM

    init = CategoricalHMM(args.states, args.vocab, seed=1, device="cpu")
    x = np.concatenate(seqs).reshape(-1, 1)
    lengths = [len(s) for s in seqs]

    def run():
        model = HmmlearnHMM(n_components=args.states, n_features=args.vocab, n_iter=1, tol=0.0, init_params="", params="ste", implementation=implementation)
        model.startprob_ = init.start.double().numpy()
        model.transmat_ = init.trans.double().numpy()
        model.emissionprob_ = init.emit.double().numpy()
        model.fit(x, lengths)

    return len(x) / best_time(run, args.repeats)


def matmul_peaks_gflops(n_states: int, repeats: int) -> tuple[float, float]:
    """fp32 GFLOP/s of a 4096² square matmul and of a chain of (1024, K) @ (K, K) steps."""
    square = torch.randn(4096, 4096)
    square_s = best_time(lambda: square @ square, repeats + 1)
    rows, steps = 1024, 200
    trans = torch.rand(n_states, n_states)
    chain = torch.rand(steps, rows, n_states)

    def run_chain():
        for t in range(1, steps):
            torch.mm(chain[t - 1], trans, out=chain[t])
            chain[t].div_(n_states)  # keep values in range without changing the matmul's shape

    chain_s = best_time(run_chain, repeats + 1)
    return 2 * 4096**3 / square_s / 1e9, 2 * rows * n_states**2 * (steps - 1) / chain_s / 1e9


def run_comparison(args) -> None:
    seqs = synthetic_sequences(args.tokens, args.vocab, args.min_length, args.max_length)
    peer_seqs = []
    for seq in seqs:
        if sum(len(s) for s in peer_seqs) >= args.peer_tokens:
            break
        peer_seqs.append(seq)
    flops_per_token = 6 * args.states**2
    print(f"# {args.states} states, vocab {args.vocab}, torch threads {torch.get_num_threads()}, device {args.device}")
    square_gflops, step_gflops = matmul_peaks_gflops(args.states, args.repeats)
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


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.big_child:
        run_big_child(args)
    elif args.big:
        run_big(args)
    else:
        run_comparison(args)


if __name__ == "__main__":
    main()
