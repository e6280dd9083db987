"""The exact bits ledger: where, character by character, a model loses its bits on the stories corpus.

    ledgers = true_ledgers(validation_texts)                 # what the generator knows
    costs = {m.label: char_costs(m, tokenizer, validation_texts) for m in models}
    ledger_table(ledgers, costs)                             # per model and category: true, model, excess bits
    recall_table(ledgers, costs)                             # every recall, its distance back, its excess

The true side (`TrueLedger`) comes from the story generator's recorded parse
(`stories.story_events`): each choice's exact bits are placed on the characters where its
alternatives die (see `story_grammar`), so the true bits of a story sum to −log2 p(story)
and those of the split to the floor. Every character also gets a category
(`corpora.story_categories.CATEGORIES`): a character that reveals bits belongs to the
categories of those bits (shared in proportion when several choices meet there, as a
template's decision inside a path's); any other character is "template" (fixed text),
a recall category (printed from a binding made earlier), or the category of the slot
that printed it (the forced tail of a long name); the end-of-text position is
"end of story". A template or recall character therefore costs 0 true bits.

The model side (`CharCosts`) spreads each token's nats evenly over the characters its
tokenizer offsets cover (byte-level tokens that split one character all report that
character, so it collects all of their nats); the end-of-text token after a story, and
any token covering no character, put theirs on the position after the story's last
character (`len(text)`: "end of story"). So a model's ledger sums to its `token_nats`
total for any tokenizer, and two tokenizers can be compared character by character.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd

from storylab.corpora.stories import story_events
from storylab.corpora.story_categories import CATEGORIES, FREE_CATEGORIES, choice_category, referent, slot_category
from storylab.corpora.story_grammar import Event
from storylab.tokenizers import encode_with_offsets

CATEGORY_NAMES = tuple(CATEGORIES)
_INDEX = {name: i for i, name in enumerate(CATEGORY_NAMES)}
LN2 = math.log(2)


class Recall(NamedTuple):
    """A stretch printed from a binding made earlier, and where that binding was last printed."""

    slot: str  # the slot that printed it ("he", "toy", ...)
    referent: str  # what it refers to ("hero", "toy", ...)
    category: str
    start: int
    end: int
    antecedent_start: int  # the last earlier print of the same referent (see `_antecedent`)
    antecedent_end: int


@dataclass
class TrueLedger:
    """One story as the generator sees it: exact bits and a category share for every character.

    Positions run over the characters and one more, `len(text)`, the end of the story.
    The shares are a sparse (position, category, share) list; each position's shares sum to 1.
    """

    text: str
    bits: np.ndarray  # (n + 1,) true bits revealed at each position
    position: np.ndarray  # (m,) which position a share belongs to
    category: np.ndarray  # (m,) which category (index into CATEGORY_NAMES)
    share: np.ndarray  # (m,) the fraction of that position's cost in that category
    events: list[Event]
    recalls: list[Recall]

    @property
    def neg_log2_prob(self) -> float:
        return float(sum(e.bits for e in self.events))

    def main_category(self) -> np.ndarray:
        """(n + 1,) the category index with the largest share at each position."""
        order = np.lexsort((-self.share, self.position))  # by position, largest share first
        first = np.unique(self.position[order], return_index=True)[1]
        return self.category[order][first]

    def category_sums(self, per_position: np.ndarray) -> np.ndarray:
        """(n_categories,) a per-position quantity (bits) summed per category by the shares."""
        return np.bincount(self.category, weights=self.share * per_position[self.position],
                           minlength=len(CATEGORY_NAMES))


def true_ledger(text: str) -> TrueLedger:
    """The true ledger of one story (ValueError if no story prints `text`)."""
    events = story_events(text)
    n = len(text)
    base = np.full(n + 1, _INDEX["template"], dtype=np.int64)
    base[n] = _INDEX["end of story"]
    where, what, how_much = [], [], []
    for event in events:
        if event.kind in ("slot", "recall"):
            base[event.start:event.end] = _INDEX[slot_category(event.name, event.kind == "recall")]
        if event.bits_at:
            k = _INDEX[choice_category(event.kind, event.name)]
            for position, bits in event.bits_at:
                where.append(position)
                what.append(k)
                how_much.append(bits)
    where, what, how_much = np.asarray(where, dtype=np.int64), np.asarray(what, dtype=np.int64), np.asarray(how_much)
    bits = np.bincount(where, weights=how_much, minlength=n + 1)
    # A position that reveals bits shares its cost among the categories of those bits.
    pair, inverse = np.unique(where * len(CATEGORY_NAMES) + what, return_inverse=True)
    pair_bits = np.bincount(inverse, weights=how_much, minlength=len(pair))
    pair, pair_bits = pair[pair_bits > 0], pair_bits[pair_bits > 0]
    paid = pair // len(CATEGORY_NAMES)
    paid_total = np.bincount(paid, weights=pair_bits, minlength=n + 1)
    free = np.flatnonzero(paid_total <= 0)
    position = np.concatenate([paid, free])
    category = np.concatenate([pair % len(CATEGORY_NAMES), base[free]])
    share = np.concatenate([pair_bits / paid_total[paid], np.ones(len(free))])
    return TrueLedger(text, bits, position, category, share, events, recalls_of(text, events))


def recalls_of(text: str, events: list[Event]) -> list[Recall]:
    """Every recall with its antecedent: the last earlier print (chosen or recalled) of the same
    referent whose text contains the recalled text ("a dog" for "dog"), or, for pronouns and
    text forced by an earlier choice (his/her after a name), the last earlier print of the referent."""
    history: dict[str, list[tuple[int, int]]] = {}
    found = []
    for event in events:
        if event.kind not in ("slot", "recall"):
            continue
        key = referent(event.name)
        earlier = history.setdefault(key, [])
        if event.kind == "recall" and earlier:
            start, end = _antecedent(text, event, earlier)
            found.append(Recall(event.name, key, slot_category(event.name, True), event.start, event.end, start, end))
        earlier.append((event.start, event.end))
    return found


def _antecedent(text: str, event: Event, earlier: list[tuple[int, int]]) -> tuple[int, int]:
    recalled = text[event.start:event.end]
    if slot_category(event.name, True) != "pronoun":
        for start, end in reversed(earlier):
            if recalled in text[start:end]:
                return start, end
    return earlier[-1]


def true_ledgers(texts: Sequence[str]) -> list[TrueLedger]:
    """`true_ledger` of every text; the error names the first text no story prints."""
    if isinstance(texts, str):
        raise ValueError("texts: expected a list of stories, got one string")
    ledgers = []
    for i, text in enumerate(texts):
        try:
            ledgers.append(true_ledger(text))
        except ValueError as error:
            raise ValueError(f"texts: story {i} is not one the story generator prints ({error})") from None
    return ledgers


# --- the model side --------------------------------------------------------------------------------

@dataclass
class CharCosts:
    """One model on one story: nats per position (the n characters and the end of the story)."""

    nats: np.ndarray  # (n + 1,)
    token_starts: np.ndarray  # (T,) first character of each story token (the end-of-text token excluded)
    token_ends: np.ndarray  # (T,)

    @property
    def bits(self) -> np.ndarray:
        return self.nats / LN2

    def token_at(self, position) -> np.ndarray:
        """Index of the (last) token that starts at or before each character position."""
        return np.searchsorted(self.token_starts, np.asarray(position), side="right") - 1


def spread_token_nats(token_nats: np.ndarray, offsets: Sequence[tuple[int, int]], n_chars: int) -> np.ndarray:
    """(n_chars + 1,) the rule of the module docstring: each token's nats spread evenly over the
    characters its offsets cover; the final end-of-text token (and any zero-width token) at `n_chars`."""
    token_nats = np.asarray(token_nats, dtype=np.float64)
    if len(token_nats) != len(offsets) + 1:
        raise ValueError(f"token_nats: expected {len(offsets) + 1} values (story tokens and end-of-text), got {len(token_nats)}")
    spans = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    widths = np.maximum(spans[:, 1] - spans[:, 0], 0)
    zero = widths == 0
    widths_or_one = np.where(zero, 1, widths)
    starts = np.where(zero, n_chars, spans[:, 0])
    positions = np.repeat(starts, widths_or_one) + _ramp(widths_or_one)
    weights = np.repeat(token_nats[:-1] / widths_or_one, widths_or_one)
    nats = np.bincount(positions, weights=weights, minlength=n_chars + 1)
    nats[n_chars] += token_nats[-1]
    return nats


def _ramp(widths: np.ndarray) -> np.ndarray:
    """0, 1, ..., w-1 for each width, concatenated."""
    total = int(widths.sum())
    return np.arange(total) - np.repeat(np.cumsum(widths) - widths, widths)


def char_costs(model, tokenizer, texts: Sequence[str], batch_stories: int = 64) -> list[CharCosts]:
    """A model's nats on every character of every text (each scored as one story + end-of-text)."""
    if isinstance(texts, str) or not len(texts):
        raise ValueError("texts: expected a non-empty list of stories")
    if not hasattr(model, "token_nats"):
        raise ValueError(f"model: expected a storylab.lm.LanguageModel (with token_nats), got {type(model).__name__}")
    encoded = encode_with_offsets(tokenizer, texts)
    eot = int(model.eot_id)
    costs = []
    for first in range(0, len(texts), batch_stories):
        batch = encoded[first:first + batch_stories]
        nats = model.token_nats([np.asarray(ids + [eot], dtype=np.int64) for ids, _ in batch])
        for (ids, offsets), story_nats, text in zip(batch, nats, texts[first:first + batch_stories]):
            spans = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
            costs.append(CharCosts(spread_token_nats(story_nats, offsets, len(text)), spans[:, 0], spans[:, 1]))
    return costs


