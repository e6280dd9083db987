"""The option lists story sentences choose from, and the cast's names and pronouns.

Built once at import from the plain word lists in `story_words`: `Options` print a text
and hand back a value (`A_TOYS` prints "an apple" and returns "apple"). Also the small
pieces of English grammar the stories need (a/an, plurals) and the helpers that bind a
character's name and pronouns for later templates.
"""

from __future__ import annotations

from storylab.corpora import story_words as words
from storylab.corpora.story_grammar import Options

_CONSONANT_SOUND = {"unicorn", "uniform", "one", "useful", "ukulele"}
_VOWEL_SOUND = {"honest", "hour"}


def article(word: str) -> str:
    """'a' or 'an' for the word that follows."""
    first = word.split()[0]
    vowel = (first[0] in "aeiou" and first not in _CONSONANT_SOUND) or first in _VOWEL_SOUND
    return "an" if vowel else "a"


_PLURALS = {"tomato": "tomatoes", "potato": "potatoes", "lettuce": "lettuce", "squash": "squash",
            "spinach": "spinach", "lotus": "lotuses", "baby bird": "baby birds"}


def plural(noun: str) -> str:
    if noun in _PLURALS:
        return _PLURALS[noun]
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def with_article(items: list[str]) -> Options:
    """Options printing 'a ball' / 'an apple', whose values are the bare words."""
    return Options([f"{article(x)} {x}" for x in items], values=items)


KIND = Options(["girl", "boy"])
GIRLS = Options(words.GIRL_NAMES)
BOYS = Options(words.BOY_NAMES)
ALL_NAMES = Options(words.GIRL_NAMES + words.BOY_NAMES)
NAMES_BY_KIND = {"girl": GIRLS, "boy": BOYS}
GENDER_OF = {**{n: "girl" for n in words.GIRL_NAMES}, **{n: "boy" for n in words.BOY_NAMES}}
PRONOUNS = {
    "girl": {"he": "she", "He": "She", "him": "her", "his": "her", "His": "Her", "himself": "herself"},
    "boy": {"he": "he", "He": "He", "him": "him", "his": "his", "His": "His", "himself": "himself"},
}

PETS = Options(words.PET_NAMES)
A_PET_KINDS = with_article(words.PET_ANIMALS)
A_ANIMALS = with_article(words.WILD_ANIMALS)
BIRDS = Options(words.BIRDS)
TOYS = Options(words.TOYS)
A_TOYS = with_article(words.TOYS)
FOODS = Options(words.FOODS)
A_FOODS = with_article(words.FOODS)
PLACES = Options(words.PLACES)
A_HOMES = with_article(words.HOMES)
FURNITURE = Options(words.FURNITURE)
COLOURS = Options(words.COLOURS)
A_COLOURS = with_article(words.COLOURS)
A_ADJECTIVES = with_article(words.OBJECT_ADJECTIVES)
A_TRAITS = with_article(words.TRAITS)
TRAITS = Options(words.TRAITS)
GOOD = Options(words.GOOD_FEELINGS)
BAD = Options(words.BAD_FEELINGS)
ACT = Options([a[0] for a in words.ACTIVITIES], values=words.ACTIVITIES)
ACT_ING = Options([a[2] for a in words.ACTIVITIES], values=words.ACTIVITIES)
GROWN_UPS = Options(["mom", "dad", "grandma", "grandpa", "aunt", "uncle"],
                    values=[("mom", "Mom"), ("dad", "Dad"), ("grandma", "Grandma"),
                            ("grandpa", "Grandpa"), ("aunt", "Auntie"), ("uncle", "Uncle")])
