"""Baselines every other model must beat: unigram and bigram counts, and the neural bigram.

    bigram = BigramModel(vocab_size=len(tok), eot_id=tok.eos_token_id, k=0.1).fit(enc.train)
    bigram.log_likelihood(enc.validation)        # nats per story, end-of-text included
    storylab.lm.score(bigram, enc.validation)     # the LanguageModel interface, as for every family

All three are `storylab.lm.LanguageModel`s whose next-token distribution depends on at
most the previous token, so each is one (V, V) table of log-probabilities (row: previous
token, column: next token; the unigram's rows are all alike), and everything else —
`token_nats`, `log_likelihood`, `next_token_probs`, `generate` — is computed from that
table by the shared `_PreviousTokenModel`. The end-of-text token is an ordinary token
(encoded sequences already end with it). Convention: a story is preceded by an
end-of-text token, so the bigram conditions a sequence's first token on `eot_id` — the
same role `start` plays in `CategoricalHMM`.

`k` is add-k smoothing (k > 0 gives every token a nonzero probability). The neural bigram
is a V×V table of logits trained with AdamW on cross-entropy: "the hello world of
language modelling". With `batch_size=None` each step is the exact full-batch gradient,
computed from the bigram count matrix (the same loss as summing over every pair, at
V×V cost per step); with a `batch_size` it samples that many (previous, next) pairs per
step.
"""

from __future__ import annotations

import numpy as np
import torch

from storylab.checks import check_int, check_number
from storylab.devices import resolve_device
from storylab.lm import EOT
from storylab.sampling import generate_tokens
from storylab.token_sequences import as_token_prefix, as_token_sequences

FLOPS_PER_PARAM_UPDATE = 6.0  # forward, backward and optimizer arithmetic per table entry per step, as for 6·N·D


