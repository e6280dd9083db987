"""The batched, scaled forward–backward at the heart of `storylab.hmm`.

Sequences are sorted by length (longest first) and cut into batches by a token budget.
A batch is stored *packed* and time-major, like a PackedSequence: step t holds the
`n_t` sequences still running (a prefix of the batch, since they are sorted), so no
work and no memory is spent on padding and nothing needs masking. Every time step is
one `(n_t, K) @ (K, K)` matmul plus a few elementwise ops on `(n_t, K)`; with many
sequences per batch that is matmul-bound.

Forward variables are normalised every step, so float32 is safe at any length; the
log-likelihood is the sum of the log normalisers, accumulated in float64. The backward
pass reuses those normalisers (Rabiner's scaling), accumulates the expected transition
counts with one `(K, n) @ (n, K)` matmul per step, and the emission counts are one
sparse product of the state marginals (see `emission_counts`). Peak memory is three
`(tokens in batch, K)` float32 buffers, kept in a `Workspace` that is reused across
batches and EM iterations.

This module knows nothing about fitting schedules, files or tokenizers; `hmm.py` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

BYTES_PER_FLOAT = 4
BUFFERS_PER_TOKEN = 3  # alpha, emissions/right factors, beta/marginals: (tokens, K) float32 each


@dataclass
class Batch:
    """Packed, time-major tokens of sequences sorted by length, longest first.

    `tokens[offsets[t] : offsets[t] + rows[t]]` are the tokens at step t of the first
    `rows[t]` sequences; `row_of_token` says which sequence each packed token belongs
    to; `index` maps rows back to positions in the caller's list.
    """

    tokens: torch.Tensor
    row_of_token: torch.Tensor
    offsets: list[int]
    rows: list[int]
    index: np.ndarray

    @property
    def n_tokens(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def n_sequences(self) -> int:
        return self.rows[0]

    def step(self, t: int, n_rows: int | None = None) -> slice:
        """Packed positions of step t for its first `n_rows` sequences (all of them by default)."""
        return slice(self.offsets[t], self.offsets[t] + (self.rows[t] if n_rows is None else n_rows))


class Workspace:
    """Reusable float32 buffers, so each batch does not page-fault fresh hundreds of MB."""

    def __init__(self, device: torch.device):
        self.device = device
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, n_rows: int, n_cols: int) -> torch.Tensor:
        needed = n_rows * n_cols
        buffer = self._buffers.get(name)
        if buffer is None or buffer.numel() < needed:
            self._buffers.pop(name, None)  # free the old one before allocating its successor
            buffer = self._buffers[name] = torch.empty(needed, dtype=torch.float32, device=self.device)
        return buffer[:needed].view(n_rows, n_cols)


def default_batch_tokens(n_states: int, device: torch.device, memory_budget_mb: float | None = None) -> int:
    """Tokens per batch so the E-step buffers fit a memory budget (1 GB on CPU, 4 GB on CUDA).

    Bigger batches mean more sequences per time step, so fewer, larger matmuls; 1 GB keeps
    a 5M-token fit at 256 states under 2 GB in all.
    """
    if memory_budget_mb is None:
        memory_budget_mb = 4096 if device.type == "cuda" else 1024
    per_token = BUFFERS_PER_TOKEN * BYTES_PER_FLOAT * n_states
    return max(1024, int(memory_budget_mb * 2**20 // per_token))


def make_batches(sequences: list[np.ndarray], batch_tokens: int, device: torch.device) -> list[Batch]:
    """Sort by length and cut into about equal batches of at most `batch_tokens` tokens.

    A sequence longer than the budget gets a batch of its own (its memory is then
    `length * K * 12` bytes, whatever the budget).
    """
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    order = np.argsort(-lengths, kind="stable")
    # about equal shares rather than full batches plus a small remainder: a batch of few
    # sequences costs as many steps as a full one
    share = -(-int(lengths.sum()) // -(-int(lengths.sum()) // batch_tokens))
    batches, first = [], 0
    while first < len(order):
        last = first + 1
        total = int(lengths[order[first]])
        while last < len(order) and total < share and total + lengths[order[last]] <= batch_tokens:
            total += int(lengths[order[last]])
            last += 1
        index = order[first:last]
        batches.append(_pack([sequences[i] for i in index], lengths[index], index, device))
        first = last
    return batches


def _pack(seqs: list[np.ndarray], lengths: np.ndarray, index: np.ndarray, device: torch.device) -> Batch:
    n_steps = int(lengths[0])
    padded = np.full((len(seqs), n_steps), -1, dtype=np.int64)
    for row, seq in enumerate(seqs):
        padded[row, : len(seq)] = seq
    # time-major order of the real tokens: step 0 of every row, then step 1 of the rows still running, ...
    running = np.arange(n_steps)[None, :] < lengths[:, None]
    step_major = running.T
    tokens = padded.T[step_major]
    row_of_token = np.broadcast_to(np.arange(len(seqs))[None, :], step_major.shape)[step_major]
    rows = step_major.sum(axis=1).tolist()
    offsets = np.concatenate([[0], np.cumsum(rows)]).tolist()
    return Batch(
        tokens=torch.from_numpy(tokens).to(device),
        row_of_token=torch.from_numpy(np.ascontiguousarray(row_of_token)).to(device),
        offsets=offsets,
        rows=rows,
        index=index,
    )


def forward(batch: Batch, start: torch.Tensor, trans: torch.Tensor, emit_t: torch.Tensor, workspace: Workspace):
    """Normalised forward pass over a packed batch.

    `emit_t` is `emit.T` contiguous `(V, K)`. Returns `(alpha, emissions, norms,
    log_likelihood)`: filtered state distributions `(N, K)`, the emission probabilities
    of each packed token `(N, K)`, per-token normalisers `(N, 1)` (workspace views) and
    log p(x) per sequence `(B,)` in float64, in the batch's row order.
    """
    n_states = start.shape[0]
    emissions = workspace.get("emissions", batch.n_tokens, n_states)
    torch.index_select(emit_t, 0, batch.tokens, out=emissions)
    alpha = workspace.get("alpha", batch.n_tokens, n_states)
    norms = workspace.get("norms", batch.n_tokens, 1)
    first = batch.step(0)
    torch.mul(emissions[first], start, out=alpha[first])
    torch.sum(alpha[first], dim=1, keepdim=True, out=norms[first])
    alpha[first].div_(norms[first])
    for t in range(1, len(batch.rows)):
        now = batch.step(t)
        alpha_now, norms_now = alpha[now], norms[now]  # each indexing makes a view: make them once
        torch.mm(alpha[batch.step(t - 1, batch.rows[t])], trans, out=alpha_now)
        alpha_now.mul_(emissions[now])
        torch.sum(alpha_now, dim=1, keepdim=True, out=norms_now)
        alpha_now.div_(norms_now)
    log_likelihood = torch.zeros(batch.n_sequences, dtype=torch.float64, device=norms.device)
    log_likelihood.index_add_(0, batch.row_of_token, norms[:, 0].double().log())
    # 0/0 after a zero normaliser makes the rest of that sequence NaN; its probability is 0
    return alpha, emissions, norms, torch.nan_to_num(log_likelihood, nan=-np.inf)


def backward(batch: Batch, alpha, emissions, norms, trans: torch.Tensor, workspace: Workspace, pair_counts: torch.Tensor | None = None):
    """Scaled backward pass; returns `beta` `(N, K)`.

    Turns `emissions` in place into the right factors `emissions * beta / norms`, which
    both the recursion and the transition statistics use. With `pair_counts` (K, K), adds
    Σ_t alpha_t^T right_{t+1} to it (the expected transitions before the `* trans`). One
    (K, n) @ (n, K) product per step measured faster than gathering all pairs for a few
    large products (the gather costs more memory traffic than it saves).
    """
    right = emissions.div_(norms)
    beta = workspace.get("beta", batch.n_tokens, alpha.shape[1])
    trans_t = trans.T.contiguous()
    beta[batch.step(len(batch.rows) - 1)].fill_(1.0)
    for t in range(len(batch.rows) - 2, -1, -1):
        now, going_on = batch.step(t), batch.step(t, batch.rows[t + 1])
        right_after = right[batch.step(t + 1)]
        torch.mm(right_after, trans_t, out=beta[going_on])
        if batch.rows[t + 1] < batch.rows[t]:  # sequences whose last token is at step t
            beta[going_on.stop : now.stop].fill_(1.0)
        right[now].mul_(beta[now])
        if pair_counts is not None:
            pair_counts.addmm_(alpha[going_on].T, right_after)
    return beta


@dataclass
class SufficientStats:
    """Expected counts accumulated over batches, float64: start (K,), trans (K,K), emit (K,V)."""

    start: torch.Tensor
    trans: torch.Tensor
    emit: torch.Tensor
    log_likelihood: float = 0.0
    n_tokens: int = 0

    @classmethod
    def zeros(cls, n_states: int, vocab_size: int, device: torch.device) -> "SufficientStats":
        def zeros(*shape):
            return torch.zeros(*shape, dtype=torch.float64, device=device)

        return cls(start=zeros(n_states), trans=zeros(n_states, n_states), emit=zeros(n_states, vocab_size))


def accumulate_batch(stats: SufficientStats, batch: Batch, start, trans, emit_t, workspace: Workspace) -> None:
    """One batch's E-step: forward, backward, and its expected counts added to `stats`."""
    n_states = start.shape[0]
    alpha, emissions, norms, log_likelihood = forward(batch, start, trans, emit_t, workspace)
    pair_counts = torch.zeros(n_states, n_states, dtype=torch.float32, device=alpha.device)
    beta = backward(batch, alpha, emissions, norms, trans, workspace, pair_counts)
    stats.trans += (pair_counts * trans).double()
    marginals = beta.mul_(alpha)
    stats.start += marginals[batch.step(0)].sum(dim=0).double()
    stats.emit += emission_counts(batch, marginals, emit_t.shape[0]).T.double()
    stats.log_likelihood += float(log_likelihood.sum())
    stats.n_tokens += batch.n_tokens


