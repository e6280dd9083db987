"""Training throughput of storylab's transformer against plain PyTorch and the alternatives.

    .venv/bin/python benchmarks/train_throughput.py            # ~1M-parameter model, a minute or two
    .venv/bin/python benchmarks/train_throughput.py --quick    # tiny model, a few seconds
    .venv/bin/python benchmarks/train_throughput.py --threads 1 --clock cpu   # on a busy shared machine

Every path trains the same shape (4 layers, d_model 128, 4 heads, d_mlp 512, vocab 512)
with the same AdamW, batch and clipping, from random windows of one token stream:

- storylab `train()`: the whole call, so schedule, logging, a final evaluation and a
  checkpoint are all paid for;
- plain PyTorch: a bare loop over `StoryTransformer` (fused `scaled_dot_product_attention`),
  the reference (ratio 1.00);
- Hugging Face GPT-2 (`GPT2LMHeadModel`, sdpa attention) built from a config;
- TransformerLens native model trained directly (unfused attention, no hooks);
- TransformerLens `TransformerBridge.boot_native` trained through the bridge (hooks).

Repetitions are interleaved (each round runs every path once) so load from other
processes spreads over all of them; the table shows the median tokens/s of the rounds
and its ratio to plain PyTorch. Target: storylab >= 0.9x plain.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from storylab.devices import resolve_device
from storylab.transformer import ModelConfig, StoryTransformer, TrainConfig, train
from storylab.transformer.bridge import tl_config
from storylab.transformer.data import train_batch


# wall clock by default; --clock cpu counts only this process's CPU time, which on a busy
# shared machine with --threads 1 is far less disturbed by other processes
clock = time.perf_counter


def bare_loop(model, logits_of, stream, n_ctx, batch_size, steps, device, lr=1e-3) -> float:
    """Seconds for `steps` optimizer steps of a minimal training loop."""
    model = model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    start = clock()
    for step in range(steps):
        batch = train_batch(stream, n_ctx, batch_size, seed=0, step=step).to(device)
        logits = logits_of(model, batch[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return clock() - start


def make_contestants(config: ModelConfig, stream, val_stream, batch_size: int, device: torch.device):
    """name -> function(steps) returning elapsed seconds."""
    n_ctx = config.n_ctx

    def storylab(steps):
        recipe = TrainConfig(batch_size=batch_size, max_steps=steps, warmup_steps=2, decay_steps=steps,
                             eval_every=steps, save_every=steps, eval_tokens=len(val_stream))
        with tempfile.TemporaryDirectory() as folder:
            start = clock()
            train(config, recipe, stream, val_stream, folder, vocab_size=config.d_vocab, device=device,
                  progress=False)
            return clock() - start

    def plain(steps):
        return bare_loop(StoryTransformer(config), lambda m, x: m(x), stream, n_ctx, batch_size, steps, device)

    def hf_gpt2(steps):
        from transformers import GPT2Config, GPT2LMHeadModel

        hf_config = GPT2Config(vocab_size=config.d_vocab, n_positions=n_ctx, n_embd=config.d_model,
                               n_layer=config.n_layers, n_head=config.n_heads, n_inner=config.d_mlp,
                               activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                               tie_word_embeddings=False, attn_implementation="sdpa")
        model = GPT2LMHeadModel(hf_config)
        assert model.config._attn_implementation == "sdpa"
        return bare_loop(model, lambda m, x: m(x).logits, stream, n_ctx, batch_size, steps, device)

    def tl_native_module(steps):
        from transformer_lens.model_bridge.sources.native.model import NativeModel

        return bare_loop(NativeModel(tl_config(config)), lambda m, x: m(x), stream, n_ctx, batch_size, steps, device)

    def tl_boot_native(steps):
        from transformer_lens.model_bridge import TransformerBridge

        cfg = tl_config(config)
        cfg.init_weights = True
        bridge = TransformerBridge.boot_native(cfg, device=device)
        return bare_loop(bridge, lambda m, x: m(x), stream, n_ctx, batch_size, steps, device)

    return {
        "storylab train()": storylab,
        "plain PyTorch (SDPA)": plain,
        "HF GPT2LMHeadModel (sdpa)": hf_gpt2,
        "TL NativeModel, no bridge": tl_native_module,
        "TL boot_native bridge": tl_boot_native,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per timed run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--quick", action="store_true", help="a tiny model, for a smoke run")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's); 1 avoids spin-waiting on a busy shared machine")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall: elapsed time; cpu: this process's CPU time (use with --threads 1 on a busy machine)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--only", default=None,
                        help="comma-separated words; run only the paths whose name contains one (plain always runs)")
    args = parser.parse_args()
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.quick:
        config = ModelConfig(n_layers=1, d_model=32, n_heads=2, d_mlp=64, n_ctx=32, d_vocab=64)
        batch_size, args.steps, args.rounds = 4, 5, 2
    else:
        config = ModelConfig(n_layers=4, d_model=128, n_heads=4, d_mlp=512, n_ctx=128, d_vocab=512)
        batch_size = 16
    rng = np.random.default_rng(0)
    stream = rng.integers(0, config.d_vocab, size=200_000).astype(np.uint16)
    val_stream = stream[: 4 * config.n_ctx]
    device = resolve_device(args.device)
    contestants = make_contestants(config, stream, val_stream, batch_size, device)
    if args.only:
        words = [w.strip().lower() for w in args.only.split(",")]
        contestants = {name: run for name, run in contestants.items()
                       if name.startswith("plain") or any(w in name.lower() for w in words)}
    tokens = args.steps * batch_size * config.n_ctx
    for run in contestants.values():  # warm-up: first-call allocations and lazy imports
        run(2)
    rates: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(args.rounds):
        for name, run in contestants.items():
            rates[name].append(tokens / run(args.steps))

    n_params = StoryTransformer(config).n_params
    print(f"\n{n_params / 1e6:.2f}M parameters, batch {batch_size} x {config.n_ctx} tokens, "
          f"{args.steps} steps x {args.rounds} interleaved rounds, torch {torch.__version__}, "
          f"{device}, {torch.get_num_threads()} threads, {args.clock} clock\n")
    reference = statistics.median(rates["plain PyTorch (SDPA)"])
    print("| path | tokens/s (median) | min | max | vs plain |")
    print("|---|---:|---:|---:|---:|")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"| {name} | {median:,.0f} | {min(values):,.0f} | {max(values):,.0f} | {median / reference:.2f}x |")


if __name__ == "__main__":
    main()