# --- tables ----------------------------------------------------------------------------------------

def _check_costs(ledgers: Sequence[TrueLedger], costs: dict[str, Sequence[CharCosts]]) -> None:
    if not isinstance(costs, dict) or not costs:
        raise ValueError("costs: expected {model label: char_costs(...)} with at least one model")
    for label, per_story in costs.items():
        if len(per_story) != len(ledgers):
            raise ValueError(f"costs: model {label!r} has {len(per_story)} stories, the ledgers {len(ledgers)}")
        for i, (ledger, cost) in enumerate(zip(ledgers, per_story)):
            if len(cost.nats) != len(ledger.bits):
                raise ValueError(f"costs: model {label!r} story {i} has {len(cost.nats) - 1} characters, "
                                 f"the ledger {len(ledger.bits) - 1}: score the same texts")


def ledger_table(ledgers: Sequence[TrueLedger], costs: dict[str, Sequence[CharCosts]]) -> pd.DataFrame:
    """Per model and category: true, model and excess bits, in total and per character of the text.

    `*_bits_per_char` divide by all characters of the texts, so a model's rows sum to its
    bits/char and the true rows to the floor; `n_chars` is the (share-weighted) number of
    characters in the category, and `excess_bits_per_category_char` divides by it.
    """
    _check_costs(ledgers, costs)
    n_chars_total = sum(len(ledger.text) for ledger in ledgers)
    true_bits = np.zeros(len(CATEGORY_NAMES))
    n_chars = np.zeros(len(CATEGORY_NAMES))
    for ledger in ledgers:
        true_bits += ledger.category_sums(ledger.bits)
        n_chars += np.bincount(ledger.category, weights=ledger.share * (ledger.position < len(ledger.text)),
                               minlength=len(CATEGORY_NAMES))
    rows = []
    for label, per_story in costs.items():
        model_bits = np.zeros(len(CATEGORY_NAMES))
        for ledger, cost in zip(ledgers, per_story):
            model_bits += ledger.category_sums(cost.bits)
        for k, name in enumerate(CATEGORY_NAMES):
            excess = model_bits[k] - true_bits[k]
            rows.append({"model": label, "category": name, "free": name in FREE_CATEGORIES, "n_chars": n_chars[k],
                         "true_bits": true_bits[k], "model_bits": model_bits[k], "excess_bits": excess,
                         "true_bits_per_char": true_bits[k] / n_chars_total,
                         "model_bits_per_char": model_bits[k] / n_chars_total,
                         "excess_bits_per_char": excess / n_chars_total,
                         "excess_bits_per_category_char": excess / n_chars[k] if n_chars[k] else float("nan")})
    return pd.DataFrame(rows)


