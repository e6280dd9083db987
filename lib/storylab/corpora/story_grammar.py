"""The engine behind the embedded story corpus: one story program, run two ways.

A story is written once, as a plain Python function of a *writer* `w`. Every random
choice is a choice of TEXT made at the point where that text is printed:

    w.say("{He} found {a_toy} under the {spot}.", a_toy=A_TOYS, spot=FURNITURE)
    w.say_one(("{hero} smiled.", "{hero} laughed."))      # one of several sentences
    w.branch((lost_toy, new_friend))                      # one of several story paths
    w.paragraph()                                         # the next sentence starts a paragraph

A `{name}` slot takes a fixed string, an `Options` list to choose from (or `Without`: the
list minus some entries), or a function of the slots filled so far in the sentence; names
not passed in come from the writer's context, set with `w.bind`.

`SampleWriter` runs the program with a seeded `random.Random`: each choice is drawn from
an explicit finite distribution (uniform, or integer weights, drawn exactly by rejection
sampling as `randrange` does) and recorded as (index, log2 probability).

`ParseWriter` runs the SAME program against a finished text. At every choice it tries
each option against the text at the cursor and requires that exactly one fits: a slot
option must match followed by a non-word character (or the end), a sentence template
must match to its end, a story path must run to its end. Zero fits is a mismatch
(backtracking one level up); two fits is an error (`AmbiguousText`). A successful parse
is therefore a proof that the text determines every choice: if another choice sequence
printed the same text (or a text of which this one is a prefix), at its first divergence
its option would also have fitted. Three rules make that argument hold, and are enforced
here: all text goes through templates; a slot is always followed by a literal that starts
with a non-word character or by the end of its sentence (sentences are joined by " " or
"\n\n"); and options are non-empty and distinct.

`parse(program, text, record=True)` also returns the story as `Event`s, for the bits
ledger (`storylab.diagnostics`): every choice (an option at a slot, a sentence's
template, a story path) with the span it printed, the character that completes its parse
decision and its exact bits, and every *recall* (a slot printing a value bound or chosen
earlier: 0 bits). Each choice's bits are placed where its alternatives die: reading
the text left to right, an alternative is alive until the first character it cannot
print (`Mismatch.at`), and the character at which alternatives of probability mass
m die, out of a living mass M, reveals log2(M / (M − m)) bits. The placed bits telescope
to the choice's bits exactly. For a slot this is the exact conditional probability of
each character given the template; for a template or path, whose alternatives print
choices of their own, an alternative counts with its whole probability until it dies (a
documented approximation of where, not of how much). The plain parse skips all of this.
"""

from __future__ import annotations

import math
import random
import re
from bisect import bisect_left, bisect_right
from functools import lru_cache
from typing import Any, Callable, NamedTuple, Sequence

_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_WORD_RUN = re.compile(r"[A-Za-z0-9]+")
_SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")
_LOG2 = [0.0] + [math.log2(n) for n in range(1, 4097)]


class Mismatch(Exception):
    """The text at the cursor cannot come from this option (normal during a parse).

    Raised with where the option started and what it expected, so that a recording parse
    can ask `at(text)`: the first character that rules the option out (every character
    before it fits some continuation of the option). A plain parse never asks.
    """

    def __init__(self, pos: int = -1, expected: Any = None, excluded: frozenset | tuple = ()):
        super().__init__()
        self.pos, self.expected, self.excluded = pos, expected, excluded

    def at(self, text: str) -> int:
        if self.expected is None:  # the position itself (a recording parse computed it already)
            return self.pos
        if self.expected.__class__ is str:
            return self.pos + _common_prefix(self.expected, text, self.pos)
        return self.expected.furthest(text, self.pos, self.excluded)


def _common_prefix(expected: str, text: str, pos: int) -> int:
    """How many leading characters of `expected` the text has at `pos`."""
    n = 0
    for a, b in zip(expected, text[pos:pos + len(expected)]):
        if a != b:
            break
        n += 1
    return n


class Event(NamedTuple):
    """One stretch of a parsed story (see the module docstring), from a recording parse.

    kind: "slot" (an option printed at a slot), "recall" (a slot printing a value bound or
    chosen earlier), "sentence" (which template printed a sentence; 0 bits when the
    sentence had one template) or "path" (which story path the story took).
    name: the slot's name, the sentence's template, or the path function's name.
    decided_at: the character whose reading completes the parse decision (`len(text)`: the
    end of the story); for a recall, its first character.
    bits_at: ((character, bits), ...) where the choice's bits are revealed; they sum to `bits`.
    """

    kind: str
    name: str
    start: int
    end: int
    decided_at: int
    bits: float
    bits_at: tuple