RELATIVES = Options(words.RELATIVES)
A_HELPERS = with_article(words.HELPERS)
FEARS = Options([f[0] for f in words.FEARS], values=words.FEARS)
SEEDS = Options(words.FLOWERS + words.VEGETABLES)
BIRDS_PLURAL = Options([plural(b) for b in words.BIRDS])
CAKES = Options(words.CAKES)
BAKED = Options([b[0] for b in words.BAKED], values=words.BAKED)
INGREDIENTS = Options(words.INGREDIENTS)
GIFTS = Options(words.GIFTS)
STORM_SOUNDS = Options([s.capitalize() for s in words.STORM_SOUNDS])
WEATHER = Options(words.WEATHER_STARTS)
TIMES = Options(words.TIMES)
TOWNS = Options(words.TOWNS)
AGES = Options(["four", "five", "six", "seven", "eight"])
LESSONS = {key: Options(values) for key, values in words.LESSONS.items()}


def hero_name(values):
    # Templates that say "girl"/"boy" before the name draw the name from that gender's list.
    return NAMES_BY_KIND[values["kind"]] if "kind" in values else ALL_NAMES


def hero_kind(values):
    return GENDER_OF[values["hero"]] if "hero" in values else KIND


def new_names(kind: str, *taken: str):
    """Names of the given kind for a new character, never one already in the story."""
    names = NAMES_BY_KIND[kind]
    taken = [name for name in taken if GENDER_OF[name] == kind]
    return names.without(*taken) if taken else names


def bind_friend(w, name: str) -> None:
    p = PRONOUNS[GENDER_OF[name]]
    w.bind(friend=name, fhe=p["he"], fHe=p["He"], fhim=p["him"], fhis=p["his"])


def bind_grown_up(w, value) -> None:
    w.bind(rel=value[0], Rel=value[1])


HAIR = Options(words.HAIR)
A_SMILES = with_article(words.SMILES)
ANIMAL_ACTIONS = Options(words.ANIMAL_ACTIONS)
PET_ACTIONS = Options(words.PET_ACTIONS)
ADVERBS = Options(words.ADVERBS)
EXCLAIMS = Options(words.EXCLAIMS)
DRINKS = Options(words.DRINKS)
GAMES = Options(words.GAMES)
A_SONGS = with_article(words.SONGS)
DAYS = Options(words.DAYS)
SKIES = Options(words.SKIES)
SAID = Options(["said", "cried", "shouted", "whispered", "called", "laughed", "replied", "exclaimed",
                "sang", "giggled", "answered", "squealed"])
CAME = Options(["came", "ran", "hurried", "rushed", "walked", "raced", "hopped", "skipped", "dashed",
                "wandered", "tiptoed", "marched"])
LAUGHED = Options(["laughed", "giggled", "smiled", "cheered", "grinned", "beamed", "clapped", "chuckled"])
LAUGHED_ING = Options(["laughing", "giggling", "smiling", "singing", "humming", "whistling", "grinning"])
A_HUG = with_article(["big hug", "warm hug", "tight hug", "long hug", "gentle hug", "happy hug", "huge hug",
                      "quick hug", "bear hug", "squeezy hug"])
VERY = Options(["very", "so", "really", "quite", "super", "truly"])
BIG = Options(["big", "huge", "giant", "large"])
LITTLE = Options(["little", "small", "tiny"])
SAW = Options(["saw", "spotted", "noticed"])
LOOKED = Options(["looked", "searched", "peeked", "checked"])
DEEP = Options(["deep", "big", "long", "slow", "brave", "shaky"])
ASKED = Options(["asked", "wondered", "whispered", "said", "called", "cried"])
ROOMS = Options(["kitchen", "living room", "bedroom", "hallway", "playroom", "garage", "attic", "basement",
                 "bathroom", "porch", "garden", "yard", "dining room", "shed"])
OUTDOOR_SPOTS = Options(["swings", "slide", "big tree", "fountain", "gate", "bench", "sandbox", "pond",
                         "seesaw", "flower bed", "climbing frame", "old oak"])
FOODS_PLURAL = Options(["sandwiches", "apples", "cookies", "grapes", "crackers", "muffins", "bananas",
                        "cheese rolls", "pears", "strawberries", "carrot sticks", "pretzels", "cherries", "plums"])
