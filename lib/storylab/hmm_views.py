"""What notebook 02 shows of a fitted HMM: each state's top tokens, and a clustered order of states.

    occupancy = hmm.occupancy(exp.validation)                # CategoricalHMM's own, batched
    state_table(hmm, tokenizer, occupancy, top_tokens=8)   # one row per state, most used first
    order = transition_order(hmm)                            # groups of states that hand over to each other
    matrix, labels, what = transition_view(hmm)              # what 02 draws: at most 1,024 x 1,024 cells
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from storylab.interp.embeddings import token_order


MAX_CLUSTERED_STATES = 1024  # average linkage is O(K³): beyond this, states keep their (block) order
MAX_SHOWN_STATES = 1024  # a heatmap of K² cells: 16,384 states would be 268M numbers in the report


def state_table(hmm, tokenizer, occupancy: np.ndarray, top_tokens: int = 8) -> pd.DataFrame:
    """One row per state, most used first: its occupancy and its most likely tokens with their probabilities."""
    emit = hmm.emit.detach().cpu().numpy()
    top = np.argsort(-emit, axis=1, kind="stable")[:, :top_tokens]
    rows = [{"state": k, "occupancy": round(float(occupancy[k]), 4),
             "top tokens": ", ".join(f"{tokenizer.decode([int(t)])!r} {emit[k, t]:.2f}" for t in top[k])}
            for k in range(hmm.n_states)]
    return pd.DataFrame(rows).sort_values("occupancy", ascending=False, kind="stable").reset_index(drop=True)


def transition_order(hmm) -> np.ndarray:
    """States in hierarchical-clustering order of their transition rows (blocks on the diagonal);
    past `MAX_CLUSTERED_STATES` states, their own order (a blocked model's states come in blocks)."""
    if hmm.n_states > MAX_CLUSTERED_STATES:
        return np.arange(hmm.n_states)
    return token_order(hmm.trans.detach().cpu(), order="cluster")


def transition_view(hmm, max_states: int = MAX_SHOWN_STATES) -> tuple[np.ndarray, np.ndarray, str]:
    """`(matrix, labels, what)`: the transition matrix as 02 draws it.

    Up to `max_states` states: p(to | from) in `transition_order`, labels the state ids. Past
    it, consecutive states are pooled into at most `max_states` groups (a blocked model's
    blocks are consecutive states): p(to a state of group j | from a state of group i), the
    mean over i's states of their mass on j's states, so every row still sums to 1; labels
    are each group's first state."""
    if hmm.n_states <= max_states:
        order = transition_order(hmm)
        return hmm.trans.detach().cpu().numpy()[np.ix_(order, order)], order, "p(to | from), clustered order"
    size = -(-hmm.n_states // max_states)  # ceil: states per group
    starts = np.arange(0, hmm.n_states, size)
    trans = hmm.trans.detach().cpu().double().numpy()
    to_groups = np.add.reduceat(trans, starts, axis=1)
    pooled = np.add.reduceat(to_groups, starts, axis=0) / np.diff(np.append(starts, hmm.n_states))[:, None]
    return pooled, starts, f"groups of {size} consecutive states: mean mass from a group's states to another group"
