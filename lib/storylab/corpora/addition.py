"""The `addition` corpus: lines like `13 + 29 = 42;` whose validation pairs are never trained on.

The operand pairs (a, b), a and b in [min_operand, max_operand], are split once by a seeded
pseudo-random permutation: the pairs at the first `validation_pairs` positions are held out
for validation, the rest are for training. Training problems are drawn uniformly (with
replacement) from the training pairs, validation problems from the validation pairs, so no
validation problem occurs in training: accuracy on validation is accuracy on unseen sums.

The text shows both operands and the rest of the line follows from them, so a validation
problem carries exactly log2(#validation pairs) bits: that over its characters is the floor.
(The pair (b, a) of a held-out (a, b) is usually a training pair; `held_out_pairs` counts both.)

`held_out_pairs(corpus)` counts, for any corpus of such lines (a `file` corpus too), how many
distinct validation pairs never occur in the training split.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, NamedTuple

import numpy as np

from storylab.checks import check_int

_MASK64 = np.uint64(2**64 - 1)
MAX_OPERAND_RANGE = 2**31  # range**2 pair indices must fit in 64 bits
PROBLEM = re.compile(r"(\d+)\s*\+\s*(\d+)\s*=")


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a fast, well-mixed 64-bit hash (uint64 arithmetic wraps)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def permute_pair_indices(positions: np.ndarray, n_pairs: int, seed: int) -> np.ndarray:
    """A seeded bijection of [0, n_pairs) onto itself, applied to `positions`.

    A 4-round Feistel network on the smallest even bit width that holds n_pairs, walked
    until it lands inside [0, n_pairs) (a cycle walk, so still a bijection). Unlike a shuffle
    it needs no table of all pairs, so operand ranges of any size work.
    """
    half_bits = max(1, math.ceil((n_pairs - 1).bit_length() / 2))
    half_mask = np.uint64(2**half_bits - 1)
    keys = np.random.SeedSequence([seed, 0]).generate_state(4, dtype=np.uint64)
    shift = np.uint64(half_bits)

    def feistel(x: np.ndarray) -> np.ndarray:
        left, right = x >> shift, x & half_mask
        for key in keys:
            left, right = right, left ^ (_mix64(right ^ key) & half_mask)
        return (left << shift) | right

    values = feistel(np.asarray(positions, dtype=np.uint64))
    outside = values >= np.uint64(n_pairs)
    while outside.any():
        values[outside] = feistel(values[outside])
        outside = values >= np.uint64(n_pairs)
    return values


def n_validation_pairs(n_pairs: int, validation_pairs: int | float) -> int:
    """How many of `n_pairs` operand pairs are held out: a fraction in (0, 1) or a count."""
    if n_pairs < 2:
        raise ValueError(f"corpus: addition needs at least 2 operand pairs to hold some out, got {n_pairs}")
    is_number = isinstance(validation_pairs, (int, float)) and not isinstance(validation_pairs, bool)
    if is_number and isinstance(validation_pairs, float) and 0 < validation_pairs < 1:
        return min(max(round(n_pairs * validation_pairs), 1), n_pairs - 1)
    if is_number and isinstance(validation_pairs, int) and 1 <= validation_pairs < n_pairs:
        return validation_pairs
    raise ValueError(f"corpus: validation_pairs must be a fraction in (0, 1) or a count in [1, {n_pairs}) "
                     f"of the {n_pairs} operand pairs, got {validation_pairs!r}")


def draw_problems(n: int, positions: tuple[int, int], low: int, high: int, seed: int, stream: int) -> list[str]:
    """`n` problems whose pairs are uniform over the permuted positions [start, stop)."""
    size = high - low + 1
    rng = np.random.default_rng([seed, stream])
    drawn = rng.integers(positions[0], positions[1], size=n, dtype=np.uint64)
    pairs = permute_pair_indices(drawn, size * size, seed)
    firsts, seconds = (pairs // np.uint64(size)).tolist(), (pairs % np.uint64(size)).tolist()
    return [f"{low + a} + {low + b} = {2 * low + a + b};" for a, b in zip(firsts, seconds)]


def check_addition_spec(spec: dict[str, Any]) -> int:
    """Validate an addition spec before anything is drawn; the number of held-out pairs."""
    low, high = spec["min_operand"], spec["max_operand"]
    if not (isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool) and not isinstance(high, bool)
            and 0 <= low <= high):
        raise ValueError(f"corpus: addition needs integers 0 <= min_operand <= max_operand, got {low!r}, {high!r}")
    if high - low + 1 > MAX_OPERAND_RANGE:
        raise ValueError(f"corpus: addition operand range must hold at most {MAX_OPERAND_RANGE} values, got {high - low + 1}")
    for key in ("n_problems", "validation", "seed"):
        check_int(f"corpus: addition {key}", spec[key], minimum=0 if key == "seed" else 1)
    return n_validation_pairs((high - low + 1) ** 2, spec["validation_pairs"])


def addition_splits(spec: dict[str, Any]) -> tuple[list[str], list[str], dict[str, Any]]:
    """(training problems, validation problems, metadata with the exact floors) for an addition spec."""
    n_val_pairs = check_addition_spec(spec)
    low, high, seed = spec["min_operand"], spec["max_operand"], spec["seed"]
    n_pairs = (high - low + 1) ** 2
    val = draw_problems(spec["validation"], (0, n_val_pairs), low, high, seed, stream=2)
    train = draw_problems(spec["n_problems"], (n_val_pairs, n_pairs), low, high, seed, stream=1)
    meta = {
        "floor_bits_per_char": uniform_floor_bits_per_char(n_val_pairs, val),
        "train_floor_bits_per_char": uniform_floor_bits_per_char(n_pairs - n_val_pairs, train),
        "operand_pairs": {"train": n_pairs - n_val_pairs, "validation": n_val_pairs},
    }
    return train, val, meta


def uniform_floor_bits_per_char(n_pairs: int, problems: list[str]) -> float:
    """Bits per character of problems whose pair is uniform over `n_pairs` (log2 of it each)."""
    return len(problems) * math.log2(n_pairs) / sum(len(p) for p in problems)


class HeldOutPairs(NamedTuple):
    """How held out the validation problems of an addition corpus are."""

    validation_problems: int
    validation_pairs: int  # distinct (a, b) among the validation problems
    unseen: int  # of those, never in a training problem
    unseen_either_order: int  # of those, neither (a, b) nor (b, a) in a training problem

    def __str__(self) -> str:
        return (f"{self.unseen:,} of {self.validation_pairs:,} validation operand pairs never seen in training "
                f"({self.unseen_either_order:,} in neither order; {self.validation_problems:,} validation problems)")

    def as_dict(self) -> dict[str, int]:
        return self._asdict()


def operand_pairs(texts: Iterable[str]) -> list[tuple[int, int]]:
    """Every `A + B =` in the texts, as (A, B), in order."""
    return [(int(a), int(b)) for text in texts for a, b in PROBLEM.findall(text)]


def held_out_pairs(train_texts: Iterable[str], validation_texts: Iterable[str]) -> HeldOutPairs:
    """Count the validation operand pairs that never occur in the training texts."""
    validation = operand_pairs(validation_texts)
    if not validation:
        raise ValueError("corpus: no addition problems ('A + B =') in the validation split")
    seen = set(operand_pairs(train_texts))
    distinct = set(validation)
    unseen = {pair for pair in distinct if pair not in seen}
    return HeldOutPairs(
        validation_problems=len(validation), validation_pairs=len(distinct), unseen=len(unseen),
        unseen_either_order=sum(1 for a, b in unseen if (b, a) not in seen),
    )
