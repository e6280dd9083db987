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
`(tokens in batch, K)` buffers, kept in a `Workspace` that is reused across batches and
EM iterations. Everything runs in the dtype of the model's tables: float32 by default,
float64 for a model made with `dtype="float64"` (for sums that must not depend on how
the sequences were cut into batches, e.g. the same fit on one process and on several).

Batches are planned once from the sequence lengths (`plan_batches`) and packed when a
pass needs them (`Batches`), from any `storylab.token_sequences.TokenSequences` — a list
in memory, or a memory-mapped encoded split read a batch at a time — so the memory of a
pass is set by the batch budget, not by the corpus.

Blocked emissions (`blocks`, see `storylab.hmm_blocks`): every function takes the
model's dense tables and an optional `Blocks`; with one, every per-token vector holds
only the k = K/M live states of its token's block (`(N, k)` instead of `(N, K)`), a step
sums k rows of the block-ordered transitions per sequence (`embedding_bag`; memory-bound
rather than matmul-bound), and the transition counts are gathered per block pair after
the backward pass. Without `blocks` a blocked model's dense tables give the same numbers
(its emissions are exactly zero outside the blocks), only K²/k² times slower.

This module knows nothing about fitting schedules, files or tokenizers; `hmm.py` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from storylab.hmm_blocks import Blocks, dense_from_blocks

BUFFERS_PER_TOKEN = 3  # alpha, emissions/right factors, beta/marginals: (tokens, K) each ((tokens, k) blocked)
KEEP_MB = 256  # packed batches kept between passes: repacking measured at 2% of a dense E-step at K=100, 11% at K=16
PAIR_GROUP_VALUES = 2**24  # values gathered per group of block-pair chunks (about 64 MB in float32), whatever the batch


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
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # per-batch indices built on first use

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
    """Reusable buffers, so each batch does not page-fault fresh hundreds of MB."""

    def __init__(self, device: torch.device):
        self.device = device
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, n_rows: int, n_cols: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        needed = n_rows * n_cols
        buffer = self._buffers.get(name)
        if buffer is None or buffer.numel() < needed or buffer.dtype != dtype:
            self._buffers.pop(name, None)  # free the old one before allocating its successor
            buffer = self._buffers[name] = torch.empty(needed, dtype=dtype, device=self.device)
        return buffer[:needed].view(n_rows, n_cols)