def emission_counts(batch: Batch, marginals: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Σ over tokens of onehot(token) ⊗ marginals, `(V, K)`: each token's marginals added to its row.

    Done as one sparse `(V, N) @ (N, K)` product: on CPU it is ~4x faster than a
    scatter-add (`index_put_(accumulate=True)`, itself ~5x faster than `index_add_`).
    The sparse matrix has one entry per column, so it is valid without coalescing, and
    coalescing (sorting by row) would cost more than the product.
    """
    n_tokens = batch.n_tokens
    positions = torch.arange(n_tokens, device=marginals.device)
    one_hot = torch.sparse_coo_tensor(
        torch.stack([batch.tokens, positions]), torch.ones(n_tokens, device=marginals.device),
        (vocab_size, n_tokens), check_invariants=False,
    )
    return torch.sparse.mm(one_hot, marginals)


def smoothed_marginals(batch: Batch, start, trans, emit_t, workspace: Workspace) -> torch.Tensor:
    """Posterior p(state_t | whole sequence), packed `(N, K)`."""
    alpha, emissions, norms, _ = forward(batch, start, trans, emit_t, workspace)
    return backward(batch, alpha, emissions, norms, trans, workspace).mul_(alpha)


def m_step(stats: SufficientStats, smoothing: float, previous: tuple[torch.Tensor, torch.Tensor, torch.Tensor]):
    """Normalised expected counts plus `smoothing` pseudo-counts; an unvisited row keeps its old value."""

    def normalise(counts: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
        counts = counts + smoothing
        totals = counts.sum(dim=-1, keepdim=True)
        fresh = counts / totals.clamp_min(1e-300)
        return torch.where(totals > 0, fresh, old.double()).to(old.dtype).contiguous()

    old_start, old_trans, old_emit = previous
    return normalise(stats.start, old_start), normalise(stats.trans, old_trans), normalise(stats.emit, old_emit)
