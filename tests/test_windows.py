"""Collection windows come from each release's own README: a genuine release is never refused because
GroupLens regenerated it; a timestamp no release can hold still is, with the file, line and window."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from movielens_files import ML_LATEST_SMALL_READMES, write_csv_release

from mtrec_helpers.data import DataError
from mtrec_helpers.data.movielens import DATASETS
from mtrec_helpers.data.windows import MOVIELENS_START, collection_window, readme_window

READ_LATEST_SMALL = DATASETS["ml-latest-small"].reader
JAN_9_1995 = 789_652_009  # the first rating of the 2016 ml-latest-small (line 52637 of its ratings.csv)


def _days(window: tuple[pd.Timestamp, pd.Timestamp] | None) -> tuple[str, str]:
    assert window is not None
    return str(window[0].date()), str(window[1].date())


@pytest.mark.parametrize(
    ("sentence", "days"),
    [
        ("These data were created by 671 users between January 09, 1995 and October 16, 2016. This "
         "dataset was generated on October 17, 2016.", ("1995-01-09", "2016-10-16")),
        ("These data were created by 610 users between March 29, 1996 and September 24, 2018.",
         ("1996-03-29", "2018-09-24")),
        ("These data were created by 138493 users between January 09, 1995 and March 31, 2015.",
         ("1995-01-09", "2015-03-31")),
        ("These data were created by 162541 users\nbetween January 09, 1995 and November 21, 2019.",
         ("1995-01-09", "2019-11-21")),
    ],
)  # fmt: skip
def test_the_window_is_read_from_the_readme_sentence(tmp_path: Path, sentence: str, days: tuple) -> None:
    (tmp_path / "README.txt").write_text(f"Summary\n=======\n\n{sentence}\n")
    assert _days(readme_window(tmp_path)) == days


def test_ml100k_readme_states_its_window(real_ml100k: Path) -> None:
    """ "during the seven-month period from September 19th, 1997 through April 22nd, 1998" (README)."""
    assert _days(readme_window(real_ml100k)) == ("1997-09-19", "1998-04-22")
    window, source = collection_window(real_ml100k, real_ml100k / "u.data", DATASETS["ml-100k"].window)
    assert source == "stated by README"


def test_no_readme_or_no_window_sentence_gives_none(tmp_path: Path) -> None:
    assert readme_window(tmp_path) is None
    (tmp_path / "README.txt").write_text(
        "These files contain ratings of users who joined MovieLens in 2000.\n"
    )
    assert readme_window(tmp_path) is None


@pytest.mark.parametrize("version", sorted(ML_LATEST_SMALL_READMES))
def test_both_versions_of_ml_latest_small_are_read(tmp_path: Path, version: str) -> None:
    """The 2016 version starts on January 9, 1995, the 2018 version on March 29, 1996: each is read
    with the window its README states, and with MovieLens' whole span where the README is missing."""
    folder = write_csv_release(tmp_path / "ml-latest-small", genome=False)
    start = JAN_9_1995 if version == "2016" else 838_598_400  # 1996-03-29
    _set_first_rating(folder, start)
    (folder / "README.txt").write_text(ML_LATEST_SMALL_READMES[version])
    assert READ_LATEST_SMALL(folder).interactions["timestamp"].min() == start
    (folder / "README.txt").unlink()
    assert READ_LATEST_SMALL(folder).interactions["timestamp"].min() == start


def test_a_rating_outside_the_window_its_readme_states_is_refused(tmp_path: Path) -> None:
    """A 1995 rating in a release whose README says its ratings start in March 1996 was edited."""
    folder = write_csv_release(tmp_path / "ml-latest-small", genome=False)
    _set_first_rating(folder, JAN_9_1995)
    (folder / "README.txt").write_text(ML_LATEST_SMALL_READMES["2018"])
    with pytest.raises(DataError) as caught:
        READ_LATEST_SMALL(folder)
    error = caught.value
    assert error.path == folder / "ratings.csv" and error.line == 2
    assert "collection window 1996-03-29 to 2018-09-24 (stated by README.txt; ± 30 days)" in error.problem


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [(JAN_9_1995 - 120 * 86400, "before MovieLens' first rating"), (None, "after the file's own date")],
)
def test_impossible_timestamps_are_still_refused(tmp_path: Path, stamp: int | None, reason: str) -> None:
    """Without a README, a moving release's window is MovieLens' whole span up to the ratings file's own
    date: earlier than the first MovieLens rating, or later than the file was written, is impossible."""
    folder = write_csv_release(tmp_path / "ml-latest-small", genome=False)
    ratings = folder / "ratings.csv"
    if stamp is None:  # the file dated 2019-01-01 holds a rating of 2020-06-01
        _set_first_rating(folder, 1_590_969_600)
        os.utime(ratings, (1_546_300_800, 1_546_300_800))
    else:
        _set_first_rating(folder, stamp)
    with pytest.raises(DataError) as caught:
        READ_LATEST_SMALL(folder)
    expected_end = (
        "2019-01-01" if stamp is None else str(pd.Timestamp(ratings.stat().st_mtime, unit="s").date())
    )
    assert f"collection window {MOVIELENS_START} to {expected_end}" in caught.value.problem, reason
    assert "MovieLens' whole span up to the date of ratings.csv" in caught.value.problem


def test_a_fixed_release_without_readme_keeps_its_documented_window(tmp_path: Path) -> None:
    folder = tmp_path / "ml-20m"
    shutil.copytree(write_csv_release(tmp_path / "csv"), folder)
    window, source = collection_window(folder, folder / "ratings.csv", DATASETS["ml-20m"].window)
    assert source == "documented for this release"
    assert [str(pd.Timestamp(s, unit="s").date()) for s in window] == [MOVIELENS_START, "2015-03-31"]


def _set_first_rating(folder: Path, stamp: int) -> None:
    """Give the first rating of ``ratings.csv`` (line 2) this timestamp."""
    path = folder / "ratings.csv"
    lines = path.read_text().splitlines()
    fields = lines[1].split(",")
    lines[1] = ",".join([*fields[:3], str(stamp)])
    path.write_text("\n".join(lines) + "\n")