_PREFIX_END = "\x80"  # sorts after every ASCII character: [p, p + _PREFIX_END) holds the texts starting with p


def _revealed(deaths: list[tuple[int, float]], chosen_bits: float, start: int) -> tuple[int, tuple]:
    """(decided_at, bits_at) of a choice whose other alternatives die at the given characters.

    `deaths` holds (character, probability) of every other alternative; living mass starts
    at 1 and ends at the chosen probability 2**-chosen_bits, which the last step uses
    exactly, so the placed bits sum to `chosen_bits`.
    """
    if not deaths:
        return start, ()
    deaths.sort()
    bits_at, alive, log_alive = [], 1.0, 0.0
    for j, (position, probability) in enumerate(deaths):
        alive -= probability
        if j + 1 < len(deaths) and deaths[j + 1][0] == position:
            continue  # several alternatives die at this character: one step
        log_next = -chosen_bits if j + 1 == len(deaths) else math.log2(alive)
        bits_at.append((position, log_alive - log_next))
        log_alive = log_next
    return deaths[-1][0], tuple(bits_at)


class AmbiguousText(ValueError):
    """Two different choices print the same text: the story grammar has a bug."""


_FIRST_WORDS: dict[int, re.Pattern] = {}


def _first_words(text: str, pos: int, count: int) -> tuple[str, ...]:
    """The first `count` runs of word characters from `pos` on (fewer if the text ends)."""
    pattern = _FIRST_WORDS.get(count)
    if pattern is None:
        pattern = _FIRST_WORDS[count] = re.compile(r"[^A-Za-z0-9]*([A-Za-z0-9]+)" * count)
    match = pattern.match(text, pos)
    return match.groups() if match else ()


class Weighted:
    """A finite distribution over `values`: uniform, or proportional to integer `weights`."""

    __slots__ = ("values", "n", "bits", "_cumulative", "_total", "_total_bits")

    def __init__(self, values: Sequence[Any], weights: Sequence[int] | None = None):
        self.values = tuple(values)
        self.n = len(self.values)
        if self.n == 0:
            raise ValueError("options: expected at least one option, got none")
        if weights is None:
            self.bits = (_LOG2[self.n] if self.n < len(_LOG2) else math.log2(self.n),) * self.n
            self._cumulative = None
            self._total = self.n
        else:
            if len(weights) != self.n or any(not isinstance(x, int) or x <= 0 for x in weights):
                raise ValueError(f"options: weights must be {self.n} positive integers, got {weights!r}")
            self._total = sum(weights)
            self.bits = tuple(math.log2(self._total / x) for x in weights)
            running, self._cumulative = 0, []
            for x in weights:
                running += x
                self._cumulative.append(running)
        self._total_bits = self._total.bit_length()

    def revealed(self, deaths: list[tuple[int, int]], chosen: int, start: int) -> tuple[int, tuple]:
        """(decided_at, bits_at) of choosing `chosen` when every other value i died at character d_i."""
        return _revealed([(d, 2.0 ** -self.bits[i]) for d, i in deaths], self.bits[chosen], start)

    def draw(self, rng: random.Random) -> int:
        # Exactly uniform over range(total) by rejection, as random.randrange does (inlined for
        # speed), so the recorded probability of each option is exact.
        r = rng.getrandbits(self._total_bits)
        while r >= self._total:
            r = rng.getrandbits(self._total_bits)
        return r if self._cumulative is None else bisect_right(self._cumulative, r)


