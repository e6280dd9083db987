"""The parts every story shares: the introduction, small everyday moments, the ending.

The introduction picks the cast (the hero, their favourite toy, their best friend, the
grown-up they live with, maybe a pet) and binds it in the writer's context, so every arc
can bring those names back paragraphs later: that long-range reuse is what the corpus is
for. `narrate` is `w.say_one` plus a storyteller's variants ("Then ...", "... said Tom
happily."), which keep the text varied without changing what happens.
"""

from __future__ import annotations

import re
from functools import lru_cache

from storylab.corpora.story_grammar import Weighted, one_of
from storylab.corpora.story_options import *  # noqa: F403 - the option lists are this module's vocabulary

# --- introduction -----------------------------------------------------------------------

OPENINGS = (
    "Once upon a time, there was a {little} {kind} named {hero}.",
    "Once upon a time, in a {town}, there lived {a_trait} {kind} named {hero}.",
    "There was once {a_trait} {little} {kind} called {hero}.",
    "{hero} was {a_trait} {little} {kind} who lived in a {town}.",
    "Once there was a {kind} named {hero}, and {hero} was {very} {trait}.",
    "In a {town}, there was {a_trait} {kind} named {hero}.",
)


def introduction(w) -> None:
    """Who the hero is, what they love, their toy, their home: the cast every arc reuses."""
    v = w.say_one(OPENINGS, kind=hero_kind, hero=hero_name, a_trait=A_TRAITS, trait=TRAITS, town=TOWNS)
    name = v["hero"]
    w.bind(hero=name, **PRONOUNS[GENDER_OF[name]])
    v = w.say_one(("{He} loved to {act}.",
                   "{He} liked {act_ing} more than anything.",
                   "{He} spent every day {act_ing} and having fun.",
                   "{He} was happiest when {he} could {act}."), act=ACT, act_ing=ACT_ING)
    activity = v.get("act") or v["act_ing"]
    w.bind(act=activity[0], act_past=activity[1], act_ing=activity[2])
    w.say_one(("{He} had {hair} hair and {a_smile} smile.",
               "{He} had {hair} hair that bounced when {he} ran.",
               "Everyone knew {him} by {his} {hair} hair and {a_smile} smile."), hair=HAIR, a_smile=A_SMILES)
    v = w.say_one(("{His} favorite toy was {a_colour} {toy}.",
                   "{He} had {a_colour} {toy} that {he} loved very much.",
                   "{He} always carried {a_colour} {toy} with {him}.",
                   "{He} never went anywhere without {his} {colour} {toy}."),
                  a_colour=A_COLOURS, colour=COLOURS, toy=TOYS)
    w.bind(toy=v["toy"], colour=v.get("a_colour") or v["colour"])
    v = w.say_one(("{His} best friend was {friend}, who lived {near}.",
                   "{His} best friend {friend} lived {near}."),
                  friend=ALL_NAMES.without(name), near=one_of(
                      "next door", "down the street", "across the road", "by the park", "on the same street",
                      "around the corner", "over the hill", "in the house with the red door"))
    bind_friend(w, v["friend"])
    w.branch((_home_with_pet, _home_without_pet))


def _home_with_pet(w) -> None:
    v = w.say("{He} lived in {a_home} with {his} {rel}, {his} {rel2} and {a_pet_kind} named {pet}.",
              a_home=A_HOMES, rel=GROWN_UPS, rel2=lambda v: GROWN_UPS.without(v["rel"]),
              a_pet_kind=A_PET_KINDS, pet=PETS)
    bind_grown_up(w, v["rel"])
    w.bind(pet=v["pet"], pet_kind=v["a_pet_kind"])


def _home_without_pet(w) -> None:
    v = w.say("{He} lived in {a_home} with {his} {rel}.", a_home=A_HOMES, rel=GROWN_UPS)
    bind_grown_up(w, v["rel"])


# --- pieces every arc uses ----------------------------------------------------------------

def opening_time(w, template: str, **slots) -> dict:
    """An arc's first sentence starts with when it happened ("One rainy day, ...")."""
    return w.say(template, time=TIMES, **slots)


def weather(w) -> None:
    w.say_one(("The sun was shining {how}.", "It was a {day} day.", "The sky was {sky}.",
               "A {breeze} breeze was blowing."),
              how=one_of("brightly", "warmly", "softly", "high in the sky"), day=DAYS, sky=SKIES,
              breeze=one_of("soft", "cool", "warm", "gentle", "light"))


def feels(w, mood: str) -> None:
    """One sentence on how the hero feels; `mood` is "good" or "bad"."""
    if mood == "good":
        w.say_one(("{hero} felt {good}.", "{He} was so {good}.", "{hero} felt {good} and {good2}.",
                   "{His} heart felt {good}."), good=GOOD, good2=lambda v: GOOD.without(v["good"]))
    else:
        w.say_one(("{hero} felt {bad}.", "{He} was {very} {bad}.", "{hero} felt {bad} and {bad2}.",
                   "{His} eyes filled with tears."), bad=BAD, bad2=lambda v: BAD.without(v["bad"]))


