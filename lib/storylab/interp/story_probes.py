"""Story-variable probes: what the story generator knows at each position, as probe targets.

    sequences = story_sequences(tokenizer, texts, n_ctx)           # [eot] + story + [eot], cut to n_ctx
    sample = collect_residuals(bridge, sequences)
    targets = story_probe_targets(tokenizer, texts, n_ctx)         # aligned with sample's positions
    story_variable_probes(sample, targets)                         # accuracy per layer, held out by story

At a sequence position the model has read every character its tokens cover so far (none
at the leading end-of-text, the whole story at the final one). The label of a variable
there is its value given those characters, or −1 where the text has not revealed it yet:

- `hero_gender`: 0 girl, 1 boy — from the end of the first word that shows it ("girl"/"boy"
  or the hero's name)
- `toy`: the hero's favourite toy (index into `story_words.TOYS`), from the end of its name
- `arc`: the story's arc (index into `stories.ARC_NAMES`), from the character after the one
  that decides it (`Event.decided_at`)
- `has_pet`: 1 if the hero has a pet, likewise from when the text decides it
- `quote_open`: 1 inside a quotation (an odd number of '"' read so far); always known
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from storylab.checks import check_int
from storylab.corpora import story_words as words
from storylab.corpora.stories import ARC_NAMES, story_events
from storylab.corpora.story_options import GENDER_OF
from storylab.interp.activations import ResidualSample
from storylab.interp.probes import classifier_probe_layers
from storylab.tokenizers import encode_with_offsets

STORY_VARIABLES = ("hero_gender", "toy", "arc", "has_pet", "quote_open")
# story_variable_probes' columns, also those of its empty table (no variable probed)
PROBE_COLUMNS = ("variable", "point", "label", "accuracy", "majority_baseline", "n_test", "shuffled_accuracy",
                 "n_positions", "n_classes")
MIN_TEST_POSITIONS = 50  # a variable probed on fewer held-out positions (of classes seen in training) is left out
_PET_PATHS = {"_home_without_pet": 0, "_home_with_pet": 1}


def story_variable_labels(text: str) -> dict[str, np.ndarray]:
    """Each variable's label after reading c characters, for c = 0 … len(text) (−1: not yet known)."""
    events = story_events(text)
    n = len(text)
    labels = {name: np.full(n + 1, -1, dtype=np.int64) for name in STORY_VARIABLES}

    def known_from(name: str, position: int, value: int) -> None:
        if labels[name][n] < 0:  # the first event that reveals a variable sets it for good
            labels[name][position:] = value

    for event in events:
        printed = text[event.start:event.end]
        if event.kind == "slot" and event.name == "kind":
            known_from("hero_gender", event.end, ("girl", "boy").index(printed))
        elif event.kind == "slot" and event.name == "hero":
            known_from("hero_gender", event.end, ("girl", "boy").index(GENDER_OF[printed]))
        elif event.kind == "slot" and event.name == "toy":
            known_from("toy", event.end, words.TOYS.index(printed))
        elif event.kind == "path" and event.name in ARC_NAMES:
            known_from("arc", min(event.decided_at + 1, n), ARC_NAMES.index(event.name))
        elif event.kind == "path" and event.name in _PET_PATHS:
            known_from("has_pet", min(event.decided_at + 1, n), _PET_PATHS[event.name])
    quotes = np.concatenate([[0], np.cumsum([c == '"' for c in text])])
    labels["quote_open"] = (quotes % 2).astype(np.int64)
    return labels


def story_probe_targets(tokenizer, texts: Sequence[str], n_ctx: int, max_stories: int | None = None) -> dict[str, np.ndarray]:
    """Labels of every `STORY_VARIABLES` at every position of `story_sequences(tokenizer, texts,
    n_ctx, max_stories)`, flattened sequence by sequence as `collect_residuals` flattens them."""
    check_int("n_ctx", n_ctx, minimum=1)
    if isinstance(texts, str) or not len(texts):
        raise ValueError("texts: expected a non-empty list of stories")
    texts = list(texts)[:max_stories] if max_stories is not None else list(texts)
    out: dict[str, list[np.ndarray]] = {name: [] for name in STORY_VARIABLES}
    for text, (_, offsets) in zip(texts, encode_with_offsets(tokenizer, texts)):
        read = np.concatenate([[0], np.asarray(offsets, dtype=np.int64).reshape(-1, 2)[:, 1], [len(text)]])[:n_ctx]
        for name, per_char in story_variable_labels(text).items():
            out[name].append(per_char[read])
    return {name: np.concatenate(parts) for name, parts in out.items()}


def story_variable_probes(sample: ResidualSample, targets: dict[str, np.ndarray], variables: Sequence[str] | None = None,
                          ridge: float = 1e-3, test_fraction: float = 0.25, seed: int = 0) -> pd.DataFrame:
    """Held-out accuracy (whole stories held out) of a linear probe for each variable at every
    residual point, on the positions where it is known, beside the majority baseline and the same
    probe fitted on labels shuffled across those positions (what a probe finds in noise).

    One row per variable and residual point (`PROBE_COLUMNS`); a variable with fewer than
    `MIN_TEST_POSITIONS` held-out positions is left out, so the table may have no rows (it
    keeps its columns)."""
    variables = list(targets if variables is None else variables)
    rows = []
    for name in variables:
        if name not in targets:
            raise ValueError(f"variables: {name!r} is not among the targets {list(targets)}")
        labels = np.asarray(targets[name])
        if len(labels) != sample.n_positions:
            raise ValueError(f"targets: {name!r} has {len(labels)} labels for {sample.n_positions} positions "
                             "(build both from the same texts, tokenizer and n_ctx)")
        known = labels >= 0
        classes, y = np.unique(labels[known], return_inverse=True)
        if len(classes) < 2 or len(np.unique(sample.sequence_index[known])) < 2:
            continue  # nothing to tell apart in this sample
        resid, stories = sample.resid[:, torch.as_tensor(known)], sample.sequence_index[known]
        real = classifier_probe_layers(resid, y, stories, ridge, test_fraction, seed, sample.labels)
        shuffled = np.random.default_rng(seed + 1).permutation(y)
        noise = classifier_probe_layers(resid, shuffled, stories, ridge, test_fraction, seed, sample.labels)
        real["shuffled_accuracy"] = noise["accuracy"].to_numpy()
        real.insert(0, "variable", name)
        real["n_positions"], real["n_classes"] = int(known.sum()), len(classes)
        if real["n_test"].min() >= MIN_TEST_POSITIONS:  # fewer held-out positions say nothing either way
            rows.append(real)
    if not rows:
        return pd.DataFrame(columns=list(PROBE_COLUMNS))
    return pd.concat(rows, ignore_index=True)[list(PROBE_COLUMNS)]