def default_batch_tokens(n_states: int, device: torch.device, memory_budget_mb: float | None = None, blocks: Blocks | None = None,
                         dtype: torch.dtype = torch.float32) -> int:
    """Tokens per batch so the E-step buffers fit a memory budget (1 GB on CPU, 4 GB on CUDA).

    Bigger batches mean more sequences per time step, so fewer, larger matmuls; 1 GB keeps
    a 5M-token fit at 256 states under 2 GB in all. A blocked model's buffers hold its
    k live states per token, not all K; a float64 model's hold half as many tokens.
    """
    if memory_budget_mb is None:
        memory_budget_mb = 4096 if device.type == "cuda" else 1024
    bytes_per_value = torch.empty(0, dtype=dtype).element_size()
    per_token = BUFFERS_PER_TOKEN * bytes_per_value * (n_states if blocks is None else blocks.size)
    return max(1024, int(memory_budget_mb * 2**20 // per_token))


def length_order(lengths: np.ndarray) -> np.ndarray:
    """Sequence positions longest first (ties in the given order): the order batches are cut in."""
    return np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")


def plan_batches(lengths: np.ndarray, batch_tokens: int) -> list[np.ndarray]:
    """The positions of each batch's sequences: sorted by length, cut into about equal batches of at
    most `batch_tokens` tokens.

    A sequence longer than the budget gets a batch of its own (its memory is then
    `length * K * 12` bytes, whatever the budget). The plan holds 8 bytes per sequence.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = length_order(lengths)
    total_tokens = int(lengths.sum())
    # about equal shares rather than full batches plus a small remainder: a batch of few
    # sequences costs as many steps as a full one
    share = -(-total_tokens // -(-total_tokens // batch_tokens)) if total_tokens else batch_tokens
    sorted_lengths = lengths[order]
    plan, first = [], 0
    while first < len(order):
        last = first + 1
        total = int(sorted_lengths[first])
        while last < len(order) and total < share and total + sorted_lengths[last] <= batch_tokens:
            total += int(sorted_lengths[last])
            last += 1
        plan.append(order[first:last])
        first = last
    return plan


def make_batches(sequences: list[np.ndarray], batch_tokens: int, device: torch.device) -> list[Batch]:
    """All batches of a list of sequences, packed at once (for small inputs; a fit uses `Batches`)."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    return [pack([sequences[i] for i in index], lengths[index], index, device) for index in plan_batches(lengths, batch_tokens)]


class Batches:
    """The packed batches of `source` (a `TokenSequences`), re-iterable: one pass per EM iteration.

    The plan is made once; each batch is packed from the source when a pass reaches it,
    and kept for the next pass while the batches kept so far stay under `keep_mb` (with
    their block indices). A small fit is then packed once, as if held in a list; a corpus
    larger than that is re-read batch by batch from its memory map on every pass, so a
    pass holds one batch, never the corpus.
    """

    def __init__(self, source, batch_tokens: int, device: torch.device, keep_mb: float | None = None):
        self.source, self.device = source, device
        self.plan = plan_batches(source.lengths, batch_tokens)
        self.keep_bytes = (KEEP_MB if keep_mb is None else keep_mb) * 2**20
        self._kept: list[Batch | None] = [None] * len(self.plan)
        self._kept_bytes = 0

    def __len__(self) -> int:
        return len(self.plan)

    def __iter__(self) -> Iterator[Batch]:
        for i, index in enumerate(self.plan):
            batch = self._kept[i]
            if batch is None:
                batch = pack(self.source.take(index), np.asarray(self.source.lengths)[index], index, self.device)
            yield batch
            if self._kept[i] is None:  # measured after its use, so with the block index a pass built on it
                size = batch_bytes(batch)
                if self._kept_bytes + size <= self.keep_bytes:
                    self._kept[i], self._kept_bytes = batch, self._kept_bytes + size


def batch_bytes(batch: Batch) -> int:
    """Bytes held by a packed batch and the indices cached on it."""
    tensors = [batch.tokens, batch.row_of_token]
    for cached in batch.cache.values():  # a blocked model's BlockIndex
        tensors += [value for value in vars(cached).values() if isinstance(value, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors)


def pack(seqs: list[np.ndarray], lengths: np.ndarray, index: np.ndarray, device: torch.device) -> Batch:
    """One batch of sequences sorted by length, longest first, packed time-major."""
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


def forward(batch: Batch, start: torch.Tensor, trans: torch.Tensor, emit_t: torch.Tensor, workspace: Workspace, blocks: Blocks | None = None):
    """Normalised forward pass over a packed batch.

    `emit_t` is `emit.T` contiguous `(V, K)`. Returns `(alpha, emissions, norms,
    log_likelihood)`: filtered state distributions `(N, K)` — `(N, k)` over each token's
    block with `blocks` —, the emission probabilities of each packed token in the same
    layout, per-token normalisers `(N, 1)` (workspace views; norms[n] = p(x_n | x_<n))
    and log p(x) per sequence `(B,)` in float64, in the batch's row order.
    """
    index = blocks.index(batch) if blocks is not None else None
    emit_live = blocks.local_emissions(emit_t) if blocks is not None else emit_t
    n_live, dtype = emit_live.shape[1], emit_live.dtype
    emissions = workspace.get("emissions", batch.n_tokens, n_live, dtype)
    torch.index_select(emit_live, 0, batch.tokens, out=emissions)
    alpha = workspace.get("alpha", batch.n_tokens, n_live, dtype)
    norms = workspace.get("norms", batch.n_tokens, 1, dtype)
    first = batch.step(0)
    first_start = blocks.local_start(start, index.groups[first]) if blocks is not None else start
    torch.mul(emissions[first], first_start, out=alpha[first])
    torch.sum(alpha[first], dim=1, keepdim=True, out=norms[first])
    alpha[first].div_(norms[first])
    step = _block_step(blocks, index, workspace, blocks.forward_rows(trans)) if blocks is not None else None
    for t in range(1, len(batch.rows)):
        now = batch.step(t)
        alpha_now, norms_now = alpha[now], norms[now]  # each indexing makes a view: make them once
        alpha_before = alpha[batch.step(t - 1, batch.rows[t])]
        if step is None:
            torch.mm(alpha_before, trans, out=alpha_now)
            alpha_now.mul_(emissions[now])
        else:
            torch.mul(step(now, alpha_before), emissions[now], out=alpha_now)
        torch.sum(alpha_now, dim=1, keepdim=True, out=norms_now)
        alpha_now.div_(norms_now)
    log_likelihood = torch.zeros(batch.n_sequences, dtype=torch.float64, device=norms.device)
    log_likelihood.index_add_(0, batch.row_of_token, norms[:, 0].double().log())
    # 0/0 after a zero normaliser makes the rest of that sequence NaN; its probability is 0 (and -inf stays
    # -inf when the zero normaliser is the last token's: nan_to_num would make it the lowest float)
    return alpha, emissions, norms, torch.nan_to_num(log_likelihood, nan=-np.inf, neginf=-np.inf)


def _block_step(blocks: Blocks, index, workspace: Workspace, rows: torch.Tensor):
    """`step(positions, weights)`: for each packed token at `positions`, the sum of the k
    rows of its transition block weighted by `weights` (n, k) — one fused gather-and-sum."""
    within = torch.arange(blocks.size, device=rows.device)

    def step(positions: slice, weights: torch.Tensor) -> torch.Tensor:
        picked = workspace.get("rows", weights.shape[0], blocks.size, torch.long)
        torch.add(index.row_base[positions].unsqueeze(1), within, out=picked)
        return F.embedding_bag(picked, rows, mode="sum", per_sample_weights=weights)

    return step


def backward(batch: Batch, alpha, emissions, norms, trans: torch.Tensor, workspace: Workspace, pair_counts: torch.Tensor | None = None,
             blocks: Blocks | None = None):
    """Scaled backward pass; returns `beta` in the layout of `alpha`.

    Turns `emissions` in place into the right factors `emissions * beta / norms`, which
    both the recursion and the transition statistics use. With `pair_counts` (P, k, k),
    adds Σ_t alpha_t^T right_{t+1} to it per block pair (the expected transitions before
    the `* trans`; P = 1 and k = K without `blocks`). Dense: one (K, n) @ (n, K) product
    per step measured faster than gathering all pairs for a few large products (the
    gather costs more memory traffic than it saves). Blocked: the pairs are gathered
    after the recursion (`add_block_pair_counts`), since one step's sequences are spread
    over many block pairs.
    """
    right = emissions.div_(norms)
    beta = workspace.get("beta", batch.n_tokens, alpha.shape[1], alpha.dtype)
    if blocks is None:
        trans_t = trans.T.contiguous()
        dense_counts = pair_counts[0] if pair_counts is not None else None
    else:
        step = _block_step(blocks, blocks.index(batch), workspace, blocks.backward_rows(trans))
    beta[batch.step(len(batch.rows) - 1)].fill_(1.0)
    for t in range(len(batch.rows) - 2, -1, -1):
        now, going_on, after = batch.step(t), batch.step(t, batch.rows[t + 1]), batch.step(t + 1)
        right_after = right[after]
        if blocks is None:
            torch.mm(right_after, trans_t, out=beta[going_on])
        else:
            beta[going_on] = step(after, right_after)
        if batch.rows[t + 1] < batch.rows[t]:  # sequences whose last token is at step t
            beta[going_on.stop : now.stop].fill_(1.0)
        right[now].mul_(beta[now])
        if blocks is None and dense_counts is not None:
            dense_counts.addmm_(alpha[going_on].T, right_after)
    if blocks is not None and pair_counts is not None:
        add_block_pair_counts(pair_counts, blocks.index(batch), alpha, right, workspace)
    return beta


def add_block_pair_counts(pair_counts: torch.Tensor, index, alpha: torch.Tensor, right: torch.Tensor, workspace: Workspace) -> None:
    """pair_counts[p] += Σ over transitions of pair p of alpha_prev^T right_now, as chunked bmms.

    Each chunk holds up to L transitions of one pair (padding rows weigh 0); a group of
    chunks is gathered, multiplied as (G, k, L) @ (G, L, k) and added to its pairs.
    """
    n_chunks, rows = index.chunk_prev.shape
    k = alpha.shape[1]
    per_group = max(1, PAIR_GROUP_VALUES // (rows * k * 2 + k * k))  # gathered rows and products
    for first in range(0, n_chunks, per_group):
        last = min(n_chunks, first + per_group)
        group = last - first
        before = workspace.get("pair_prev", group * rows, k, alpha.dtype)
        after = workspace.get("pair_now", group * rows, k, alpha.dtype)
        torch.index_select(alpha, 0, index.chunk_prev[first:last].reshape(-1), out=before)
        torch.index_select(right, 0, index.chunk_now[first:last].reshape(-1), out=after)
        before = before.view(group, rows, k).mul_(index.chunk_weight[first:last])
        products = workspace.get("pair_products", group * k, k, alpha.dtype).view(group, k, k)  # reused: fresh pages cost more than the bmm
        torch.bmm(before.transpose(1, 2), after.view(group, rows, k), out=products)
        pair_counts.index_add_(0, index.chunk_pair[first:last], products)


@dataclass
class SufficientStats:
    """Expected counts accumulated over batches.

    start (K,) float64; pairs (P, k, k) in the model's dtype, Σ alpha_t^T right_{t+1} per
    block pair (P = 1, k = K for a dense model), multiplied by `trans` only in the M-step
    (the same for every batch, so once is enough, and float32 keeps a K=16,384 table at
    1 GB); emit (V, k) float64, each token's expected count under each live state of its
    block. Several processes' statistics are summed by `storylab.hmm_distributed`.
    """

    start: torch.Tensor
    pairs: torch.Tensor
    emit: torch.Tensor
    log_likelihood: float = 0.0
    n_tokens: int = 0

    @classmethod
    def zeros(cls, n_states: int, vocab_size: int, device: torch.device, blocks: Blocks | None = None,
              dtype: torch.dtype = torch.float32) -> "SufficientStats":
        n_pairs, k = (1, n_states) if blocks is None else (blocks.n_blocks**2, blocks.size)
        return cls(
            start=torch.zeros(n_states, dtype=torch.float64, device=device),
            pairs=torch.zeros(n_pairs, k, k, dtype=dtype, device=device),
            emit=torch.zeros(vocab_size, k, dtype=torch.float64, device=device),
        )


def accumulate_batch(stats: SufficientStats, batch: Batch, start, trans, emit_t, workspace: Workspace, blocks: Blocks | None = None) -> None:
    """One batch's E-step: forward, backward, and its expected counts added to `stats`."""
    alpha, emissions, norms, log_likelihood = forward(batch, start, trans, emit_t, workspace, blocks)
    beta = backward(batch, alpha, emissions, norms, trans, workspace, stats.pairs, blocks)
    marginals = beta.mul_(alpha)
    first = batch.step(0)
    if blocks is None:
        stats.start += marginals[first].sum(dim=0).double()
    else:
        stats.start.view(blocks.n_blocks, blocks.size).index_add_(0, blocks.index(batch).groups[first], marginals[first].double())
    stats.emit += emission_counts(batch, marginals, emit_t.shape[0]).double()
    stats.log_likelihood += float(log_likelihood.sum())
    stats.n_tokens += batch.n_tokens


def emission_counts(batch: Batch, marginals: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Σ over tokens of onehot(token) ⊗ marginals, `(V, K)` (or `(V, k)`): each token's marginals added to its row.

    Done as one sparse `(V, N) @ (N, K)` product: on CPU it is ~4x faster than a
    scatter-add (`index_put_(accumulate=True)`, itself ~5x faster than `index_add_`).
    The sparse matrix has one entry per column, so it is valid without coalescing, and
    coalescing (sorting by row) would cost more than the product.
    """
    n_tokens = batch.n_tokens
    positions = torch.arange(n_tokens, device=marginals.device)
    one_hot = torch.sparse_coo_tensor(
        torch.stack([batch.tokens, positions]), torch.ones(n_tokens, dtype=marginals.dtype, device=marginals.device),
        (vocab_size, n_tokens), check_invariants=False,
    )
    return torch.sparse.mm(one_hot, marginals)


def smoothed_marginals(batch: Batch, start, trans, emit_t, workspace: Workspace, blocks: Blocks | None = None) -> torch.Tensor:
    """Posterior p(state_t | whole sequence), packed `(N, K)` (`(N, k)` with `blocks`)."""
    alpha, emissions, norms, _ = forward(batch, start, trans, emit_t, workspace, blocks)
    return backward(batch, alpha, emissions, norms, trans, workspace, blocks=blocks).mul_(alpha)


def m_step(stats: SufficientStats, smoothing: float, previous: tuple[torch.Tensor, torch.Tensor, torch.Tensor], blocks: Blocks | None = None):
    """Normalised expected counts plus `smoothing` pseudo-counts; an unvisited row keeps its old value.

    Pseudo-counts go to every start and transition entry, and to every emission a state
    may make: with `blocks`, only the tokens of its block, so emissions outside the
    blocks stay exactly zero.
    """
    old_start, old_trans, old_emit = previous
    counts = stats.start + smoothing
    start = _normalised_rows(counts, old_start)
    return start, _transition_m_step(stats.pairs, old_trans, smoothing, blocks), _emission_m_step(stats.emit, old_emit, smoothing, blocks)


def _normalised_rows(counts: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    totals = counts.sum(dim=-1, keepdim=True)
    fresh = counts / totals.clamp_min(1e-300)
    return torch.where(totals > 0, fresh, old.double()).to(old.dtype).contiguous()


def _transition_m_step(pairs: torch.Tensor, old_trans: torch.Tensor, smoothing: float, blocks: Blocks | None) -> torch.Tensor:
    """New transitions from pairs ⊙ trans + smoothing, normalised by row; consumes `pairs`.

    Works in place in the block-ordered `pairs` (a float64 K×K alone would be 2 GB at
    K=16,384): the products are in the model's dtype (as exact as its result), row sums are
    float32 within a block and float64 across blocks (float64 throughout for a float64 model). A blocked model's new table in
    block order is handed to `blocks` for the next E-step.
    """
    n_states = old_trans.shape[0]
    n_blocks, k = (1, n_states) if blocks is None else (blocks.n_blocks, blocks.size)
    old = old_trans.view(1, 1, k, k) if blocks is None else blocks.forward_blocks(old_trans)
    counts = pairs.view(n_blocks, n_blocks, k, k).mul_(old)  # [g, h, i, j]: from state i of block g to state j of block h
    # float64 sums of float32 partial sums: a float64 sum over a float32 tensor converts every element (10x slower)
    totals = counts.sum(dim=3).double().sum(dim=1) + smoothing * n_states  # (M, k): one per source state
    # times a reciprocal of the table's dtype: dividing a float32 tensor by a float64 one in place is 30x slower
    counts.add_(smoothing).mul_((1 / totals).to(counts.dtype).view(n_blocks, 1, k, 1))
    unvisited = totals == 0
    if unvisited.any():  # keep an unvisited state's old row
        counts.copy_(torch.where(unvisited.view(n_blocks, 1, k, 1), old, counts))
    if blocks is None:
        return counts.view(n_states, n_states)  # the model's new table now owns the statistics' storage
    new = dense_from_blocks(counts)
    blocks.adopt(new, counts)
    return new


def _emission_m_step(counts_live: torch.Tensor, old_emit: torch.Tensor, smoothing: float, blocks: Blocks | None) -> torch.Tensor:
    """New (K, V) emissions from the (V, k) expected counts of each token under its block's states."""
    n_states, vocab_size = old_emit.shape
    token_blocks = blocks.token_blocks if blocks is not None else torch.zeros(vocab_size, dtype=torch.long, device=old_emit.device)
    n_blocks, k = (1, n_states) if blocks is None else (blocks.n_blocks, blocks.size)
    counts = counts_live + smoothing
    totals = torch.zeros(n_blocks, k, dtype=torch.float64, device=counts.device).index_add_(0, token_blocks, counts)
    fresh = (counts / totals[token_blocks].clamp_min(1e-300)).to(old_emit.dtype)
    new = torch.zeros(n_blocks, k, vocab_size, dtype=old_emit.dtype, device=old_emit.device)
    new.permute(2, 0, 1)[torch.arange(vocab_size, device=new.device), token_blocks] = fresh
    new = new.view(n_states, vocab_size)
    visited = (totals > 0).view(n_states, 1)
    return torch.where(visited, new, old_emit).contiguous()


def viterbi(tokens: torch.Tensor, start: torch.Tensor, trans: torch.Tensor, emit_t: torch.Tensor, blocks: Blocks | None = None) -> np.ndarray:
    """The most likely state path (T,) as int64, by log-space max-product over each step's live states."""
    n_states = start.shape[0]
    n_blocks, k = (1, n_states) if blocks is None else (blocks.n_blocks, blocks.size)
    groups = blocks.token_blocks[tokens] if blocks is not None else torch.zeros_like(tokens)
    log_emit = (blocks.local_emissions(emit_t) if blocks is not None else emit_t).double().log()[tokens]  # (T, k)
    score = start.view(n_blocks, k)[groups[0]].double().log() + log_emit[0]
    by_block = trans.view(n_blocks, k, n_blocks, k)
    log_blocks: dict[tuple[int, int], torch.Tensor] = {}  # each block pair the path crosses, its log once
    block_ids = groups.tolist()
    backpointers = torch.zeros(len(block_ids), k, dtype=torch.long, device=start.device)
    for t in range(1, len(block_ids)):
        pair = (block_ids[t - 1], block_ids[t])
        if pair not in log_blocks:
            log_blocks[pair] = by_block[pair[0], :, pair[1], :].double().log()
        score, backpointers[t] = (score[:, None] + log_blocks[pair]).max(dim=0)
        score = score + log_emit[t]
    path = np.empty(len(block_ids), dtype=np.int64)
    path[-1] = int(score.argmax())
    pointers = backpointers.cpu().numpy()
    for t in range(len(block_ids) - 1, 0, -1):
        path[t - 1] = pointers[t, path[t]]
    return path + np.asarray(block_ids, dtype=np.int64) * k