_OPENERS = ("Then", "Soon", "After that,", "Before long,", "Next,", "Later,")
# Openers suit sentences where the hero (or they) does something next.
_LOWER_START = {"{He} ": "{he} ", "{hero} ": "{hero} ", "They ": "they "}
_SPEAKING = re.compile(r'" \{(said|asked)\} (\{[A-Za-z_ ]+\}|the \{helper\}|the \{fkind\})\.$')
_PLAIN_WEIGHT = 6  # a sentence starts plainly 6 times in 12, and each opener once in 12


@lru_cache(maxsize=None)
def with_variants(templates: tuple[str, ...]) -> Weighted:
    """The templates, plus the ways a storyteller varies them.

    A sentence about the hero may open with "Then", "Soon", "After that," ...; a line of
    dialogue may say how it was said ('"Yes!" said Tom happily.'). Plain forms stay the most
    likely. Variants that would repeat an existing template are dropped, since two equal
    texts would make the choice invisible.
    """
    variants, weights = [], []

    def add(variant: str, weight: int) -> None:
        if variant not in variants:
            variants.append(variant)
            weights.append(weight)

    for template in templates:
        add(template, _PLAIN_WEIGHT)
        start = next((s for s in _LOWER_START if template.startswith(s)), None)
        if start is not None:
            for opener in _OPENERS:
                add(f"{opener} {_LOWER_START[start]}{template[len(start):]}", 1)
        if _SPEAKING.search(template):
            add(template[:-1] + " {how}.", _PLAIN_WEIGHT)
    return Weighted(variants, weights)


def narrate(w, templates: tuple[str, ...], **slots) -> dict:
    """Like `w.say_one`, with the storyteller's variants of each template (see `with_variants`)."""
    return w.say_one(with_variants(templates), **slots)


def little_moment(w) -> None:
    """A small everyday scene in the middle of an arc (the pet, a bird, a snack, a song)."""
    w.branch(_MOMENTS_WITH_PET if "pet" in w.ctx else _MOMENTS)


def _pet_moment(w) -> None:
    w.say("{pet} the {pet_kind} {action}.", action=PET_ACTIONS)


def _bird_moment(w) -> None:
    w.say("Outside the window, a {little} {bird} sang {a_song} song.", bird=BIRDS, a_song=A_SONGS)


def _snack_moment(w) -> None:
    w.say("{Rel} brought {him} {a_food} and a cup of {drink}.", a_food=A_FOODS, drink=DRINKS)


def _song_moment(w) -> None:
    w.say("{hero} hummed {a_song} song about {his} {toy}.", a_song=A_SONGS)


def _animal_moment(w) -> None:
    w.say("Not far away, {he} {saw} {a_animal} {doing}.", a_animal=A_ANIMALS, doing=ANIMAL_ACTIONS)


def _play_moment(w) -> None:
    w.say("For a while, {hero} played {how} with {his} {toy}.")


def _found_moment(w) -> None:
    w.say("On the floor, {he} found {a_adj} {thing} and put it in {his} pocket.", a_adj=A_ADJECTIVES,
          thing=one_of("button", "pebble", "feather", "coin", "leaf", "marble", "bead", "key", "shell", "ribbon"))


def _visit_moment(w) -> None:
    w.say("{His} {relative} {came} in to say hello and gave {him} {a_hug}.", relative=RELATIVES)


def filler(w) -> None:
    """One sentence about no one in the cast (the weather, a bird singing), drawn from the same
    grammar as the stories: what the distance fuzzer inserts between a binding and its recall."""
    w.branch((weather, _bird_moment))


_MOMENTS = (_bird_moment, _snack_moment, _song_moment, _animal_moment, _play_moment, _found_moment, _visit_moment)
_MOMENTS_WITH_PET = (_pet_moment,) + _MOMENTS


def ending(w, lesson: str) -> None:
    """The last paragraph: how the hero felt, then what the hero learned (both name the hero)."""
    w.paragraph()
    w.say_one(("From that day on, {hero} was never {bad} about it again.",
               "After that, {hero} felt {good} every time {he} thought about that day.",
               "That night, {hero} went to bed feeling {good}.",
               "{hero} smiled. It had been a {adj} day.",
               "When {hero} went to sleep, {he} dreamed about {his} {toy}.",
               "{hero} told {his} {rel} all about it at dinner.",
               "The next day, {hero} told {friend} all about it."),
              bad=BAD, good=GOOD, adj=one_of("good", "long", "happy", "wonderful", "busy", "great", "special"))
    w.say_one(("{hero} learned that {lesson}.",
               "{He} learned that {lesson}, and {he} never forgot it.",
               "And {hero} knew that {lesson}.",
               "Now {hero} knew that {lesson}."), lesson=LESSONS[lesson])


