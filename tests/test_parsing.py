"""Bad input never gives a silently wrong result: each case names the file, the line and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from movielens_files import write_csv_release

from mtrec_helpers.data import DataError
from mtrec_helpers.data.movielens import DATASETS, read_ml100k


def _replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text(encoding="latin-1").splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")


def _error(folder: Path, reader=read_ml100k) -> DataError:
    with pytest.raises(DataError) as caught:
        reader(folder)
    error = caught.value
    assert "How to fix:" in str(error)
    return error


def test_missing_file_names_file(tiny_ml100k: Path) -> None:
    (tiny_ml100k / "u.user").unlink()
    error = _error(tiny_ml100k)
    assert error.path == tiny_ml100k / "u.user"
    assert "is missing" in str(error)
    assert "ml-100k.zip" in error.fix


def test_wrong_delimiter(tiny_ml100k: Path) -> None:
    data = tiny_ml100k / "u.data"
    data.write_text(data.read_text().replace("\t", ","))
    error = _error(tiny_ml100k)
    assert error.path == data and error.line == 1
    assert "1 field(s) separated by '\\t', expected 4" in str(error)


@pytest.mark.parametrize("line", [1, 7])
def test_extra_field(tiny_ml100k: Path, line: int) -> None:
    _replace_line(tiny_ml100k / "u.data", line, "1\t2\t3\t880000000\t99")
    error = _error(tiny_ml100k)
    assert error.line == line
    assert "5 field(s)" in str(error)


def test_missing_field(tiny_ml100k: Path) -> None:
    _replace_line(tiny_ml100k / "u.data", 3, "1\t3\t4")
    error = _error(tiny_ml100k)
    assert error.line == 3
    assert "3 field(s)" in str(error)


def test_non_numeric_id(tiny_ml100k: Path) -> None:
    _replace_line(tiny_ml100k / "u.data", 4, "1\tabc\t4\t880000000")
    error = _error(tiny_ml100k)
    assert error.line == 4
    assert "column 'item_id' must be a number, found 'abc'" in str(error)


def test_fractional_id(tiny_ml100k: Path) -> None:
    _replace_line(tiny_ml100k / "u.data", 2, "1.5\t2\t4\t880000000")
    error = _error(tiny_ml100k)
    assert error.line == 2 and "whole number" in str(error)


@pytest.mark.parametrize("rating", ["nan", "NaN"])
def test_nan_rating(tiny_ml100k: Path, rating: str) -> None:
    _replace_line(tiny_ml100k / "u.data", 5, f"1\t5\t{rating}\t880000000")
    error = _error(tiny_ml100k)
    assert error.line == 5 and f"column 'rating' must be a number, found '{rating}'" in str(error)


def test_empty_rating(tiny_ml100k: Path) -> None:
    _replace_line(tiny_ml100k / "u.data", 5, "1\t5\t\t880000000")
    error = _error(tiny_ml100k)
    assert error.line == 5 and "column 'rating' is empty" in str(error)


@pytest.mark.parametrize("rating", ["6", "0", "3.5", "-1"])
def test_out_of_scale_rating(tiny_ml100k: Path, rating: str) -> None:
    _replace_line(tiny_ml100k / "u.data", 6, f"2\t1\t{rating}\t880002010")
    error = _error(tiny_ml100k)
    assert error.line == 6
    assert f"rating {float(rating):g} is outside this dataset's scale (1 to 5 in steps of 1)" in str(error)


def test_negative_timestamp(tiny_ml100k: Path) -> None:
    _replace_line(tiny_ml100k / "u.data", 2, "1\t2\t4\t-5")
    error = _error(tiny_ml100k)
    assert error.line == 2 and "'timestamp' must not be negative" in str(error)


def test_identical_duplicate_rows_are_dropped_and_counted(tiny_ml100k: Path) -> None:
    data = tiny_ml100k / "u.data"
    lines = data.read_text().splitlines()
    data.write_text("\n".join([*lines, lines[0], lines[3]]) + "\n")
    raw = read_ml100k(tiny_ml100k)
    assert len(raw.interactions) == len(lines)
    assert raw.repairs["duplicate_rows_dropped"] == 2


def test_conflicting_duplicate_rows_are_an_error(tiny_ml100k: Path) -> None:
    data = tiny_ml100k / "u.data"
    lines = data.read_text().splitlines()
    user, item, rating, stamp = lines[0].split("\t")
    clash = f"{user}\t{item}\t{1 + int(rating) % 5}\t{stamp}"
    data.write_text("\n".join([*lines, clash]) + "\n")
    error = _error(tiny_ml100k)
    assert error.line == 1
    assert f"lines 1, {len(lines) + 1}" in str(error)


def test_blank_lines_are_skipped_and_counted(tiny_ml100k: Path) -> None:
    data = tiny_ml100k / "u.data"
    data.write_text("\n" + data.read_text().replace("\n", "\n\n", 1))
    raw = read_ml100k(tiny_ml100k)
    assert len(raw.interactions) == 20
    assert raw.repairs["blank_lines_skipped"] == 2 + 1  # two here, one at the end of u.genre


def test_rating_for_unknown_item(tiny_ml100k: Path) -> None:
    _replace_line(tiny_ml100k / "u.data", 8, "2\t99\t4\t880002990")
    error = _error(tiny_ml100k)
    assert error.line == 8 and "item_id 99 does not appear in u.item" in str(error)


def test_rating_by_unknown_user(tiny_ml100k: Path) -> None:
    _replace_line(tiny_ml100k / "u.data", 8, "77\t2\t4\t880002990")
    error = _error(tiny_ml100k)
    assert error.line == 8 and "user_id 77 does not appear in u.user" in str(error)


def test_duplicate_item_id(tiny_ml100k: Path) -> None:
    items = tiny_ml100k / "u.item"
    lines = items.read_text(encoding="latin-1").splitlines()
    items.write_text("\n".join([*lines, lines[1]]) + "\n", encoding="latin-1")
    error = _error(tiny_ml100k)
    assert error.path == items and error.line == 6 and "item_id 2 appears more than once" in str(error)


def test_item_file_with_wrong_column_count(tiny_ml100k: Path) -> None:
    _replace_line(tiny_ml100k / "u.item", 2, "2|GoldenEye (1995)|01-Jan-1995")
    error = _error(tiny_ml100k)
    assert error.path == tiny_ml100k / "u.item" and error.line == 2
    assert "3 field(s) separated by '|', expected 24" in str(error)


def test_csv_header_checked(tmp_path: Path) -> None:
    folder = write_csv_release(tmp_path / "ml-latest-small")
    ratings = folder / "ratings.csv"
    ratings.write_text(ratings.read_text().replace("userId,movieId", "user,movie", 1))
    error = _error(folder, DATASETS["ml-latest-small"].reader)
    assert error.line == 1 and "expected 'userId,movieId,rating,timestamp'" in str(error)


def test_half_star_scale(tmp_path: Path) -> None:
    folder = write_csv_release(tmp_path / "ml-latest-small")
    ratings = folder / "ratings.csv"
    ratings.write_text(ratings.read_text().replace("4.5", "4.25"))
    error = _error(folder, DATASETS["ml-latest-small"].reader)
    assert error.line == 3 and "(0.5 to 5 in steps of 0.5)" in str(error)


def test_invalid_utf8(tmp_path: Path) -> None:
    folder = write_csv_release(tmp_path / "ml-latest-small")
    movies = folder / "movies.csv"
    movies.write_bytes(movies.read_bytes().replace(b"Toy Story", b"Toy \xff Story"))
    error = _error(folder, DATASETS["ml-latest-small"].reader)
    assert error.path == movies and error.line == 2 and "not valid UTF-8" in str(error)


# --- hardening (issue 13): truncation, encodings, time windows, integer ids, empty files --------------


def test_last_line_cut_inside_its_timestamp_is_refused(tiny_ml100k: Path) -> None:
    """'879959583' cut to '879959' would be a 1970 timestamp moving the rating to the start of the
    user's history; a file without its final line break is refused, naming that line."""
    data = tiny_ml100k / "u.data"
    lines = data.read_text().splitlines()
    data.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:-3])
    error = _error(tiny_ml100k)
    assert error.path == data and error.line == len(lines)
    assert "no line break" in error.problem and "cut short" in error.problem
    assert repr(lines[-1][:-3]) in error.problem


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8"])
def test_item_titles_decode_in_either_encoding_without_mojibake(tiny_ml100k: Path, encoding: str) -> None:
    """GroupLens ships u.item in Latin-1; a copy re-saved as UTF-8 reads the same titles."""
    item = tiny_ml100k / "u.item"
    item.write_bytes(item.read_bytes().decode("latin-1").encode(encoding))
    raw = read_ml100k(tiny_ml100k)
    assert raw.items.set_index("item_id").loc[3, "title"] == "Amélie (2001)"
    assert raw.encodings["u.item"] == encoding and raw.encodings["u.data"] == "utf-8"


