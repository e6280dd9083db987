"""The bits ledger of 400 validation stories for three models, timed (target: under 60 s on 2 cores).

    .venv/bin/python benchmarks/ledger.py                   # 400 stories, char tokens, main-job model sizes
    .venv/bin/python benchmarks/ledger.py --stories 100 --tokenizer bpe:1024

Models, as in the main job: a count bigram, a 100-state HMM and a 2-layer, d_model=128,
n_ctx=256 transformer, all on one tokenizer; each is fitted only briefly (a few EM
iterations, a few optimizer steps), since speed does not depend on how well it fits. The
timed part is what notebook 06 does for a ledger: parse every story (the true ledger),
score every story with every model through `token_nats` and spread the nats over the
characters (`char_costs`), then the category and recall tables. Each phase prints its
seconds; the total is compared with the 60 s target.

Measured 2026-11-26 on the shared 2-core machine (load average 3.6, torch 1 thread), when
the models were wrapped in adapters (the transformer scored with non-overlapping windows):
8.0 s in all for 400 stories (363,847 characters) — parse 1.1 s, bigram 0.4 s, HMM 0.7 s,
transformer 5.8 s, tables 0.1 s. With 2 torch threads under the same load the transformer
took 32 s (threads waiting on each other), hence the default of 1.

Every family now implements `token_nats` itself; the transformer scores a story longer
than its context with the sliding window of `storylab.lm` (stride n_ctx // 2), as every
diagnostic does, so each token is computed about twice. Measured 2026-11-26 on the same
machine (load average 2.1 before and after, torch 1 thread): 12.6 s in all for the same 400
stories — parse 0.8 s, bigram 0.7 s, HMM K=100 0.8 s, transformer 10.3 s, tables 0.1 s
(0.21 of the 60 s target).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from storylab.corpora.stories import generate_stories
from storylab.diagnostics import char_costs, ledger_table, recall_table, true_ledgers
from storylab.hmm import CategoricalHMM
from storylab.ngram import BigramModel
from storylab.tokenizers import encode_texts, train_tokenizer
from storylab.transformer import TransformerLM, train
from storylab.transformer.config import ModelConfig, TrainConfig

TARGET_S = 60.0


def fit_models(tokenizer, train_texts, steps: int, em_iterations: int, n_states: int):
    eot = tokenizer.eos_token_id
    seqs = [np.asarray(ids + [eot], dtype=np.int64) for ids in encode_texts(tokenizer, train_texts)]
    bigram = BigramModel(len(tokenizer), eot, k=0.1).fit(seqs)
    hmm = CategoricalHMM(n_states, len(tokenizer), seed=0, eot_id=eot)
    hmm.fit([s[:500] for s in seqs[:300]], n_iter=em_iterations, smoothing=1e-3, progress=False)
    stream = np.concatenate(seqs)
    with tempfile.TemporaryDirectory() as folder:
        result = train(ModelConfig(n_layers=2, d_model=128, n_heads=4, n_ctx=256),
                       TrainConfig(max_steps=steps, batch_size=16, warmup_steps=2, decay_steps=steps, eval_every=steps,
                                   eval_tokens=4096, save_every=10**6),
                       stream, stream[:20000], out_dir=os.path.join(folder, "model"), tokenizer=tokenizer, progress=False)
    return [bigram, hmm, TransformerLM(result.model, eot)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, default=400, help="validation stories in the ledger")
    parser.add_argument("--tokenizer", default="char", help="tokenizer spec shared by the three models")
    parser.add_argument("--train-stories", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=20, help="transformer optimizer steps (speed does not depend on it)")
    parser.add_argument("--em-iterations", type=int, default=2)
    parser.add_argument("--states", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: on a shared 2-core machine more threads spin-wait)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    train_texts, _ = generate_stories(args.train_stories, seed=0)
    val_texts, val_bits = generate_stories(args.stories, seed=1)
    tokenizer = train_tokenizer(args.tokenizer, train_texts)
    started = time.perf_counter()
    models = fit_models(tokenizer, train_texts, args.steps, args.em_iterations, args.states)
    print(f"setup (not timed): tokenizer {args.tokenizer}, 3 models fitted in {time.perf_counter() - started:.1f} s")

    phases: dict[str, float] = {}
    started = time.perf_counter()
    ledgers = true_ledgers(val_texts)
    phases["parse (true ledgers)"] = time.perf_counter() - started
    costs = {}
    for model in models:
        started = time.perf_counter()
        costs[model.label] = char_costs(model, tokenizer, val_texts)
        phases[f"{model.label}: token_nats + spread"] = time.perf_counter() - started
    started = time.perf_counter()
    table = ledger_table(ledgers, costs)
    recalls = recall_table(ledgers, costs)
    phases["tables"] = time.perf_counter() - started

    n_chars = sum(map(len, val_texts))
    total_s = sum(phases.values())
    print(f"{args.stories} stories, {n_chars} characters, torch threads {args.threads}, load average {os.getloadavg()[0]:.2f}")
    for name, seconds in phases.items():
        print(f"  {name:46s} {seconds:7.2f} s")
    print(f"  {'total':46s} {total_s:7.2f} s   (target {TARGET_S:.0f} s: {total_s / TARGET_S:.2f} of it)")
    sums = table.groupby("model")[["true_bits_per_char", "model_bits_per_char"]].sum()
    print(f"floor {val_bits.sum() / n_chars:.4f} bits/char; ledger sums:\n{sums.round(4).to_string()}")
    print(f"{len(recalls)} recall rows")


if __name__ == "__main__":
    main()