def recall_table(ledgers: Sequence[TrueLedger], costs: dict[str, Sequence[CharCosts]]) -> pd.DataFrame:
    """One row per model and recall: how far back its binding was last printed (characters and
    the model's tokens, start to start), and the model's excess bits on the recalled characters."""
    _check_costs(ledgers, costs)
    base = pd.DataFrame([(story, *recall) for story, ledger in enumerate(ledgers) for recall in ledger.recalls],
                        columns=["story", *Recall._fields])
    if base.empty:
        return base
    starts, ends = base["start"].to_numpy(), base["end"].to_numpy()
    antecedents = base["antecedent_start"].to_numpy()
    base["text"] = [ledgers[story].text[a:b] for story, a, b in zip(base["story"], starts, ends)]
    base["distance_chars"] = starts - antecedents
    bounds = np.searchsorted(base["story"].to_numpy(), np.arange(len(ledgers) + 1))
    true_bits = np.concatenate([_span_sums(ledger.bits, starts[a:b], ends[a:b])
                                for ledger, a, b in zip(ledgers, bounds[:-1], bounds[1:])])
    frames = []
    for label, per_story in costs.items():
        model_bits, distance_tokens = np.empty(len(base)), np.empty(len(base), dtype=np.int64)
        for cost, a, b in zip(per_story, bounds[:-1], bounds[1:]):
            model_bits[a:b] = _span_sums(cost.bits, starts[a:b], ends[a:b])
            distance_tokens[a:b] = cost.token_at(starts[a:b]) - cost.token_at(antecedents[a:b])
        frame = base.assign(distance_tokens=distance_tokens, model_bits=model_bits, true_bits=true_bits,
                            excess_bits=model_bits - true_bits)
        frame.insert(0, "model", label)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _span_sums(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Sum of values[start:end] for each span."""
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    return cumulative[ends] - cumulative[starts]


def excess_by_distance(recalls: pd.DataFrame, unit: str = "tokens", edges: Sequence[float] | None = None,
                       by: Sequence[str] = ("model", "category")) -> pd.DataFrame:
    """Mean excess bits per recall, per group (`by`: model and category; `("model",)` pools the
    categories) and distance bin (`unit`: "tokens" or "chars").

    Default bins double in width (1, 2, 4, 8, ...), so a context-length cliff shows on a log axis.
    """
    if unit not in ("tokens", "chars"):
        raise ValueError(f"unit: expected 'tokens' or 'chars', got {unit!r}")
    by = list(by)
    unknown = [c for c in by if c not in ("model", "category", "slot", "referent", "story")]
    if unknown or not by:
        raise ValueError(f"by: expected some of model, category, slot, referent, story, got {by!r}")
    column = f"distance_{unit}"
    columns = [*by, "distance_from", "distance_to", "n", "mean_excess_bits", "sem"]
    if recalls.empty:
        return pd.DataFrame(columns=columns)
    if edges is None:
        top = max(float(recalls[column].max()), 1.0)
        edges = [0.0] + [2.0 ** k for k in range(int(math.ceil(math.log2(top))) + 2)]
    edges = np.asarray(edges, dtype=np.float64)
    bins = np.clip(np.searchsorted(edges, recalls[column].to_numpy(), side="right") - 1, 0, len(edges) - 2)
    grouped = recalls.assign(bin=bins).groupby([*by, "bin"])["excess_bits"]
    table = grouped.agg(n="size", mean_excess_bits="mean", std="std").reset_index()
    table["sem"] = table["std"] / np.sqrt(table["n"])
    table["distance_from"] = edges[table["bin"]]
    table["distance_to"] = edges[table["bin"] + 1]
    return table[columns]
