"""Minimal pairs and the distance fuzzer: does a model remember who and what a story is about?

    pairs = story_pairs(validation_texts)                       # one recall changed, per phenomenon
    fuzzed = fuzz_pairs(validation_texts, inserted=(0, 2, 8, 32))  # the same, k sentences further away
    real = text_name_pairs(tinystories_texts)                   # no generator: a repeated name swapped
    scored = pd.concat([score_pairs(m, tokenizer, pairs) for m in models])   # whole stories
    pair_accuracy(scored)                                       # accuracy with a Wilson interval
    cap_pairs(fuzzed, 30)                                       # at most 30 per phenomenon and distance
    by_distance = pair_accuracy(score_pairs(m, tokenizer, fuzzed, scope="prefix"), by=("model", "inserted_sentences"))
    break_distance(by_distance)                                 # where each model falls to chance

A pair is a story (`sentence_good`) and the same story with exactly one recall changed to
another value of the same kind (`sentence_bad`): another name of the same gender, the
other pronoun, another toy, another grown-up, or a closing quote left out. Every bad
story is checked to be one the generator can never print (it fails to parse) while the
good one parses. A model passes a pair when it gives the good story the higher total
probability; with no memory of the binding it is at chance — unless the text after the change
gives it away (a changed pronoun disagrees with the hero's later pronouns too), which is why
fuzzed pairs are scored on the text before the change only (`score_pairs(..., scope="prefix")`).

The fuzzer inserts k filler sentences from the same grammar (`stories.filler_sentences`:
weather, a bird singing; they name no one) just before the sentence holding the recall,
for recalls whose binding was last printed in an earlier sentence, so the same pair
moves k sentences further from its binding. Fuzzed stories are longer than any the
generator prints, so only their k = 0 version is parse-checked.

Pairs are dicts in BLiMP's layout (`sentence_good`, `sentence_bad`, `field`,
`linguistics_term`, `UID`, `pairID`, ...) plus `phenomenon`, `distance_chars` (from the
binding's last print to the changed text, start to start) and `inserted_sentences`;
`write_pairs_jsonl` writes them as JSON lines that tools reading BLiMP read too.
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from storylab.cache import atomic_path
from storylab.checks import check_int
from storylab.corpora import story_words as words
from storylab.corpora.stories import filler_sentences, parse_story, story_events
from storylab.corpora.story_options import GENDER_OF, PRONOUNS
from storylab.diagnostics.ledger import Recall, recalls_of
from storylab.tokenizers import encode_texts

_HERO_PRONOUNS = ("He", "he", "him", "his", "His", "himself")
_GROWN_UPS = {"mom": "Mom", "dad": "Dad", "grandma": "Grandma", "grandpa": "Grandpa", "aunt": "Auntie", "uncle": "Uncle"}
_NAME_WORD = re.compile(r"\b[A-Z][a-z]+\b")

# phenomenon → the recalled slots it changes (closing quotes are found in the text instead)
PHENOMENA: dict[str, tuple[str, ...]] = {
    "name recall": ("hero",),
    "pronoun agreement": _HERO_PRONOUNS,
    "object recall": ("toy",),
    "friend recall": ("friend",),
    "pet recall": ("pet",),
    "grown-up recall": ("rel", "Rel"),
    "closing quote": (),
}
FUZZ_PHENOMENA = tuple(p for p in PHENOMENA if PHENOMENA[p])  # a quote's binding lies in its own sentence


def _check_phenomena(phenomena) -> tuple[str, ...]:
    phenomena = tuple(PHENOMENA if phenomena is None else phenomena)
    unknown = [p for p in phenomena if p not in PHENOMENA]
    if unknown or not phenomena:
        raise ValueError(f"phenomena: expected some of {list(PHENOMENA)}, got {list(phenomena)!r}")
    return phenomena


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str) or not len(texts) or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts: expected a non-empty list of story strings")
    return list(texts)


def _replacement(phenomenon: str, recall: Recall, text: str, rng: random.Random) -> str | None:
    """Another value of the same kind that this story never prints (None if there is none)."""
    old = text[recall.start:recall.end]
    if phenomenon == "pronoun agreement":
        gender = next(g for g in ("girl", "boy") if PRONOUNS[g][recall.slot] == old)
        return PRONOUNS["boy" if gender == "girl" else "girl"][recall.slot]
    if phenomenon in ("name recall", "friend recall"):
        pool = words.GIRL_NAMES if GENDER_OF[old] == "girl" else words.BOY_NAMES
    elif phenomenon == "pet recall":
        pool = words.PET_NAMES
    elif phenomenon == "object recall":
        pool = words.TOYS
    else:  # grown-up recall: "mom" or "Mom"
        pool = list(_GROWN_UPS.values()) if old[0].isupper() else list(_GROWN_UPS)
    # not printed as a word in this story; a name inside another word ("Tim" in "time") may still be
    # chosen, so the replacement is drawn like the original (a substring test would leave out short
    # names and let a model that only knows which names look likely beat chance)
    choices = [v for v in pool if not re.search(rf"\b{re.escape(v)}\b", text)]
    return rng.choice(choices) if choices else None


def _sentence_start(events, position: int) -> int:
    """Where the innermost sentence holding `position` starts."""
    return max(e.start for e in events if e.kind == "sentence" and e.start <= position < e.end)


def _record(phenomenon: str, good: str, bad: str, story: int, position: int, distance_chars: int,
            inserted_sentences: int, good_text: str, bad_text: str) -> dict:
    return {"sentence_good": good, "sentence_bad": bad, "field": "storylab", "linguistics_term": phenomenon,
            "UID": phenomenon.replace(" ", "_").replace("-", "_"), "simple_LM_method": True,
            "one_prefix_method": False, "two_prefix_method": False, "lexically_identical": False,
            "phenomenon": phenomenon, "story": story, "position": position, "distance_chars": int(distance_chars),
            "inserted_sentences": int(inserted_sentences), "good_text": good_text, "bad_text": bad_text}


def _unparseable(text: str) -> bool:
    try:
        parse_story(text)
    except ValueError:
        return True
    return False




def _quote_pair(text: str, rng: random.Random) -> tuple[int, int] | None:
    quotes = [i for i, c in enumerate(text) if c == '"']
    if len(quotes) < 2:
        return None
    j = rng.randrange(len(quotes) // 2)
    return quotes[2 * j], quotes[2 * j + 1]


def _parsed_stories(texts: Sequence[str]):
    """(story index, text, its choice events, its recalls) for each story the generator can print."""
    for story, text in enumerate(texts):
        try:
            events = story_events(text)
        except ValueError as error:
            raise ValueError(f"texts: story {story} is not one the story generator prints ({error})") from None
        yield story, text, events, recalls_of(text, events)


def story_pairs(texts: Sequence[str], phenomena: Iterable[str] | None = None, seed: int = 0) -> list[dict]:
    """At most one minimal pair per story and phenomenon (a random eligible recall), each bad
    story checked to fail to parse (those that parse are dropped: none are expected)."""
    texts = _check_texts(texts)
    phenomena = _check_phenomena(phenomena)
    check_int("seed", seed)
    pairs = []
    for story, text, _, recalls in _parsed_stories(texts):
        for phenomenon in phenomena:
            rng = random.Random(f"{seed}:{story}:{phenomenon}")
            if phenomenon == "closing quote":
                found = _quote_pair(text, rng)
                if found is None:
                    continue
                opening, closing = found
                bad = text[:closing] + text[closing + 1:]
                pair = _record(phenomenon, text, bad, story, closing, closing - opening, 0, '"', "")
            else:
                candidates = [r for r in recalls if r.slot in PHENOMENA[phenomenon]]
                if not candidates:
                    continue
                recall = rng.choice(candidates)
                new = _replacement(phenomenon, recall, text, rng)
                if new is None:
                    continue
                bad = text[:recall.start] + new + text[recall.end:]
                pair = _record(phenomenon, text, bad, story, recall.start, recall.start - recall.antecedent_start, 0,
                               text[recall.start:recall.end], new)
            if _unparseable(bad):
                pairs.append(pair)
    for i, pair in enumerate(pairs):
        pair["pairID"] = str(i)
    return pairs


def fuzz_pairs(texts: Sequence[str], inserted: Sequence[int] = (0, 1, 2, 4, 8, 16, 32),
               phenomena: Iterable[str] | None = None, seed: int = 0) -> list[dict]:
    """For each story and phenomenon, one recall whose binding was last printed in an earlier
    sentence, as a pair at every inserted distance k (the same pair, k filler sentences further)."""
    texts = _check_texts(texts)
    phenomena = _check_phenomena(FUZZ_PHENOMENA if phenomena is None else phenomena)
    if "closing quote" in phenomena:
        raise ValueError("phenomena: 'closing quote' cannot be fuzzed (its binding is in its own sentence)")
    inserted = sorted({check_int("inserted", k) for k in inserted})
    if not inserted:
        raise ValueError("inserted: expected at least one number of sentences to insert")
    check_int("seed", seed)
    pairs = []
    for story, text, events, recalls in _parsed_stories(texts):
        fillers = filler_sentences(inserted[-1], seed=seed * 1_000_003 + story)
        for phenomenon in phenomena:
            rng = random.Random(f"{seed}:{story}:{phenomenon}:fuzz")
            candidates = [r for r in recalls if r.slot in PHENOMENA[phenomenon]
                          and r.antecedent_start < _sentence_start(events, r.start)]
            if not candidates:
                continue
            recall = rng.choice(candidates)
            new = _replacement(phenomenon, recall, text, rng)
            if new is None or not _unparseable(text[:recall.start] + new + text[recall.end:]):
                continue
            cut = _sentence_start(events, recall.start)
            for k in inserted:
                insert = "".join(s + " " for s in fillers[:k])
                good = text[:cut] + insert + text[cut:]
                start = recall.start + len(insert)
                bad = good[:start] + new + good[start + recall.end - recall.start:]
                pairs.append(_record(phenomenon, good, bad, story, start, start - recall.antecedent_start, k,
                                     text[recall.start:recall.end], new))
    for i, pair in enumerate(pairs):
        pair["pairID"] = str(i)
    return pairs


def _sentence_initial(text: str, position: int) -> bool:
    before = text[:position].rstrip().rstrip("\"'“‘(").rstrip()
    return not before or before[-1] in ".!?:\n"


def corpus_names(texts: Sequence[str], min_count: int = 2) -> list[str]:
    """Capitalised words that occur at least `min_count` times inside a sentence and never in
    lowercase anywhere in `texts`: the names of a corpus (sorted)."""
    texts = _check_texts(texts)
    check_int("min_count", min_count, minimum=1)
    lowercase: set[str] = set()
    counts: dict[str, int] = {}
    for text in texts:
        lowercase.update(re.findall(r"\b[a-z]+\b", text))
        for match in _NAME_WORD.finditer(text):
            if not _sentence_initial(text, match.start()):
                counts[match.group()] = counts.get(match.group(), 0) + 1
    return sorted(w for w, c in counts.items() if c >= min_count and w.lower() not in lowercase)


def text_name_pairs(texts: Sequence[str], names: Sequence[str] | None = None, seed: int = 0) -> list[dict]:
    """Minimal pairs without a generator: in each story, a name (`corpus_names`) that occurs at
    least twice, with one later occurrence swapped for another corpus name the story never uses.

    A text with fewer than two names (an HMM's or the addition corpus's symbols) has no pairs:
    `[]`, which a caller skips; `names` given explicitly must hold at least two."""
    texts = _check_texts(texts)
    if names is None:
        names = corpus_names(texts)
        if len(names) < 2:
            return []
    names = list(names)
    if len(names) < 2:
        raise ValueError(f"names: expected at least 2 names to swap between, got {len(names)}")
    known = set(names)
    pairs = []
    for story, text in enumerate(texts):
        rng = random.Random(f"{seed}:{story}:text names")
        occurrences: dict[str, list[int]] = {}
        for match in _NAME_WORD.finditer(text):
            if match.group() in known:
                occurrences.setdefault(match.group(), []).append(match.start())
        repeated = sorted(n for n, at in occurrences.items() if len(at) >= 2)
        if not repeated:
            continue
        name = rng.choice(repeated)
        j = rng.randrange(1, len(occurrences[name]))
        start, previous = occurrences[name][j], occurrences[name][j - 1]
        others = [n for n in names if n not in occurrences]
        if not others:
            continue
        new = rng.choice(others)
        bad = text[:start] + new + text[start + len(name):]
        pairs.append(_record("name recall (text)", text, bad, story, start, start - previous, 0, name, new))
    for i, pair in enumerate(pairs):
        pair["pairID"] = str(i)
    return pairs


def cap_pairs(pairs: Sequence[dict], per_group: int, by: Sequence[str] = ("phenomenon", "inserted_sentences")) -> list[dict]:
    """At most `per_group` pairs of each group (the first ones, in story order). Fuzzed pairs exist at
    every distance for the same stories, so capping each (phenomenon, distance) keeps the same stories
    at every distance: the curve follows the same pairs moved further away."""
    check_int("per_group", per_group, minimum=1)
    seen: dict[tuple, int] = {}
    kept = []
    for pair in pairs:
        key = tuple(pair.get(name) for name in by)
        if seen.get(key, 0) < per_group:
            seen[key] = seen.get(key, 0) + 1
            kept.append(pair)
    return kept


def write_pairs_jsonl(pairs: Sequence[dict], path: str | Path) -> Path:
    """Write pairs as JSON lines (one pair per line), atomically."""
    for i, pair in enumerate(pairs):
        if not {"sentence_good", "sentence_bad"} <= set(pair):
            raise ValueError(f"pairs: pair {i} lacks sentence_good / sentence_bad")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(pair) + "\n" for pair in pairs))
    return path


def read_pairs_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: no pairs file at {path}")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- scoring -----------------------------------------------------------------------------------------

def text_nats(model, tokenizer, texts: Sequence[str], batch_stories: int = 64, end_of_text: bool = True) -> np.ndarray:
    """−ln p(text + end-of-text) of each text under `model` (nats); with `end_of_text=False`,
    −ln p(text as the beginning of a story)."""
    encoded = encode_texts(tokenizer, texts)
    eot = [int(model.eot_id)] if end_of_text else []
    totals = []
    for first in range(0, len(encoded), batch_stories):
        batch = [np.asarray(ids + eot, dtype=np.int64) for ids in encoded[first:first + batch_stories]]
        totals.extend(float(np.sum(n)) for n in model.token_nats(batch))
    return np.asarray(totals)


def pair_prefixes(pair: dict) -> tuple[str, str]:
    """The good and the bad story up to the changed text and one character after it (so a name that
    is the start of another, "Ann" and "Anna", is a whole word): what only the text BEFORE the
    change can tell apart."""
    at = pair["position"]
    return (pair["sentence_good"][:at + len(pair["good_text"]) + 1], pair["sentence_bad"][:at + len(pair["bad_text"]) + 1])


SCOPES = ("story", "prefix")


def score_pairs(model, tokenizer, pairs: Sequence[dict], label: str | None = None, scope: str = "story") -> pd.DataFrame:
    """One row per pair: the model's nats on the good and the bad text, and whether it preferred
    the good one (strictly: a tie is a failure).

    `scope="story"` compares the whole stories (BLiMP's simple LM method). `scope="prefix"`
    compares them only up to the change (`pair_prefixes`, no end-of-text): a changed pronoun
    also disagrees with the hero's pronouns AFTER it, which sit in any model's context, so only
    prefixes measure memory of the binding itself (what the fuzzer asks)."""
    if scope not in SCOPES:
        raise ValueError(f"scope: expected one of {SCOPES}, got {scope!r}")
    if not len(pairs):
        raise ValueError("pairs: expected at least one pair")
    compared = [pair_prefixes(p) if scope == "prefix" else (p["sentence_good"], p["sentence_bad"]) for p in pairs]
    # one story is the good text of several pairs (one per phenomenon): each distinct text is scored once
    texts = list(dict.fromkeys(t for both in compared for t in both))
    nats = dict(zip(texts, text_nats(model, tokenizer, texts, end_of_text=scope == "story")))
    good = np.asarray([nats[g] for g, _ in compared])
    bad = np.asarray([nats[b] for _, b in compared])
    meta = pd.DataFrame([{k: v for k, v in p.items() if k not in ("sentence_good", "sentence_bad")} for p in pairs])
    meta.insert(0, "model", label or getattr(model, "label", type(model).__name__))
    meta["scope"] = scope
    meta["good_nats"], meta["bad_nats"] = good, bad
    meta["correct"] = good < bad
    return meta


def wilson_interval(successes, n, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion (95% for z = 1.96); (nan, nan) where n = 0."""
    successes, n = np.asarray(successes, dtype=np.float64), np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = successes / n
        denominator = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denominator
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return centre - half, centre + half


def pair_accuracy(scored: pd.DataFrame, by: Sequence[str] = ("model", "phenomenon"), z: float = 1.96) -> pd.DataFrame:
    """Accuracy per group with its Wilson interval (`ci_low`, `ci_high`) and the median distance."""
    missing = [c for c in list(by) + ["correct", "distance_chars"] if c not in scored.columns]
    if missing:
        raise ValueError(f"scored: missing columns {missing} (expected score_pairs output)")
    table = scored.groupby(list(by), sort=True).agg(n=("correct", "size"), n_correct=("correct", "sum"),
                                                    median_distance_chars=("distance_chars", "median")).reset_index()
    table["accuracy"] = table["n_correct"] / table["n"]
    table["ci_low"], table["ci_high"] = wilson_interval(table["n_correct"], table["n"], z)
    return table


def break_distance(accuracy: pd.DataFrame, distance: str = "inserted_sentences", chance: float = 0.5) -> pd.DataFrame:
    """Per model (and phenomenon, if present): the smallest distance whose accuracy interval reaches
    down to chance — where the model can no longer be told from guessing — or NaN if it never does."""
    if distance not in accuracy.columns or "ci_low" not in accuracy.columns:
        raise ValueError(f"accuracy: expected pair_accuracy output grouped by {distance!r}")
    keys = [c for c in ("model", "phenomenon") if c in accuracy.columns]
    rows = []
    for key, group in accuracy.sort_values(distance).groupby(keys, sort=True):
        at_chance = group[group["ci_low"] <= chance]
        first = at_chance.iloc[0] if len(at_chance) else None
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row[f"break_{distance}"] = first[distance] if first is not None else math.nan
        row["break_median_distance_chars"] = first["median_distance_chars"] if first is not None else math.nan
        rows.append(row)
    return pd.DataFrame(rows)