def bigram_pairs(seqs: list[np.ndarray], eot_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(previous, next) token arrays over all sequences, each sequence preceded by `eot_id`."""
    nexts = np.concatenate(seqs)
    prevs = np.concatenate([np.concatenate([[eot_id], s[:-1]]) for s in seqs])
    return prevs.astype(np.int64), nexts


def _split_per_sequence(values: np.ndarray, seqs: list[np.ndarray]) -> list[np.ndarray]:
    return np.split(values, np.cumsum([len(s) for s in seqs])[:-1])


class _PreviousTokenModel:
    """The LanguageModel interface for a model given by `log_prob_table()`: (V, V), previous → next."""

    vocab_size: int
    eot_id: int
    family: str

    _log_table: np.ndarray | None = None  # the fitted model's table, made on first use (fit resets it)

    def log_prob_table(self) -> np.ndarray:
        """(V, V) natural-log probabilities, row = previous token, column = next token."""
        if self._log_table is None:
            self._log_table = self._make_log_table()
        return self._log_table

    def _make_log_table(self) -> np.ndarray:
        raise NotImplementedError

    @property
    def label(self) -> str:
        return self.family

    def token_nats(self, sequences) -> list[np.ndarray]:
        """−ln p of every token given the one before it (the first given `eot_id`)."""
        seqs = as_token_sequences(sequences, self.vocab_size, "sequences")
        prevs, nexts = bigram_pairs(seqs, self.eot_id)
        return _split_per_sequence(-self.log_prob_table()[prevs, nexts], seqs)

    def log_likelihood(self, sequences) -> np.ndarray:
        """Natural-log probability of each sequence, its first token conditioned on `eot_id`."""
        return -np.array([nats.sum() for nats in self.token_nats(sequences)])

    def next_token_probs(self, prefix_ids) -> np.ndarray:
        prefix = as_token_prefix(prefix_ids, self.vocab_size)
        return np.exp(self.log_prob_table()[int(prefix[-1]) if prefix.size else self.eot_id])

    def generate(self, prefix_ids, max_new_tokens: int, *, greedy: bool = False, temperature: float = 1.0,
                 top_k: int | None = None, seed: int = 0, stop_id=EOT) -> np.ndarray:
        """New token ids after `prefix_ids` (see `storylab.lm`)."""
        prefix = as_token_prefix(prefix_ids, self.vocab_size)
        table = self.log_prob_table()
        last = int(prefix[-1]) if prefix.size else self.eot_id

        def predict(new_ids: list[int]) -> np.ndarray:
            return np.exp(table[new_ids[-1] if new_ids else last])

        return generate_tokens(predict, max_new_tokens, vocab_size=self.vocab_size, eot_id=self.eot_id, greedy=greedy,
                               temperature=temperature, top_k=top_k, seed=seed, stop_id=stop_id)


def _log(probs: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):  # an unsmoothed zero count is a true −inf
        return np.log(probs)


class _CountModel(_PreviousTokenModel):
    """A model that is a table of counts: it trained on as many tokens as it counted, one count each."""

    counts: np.ndarray

    @property
    def train_tokens(self) -> int:
        return int(self.counts.sum())

    @property
    def train_flops(self) -> float:
        return float(self.train_tokens)  # one count per token


class UnigramModel(_CountModel):
    """p(token) = (count + k) / (N + k·V), whatever came before."""

    family = "unigram"

    def __init__(self, vocab_size: int, eot_id: int, k: float = 1.0):
        self.vocab_size, self.k = check_int("vocab_size", vocab_size, minimum=1), check_number("k", k)
        self.eot_id = check_int("eot_id", eot_id, below=self.vocab_size)
        self.counts = np.zeros(self.vocab_size, dtype=np.int64)

    def fit(self, sequences) -> "UnigramModel":
        seqs = as_token_sequences(sequences, self.vocab_size, "sequences")
        self.counts = np.bincount(np.concatenate(seqs), minlength=self.vocab_size).astype(np.int64)
        self._log_table = None  # the table of the counts or logits just fitted
        return self

    @property
    def probs(self) -> np.ndarray:
        smoothed = self.counts + self.k
        return smoothed / smoothed.sum()

    def _make_log_table(self) -> np.ndarray:
        return np.broadcast_to(_log(self.probs), (self.vocab_size, self.vocab_size))

    @property
    def n_params(self) -> int:
        return self.vocab_size - 1  # one distribution over V tokens


class BigramModel(_CountModel):
    """p(next | previous) = (count(previous, next) + k) / (count(previous) + k·V)."""

    family = "bigram"

    def __init__(self, vocab_size: int, eot_id: int, k: float = 1.0):
        self.vocab_size, self.k = check_int("vocab_size", vocab_size, minimum=1), check_number("k", k)
        self.eot_id = check_int("eot_id", eot_id, below=self.vocab_size)
        self.counts = np.zeros((self.vocab_size, self.vocab_size), dtype=np.int64)

    def fit(self, sequences) -> "BigramModel":
        seqs = as_token_sequences(sequences, self.vocab_size, "sequences")
        prevs, nexts = bigram_pairs(seqs, self.eot_id)
        flat = np.bincount(prevs * self.vocab_size + nexts, minlength=self.vocab_size**2)
        self.counts = flat.reshape(self.vocab_size, self.vocab_size).astype(np.int64)
        self._log_table = None  # the table of the counts or logits just fitted
        return self

    @property
    def probs(self) -> np.ndarray:
        """(V, V): row = previous token, column = next token. A row never seen is uniform when k > 0."""
        smoothed = self.counts + self.k
        totals = smoothed.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(totals > 0, smoothed / np.where(totals > 0, totals, 1), 0.0)

    def _make_log_table(self) -> np.ndarray:
        return _log(self.probs)

    @property
    def n_params(self) -> int:
        return self.vocab_size * (self.vocab_size - 1)  # one distribution per previous token


class NeuralBigram(_PreviousTokenModel):
    """A V×V logit table trained with AdamW on next-token cross-entropy."""

    family = "neural bigram"

    def __init__(self, vocab_size: int, eot_id: int, steps: int = 300, lr: float = 0.5, weight_decay: float = 0.0, batch_size: int | None = None, seed: int = 0, device: str = "auto"):
        self.vocab_size = check_int("vocab_size", vocab_size, minimum=1)
        self.eot_id = check_int("eot_id", eot_id, below=self.vocab_size)
        self.steps, self.seed = check_int("steps", steps), check_int("seed", seed)
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size, minimum=1)
        self.lr, self.weight_decay = check_number("lr", lr, strict=True), check_number("weight_decay", weight_decay)
        self.device = resolve_device(device)
        self.logits = torch.zeros(self.vocab_size, self.vocab_size, device=self.device)
        self.history: list[dict] = []
        self._train_tokens = 0

    def fit(self, sequences) -> "NeuralBigram":
        """`steps` AdamW steps from all-zero logits; `history` holds the loss (nats/token) per step."""
        seqs = as_token_sequences(sequences, self.vocab_size, "sequences")
        prevs, nexts = (torch.as_tensor(a, device=self.device) for a in bigram_pairs(seqs, self.eot_id))
        generator = torch.Generator(device=self.device).manual_seed(self.seed)
        counts = None
        if self.batch_size is None:
            counts = torch.zeros(self.vocab_size * self.vocab_size, device=self.device)
            counts.index_add_(0, prevs * self.vocab_size + nexts, torch.ones_like(prevs, dtype=torch.float32))
            counts = counts.view(self.vocab_size, self.vocab_size) / len(prevs)
        logits = torch.zeros(self.vocab_size, self.vocab_size, device=self.device, requires_grad=True)
        optimizer = torch.optim.AdamW([logits], lr=self.lr, weight_decay=self.weight_decay)
        self.history = []
        for step in range(self.steps):
            log_probs = torch.log_softmax(logits, dim=1)
            if counts is not None:
                loss = -(counts * log_probs).sum()
            else:
                pick = torch.randint(len(prevs), (self.batch_size,), device=self.device, generator=generator)
                loss = -log_probs[prevs[pick], nexts[pick]].mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            self.history.append({"step": step + 1, "train_nats_per_token": float(loss.detach())})
        self.logits = logits.detach()
        self._train_tokens = len(prevs)
        self._log_table = None  # the table of the counts or logits just fitted
        return self

    @property
    def probs(self) -> np.ndarray:
        return torch.softmax(self.logits.double(), dim=1).cpu().numpy()

    def _make_log_table(self) -> np.ndarray:
        return torch.log_softmax(self.logits.double(), dim=1).cpu().numpy()

    @property
    def n_params(self) -> int:
        return self.vocab_size * self.vocab_size  # every logit is free (the softmax ignores one per row, AdamW does not)

    @property
    def train_tokens(self) -> int:
        return self._train_tokens

    @property
    def train_flops(self) -> float:
        # every step normalises and differentiates the whole V×V table, with or without `batch_size`
        return FLOPS_PER_PARAM_UPDATE * self.vocab_size * self.vocab_size * len(self.history)
