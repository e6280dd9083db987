"""Baselines every other model must beat: unigram and bigram counts, and the neural bigram.

    bigram = BigramModel(vocab_size=len(tok), eot_id=tok.eos_token_id, k=0.1).fit(enc.train)
    bigram.log_likelihood(enc.validation)        # nats per story, end-of-text included

All three share one shape: `fit(sequences)`, `log_likelihood(sequences)` (natural-log
probability per sequence), `next_token_distribution(prompt_ids, candidates=None)`,
`generate(prompt_ids, max_new_tokens, ...)`. The end-of-text token is an ordinary token
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
from storylab.sampling import candidate_probabilities, pick_next_token
from storylab.token_sequences import as_token_sequences


def bigram_pairs(seqs: list[np.ndarray], eot_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(previous, next) token arrays over all sequences, each sequence preceded by `eot_id`."""
    nexts = np.concatenate(seqs)
    prevs = np.concatenate([np.concatenate([[eot_id], s[:-1]]) for s in seqs])
    return prevs.astype(np.int64), nexts


def _per_sequence_sum(values: np.ndarray, seqs: list[np.ndarray]) -> np.ndarray:
    ends = np.cumsum([len(s) for s in seqs])
    return np.add.reduceat(values, np.concatenate([[0], ends[:-1]]))


class _CountModel:
    """Shared prediction and generation for models that define `_context_probs(prompt)`."""

    vocab_size: int

    def _context_probs(self, prompt: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _checked_prompt(self, prompt_ids) -> np.ndarray:
        prompt = np.asarray(prompt_ids if not isinstance(prompt_ids, torch.Tensor) else prompt_ids.cpu().numpy()).reshape(-1)
        if prompt.size:
            as_token_sequences([prompt], self.vocab_size, "prompt_ids")
        return prompt.astype(np.int64)

    def next_token_distribution(self, prompt_ids, candidates=None) -> np.ndarray:
        """p(next token | prompt) over all tokens, or the (not renormalised) probabilities of `candidates`."""
        probs = self._context_probs(self._checked_prompt(prompt_ids))
        return candidate_probabilities(probs, candidates, self.vocab_size)

    def generate(self, prompt_ids, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None, greedy: bool = False, seed: int = 0, eos_id: int | None = None) -> np.ndarray:
        """Prompt followed by up to `max_new_tokens` sampled tokens (stopping after `eos_id` if given)."""
        max_new_tokens = check_int("max_new_tokens", max_new_tokens)
        out = self._checked_prompt(prompt_ids).tolist()
        generator = torch.Generator().manual_seed(int(seed))
        for _ in range(max_new_tokens):
            probs = torch.as_tensor(self._context_probs(np.asarray(out, dtype=np.int64)))
            token = pick_next_token(probs, temperature=temperature, top_k=top_k, greedy=greedy, generator=generator)
            out.append(token)
            if eos_id is not None and token == eos_id:
                break
        return np.asarray(out, dtype=np.int64)


class UnigramModel(_CountModel):
    """p(token) = (count + k) / (N + k·V), whatever came before."""

    def __init__(self, vocab_size: int, k: float = 1.0):
        self.vocab_size, self.k = check_int("vocab_size", vocab_size, minimum=1), check_number("k", k)
        self.counts = np.zeros(self.vocab_size, dtype=np.int64)

    def fit(self, sequences) -> "UnigramModel":
        seqs = as_token_sequences(sequences, self.vocab_size, "sequences")
        self.counts = np.bincount(np.concatenate(seqs), minlength=self.vocab_size).astype(np.int64)
        return self

    @property
    def probs(self) -> np.ndarray:
        smoothed = self.counts + self.k
        return smoothed / smoothed.sum()

    def log_likelihood(self, sequences) -> np.ndarray:
        """Natural-log probability of each sequence."""
        seqs = as_token_sequences(sequences, self.vocab_size, "sequences")
        with np.errstate(divide="ignore"):
            log_probs = np.log(self.probs)
        return _per_sequence_sum(log_probs[np.concatenate(seqs)], seqs)

    def _context_probs(self, prompt: np.ndarray) -> np.ndarray:
        return self.probs


class BigramModel(_CountModel):
    """p(next | previous) = (count(previous, next) + k) / (count(previous) + k·V)."""

    def __init__(self, vocab_size: int, eot_id: int, k: float = 1.0):
        self.vocab_size, self.k = check_int("vocab_size", vocab_size, minimum=1), check_number("k", k)
        self.eot_id = check_int("eot_id", eot_id, below=self.vocab_size)
        self.counts = np.zeros((self.vocab_size, self.vocab_size), dtype=np.int64)

    def fit(self, sequences) -> "BigramModel":
        seqs = as_token_sequences(sequences, self.vocab_size, "sequences")
        prevs, nexts = bigram_pairs(seqs, self.eot_id)
        flat = np.bincount(prevs * self.vocab_size + nexts, minlength=self.vocab_size**2)
        self.counts = flat.reshape(self.vocab_size, self.vocab_size).astype(np.int64)
        return self

    @property
    def probs(self) -> np.ndarray:
        """(V, V): row = previous token, column = next token. A row never seen is uniform when k > 0."""
        smoothed = self.counts + self.k
        totals = smoothed.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(totals > 0, smoothed / np.where(totals > 0, totals, 1), 0.0)

    def log_likelihood(self, sequences) -> np.ndarray:
        """Natural-log probability of each sequence, its first token conditioned on `eot_id`."""
        seqs = as_token_sequences(sequences, self.vocab_size, "sequences")
        prevs, nexts = bigram_pairs(seqs, self.eot_id)
        with np.errstate(divide="ignore"):
            log_probs = np.log(self.probs[prevs, nexts])
        return _per_sequence_sum(log_probs, seqs)

    def _context_probs(self, prompt: np.ndarray) -> np.ndarray:
        previous = int(prompt[-1]) if prompt.size else self.eot_id
        return self.probs[previous]


class NeuralBigram(_CountModel):
    """A V×V logit table trained with AdamW on next-token cross-entropy."""

    def __init__(self, vocab_size: int, eot_id: int, steps: int = 300, lr: float = 0.5, weight_decay: float = 0.0, batch_size: int | None = None, seed: int = 0, device: str = "auto"):
        self.vocab_size = check_int("vocab_size", vocab_size, minimum=1)
        self.eot_id = check_int("eot_id", eot_id, below=self.vocab_size)
        self.steps, self.seed = check_int("steps", steps), check_int("seed", seed)
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size, minimum=1)
        self.lr, self.weight_decay = check_number("lr", lr, strict=True), check_number("weight_decay", weight_decay)
        self.device = resolve_device(device)
        self.logits = torch.zeros(self.vocab_size, self.vocab_size, device=self.device)
        self.history: list[dict] = []

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
        return self

    @property
    def probs(self) -> np.ndarray:
        return torch.softmax(self.logits.double(), dim=1).cpu().numpy()

    def log_likelihood(self, sequences) -> np.ndarray:
        """Natural-log probability of each sequence, its first token conditioned on `eot_id`."""
        seqs = as_token_sequences(sequences, self.vocab_size, "sequences")
        prevs, nexts = bigram_pairs(seqs, self.eot_id)
        log_probs = torch.log_softmax(self.logits.double(), dim=1).cpu().numpy()
        return _per_sequence_sum(log_probs[prevs, nexts], seqs)

    def _context_probs(self, prompt: np.ndarray) -> np.ndarray:
        previous = int(prompt[-1]) if prompt.size else self.eot_id
        return self.probs[previous]
