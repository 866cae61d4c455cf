"""Figures a page quotes from a run must be in that run's results files: a check, and its command.

A page that quotes measured figures names the results files it reads in a comment on its own line,
``<!-- figures: benchmarks/cpu-ml-100k.json benchmarks/cpu-ml-100k-class.json -->``. Every number
of its prose and tables with a decimal point and three or more significant digits (0.1250, 498.3,
2,631.3, +0.0149), or a whole number of time or throughput ("322 s", "3,761 users/s"), must then
equal some number of those files rounded to the decimals it is written with, with the same sign if it
is written with one — or that number as a percentage, seconds as minutes, bytes as KB or MB, where
that unit follows it. Code (spans and blocks) is not prose and is
skipped, and so is what `make bench` generates (``<!-- results: … -->`` blocks, ``<!--= … -->``
figures: results_page.py).
``python -m mtrec_helpers.course.figures docs/findings.md`` lists the quoted numbers no results file
holds; the tests run it on every page that names its files.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from mtrec_helpers.core.paths import project_root
from mtrec_helpers.course.results_page import FIGURE, RESULTS_BLOCK

SOURCES = re.compile(r"^<!-- figures: (.+?) -->$", re.M)
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
UNIT = r"(?=\s?(?:s|ms|min)\b|\s[a-z]+/s\b)"
NUMBER = re.compile(
    r"(?<![\w.@/-])[+\-−]?(?:\d{1,3}(?:,\d{3})*\.\d+|\d+\.\d+|(?:\d{1,3}(?:,\d{3})+|\d{3,})" + UNIT + r")"
    r"(?![\w.]*\d)"
)
"""A measured number in prose: one with a decimal point, or a whole number of three or more digits
with a unit of time or throughput ("322 s", "3,761 users/s"); not inside a word, version or path.
Whole numbers without such a unit (counts, parameters: 943 users, 26,744 items) are not checked."""
UNIT_AFTER = re.compile(r"\s?(%|min\b|KB\b|MB\b|GB\b)")
SCALES = {"": (1,), "%": (1, 100), "min": (1 / 60,), "KB": (1 / 1024,), "MB": (1, 1 / 1024**2),
          "GB": (1, 1 / 1024, 1 / 1024**3)}  # fmt: skip
"""How a results value may be quoted, by the unit written after it: as it is; a share as a percentage;
seconds as minutes; bytes as KB, MB or GB (or megabytes as GB). No other conversion: a number is not
matched by chance through a scale its text does not name."""


def named_sources(page: str) -> list[str]:
    """The results files the page names in its ``<!-- figures: … -->`` line (none: nothing to check)."""
    return [path for line in SOURCES.findall(page) for path in line.split()]


def quoted_numbers(page: str) -> list[str]:
    """The numbers of the page's prose and tables that the check applies to, as written."""
    return [number for number, _ in quoted(page)]


def quoted(page: str) -> list[tuple[str, str]]:
    """Each number the check applies to, as written, with the unit written after it ("" if none)."""
    prose = CODE.sub(" ", SOURCES.sub(" ", FIGURE.sub(" ", RESULTS_BLOCK.sub(" ", page))))
    return [
        (m.group(0), unit.group(1) if (unit := UNIT_AFTER.match(prose, m.end())) else "")
        for m in NUMBER.finditer(prose)
        if _significant(m.group(0)) >= 3
    ]


def _significant(text: str) -> int:
    """Significant digits of a written number."""
    return len(_digits(text).lstrip("0.").replace(".", ""))


def _digits(text: str) -> str:
    return text.replace(",", "").replace("−", "").lstrip("+-")


def _values(node: Any) -> Iterator[float]:
    """Every number of a JSON document."""
    if isinstance(node, bool):
        return
    if isinstance(node, (int, float)):
        yield float(node)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _values(value)


def _written(value: float, decimals: int) -> set[str]:
    """``value`` rounded to ``decimals`` as a page may write it (half up or half even), with its sign."""
    exact, step = Decimal(repr(value)), Decimal(1).scaleb(-decimals)
    return {str(exact.quantize(step, rounding=mode)) for mode in (ROUND_HALF_UP, ROUND_HALF_EVEN)}


def _matches(number: str, written: set[str]) -> bool:
    """Whether a quoted number is one of the ``written`` forms of a value: its digits, and its sign
    where it is written with one (an unsigned number may quote a negative value's size)."""
    digits = _digits(number)
    if number[0] in "+-−":
        return ("-" if number[0] in "-−" else "") + digits in written
    return digits in written or "-" + digits in written


def stale_figures(page_path: Path, root: Path | None = None) -> list[str]:
    """The numbers ``page_path`` quotes that none of its named results files holds."""
    root = root or project_root()
    page = page_path.read_text(encoding="utf-8")
    values = [
        v
        for source in named_sources(page)
        for v in _values(json.loads((root / source).read_text(encoding="utf-8")))
    ]
    known: dict[tuple[int, str], set[str]] = {}
    stale = []
    for number, unit in quoted(page):
        key = (len(_digits(number).partition(".")[2]), unit)
        if key not in known:
            known[key] = {t for v in values for scale in SCALES[unit] for t in _written(v * scale, key[0])}
        if not _matches(number, known[key]):
            stale.append(number)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="+", help="Markdown pages with a <!-- figures: … --> line")
    args = parser.parse_args(argv)
    status = 0
    for page in map(Path, args.pages):
        stale = stale_figures(page.resolve())
        if stale:
            status = 1
            print(f"{page}: {len(stale)} figure(s) not in {', '.join(named_sources(page.read_text()))}: "
                  + ", ".join(stale))  # fmt: skip
    return status


if __name__ == "__main__":
    sys.exit(main())
