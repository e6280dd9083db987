"""Block-sparse emissions for `CategoricalHMM` (Chiu & Rush 2020, "Scaling Hidden Markov Language Models").

The K states are cut into M blocks of k = K/M consecutive states (block b owns states
[b·k, (b+1)·k)), and every token type belongs to exactly one block (`token_blocks`, a
length-V array of block ids): a state can only emit the tokens of its block. At a
position holding token x only the k states of block(x) can be alive, so a forward or
backward step between tokens x and y needs one k×k block of the transition matrix,
T[block(x), block(y)], instead of all of it: (K/M)² work per token instead of K².

The model keeps its ordinary dense tables (`trans` K×K, `emit` K×V with exact zeros
outside the blocks), so everything that reads them — sampling, generation, next-token
probabilities, a dense forward pass — stays correct. This module only lays them out for
the blocked E-step:

- `Blocks`: the assignment, plus the transition matrix copied block by block
  (`forward_rows`, and transposed, `backward_rows`): row p·k + i of the (M²·k, k)
  table is row i of the block pair p = M·g + h. One step then gathers and sums the k
  rows its live states select, weighted by their probabilities — a fused
  `embedding_bag` — rather than gathering k×k blocks per sequence for a batched matmul
  (which copies every block once more; measured ~2x slower), and a contiguous copy per
  block reads memory in long runs (measured ~1.7x faster than gathering the same rows
  from the dense K×K layout). Grouping a step's sequences by block pair was not worth
  trying: with M² pairs (4,096 to 16,384) and a few hundred to a few thousand
  sequences per step, most groups hold one sequence.
- `BlockIndex`: per packed batch, the block of every token, the pair id of every
  transition, and the transitions sorted by pair in fixed-length chunks, so the expected
  transition counts of a batch are a few batched matmuls instead of one small matmul per
  block pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

STAT_CHUNK_ROWS = 32  # transitions per chunk of one block pair in the transition-count bmm


def check_token_blocks(token_blocks, vocab_size: int, n_blocks: int, where: str = "token_blocks") -> np.ndarray:
    """`token_blocks` as a (V,) int64 array of ids in [0, n_blocks), every block used; else a one-line ValueError."""
    array = token_blocks.detach().cpu().numpy() if isinstance(token_blocks, torch.Tensor) else np.asarray(token_blocks)
    if array.shape != (vocab_size,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{where}: expected {vocab_size} integer block ids (one per token), got shape {array.shape} of {array.dtype}")
    if array.min() < 0 or array.max() >= n_blocks:
        raise ValueError(f"{where}: block ids must lie in [0, emission_blocks={n_blocks}), got {int(array.min())}..{int(array.max())}")
    empty = np.flatnonzero(np.bincount(array, minlength=n_blocks) == 0)
    if empty.size:
        raise ValueError(f"{where}: every block needs at least one token; block {int(empty[0])} has none ({empty.size} empty)")
    return array.astype(np.int64)


class Blocks:
    """Which block each token belongs to, on the model's device, and the block-ordered transitions."""

    def __init__(self, token_blocks: np.ndarray, n_blocks: int, n_states: int, device: torch.device):
        self.n_blocks = n_blocks
        self.size = n_states // n_blocks  # k: states per block, the live states at every position
        self.n_states = n_states
        self.token_blocks = torch.as_tensor(token_blocks, dtype=torch.long, device=device)
        self._rows: list | None = None  # [trans, its version, forward (M, M, k, k), backward or None]

    @property
    def vocab_size(self) -> int:
        return int(self.token_blocks.shape[0])

    def emission_mask(self) -> torch.Tensor:
        """(K, V) bool: True where a state may emit a token."""
        state_block = torch.arange(self.n_states, device=self.token_blocks.device) // self.size
        return state_block[:, None] == self.token_blocks[None, :]

    def local_emissions(self, emit_t: torch.Tensor) -> torch.Tensor:
        """(V, k): p(token | each state of the token's block), from the dense `emit.T` (V, K)."""
        vocab = torch.arange(self.vocab_size, device=emit_t.device)
        return emit_t.reshape(self.vocab_size, self.n_blocks, self.size)[vocab, self.token_blocks].contiguous()

    def local_start(self, start: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """(n, k): the start probabilities of the live states of each first token."""
        return start.view(self.n_blocks, self.size).index_select(0, groups)

    def to_global(self, local: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """(N, K) from per-position live-state values (N, k): zeros outside each position's block."""
        full = torch.zeros(local.shape[0], self.n_blocks, self.size, dtype=local.dtype, device=local.device)
        full[torch.arange(local.shape[0], device=local.device), groups] = local
        return full.view(local.shape[0], self.n_states)

    def forward_rows(self, trans: torch.Tensor) -> torch.Tensor:
        """(M²·k, k): row p·k + i is row i of T[g, h], p = M·g + h (from state i of block g to block h's states).

        Made on first use and kept while `trans` is the same unmodified tensor (or handed
        over by the M-step, `adopt`); `release()` frees it.
        """
        m, k = self.n_blocks, self.size
        return self.forward_blocks(trans).view(m * m * k, k)

    def backward_rows(self, trans: torch.Tensor) -> torch.Tensor:
        """(M²·k, k): row p·k + j is row j of T[g, h]ᵀ (into state j of block h from block g's states); kept likewise."""
        forward = self.forward_blocks(trans)
        if self._rows[3] is None:
            backward = torch.empty_like(forward)
            for g in range(self.n_blocks):  # one source block at a time: measured 2x faster than one strided copy
                backward[g].copy_(forward[g].transpose(1, 2))
            self._rows[3] = backward
        m, k = self.n_blocks, self.size
        return self._rows[3].view(m * m * k, k)

    def forward_blocks(self, trans: torch.Tensor) -> torch.Tensor:
        """(M, M, k, k): block [g, h] is T[g, h]."""
        if not self._holds(trans):
            self._rows = None  # free the stale copies before making new ones
            self._rows = [trans, trans._version, block_ordered(trans, self.n_blocks), None]
        return self._rows[2]

    def adopt(self, trans: torch.Tensor, forward: torch.Tensor) -> None:
        """Remember `forward` (M, M, k, k) as the block-ordered copy of `trans` (the M-step makes both)."""
        self._rows = [trans, trans._version, forward, None]

    def _holds(self, trans: torch.Tensor) -> bool:
        return self._rows is not None and self._rows[0] is trans and self._rows[1] == trans._version

    def release_backward(self) -> None:
        if self._rows is not None:
            self._rows[3] = None

    def release(self) -> None:
        self._rows = None

    def index(self, batch) -> "BlockIndex":
        """The batch's `BlockIndex`, built on first use and kept on the batch (batches live for a whole fit)."""
        key = ("blocks", id(self))
        if key not in batch.cache:
            batch.cache[key] = BlockIndex.build(batch, self)
        return batch.cache[key]


@dataclass
class BlockIndex:
    """Block bookkeeping of one packed batch.

    `groups[n]`: the block of packed token n. `row_base[n]`: k·(M·g + h) for a token of
    block h whose predecessor is in block g (0 at a sequence's first token), the first
    row of its transition block in `Blocks.forward_rows`. The transitions sorted by
    pair and cut into chunks of `chunk_rows` (the last chunk of a pair padded with
    weight-0 rows): `chunk_prev` / `chunk_now` (C, L) packed positions, `chunk_weight`
    (C, L, 1) 1 for real and 0 for padding, `chunk_pair` (C,).
    """

    groups: torch.Tensor
    row_base: torch.Tensor
    chunk_prev: torch.Tensor
    chunk_now: torch.Tensor
    chunk_weight: torch.Tensor
    chunk_pair: torch.Tensor

    @classmethod
    def build(cls, batch, blocks: Blocks) -> "BlockIndex":
        device = batch.tokens.device
        groups = blocks.token_blocks[batch.tokens]
        now = torch.arange(batch.offsets[1], batch.n_tokens, device=device)  # every token with a predecessor
        # packed time-major: the predecessor of (row r, step t) is (row r, step t-1)
        step_of = torch.repeat_interleave(torch.arange(len(batch.rows), device=device), torch.as_tensor(batch.rows, device=device))
        offsets = torch.as_tensor(batch.offsets, device=device)
        prev = offsets[step_of[now] - 1] + (now - offsets[step_of[now]])
        pair = groups[prev] * blocks.n_blocks + groups[now]
        row_base = torch.zeros(batch.n_tokens, dtype=torch.long, device=device)
        row_base[now] = pair * blocks.size
        chunk_prev, chunk_now, chunk_weight, chunk_pair = _pair_chunks(pair, prev, now)
        return cls(groups, row_base, chunk_prev, chunk_now, chunk_weight, chunk_pair)


def block_ordered(trans: torch.Tensor, n_blocks: int) -> torch.Tensor:
    """(M, M, k, k) copy of a (K, K) table: [g, h] is the block from block g to block h."""
    k = trans.shape[0] // n_blocks
    blocks = torch.empty(n_blocks, n_blocks, k, k, dtype=trans.dtype, device=trans.device)
    for g in range(n_blocks):  # one source block at a time: measured 2.5x faster than one permuted copy
        blocks[g].copy_(trans[g * k : (g + 1) * k].view(k, n_blocks, k).transpose(0, 1))
    return blocks


def dense_from_blocks(blocks: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """The (K, K) table of an (M, M, k, k) block-ordered one (the inverse of `block_ordered`)."""
    n_blocks, _, k, _ = blocks.shape
    out = torch.empty(n_blocks * k, n_blocks * k, dtype=blocks.dtype, device=blocks.device) if out is None else out
    for g in range(n_blocks):
        out[g * k : (g + 1) * k].view(k, n_blocks, k).copy_(blocks[g].transpose(0, 1))
    return out


def _pair_chunks(pair: torch.Tensor, prev: torch.Tensor, now: torch.Tensor):
    """Transitions sorted by pair, cut into chunks of at most STAT_CHUNK_ROWS that never mix pairs."""
    device = pair.device
    if pair.numel() == 0:
        empty = torch.zeros(0, 1, dtype=torch.long, device=device)
        return empty, empty, torch.zeros(0, 1, 1, device=device), torch.zeros(0, dtype=torch.long, device=device)
    order = torch.argsort(pair, stable=True)
    pair, prev, now = pair[order], prev[order], now[order]
    unique, counts = torch.unique_consecutive(pair, return_counts=True)
    rows = min(STAT_CHUNK_ROWS, int(counts.max()))
    chunks_per_pair = (counts + rows - 1) // rows
    chunk_pair = torch.repeat_interleave(unique, chunks_per_pair)
    # slot of each sorted transition: its pair's first chunk, then its rank within the pair
    first_of_pair = torch.cumsum(counts, 0) - counts
    first_chunk = torch.cumsum(chunks_per_pair, 0) - chunks_per_pair
    rank = torch.arange(pair.numel(), device=device) - torch.repeat_interleave(first_of_pair, counts)
    slot = torch.repeat_interleave(first_chunk, counts) * rows + rank
    n_slots = int(chunks_per_pair.sum()) * rows
    chunk_prev = torch.zeros(n_slots, dtype=torch.long, device=device)
    chunk_now = torch.zeros(n_slots, dtype=torch.long, device=device)
    weight = torch.zeros(n_slots, device=device)
    chunk_prev[slot], chunk_now[slot], weight[slot] = prev, now, 1.0
    return chunk_prev.view(-1, rows), chunk_now.view(-1, rows), weight.view(-1, rows, 1), chunk_pair
