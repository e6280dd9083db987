"""Assign every token type to one of M emission blocks, from training data (for blocked HMMs).

    blocks = assign_token_blocks(train_seqs, vocab_size=1024, n_blocks=64, method="context", seed=0)

Two methods:

- `"context"` (the default): tokens that occur in similar contexts share a block. Each
  token is described by the distributions of its left and its right neighbour (over the
  256 most frequent tokens, one bucket for all others and one for the sequence
  boundary), as square roots so that Euclidean distance is the Hellinger distance
  between those distributions, and the tokens are clustered by k-means weighted by
  frequency. This plays the role Brown clusters play in Chiu & Rush (2020): a block's
  states can then specialise on a distributional class (say, nouns after "the") instead
  of being forced to emit unrelated tokens. It is the default because that is what a
  block of states can use; `"random"` is the control that shows how much it matters.
- `"random"`: a frequency-balanced random partition, the control: tokens sorted by
  frequency are dealt out in strata of M, each stratum to the blocks in a fresh random
  order, so every block gets one token of every frequency stratum (the same number of
  tokens and about the same share of the data) and no information about context.

Both are deterministic for a seed, and every block gets at least one token (tokens never
seen in training are spread over the blocks with the fewest tokens). Nothing here
depends on which token is the end-of-text token: it gets a block like any other.

The training sequences are a list of arrays or any `storylab.token_sequences.TokenSequences`
(a memory-mapped encoded split), read a group of sequences at a time: the counts are
integer tables, so the result does not depend on how the data was grouped.
"""

from __future__ import annotations

import heapq

import numpy as np
import torch

from storylab.checks import check_int
from storylab.token_sequences import SequenceList, sequence_groups

METHODS = ("context", "random")
CONTEXT_FEATURES = 256  # the most frequent tokens, as left and right context features
KMEANS_ITERATIONS = 50


def assign_token_blocks(seqs, vocab_size: int, n_blocks: int, method: str = "context", seed: int = 0) -> np.ndarray:
    """(V,) int64 block ids in [0, n_blocks), every block non-empty."""
    vocab_size = check_int("vocab_size", vocab_size, minimum=1)
    n_blocks = check_int("emission_blocks", n_blocks, minimum=1)
    if n_blocks > vocab_size:
        raise ValueError(f"emission_blocks: {n_blocks} blocks need at least as many tokens, vocab_size is {vocab_size}")
    if method not in METHODS:
        raise ValueError(f"token_block_method: expected one of {METHODS}, got {method!r}")
    counts = token_counts(seqs, vocab_size).astype(np.float64)
    if method == "random":
        return frequency_balanced_blocks(counts, n_blocks, seed)
    return context_blocks(seqs, counts, n_blocks, seed)


def _groups(seqs):
    """Lists of sequences covering `seqs` in order (a list, or a `TokenSequences` read a group at a time)."""
    return sequence_groups(seqs if hasattr(seqs, "take") else SequenceList(list(seqs)))


def token_counts(seqs, vocab_size: int) -> np.ndarray:
    """(V,) int64: how often each token occurs in `seqs`."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for group in _groups(seqs):
        counts += np.bincount(np.concatenate(group), minlength=vocab_size)
    return counts


def frequency_balanced_blocks(counts: np.ndarray, n_blocks: int, seed: int = 0) -> np.ndarray:
    """Tokens by decreasing frequency (ties in random order), dealt in strata of `n_blocks`, each to the blocks in a random order.

    Every block gets one token of each frequency stratum: the same number of tokens
    (give or take one) and about the same share of the data, and nothing else.
    """
    rng = np.random.default_rng([seed, 2])
    shuffled = rng.permutation(len(counts))
    order = shuffled[np.argsort(-counts[shuffled], kind="stable")]
    blocks = np.empty(len(counts), dtype=np.int64)
    for first in range(0, len(order), n_blocks):
        stratum = order[first : first + n_blocks]
        blocks[stratum] = rng.permutation(n_blocks)[: len(stratum)]
    return blocks


def context_features(seqs, counts: np.ndarray) -> np.ndarray:
    """(V, 2F+4) float32: sqrt of each token's left and right neighbour distributions (zero rows for unseen tokens)."""
    vocab_size = len(counts)
    n_features = min(vocab_size, CONTEXT_FEATURES)
    frequent = np.argsort(-counts, kind="stable")[:n_features]
    feature_of = np.full(vocab_size, n_features, dtype=np.int64)  # every other token: one "rare" bucket
    feature_of[frequent] = np.arange(n_features)
    boundary, width = n_features + 1, n_features + 2
    tables = np.zeros((2, vocab_size * width), dtype=np.int64)
    for group in _groups(seqs):
        tokens = np.concatenate(group)
        lengths = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        is_first = np.zeros(len(tokens), dtype=bool)
        is_first[np.concatenate([[0], np.cumsum(lengths)[:-1]])] = True
        is_last = np.roll(is_first, -1)  # the group ends a sequence, so wrapping around is harmless
        left = np.where(is_first, boundary, feature_of[np.roll(tokens, 1)])
        right = np.where(is_last, boundary, feature_of[np.roll(tokens, -1)])
        for side, context in ((0, left), (1, right)):
            tables[side] += np.bincount(tokens * width + context, minlength=vocab_size * width)
    features = np.zeros((vocab_size, 2 * width), dtype=np.float64)
    for side in (0, 1):
        table = tables[side].reshape(vocab_size, width)
        totals = table.sum(axis=1, keepdims=True)
        features[:, side * width : (side + 1) * width] = np.sqrt(table / np.maximum(totals, 1) / 2)
    return features.astype(np.float32)