@pytest.mark.parametrize(("stamp", "day"), [("0", "1970-01-01"), ("4102444800", "2100-01-01")])
def test_timestamp_outside_the_collection_window(tiny_ml100k: Path, stamp: str, day: str) -> None:
    _replace_line(tiny_ml100k / "u.data", 3, f"1\t3\t4\t{stamp}")
    error = _error(tiny_ml100k)
    assert error.line == 3 and f"timestamp {stamp} ({day})" in error.problem
    assert "collection window 1997-09-19 to 1998-04-22" in error.problem


def test_ids_above_2_pow_53_stay_distinct(tiny_ml100k: Path) -> None:
    """Through float64, 2**53 and 2**53 + 1 are the same number: two users would merge."""
    big = 2**53
    (tiny_ml100k / "u.data").write_text(
        "".join(f"{big + u}\t{i}\t3\t880000{u}{i}0\n" for u in (0, 1) for i in range(1, 6))
    )
    (tiny_ml100k / "u.user").write_text(f"{big}|24|M|other|1\n{big + 1}|30|F|other|2\n")
    raw = read_ml100k(tiny_ml100k)
    assert sorted(raw.interactions["user_id"].unique().tolist()) == [big, big + 1]
    assert raw.interactions.groupby("user_id").size().tolist() == [5, 5]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (str(2**63), "id too large: column 'user_id' holds 9223372036854775808"),
        ("inf", "column 'user_id' must be a number, found 'inf'"),
        ("1.5", "column 'user_id' must be a whole number, found '1.5'"),
    ],
)
def test_ids_that_are_not_64_bit_integers(tiny_ml100k: Path, value: str, message: str) -> None:
    _replace_line(tiny_ml100k / "u.data", 2, f"{value}\t3\t4\t880000000")
    error = _error(tiny_ml100k)
    assert error.line == 2 and message in error.problem and "negative" not in error.problem


