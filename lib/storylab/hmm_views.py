"""What notebook 02 shows of a fitted HMM: state occupancy, each state's top tokens, a clustered order.

    occupancy = state_occupancy(hmm, exp.validation.sequences())
    state_table(hmm, tokenizer, occupancy, top_tokens=8)   # one row per state, most used first
    order = transition_order(hmm)                            # groups of states that hand over to each other
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from storylab.interp.embeddings import token_order


def state_occupancy(hmm, sequences) -> np.ndarray:
    """(K,) the expected fraction of tokens each state emits (smoothed posteriors, summed)."""
    occupancy = np.zeros(hmm.n_states)
    for seq in sequences:
        occupancy += hmm.posteriors(seq).sum(axis=0)
    return occupancy / occupancy.sum()


def state_table(hmm, tokenizer, occupancy: np.ndarray, top_tokens: int = 8) -> pd.DataFrame:
    """One row per state, most used first: its occupancy and its most likely tokens with their probabilities."""
    emit = hmm.emit.detach().cpu().numpy()
    top = np.argsort(-emit, axis=1, kind="stable")[:, :top_tokens]
    rows = [{"state": k, "occupancy": round(float(occupancy[k]), 4),
             "top tokens": ", ".join(f"{tokenizer.decode([int(t)])!r} {emit[k, t]:.2f}" for t in top[k])}
            for k in range(hmm.n_states)]
    return pd.DataFrame(rows).sort_values("occupancy", ascending=False, kind="stable").reset_index(drop=True)


def transition_order(hmm) -> np.ndarray:
    """States in hierarchical-clustering order of their transition rows (blocks on the diagonal)."""
    return token_order(hmm.trans.detach().cpu(), order="cluster")