def context_blocks(seqs, counts: np.ndarray, n_blocks: int, seed: int = 0) -> np.ndarray:
    """Frequency-weighted k-means of the context features; unseen tokens fill the smallest blocks."""
    seen = np.flatnonzero(counts > 0)
    blocks = np.full(len(counts), -1, dtype=np.int64)
    if len(seen) <= n_blocks:  # too few distinct tokens to cluster: one block each
        blocks[seen] = np.arange(len(seen))
    else:
        points = torch.from_numpy(context_features(seqs, counts)[seen])
        blocks[seen] = weighted_kmeans(points, torch.from_numpy(counts[seen]).float(), n_blocks, seed)
    sizes = np.bincount(blocks[blocks >= 0], minlength=n_blocks)
    heap = [(int(size), block) for block, size in enumerate(sizes)]
    heapq.heapify(heap)
    for token in np.flatnonzero(blocks < 0):
        size, block = heapq.heappop(heap)
        blocks[token] = block
        heapq.heappush(heap, (size + 1, block))
    return blocks


def weighted_kmeans(points: torch.Tensor, weights: torch.Tensor, n_clusters: int, seed: int = 0) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding, weighted points, and no empty cluster (needs n_points > n_clusters)."""
    generator = torch.Generator().manual_seed(seed)
    norms = (points * points).sum(dim=1)
    centres = points[_kmeans_plus_plus(points, norms, weights, n_clusters, generator)]
    labels = None
    for _ in range(KMEANS_ITERATIONS):
        distances = norms[:, None] - 2 * points @ centres.T + (centres * centres).sum(dim=1)[None, :]
        new_labels = _fill_empty_clusters(distances.argmin(dim=1), distances, n_clusters)
        if labels is not None and torch.equal(new_labels, labels):
            break
        labels = new_labels
        mass = torch.zeros(n_clusters).index_add_(0, labels, weights)
        centres = torch.zeros_like(centres).index_add_(0, labels, points * weights[:, None]) / mass[:, None]
    return labels.numpy()


def _kmeans_plus_plus(points, norms, weights, n_clusters: int, generator: torch.Generator) -> torch.Tensor:
    chosen = [int(torch.multinomial(weights, 1, generator=generator))]
    nearest = (norms - 2 * points @ points[chosen[0]] + norms[chosen[0]]).clamp_min(0)
    for _ in range(1, n_clusters):
        score = weights * nearest
        score[chosen] = 0
        if score.sum() > 0:
            pick = int(torch.multinomial(score, 1, generator=generator))
        else:  # every point left coincides with a chosen centre: take the first one not chosen
            taken = torch.zeros(len(points), dtype=torch.bool)
            taken[chosen] = True
            pick = int(torch.nonzero(~taken)[0, 0])
        chosen.append(pick)
        nearest = torch.minimum(nearest, (norms - 2 * points @ points[pick] + norms[pick]).clamp_min(0))
    return torch.tensor(chosen)


def _fill_empty_clusters(labels: torch.Tensor, distances: torch.Tensor, n_clusters: int) -> torch.Tensor:
    """Give each empty cluster the point farthest from its own centre, taken from a cluster of two or more."""
    labels = labels.clone()
    own = distances.gather(1, labels[:, None])[:, 0].clone()
    for empty in torch.nonzero(torch.bincount(labels, minlength=n_clusters) == 0)[:, 0].tolist():
        sizes = torch.bincount(labels, minlength=n_clusters)
        movable = sizes[labels] > 1
        candidate = int(torch.where(movable, own, torch.tensor(-1.0)).argmax())
        labels[candidate], own[candidate] = empty, -1.0  # a moved point is never moved again
    return labels