class Options(Weighted):
    """Texts to print at a slot, each carrying a value handed back to the story code.

    `Options(["a ball", "an apple"], values=["ball", "apple"])` prints "an apple" and
    returns "apple". Texts must be distinct, non-empty and ASCII.
    """

    __slots__ = ("texts", "_key_words", "_by_key", "_sorted")

    def __init__(self, texts: Sequence[str], values: Sequence[Any] | None = None,
                 weights: Sequence[int] | None = None):
        texts = tuple(texts)
        super().__init__(texts if values is None else values, weights)
        if len(texts) != self.n:
            raise ValueError(f"options: got {len(texts)} texts but {self.n} values")
        if len(set(texts)) != len(texts):
            dupes = sorted({t for t in texts if texts.count(t) > 1})
            raise ValueError(f"options: texts must be distinct, repeated: {dupes[:5]}")
        for t in texts:
            if not t or not t.isascii() or "{" in t or not _WORD_RUN.search(t):
                raise ValueError(f"options: each text must be non-empty ASCII with a word and no braces, got {t!r}")
        self.texts = texts
        self._by_key = None  # built on the first parse; sampling never needs it
        self._sorted = None  # built on the first recording parse

    def index_of(self, value: Any) -> int:
        return self.values.index(value)

    def without(self, *values: Any) -> "Without":
        """The same options minus some values (e.g. a friend's name other than the hero's)."""
        return Without(self, {self.index_of(v) for v in values})

    def match(self, text: str, pos: int, excluded: frozenset | tuple = ()) -> int:
        """The index of the one option printed at `pos`; Mismatch if none, AmbiguousText if several."""
        if self._by_key is None:
            self._key_words = min(len(_WORD_RUN.findall(t)) for t in self.texts)
            self._by_key = {}
            for i, t in enumerate(self.texts):
                self._by_key.setdefault(_first_words(t, 0, self._key_words), []).append(i)
        # A fitting option's first words equal the text's first words at pos (the option's
        # last word is complete because a non-word character or the end must follow it).
        found = -1
        for i in self._by_key.get(_first_words(text, pos, self._key_words), ()):
            t = self.texts[i]
            end = pos + len(t)
            if i not in excluded and text.startswith(t, pos) and (end == len(text) or text[end] not in _WORD_CHARS):
                if found >= 0:
                    raise AmbiguousText(f"options {self.texts[found]!r} and {t!r} both fit at {text[pos:pos + 40]!r}")
                found = i
        if found < 0:
            raise Mismatch(pos, self, excluded)
        return found

    def _index(self) -> tuple[list[str], list[int], list[float]]:
        """The texts in sorted order (the texts sharing a prefix are a run), each text's rank
        in it, and the cumulative probabilities along it."""
        if self._sorted is None:
            order = sorted(range(self.n), key=self.texts.__getitem__)
            rank = [0] * self.n
            cumulative = [0.0]
            for r, i in enumerate(order):
                rank[i] = r
                cumulative.append(cumulative[-1] + 2.0 ** -self.bits[i])
            self._sorted = ([self.texts[i] for i in order], rank, cumulative)
        return self._sorted

    def furthest(self, text: str, pos: int, excluded: frozenset | tuple = ()) -> int:
        """The first character at `pos` or after that no (non-excluded) option can print."""
        texts, rank, _ = self._index()
        lo, hi, k = 0, len(texts), 0
        while pos + k < len(text):
            prefix = text[pos:pos + k + 1]
            new_lo = bisect_left(texts, prefix, lo, hi)
            new_hi = bisect_left(texts, prefix + _PREFIX_END, new_lo, hi)
            if new_hi - new_lo <= sum(new_lo <= rank[e] < new_hi for e in excluded):
                break
            lo, hi, k = new_lo, new_hi, k + 1
        return pos + k

    def revealed_at(self, text: str, pos: int, chosen: int, chosen_bits: float,
                    excluded: frozenset | tuple = ()) -> tuple[int, tuple]:
        """(decided_at, bits_at) of option `chosen` printed at `pos`: the exact probability of
        each of its characters given the characters before it in the slot."""
        texts, rank, cumulative = self._index()
        excluded_mass = sum(2.0 ** -self.bits[e] for e in excluded)
        chosen_text = self.texts[chosen]
        lo, hi, alive = 0, len(texts), len(texts) - len(excluded)
        bits_at, log_alive = [], 0.0
        for k in range(1, len(chosen_text) + 1):
            prefix = chosen_text[:k]
            lo = bisect_left(texts, prefix, lo, hi)
            hi = bisect_left(texts, prefix + _PREFIX_END, lo, hi)
            in_range = [e for e in excluded if lo <= rank[e] < hi]
            now_alive = hi - lo - len(in_range)
            if now_alive == alive:
                continue
            alive = now_alive
            if alive == 1:  # only the chosen option is left: the rest of its bits are revealed here
                bits_at.append((pos + k - 1, log_alive + chosen_bits))
                return pos + k - 1, tuple(bits_at)
            mass = cumulative[hi] - cumulative[lo] - sum(2.0 ** -self.bits[e] for e in in_range)
            log_next = math.log2(mass / (1.0 - excluded_mass))
            bits_at.append((pos + k - 1, log_alive - log_next))
            log_alive = log_next
        # Other options continue this text with word characters: the next character decides.
        bits_at.append((pos + len(chosen_text), log_alive + chosen_bits))
        return pos + len(chosen_text), tuple(bits_at)


