"""Targets from hidden Markov models for probing the residual stream.

- Belief states (Shai et al. 2024): for a transformer trained on an `hmm` corpus, the
  filtered state distribution p(s_t | x_1..x_t) of the TRUE generating HMM at every story
  position, computed by `CategoricalHMM.beliefs` after mapping tokenizer ids to HMM ids.
- Viterbi states: for a transformer and an HMM fitted (notebook 02) on the same tokenized
  text, the HMM's most likely state at every position.

Both return targets aligned with a `ResidualSample` built from `story_sequences`: position 0
(the leading end-of-text token) and the trailing end-of-text token get no target, so the
functions also return the boolean mask of positions that have one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from storylab.interp.activations import ResidualSample
from storylab.interp.probes import classifier_probe_layers, probe_layers
from storylab.interp.tokens import alphabet_id_map


def true_hmm(corpus):
    """The HMM that generated an `hmm` corpus (rebuilt from its spec), or None for other sources."""
    if corpus.meta.get("source") != "hmm":
        return None
    from storylab.corpora.hmm_source import hmm_options, source_model

    # the same option merge build_hmm_corpus does, without sampling the corpus again
    return source_model(hmm_options(corpus.spec))


def belief_targets(hmm, sample: ResidualSample, tokenizer, alphabet: str) -> tuple[np.ndarray, np.ndarray]:
    """`(beliefs (M, K), mask (N,))`: the true HMM's filtered beliefs at the M positions of `sample`
    that hold an HMM token (story characters), in sample order."""
    id_map = alphabet_id_map(tokenizer, alphabet)
    hmm_ids = id_map[sample.token_ids]
    mask = hmm_ids >= 0
    beliefs = np.empty((int(mask.sum()), hmm.n_states))
    filled = 0
    for seq in np.unique(sample.sequence_index):
        rows = (sample.sequence_index == seq) & mask
        ids = hmm_ids[rows]
        if len(ids):
            # the story's HMM tokens start right after the leading end-of-text token
            beliefs[filled : filled + len(ids)] = hmm.beliefs(ids)
            filled += len(ids)
    return beliefs, mask


def viterbi_targets(hmm, sample: ResidualSample) -> tuple[np.ndarray, np.ndarray]:
    """`(states (M,), mask (N,))`: the HMM's Viterbi state at every position after the leading
    end-of-text token (story tokens and the closing end-of-text token, as the HMM was fitted)."""
    if hmm.vocab_size <= int(sample.token_ids.max()):
        raise ValueError(f"hmm_run: the HMM's vocab_size={hmm.vocab_size} does not cover the model's token ids "
                         f"(max {int(sample.token_ids.max())}); it was fitted with another tokenizer")
    mask = sample.positions > 0
    states = []
    for seq in np.unique(sample.sequence_index):
        rows = (sample.sequence_index == seq) & mask
        if rows.any():
            states.append(hmm.viterbi(sample.token_ids[rows]))
    return np.concatenate(states), mask


@dataclass
class BeliefProbes:
    """Belief-state probes of every residual point, and what they were fitted on (for the simplex plot)."""

    table: pd.DataFrame      # per point: r2, r2_shuffled
    beliefs: np.ndarray      # (M, K) the true beliefs at the M positions with an HMM token
    resid: torch.Tensor      # (L + 1, M, d_model) the residual stream at those positions
    stories: np.ndarray      # (M,) which story each position is in


def belief_probes(hmm, sample: ResidualSample, tokenizer, alphabet: str, ridge: float, test_fraction: float,
                  seed: int) -> BeliefProbes:
    """Ridge probes from the residual stream at each point to the true HMM's filtered beliefs,
    held out by story, beside the same probes fitted to shuffled beliefs (`probe_layers`)."""
    beliefs, has_belief = belief_targets(hmm, sample, tokenizer, alphabet)
    resid, stories = sample.resid[:, torch.as_tensor(has_belief)], sample.sequence_index[has_belief]
    table = probe_layers(resid, beliefs, stories, ridge, test_fraction, seed, sample.labels)
    return BeliefProbes(table, beliefs, resid, stories)


def viterbi_probes(hmm, sample: ResidualSample, ridge: float, test_fraction: float, seed: int) -> pd.DataFrame:
    """Linear classifiers from the residual stream at each point to a fitted HMM's Viterbi state,
    accuracy on held-out stories beside always guessing the most common state."""
    states, has_state = viterbi_targets(hmm, sample)
    return classifier_probe_layers(sample.resid[:, torch.as_tensor(has_state)], states, sample.sequence_index[has_state],
                                   ridge, test_fraction, seed, sample.labels)