def test_empty_ratings_file_says_it_has_no_ratings(tiny_ml100k: Path) -> None:
    (tiny_ml100k / "u.data").write_text("")
    error = _error(tiny_ml100k)
    assert error.path == tiny_ml100k / "u.data" and "has no ratings" in error.problem
    assert "MIN_INTERACTIONS" not in str(error)


def test_unreadable_file_is_one_line_naming_it(tiny_ml100k: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """(The tests run as root, where chmod 000 does not stop reading: the OS error is simulated.)"""
    original = Path.read_bytes

    def denied(self: Path) -> bytes:
        if self.name == "u.item":
            raise PermissionError(13, "Permission denied", str(self))
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    error = _error(tiny_ml100k)
    assert error.path == tiny_ml100k / "u.item" and "cannot be read (Permission denied)" in str(error)


@pytest.mark.parametrize("flag", ["7", "-1", "2"])
def test_a_genre_flag_other_than_0_or_1_is_refused(tiny_ml100k: Path, flag: str) -> None:
    """u.item's 19 genre columns are 0/1 flags; a 7 used to be taken as 1."""
    item = tiny_ml100k / "u.item"
    lines = item.read_text(encoding="latin-1").splitlines()
    fields = lines[1].split("|")
    fields[6] = flag  # the first genre flag after id, title, two dates and the URL
    _replace_line(item, 2, "|".join(fields))
    error = _error(tiny_ml100k)
    assert error.path == item and error.line == 2 and "genre flags are 0 or 1" in error.problem
    assert flag in error.problem


def test_a_dataset_name_that_leads_outside_the_artifacts_folder_creates_nothing(tmp_path: Path) -> None:
    """`--dataset ../../../../x` used to create <repo>/data/artifacts/../../../../x before being refused."""
    from mtrec_helpers.core.paths import default_artifacts_dir
    from mtrec_helpers.data.__main__ import main as data_main
    from mtrec_helpers.data.store import prepare_dataset

    target = tmp_path / "outside"
    with pytest.raises(SystemExit):
        data_main(["--dataset", f"../../../../{target}"])
    with pytest.raises(DataError, match="unknown dataset"):
        prepare_dataset("../x", target / "artifacts")
    with pytest.raises(ValueError, match="is not a dataset name"):
        default_artifacts_dir("../../x")
    assert not target.exists()