@lru_cache(maxsize=8192)  # bounded: some stories build lists from their own earlier choices
def one_of(*texts: str) -> Options:
    """Uniform options written inline: `w.say("It was {adj}.", adj=one_of("big", "small"))`."""
    return Options(texts)


class Without:
    """Options minus some excluded indices; uniform over the rest (indices stay those of the full list)."""

    __slots__ = ("options", "excluded", "bits", "_sorted", "_n", "_n_bits")

    def __init__(self, options: Options, excluded: set[int]):
        if options._cumulative is not None or options.n - len(excluded) < 1:
            raise ValueError("options: `without` needs uniform options with at least one entry left")
        self.options, self.excluded = options, frozenset(excluded)
        self._sorted = sorted(excluded)
        self._n = options.n - len(excluded)
        self._n_bits = self._n.bit_length()
        self.bits = math.log2(self._n)

    def draw(self, rng: random.Random) -> int:
        i = rng.getrandbits(self._n_bits)  # exactly uniform over the others, as in Weighted.draw
        while i >= self._n:
            i = rng.getrandbits(self._n_bits)
        for skipped in self._sorted:  # the i-th index that is not excluded
            if i >= skipped:
                i += 1
        return i


def compile_template(template: str) -> tuple:
    """Split a template into literal strings and slot names (as 1-tuples), checking the slot rule."""
    cached = _TEMPLATES.get(template)
    if cached is not None:
        return cached
    parts: list = []
    pos = 0
    for match in _SLOT.finditer(template):
        if match.start() > pos:
            parts.append(template[pos:match.start()])
        parts.append((match.group(1),))
        pos = match.end()
    if pos < len(template):
        parts.append(template[pos:])
    for before, after in zip(parts, parts[1:]):
        if isinstance(before, tuple) and (isinstance(after, tuple) or after[0] in _WORD_CHARS):
            raise ValueError(f"template: a slot must be followed by a non-word character, in {template!r}")
    if not template.isascii() or not parts:
        raise ValueError(f"template: expected non-empty ASCII, got {template!r}")
    _TEMPLATES[template] = compiled = tuple(parts)
    return compiled


_TEMPLATES: dict[str, tuple] = {}
_GROUPS: dict[tuple, Weighted] = {}


def _as_weighted(choices: Sequence | Weighted) -> Weighted:
    if isinstance(choices, Weighted):
        return choices
    group = _GROUPS.get(choices)
    if group is None:
        group = _GROUPS[choices] = Weighted(choices)
    return group


class _Writer:
    """What both writers share: the context of named values and paragraph bookkeeping."""

    def bind(self, **values: str) -> None:
        """Name values for later templates (`{Hero}`, `{toy}`, ...), for the rest of this story path."""
        self.ctx.update(values)

    def paragraph(self) -> None:
        if self.sep:
            self.sep = "\n\n"


def resolve_slot(name: str, slots: dict, ctx: dict, values: dict):
    """What a template slot prints from: a string, `Options` or `Without`, from the call's
    slots or the story's context; a callable is called on the slot values so far."""
    spec = slots[name] if name in slots else ctx[name]
    kind = spec.__class__
    if kind is not str and kind is not Options and kind is not Without:
        spec = spec(values)
    return spec


