"""A release's collection window: the period its ratings were made in, as the release itself states it.

GroupLens' READMEs say it in one sentence — "These data were created by 610 users between March 29,
1996 and September 24, 2018" (ml-latest-small, ml-20m, ml-25m) or "during the seven-month period from
September 19th, 1997 through April 22nd, 1998" (ml-100k) — and :func:`readme_window` reads it.
ml-latest-small is regenerated over time: its 2016 version starts in January 1995, its 2018 version in
March 1996, so no single window can be hard-coded for it. Where the README is absent or says nothing
parsable, the release's documented default applies (:class:`~mtrec_helpers.data.movielens.DatasetSpec`'s
``window``); for a release regenerated over time that is MovieLens' whole span, from its first
rating (:data:`MOVIELENS_START`) to the ratings file's own date (its modification time: a file cannot
hold a rating made after it was written).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

MOVIELENS_START = "1995-01-09"
"""The earliest rating of any MovieLens release (ml-20m's, ml-25m's READMEs: "between January 09, 1995")."""
README_NAMES = ("README.txt", "README", "README.md")
_DATE = r"([A-Z][a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,\s+(\d{4})"
_WINDOW = re.compile(rf"\b(?:between|from)\s+{_DATE}\s+(?:and|through|to|until)\s+{_DATE}")


def _day(month: str, day: str, year: str) -> pd.Timestamp | None:
    """A README's date, e.g. ("September", "19", "1997"); None when it is not a date."""
    try:
        return pd.Timestamp(f"{month} {day} {year}", tz="UTC")
    except ValueError:
        return None


def readme_window(folder: Path) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The first "between <date> and <date>" (or "from … through …") of the release's README, as
    UTC days; None where the folder has no README or it states no such window."""
    for name in README_NAMES:
        path = Path(folder) / name
        if not path.is_file():
            continue
        text = path.read_bytes().decode("latin-1")  # GroupLens' READMEs are ASCII; never refuse one
        for match in _WINDOW.finditer(text):
            start, end = _day(*match.group(1, 2, 3)), _day(*match.group(4, 5, 6))
            if start is not None and end is not None and start <= end:
                return start, end
    return None


def collection_window(
    folder: Path, ratings: Path, default: tuple[str, str | None]
) -> tuple[tuple[int, int], str]:
    """The window every rating must lie in, as Unix seconds (first second of the first day, last second
    of the last day), and where it comes from: the release's README, else ``default`` (an open end is
    the ratings file's own date)."""
    stated = readme_window(folder)
    if stated is not None:
        start, end = stated
        source = f"stated by {next(n for n in README_NAMES if (Path(folder) / n).is_file())}"
    else:
        start = pd.Timestamp(default[0], tz="UTC")
        if default[1] is not None:
            end, source = pd.Timestamp(default[1], tz="UTC"), "documented for this release"
        else:
            end = pd.Timestamp(Path(ratings).stat().st_mtime, unit="s", tz="UTC").normalize()
            source = f"MovieLens' whole span up to the date of {Path(ratings).name}"
    return (int(start.timestamp()), int(end.timestamp()) + 86399), source
