"""Per-module table of a mutmut run (`make mutate` prints it at the end).

Reads mutmut's results in mutants/ and the survivors judged equivalent or harmless in
tests/MUTATION.md (each listed as a `storylab.<module>.x_<function>__mutmut_<n>` name
between backticks), and prints, per mutated module: mutants, killed, survived, judged
equivalent, the rest (no test reaches them, timeouts, not yet run) and the kill rate of
the non-equivalent mutants that were run:

    .venv/bin/python tests/mutation_summary.py            # markdown table
    .venv/bin/python tests/mutation_summary.py --unjudged # survivors not yet judged, one per line

A timeout counts as killed (the mutant made the tests hang), as mutmut counts it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants" / "src"
JUDGED = ROOT / "tests" / "MUTATION.md"
# mutmut's exit codes (mutmut.stats.status_by_exit_code), grouped as the table counts them
KILLED = {1, 3, 36, -24, 24, 152, 255, -11, -9}
SURVIVED = {0}
NO_TESTS = {5, 33}


NOT_EQUIVALENT_HEADING = "## Survivors reached only by the multi-process tests"  # names below it are not judged equivalent


def judged_equivalent() -> set[str]:
    text = JUDGED.read_text() if JUDGED.exists() else ""
    text = text.split(NOT_EQUIVALENT_HEADING)[0]
    return set(re.findall(r"`(storylab\.[\w.ǁ]+__mutmut_\d+)`", text))


def results() -> dict[str, dict[str, int | None]]:
    """{module: {mutant name: exit code or None (not run)}} from mutmut's .meta files."""
    by_module = {}
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        module = ".".join(meta.relative_to(MUTANTS).with_suffix("").with_suffix("").parts)
        by_module[module] = json.loads(meta.read_text())["exit_code_by_key"]
    return by_module


def table(by_module: dict[str, dict[str, int | None]], equivalent: set[str]) -> str:
    lines = ["| module | mutants | killed | survived | judged equivalent | no test / not run | "
             "kill rate (non-equivalent) |", "|---|---:|---:|---:|---:|---:|---:|"]
    totals = Counter()
    for module, codes in by_module.items():
        row = Counter()
        for name, code in codes.items():
            row["mutants"] += 1
            if code in KILLED:
                row["killed"] += 1
            elif code in SURVIVED:
                row["survived"] += 1
                row["equivalent"] += name in equivalent
            else:
                row["other"] += 1
        totals.update(row)
        lines.append(_row(module, row))
    lines.append(_row("**all**", totals))
    return "\n".join(lines)


def _row(label: str, row: Counter) -> str:
    judged = row["killed"] + row["survived"] - row["equivalent"]
    rate = f"{100 * row['killed'] / judged:.1f}%" if judged else "-"
    return (f"| {label} | {row['mutants']} | {row['killed']} | {row['survived']} | {row['equivalent']} | "
            f"{row['other']} | {rate} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unjudged", action="store_true", help="list the survivors not judged in tests/MUTATION.md")
    args = parser.parse_args(argv)
    if not MUTANTS.is_dir():
        print(f"error: no mutmut results in {MUTANTS}; run `make mutate` first", file=sys.stderr)
        return 1
    by_module, equivalent = results(), judged_equivalent()
    if args.unjudged:
        for codes in by_module.values():
            for name, code in codes.items():
                if code in SURVIVED and name not in equivalent:
                    print(name)
    else:
        print(table(by_module, equivalent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