class SampleWriter(_Writer):
    """Runs a story program with random choices, recording each index and its log2 probability."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.out: list[str] = []
        self.choices: list[int] = []
        self.bits = 0.0
        self.ctx: dict[str, Any] = {}
        self.sep = ""

    def _pick(self, options) -> int:
        i = options.draw(self.rng)
        self.choices.append(i)
        self.bits += options.bits if isinstance(options, Without) else options.bits[i]
        return i

    def say(self, template: str, **slots) -> dict[str, Any]:
        """Print one sentence (or a few) from a template; returns the values of its slots."""
        # The hot loop of corpus generation, so lookups are hoisted into locals.
        out, ctx = self.out, self.ctx
        out.append(self.sep)
        self.sep = " "
        values: dict[str, Any] = {}
        printed: dict[str, str] = {}
        for part in _TEMPLATES.get(template) or compile_template(template):
            if part.__class__ is str:
                out.append(part)
                continue
            name = part[0]
            text = printed.get(name)  # a slot used twice in one template prints the same text twice
            if text is None:
                spec = resolve_slot(name, slots, ctx, values)
                kind = spec.__class__
                if kind is str:
                    text = values[name] = spec
                else:
                    i = spec.draw(self.rng)
                    self.choices.append(i)
                    if kind is Without:
                        self.bits += spec.bits
                        spec = spec.options
                    else:
                        self.bits += spec.bits[i]
                    text = spec.texts[i]
                    values[name] = spec.values[i]
                printed[name] = text
            out.append(text)
        return values

    def say_one(self, templates: Sequence[str] | Weighted, **slots) -> dict[str, Any]:
        """Print one of several templates (uniform, or a `Weighted` of templates)."""
        group = _as_weighted(templates)
        return self.say(group.values[self._pick(group)], **slots)

    def branch(self, paths: Sequence[Callable] | Weighted, *args):
        """Continue the story down one of several paths: `path(w, *args)`; returns its result."""
        group = _as_weighted(paths)
        return group.values[self._pick(group)](self, *args)

    def text(self) -> str:
        return "".join(self.out)


class ParseWriter(_Writer):
    """Runs a story program against a finished text, taking at each choice the one option that fits.

    With `record=True` it also collects the story's `Event`s (see the module docstring).
    """

    def __init__(self, text: str, pos: int = 0, record: bool = False):
        self.text = text
        self.pos = pos
        self.choices: list[int] = []
        self.bits = 0.0
        self.ctx: dict[str, Any] = {}
        self.sep = ""
        self.events: list[Event] | None = [] if record else None

    def _fork(self) -> "ParseWriter":
        child = ParseWriter(self.text, self.pos, self.events is not None)
        child.ctx = dict(self.ctx)
        child.sep = self.sep
        return child

    def _adopt(self, child: "ParseWriter") -> None:
        self.pos, self.ctx, self.sep = child.pos, child.ctx, child.sep
        self.choices += child.choices
        self.bits += child.bits
        if self.events is not None:
            self.events += child.events

    def _match(self, template: str, slots: dict, pos: int):
        """Match one template at `pos`: (end, choices, bits, values, events), or raise Mismatch."""
        text, ctx = self.text, self.ctx
        choices: list[int] = []
        bits = 0.0
        values: dict[str, Any] = {}
        printed: dict[str, str] = {}
        events = None if self.events is None else []
        for part in _TEMPLATES.get(template) or compile_template(template):
            if part.__class__ is str:
                if not text.startswith(part, pos):
                    raise Mismatch(pos, part)
                pos += len(part)
                continue
            name = part[0]
            spec = printed.get(name)
            if spec is None:
                spec = resolve_slot(name, slots, ctx, values)
                kind = spec.__class__
                if kind is str:
                    printed[name] = values[name] = spec
                else:
                    if kind is Without:
                        options, excluded, option_bits = spec.options, spec.excluded, spec.bits
                        i = options.match(text, pos, excluded)
                    else:
                        options, excluded = spec, ()
                        i = options.match(text, pos)
                        option_bits = options.bits[i]
                    bits += option_bits
                    choices.append(i)
                    printed[name] = options.texts[i]
                    values[name] = options.values[i]
                    end = pos + len(printed[name])
                    if events is not None:
                        decided_at, bits_at = options.revealed_at(text, pos, i, option_bits, excluded)
                        events.append(Event("slot", name, pos, end, decided_at, option_bits, bits_at))
                    pos = end
                    continue
            # A value bound earlier, or this template's own slot printed a second time.
            if not text.startswith(spec, pos):
                raise Mismatch(pos, spec)
            if events is not None:
                events.append(Event("recall", name, pos, pos + len(spec), pos, 0.0, ()))
            pos += len(spec)
        return pos, choices, bits, values, events

    def _commit(self, pos: int, choices: list[int], bits: float, events: list[Event] | None) -> None:
        self.pos, self.sep = pos, " "
        self.choices += choices
        self.bits += bits
        if events:
            self.events += events

    def say(self, template: str, **slots) -> dict[str, Any]:
        if not self.text.startswith(self.sep, self.pos):
            raise Mismatch(self.pos, self.sep)
        start = self.pos + len(self.sep)
        pos, choices, bits, values, events = self._match(template, slots, start)
        if events is not None:
            events.insert(0, Event("sentence", template, start, pos, start, 0.0, ()))
        self._commit(pos, choices, bits, events)
        return values

    def say_one(self, templates: Sequence[str] | Weighted, **slots) -> dict[str, Any]:
        if not self.text.startswith(self.sep, self.pos):
            raise Mismatch(self.pos, self.sep)
        group = _as_weighted(templates)
        start, text = self.pos + len(self.sep), self.text
        deaths = None if self.events is None else []  # (character, index) where each other template dies
        fit = None
        for i, template in enumerate(group.values):
            first = (_TEMPLATES.get(template) or compile_template(template))[0]
            if first.__class__ is str and not text.startswith(first, start):
                # cheap pre-check: its opening words are not at the cursor
                if deaths is not None:
                    deaths.append((start + _common_prefix(first, text, start), i))
                continue
            try:
                matched = self._match(template, slots, start)
            except Mismatch as failed:
                if deaths is not None:
                    deaths.append((failed.at(text), i))
                continue
            if fit is not None:
                raise AmbiguousText(f"templates {fit[0]!r} and {template!r} both fit {text[start:start + 60]!r}")
            fit = (template, i, matched)
        if fit is None:
            raise Mismatch(max(d for d, _ in deaths)) if deaths else Mismatch()
        template, i, (pos, choices, bits, values, events) = fit
        if events is not None:
            decided_at, bits_at = group.revealed(deaths, i, start)
            events.insert(0, Event("sentence", template, start, pos, decided_at, group.bits[i], bits_at))
        self._commit(pos, [i] + choices, group.bits[i] + bits, events)
        return values

    def branch(self, paths: Sequence[Callable] | Weighted, *args):
        group = _as_weighted(paths)
        deaths = None if self.events is None else []  # (character, index) where each other path dies
        fits = []
        for i, path in enumerate(group.values):
            child = self._fork()
            child.choices.append(i)
            child.bits += group.bits[i]
            try:
                result = path(child, *args)
            except Mismatch as failed:
                if deaths is not None:
                    deaths.append((failed.at(self.text), i))
                continue
            fits.append((i, child, result))
        if not fits:
            raise Mismatch(max(d for d, _ in deaths)) if deaths else Mismatch()
        if len(fits) > 1:
            raise AmbiguousText(f"{len(fits)} story paths fit the text at {self.text[self.pos:self.pos + 60]!r}")
        i, child, result = fits[0]
        if deaths is not None:
            decided_at, bits_at = group.revealed(deaths, i, self.pos)
            self.events.append(Event("path", group.values[i].__name__, self.pos, child.pos, decided_at,
                                     group.bits[i], bits_at))
        self._adopt(child)
        return result


class Sampled(NamedTuple):
    text: str
    choices: list[int]
    neg_log2_prob: float
    result: Any  # whatever the program returned


class Parsed(NamedTuple):
    choices: list[int]
    neg_log2_prob: float
    result: Any
    events: list[Event] | None = None  # with `parse(..., record=True)`: in order of their first character


def sample(program: Callable, rng: random.Random) -> Sampled:
    """Run `program(w)` with random choices drawn from `rng`."""
    w = SampleWriter(rng)
    result = program(w)
    return Sampled(w.text(), w.choices, w.bits, result)


def parse(program: Callable, text: str, record: bool = False) -> Parsed:
    """Recover the choices with which `program` printed `text`, and its −log2 probability;
    with `record`, also the story's `Event`s.

    Raises ValueError if the program cannot print this text, AmbiguousText (a ValueError)
    if it could print it with two different choice sequences.
    """
    w = ParseWriter(text, record=record)
    try:
        result = program(w)
    except Mismatch:
        raise ValueError(f"parse: the text is not one this story program can print: {text[:60]!r}...") from None
    if w.pos != len(text):
        raise ValueError(f"parse: the story ends at character {w.pos} but the text goes on: {text[w.pos:w.pos + 40]!r}")
    events = None
    if record:  # enclosing events first: a path, then its sentence, then the sentence's slots
        events = sorted(w.events, key=lambda e: (e.start, _EVENT_ORDER[e.kind], -e.end))
    return Parsed(w.choices, w.bits, result, events)


_EVENT_ORDER = {"path": 0, "sentence": 1, "slot": 2, "recall": 2}
