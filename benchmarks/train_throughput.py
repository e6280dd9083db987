"""Training throughput of storylab's transformer against plain PyTorch, the alternatives, and its own options.

    .venv/bin/python benchmarks/train_throughput.py            # ~1M-parameter model, a few minutes
    .venv/bin/python benchmarks/train_throughput.py --quick    # tiny model, a few seconds
    .venv/bin/python benchmarks/train_throughput.py --threads 1 --clock cpu   # on a busy shared machine
    .venv/bin/python benchmarks/train_throughput.py --only storylab --n-ctx 256               # the options at n_ctx 256
    .venv/bin/python benchmarks/train_throughput.py --only storylab --n-ctx 1024 --batch-size 4
    .venv/bin/python benchmarks/train_throughput.py --only lstm,gru   # the recurrent family beside the transformer

Every path trains the same shape (4 layers, d_model 128, 4 heads, d_mlp 512, vocab 512)
with the same AdamW, batch and clipping, from random windows of one token stream:

- storylab `train()`: the whole call, so schedule, logging, a final evaluation and a
  checkpoint are all paid for;
- plain PyTorch: a bare loop over `StoryTransformer` (fused `scaled_dot_product_attention`),
  the reference (ratio 1.00);
- Hugging Face GPT-2 (`GPT2LMHeadModel`, sdpa attention) built from a config;
- TransformerLens native model trained directly (unfused attention, no hooks);
- TransformerLens `TransformerBridge.boot_native` trained through the bridge (hooks);
- storylab `train()` with each architecture option (`storylab.transformer.options`):
  top-k attention with k = 4 and 16, a 4-expert top-1 mixture of experts at equal active
  parameters (`equal_active_moe`), the masked-LM objective; and, on a stream of addition
  problems with its character tokenizer, the restricted-output loss ("addition" rule)
  beside the full loss on the same stream;
- storylab `train()` with `architecture="lstm"` and `"gru"` (`storylab.transformer.rnn`) at the
  transformer's n_layers and d_model (so fewer parameters: the row names its count), on the
  same stream, windows of n_ctx tokens (truncated backpropagation through time).

Repetitions are interleaved (each round runs every path once) so load from other
processes spreads over all of them; the table shows the median tokens/s of the rounds,
its ratio to plain PyTorch and, for the options, to the dense storylab `train()` on the
same stream (plain PyTorch and dense storylab always run). Target: storylab >= 0.9x plain.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from storylab.devices import resolve_device
from storylab.transformer import ModelConfig, StoryTransformer, TrainConfig, equal_active_moe, train
from storylab.transformer.data import train_batch
from storylab.transformer.rnn import recurrent_params

PLAIN, DENSE, ADDITION_FULL = "plain PyTorch (SDPA)", "storylab train()", "storylab train(), addition, full loss"


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


def storylab_run(config: ModelConfig, stream, val_stream, batch_size: int, device: torch.device, tokenizer=None,
                 **recipe_options):
    """function(steps) -> seconds of one whole storylab `train()` call with `config` and the recipe options."""

    def run(steps):
        recipe = TrainConfig(batch_size=batch_size, max_steps=steps, warmup_steps=2, decay_steps=steps,
                             eval_every=steps, save_every=steps, eval_tokens=len(val_stream), **recipe_options)
        with tempfile.TemporaryDirectory() as folder:
            start = clock()
            train(config, recipe, stream, val_stream, folder, vocab_size=None if tokenizer else config.d_vocab,
                  tokenizer=tokenizer, device=device, progress=False)
            return clock() - start

    return run


def addition_stream(n_ctx: int):
    """(character tokenizer, train stream, validation stream) of addition problems `13 + 29 = 42;`."""
    from storylab.corpora.addition import draw_problems
    from storylab.tokenizers import train_tokenizer

    problems = draw_problems(20_000, (0, 100 * 100), 0, 99, seed=0, stream=0)
    tokenizer = train_tokenizer("char", problems[:1000])
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for p in problems]
    stream = np.concatenate(ids).astype(np.uint16)
    return tokenizer, stream, stream[: 4 * n_ctx]


def option_contestants(config: ModelConfig, stream, val_stream, batch_size: int, device: torch.device):
    """name -> (function(steps) -> seconds, the dense row it is compared with): every architecture option."""
    def options(name, model_config, peer=DENSE, **kwargs):
        return name, (storylab_run(model_config, stream, val_stream, batch_size, device, **kwargs), peer)

    masked = replace(config, objective="masked", mask_id=config.d_vocab, d_vocab=config.d_vocab + 1)
    tokenizer, add_stream, add_val = addition_stream(config.n_ctx)
    on_addition = replace(config, d_vocab=len(tokenizer))
    recurrent = [replace(config, architecture=name) for name in ("lstm", "gru")]
    return dict([
        *(options(f"storylab train(), {c.architecture.upper()} L{c.n_layers} d{c.d_model} "
                  f"({recurrent_params(c) / 1e6:.2f}M params)", c) for c in recurrent),
        options("storylab train(), top-k k=4", replace(config, attention="topk", attention_k=4)),
        options("storylab train(), top-k k=16", replace(config, attention="topk", attention_k=16)),
        options("storylab train(), MoE 4 experts top-1 (equal active)", equal_active_moe(config, 4)),
        options("storylab train(), masked LM", masked),
        (ADDITION_FULL, (storylab_run(on_addition, add_stream, add_val, batch_size, device, tokenizer), None)),
        ("storylab train(), addition, restricted loss",
         (storylab_run(on_addition, add_stream, add_val, batch_size, device, tokenizer, output_rule="addition"),
          ADDITION_FULL)),
    ])


def make_contestants(config: ModelConfig, stream, val_stream, batch_size: int, device: torch.device):
    """name -> (function(steps) returning elapsed seconds, the dense row an option is compared with or None)."""
    n_ctx = config.n_ctx
    storylab = storylab_run(config, stream, val_stream, batch_size, device)

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

        from storylab.transformer.bridge import tl_config

        return bare_loop(NativeModel(tl_config(config)), lambda m, x: m(x), stream, n_ctx, batch_size, steps, device)

    def tl_boot_native(steps):
        from transformer_lens.model_bridge import TransformerBridge

        from storylab.transformer.bridge import tl_config

        cfg = tl_config(config)
        cfg.init_weights = True
        bridge = TransformerBridge.boot_native(cfg, device=device)
        return bare_loop(bridge, lambda m, x: m(x), stream, n_ctx, batch_size, steps, device)

    peers = {
        DENSE: storylab,
        PLAIN: plain,
        "HF GPT2LMHeadModel (sdpa)": hf_gpt2,
        "TL NativeModel, no bridge": tl_native_module,
        "TL boot_native bridge": tl_boot_native,
    }
    return {**{name: (run, None) for name, run in peers.items()},
            **option_contestants(config, stream, val_stream, batch_size, device)}


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
                        help="comma-separated words; run only the paths whose name contains one "
                             "(plain and dense storylab always run, and the full-loss peer of the restricted loss)")
    parser.add_argument("--n-ctx", type=int, default=None, help="context length (default 128; 32 with --quick)")
    parser.add_argument("--batch-size", type=int, default=None, help="windows per step (default 16; 4 with --quick)")
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
    if args.n_ctx is not None:
        config = replace(config, n_ctx=args.n_ctx)
    batch_size = args.batch_size or batch_size
    rng = np.random.default_rng(0)
    stream = rng.integers(0, config.d_vocab, size=200_000).astype(np.uint16)
    val_stream = stream[: 4 * config.n_ctx]
    device = resolve_device(args.device)
    contestants = make_contestants(config, stream, val_stream, batch_size, device)
    if args.only:
        words = [w.strip().lower() for w in args.only.split(",")]
        chosen = {name for name in contestants if any(w in name.lower() for w in words)}
        chosen |= {PLAIN, DENSE} | {contestants[name][1] for name in chosen if contestants[name][1]}
        contestants = {name: entry for name, entry in contestants.items() if name in chosen}
    tokens = args.steps * batch_size * config.n_ctx
    for run, _ in contestants.values():  # warm-up: first-call allocations and lazy imports
        run(2)
    rates: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(args.rounds):
        for name, (run, _) in contestants.items():
            rates[name].append(tokens / run(args.steps))

    n_params = StoryTransformer(config).n_params
    print(f"\n{n_params / 1e6:.2f}M parameters, batch {batch_size} x {config.n_ctx} tokens, "
          f"{args.steps} steps x {args.rounds} interleaved rounds, torch {torch.__version__}, "
          f"{device}, {torch.get_num_threads()} threads, {args.clock} clock\n")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print("| path | tokens/s (median) | min | max | vs plain | vs dense storylab (same stream) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, values in rates.items():
        peer = contestants[name][1]
        versus_dense = f"{medians[name] / medians[peer]:.2f}x" if peer else ""
        print(f"| {name} | {medians[name]:,.0f} | {min(values):,.0f} | {max(values):,.0f} | "
              f"{medians[name] / medians[PLAIN]:.2f}x | {versus_dense} |")


if __name__ == "__main__":
    main()
