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

Measured 2026-11-26 on the shared 2-core machine (load average 3.6, torch 1 thread): 8.0 s
in all for 400 stories (363,847 characters) — parse 1.1 s, bigram 0.4 s, HMM 0.7 s,
transformer 5.8 s, tables 0.1 s. With 2 torch threads under the same load the transformer
took 32 s (threads waiting on each other), hence the default of 1.

Until every family implements `storylab.lm.LanguageModel`, the models here are wrapped
in small adapters that compute `token_nats` as the interface defines it (the HMM from
its forward pass's per-token normalisers, the transformer with non-overlapping windows
of n_ctx tokens, as `transformer.data.evaluate` scores); a model that already has
`token_nats` is used as it is.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from storylab import hmm_engine as engine
from storylab.corpora.stories import generate_stories
from storylab.diagnostics import char_costs, ledger_table, recall_table, true_ledgers
from storylab.hmm import CategoricalHMM
from storylab.ngram import BigramModel
from storylab.tokenizers import encode_texts, train_tokenizer
from storylab.transformer.config import ModelConfig, TrainConfig
from storylab.transformer.training import train

TARGET_S = 60.0


class BigramAdapter:
    label, family = "bigram", "bigram"

    def __init__(self, model: BigramModel):
        self.model, self.eot_id, self.vocab_size = model, model.eot_id, model.vocab_size
        self.log_probs = np.log(model.probs)

    def token_nats(self, sequences):
        out = []
        for seq in sequences:
            previous = np.concatenate([[self.eot_id], seq[:-1]])
            out.append(-self.log_probs[previous, seq])
        return out


class HMMAdapter:
    label, family = "hmm", "hmm"

    def __init__(self, model: CategoricalHMM, eot_id: int):
        self.model, self.eot_id, self.vocab_size = model, eot_id, model.vocab_size

    @torch.no_grad()
    def token_nats(self, sequences):
        hmm = self.model
        out: list[np.ndarray] = [np.empty(0)] * len(sequences)
        emit_t, workspace = hmm.emit.T.contiguous(), engine.Workspace(hmm.device)
        for batch in engine.make_batches(list(sequences), engine.default_batch_tokens(hmm.n_states, hmm.device), hmm.device):
            norms = engine.forward(batch, hmm.start, hmm.trans, emit_t, workspace)[2][:, 0].double().cpu().numpy()
            # packed time-major: step t holds the first rows[t] sequences
            row = np.concatenate([np.arange(r) for r in batch.rows])
            step = np.repeat(np.arange(len(batch.rows)), batch.rows)
            order = np.lexsort((step, row))
            lengths = np.bincount(row, minlength=batch.n_sequences)
            for r, nats in enumerate(np.split(-np.log(norms[order]), np.cumsum(lengths)[:-1])):
                out[batch.index[r]] = nats
        return out


class TransformerAdapter:
    label, family = "transformer", "transformer"

    def __init__(self, model, eot_id: int, batch_size: int = 32):
        self.model, self.eot_id, self.batch_size = model.eval(), eot_id, batch_size
        self.n_ctx, self.vocab_size = model.config.n_ctx, model.config.d_vocab
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def token_nats(self, sequences):
        windows, owners = [], []  # (inputs, targets) of at most n_ctx tokens, non-overlapping
        for i, seq in enumerate(sequences):
            full = np.concatenate([[self.eot_id], seq])
            for start in range(0, len(seq), self.n_ctx):
                windows.append(full[start:start + self.n_ctx + 1])
                owners.append(i)
        by_length: dict[int, list[int]] = {}
        for j, w in enumerate(windows):
            by_length.setdefault(len(w), []).append(j)
        nats = [None] * len(windows)
        for length, group in by_length.items():
            for k in range(0, len(group), self.batch_size):
                chunk = group[k:k + self.batch_size]
                ids = torch.as_tensor(np.stack([windows[j] for j in chunk]), dtype=torch.long, device=self.device)
                logits = self.model(ids[:, :-1]).double()
                per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
                for j, row in zip(chunk, per_token.cpu().numpy()):
                    nats[j] = row
        out = [[] for _ in sequences]
        for j, i in enumerate(owners):
            out[i].append(nats[j])
        return [np.concatenate(parts) for parts in out]


def fit_models(tokenizer, train_texts, steps: int, em_iterations: int, n_states: int):
    eot = tokenizer.eos_token_id
    seqs = [np.asarray(ids + [eot], dtype=np.int64) for ids in encode_texts(tokenizer, train_texts)]
    bigram = BigramAdapter(BigramModel(len(tokenizer), eot, k=0.1).fit(seqs))
    hmm = CategoricalHMM(n_states, len(tokenizer), seed=0)
    hmm.fit([s[:500] for s in seqs[:300]], n_iter=em_iterations, smoothing=1e-3, progress=False)
    stream = np.concatenate(seqs)
    with tempfile.TemporaryDirectory() as folder:
        result = train(ModelConfig(n_layers=2, d_model=128, n_heads=4, n_ctx=256),
                       TrainConfig(max_steps=steps, batch_size=16, warmup_steps=2, decay_steps=steps, eval_every=steps,
                                   eval_tokens=4096, save_every=10**6),
                       stream, stream[:20000], out_dir=os.path.join(folder, "model"), tokenizer=tokenizer, progress=False)
    return [bigram, HMMAdapter(hmm, eot), TransformerAdapter(result.model, eot)]


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
        print(f"  {name:34s} {seconds:7.2f} s")
    print(f"  {'total':34s} {total_s:7.2f} s   (target {TARGET_S:.0f} s: {total_s / TARGET_S:.2f} of it)")
    sums = table.groupby("model")[["true_bits_per_char", "model_bits_per_char"]].sum()
    print(f"floor {val_bits.sum() / n_chars:.4f} bits/char; ledger sums:\n{sums.round(4).to_string()}")
    print(f"{len(recalls)} recall rows")


if __name__ == "__main__":
    main()
