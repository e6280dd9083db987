"""The embedded `stories` corpus: TinyStories-like children's stories with an exact entropy.

    texts, neg_log2_probs = generate_stories(5000, seed=0)
    floor_bits_per_char = neg_log2_probs.sum() / sum(map(len, texts))

Every story is printed by one program (`story_arcs.story`) whose random choices each come
from an explicit finite distribution, so `neg_log2_probs[i] = −log2 p(story i)` is exact.
The program is built so that the text determines the choices: `parse_story` recovers them
from the text alone, and fails loudly if two choice sequences could print the same text.
Hence the sum above is the true entropy of the corpus and `floor_bits_per_char` a floor no
model can beat on average. No story is a prefix of another (a parse must consume the whole
text), so the end-of-text token after a story costs an ideal model nothing extra.

Stories run 130-220 words in 4-5 paragraphs: an introduction (hero, favourite toy, best
friend, home, maybe a pet) and one of twelve arcs (`ARC_NAMES`) that brings that cast back.
Floor about 0.18 bits/char; about 2,000 distinct words over 3,000 stories.

`story_events` recovers every choice and recall with the characters it printed and its
exact bits: the raw material of the bits ledger (`storylab.diagnostics`).

This module is the public face. Behind it: `story_grammar` (the sample/parse engine),
`story_words` (word lists), `story_options` (option lists built from them, names and
pronouns), `story_pieces` (introduction, moments, ending) and `story_arcs` (the arcs).
"""

from __future__ import annotations

import random
import re
from typing import Iterable, NamedTuple

import numpy as np

from storylab.checks import check_int
from storylab.corpora import story_grammar
from storylab.corpora.story_arcs import COMMON, STORY_ARCS, story
from storylab.corpora.story_pieces import filler
from storylab.corpora.story_grammar import Event

__all__ = ["generate_stories", "sample_story", "parse_story", "story_neg_log2_prob", "story_arc", "story_events",
           "filler_sentences", "distinct_words", "StorySample", "Event", "STORY_ARCS", "ARC_NAMES"]

ARC_NAMES = tuple(arc.__name__ for arc in STORY_ARCS)
_WORD = re.compile(r"[a-z]+")


class StorySample(NamedTuple):
    text: str
    choices: tuple[int, ...]  # the index picked at each choice point, in order
    neg_log2_prob: float  # −log2 p(text), in bits
    arc: str  # which of ARC_NAMES the story follows


def _check_text(text) -> None:
    if not isinstance(text, str):
        raise ValueError(f"text: expected a story string, got {type(text).__name__}")


def sample_story(rng: random.Random) -> StorySample:
    """One story drawn with `rng`, with its choice sequence, probability and arc."""
    text, choices, bits, arc = story_grammar.sample(story, rng)
    return StorySample(text, tuple(choices), bits, arc)


def generate_stories(n_stories: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """`n_stories` stories from one seeded stream, and each story's −log2 probability in bits.

    Same seed, same stories; the first k stories of a stream do not depend on how many
    are asked for.
    """
    check_int("n_stories", n_stories)
    check_int("seed", seed)
    rng = random.Random(int(seed))
    texts, bits = [], np.empty(int(n_stories), dtype=np.float64)
    for i in range(int(n_stories)):
        text, _, bits[i], _ = story_grammar.sample(story, rng)
        texts.append(text)
    return texts, bits


def parse_story(text: str) -> tuple[int, ...]:
    """The exact choice sequence that printed `text` (ValueError if no story prints it)."""
    _check_text(text)
    return tuple(story_grammar.parse(story, text).choices)


def story_neg_log2_prob(text: str) -> float:
    """−log2 p(text) under the story generator, recovered from the text alone (bits)."""
    _check_text(text)
    return story_grammar.parse(story, text).neg_log2_prob


def story_arc(text: str) -> str:
    """Which arc (one of ARC_NAMES) a story follows, recovered from its text."""
    _check_text(text)
    return story_grammar.parse(story, text).result


def story_events(text: str) -> list[Event]:
    """Every choice and recall of a story, recovered from its text (see `story_grammar.Event`):
    what printed each stretch, its exact bits and where they are revealed. The bits of all
    events sum to `story_neg_log2_prob(text)`. ValueError if no story prints `text`."""
    _check_text(text)
    return story_grammar.parse(story, text, record=True).events


def filler_sentences(n_sentences: int, seed: int = 0) -> list[str]:
    """`n_sentences` sentences from the grammar that name no one in a story's cast (weather, a
    bird singing): the distance fuzzer inserts them between a binding and its recall."""
    check_int("n_sentences", n_sentences)
    check_int("seed", seed)
    rng = random.Random(int(seed))
    sentences = []
    for _ in range(int(n_sentences)):
        w = story_grammar.SampleWriter(rng)
        w.bind(**COMMON)
        filler(w)
        sentences.append(w.text())
    return sentences


def distinct_words(texts: Iterable[str]) -> set[str]:
    """The lowercase alphabetic words used across `texts` (how vocabulary size is counted)."""
    found: set[str] = set()
    for text in texts:
        found.update(_WORD.findall(text.lower()))
    return found
