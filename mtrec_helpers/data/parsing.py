"""Read delimited text files fast, and on bad input say exactly which line is wrong.

The fast path is pandas' C parser. Anything it rejects, or any row that comes back incomplete,
is diagnosed by a slow line-by-line scan that names the line and what is wrong with it.
Blank lines are skipped and counted (the ML-100k copy used here has two). Integer columns are
parsed as 64-bit integers, never through float64 (where ids above 2**53 would merge). The text
encoding is detected: strict UTF-8 first, then the release's own (Latin-1 for the older releases),
and the one used is reported. A file whose last line has no line break is refused: GroupLens' files
all end with one, so a missing one means the file was cut short, possibly inside the last field.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from mtrec_helpers.core.errors import DataError
from mtrec_helpers.data.files import require_file

ColumnKind = Literal["int", "float", "str"]
MULTI_CHAR_SEP = "\x1f"  # multi-character separators ('::') are rewritten to this for the C parser
LINE_COLUMN = "_line"
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Column:
    """One expected column: its name, whether it is an integer, a float or text, and if required."""

    name: str
    kind: ColumnKind
    required: bool = True


@dataclass(frozen=True)
class TableFormat:
    """How one file is laid out: separator, encoding (the release's own; UTF-8 is tried first),
    header row and quoting."""

    sep: str
    columns: tuple[Column, ...]
    encoding: str = "utf-8"
    header: bool = False
    quoted: bool = False

    @property
    def names(self) -> list[str]:
        """Column names in file order (for files with a header row, as the header spells them)."""
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        """Names of the columns that may not be empty."""
        return [c.name for c in self.columns if c.required]


@dataclass(frozen=True)
class ParsedTable:
    """A parsed file: rows with their physical line numbers, how many blank lines were skipped, and
    the text encoding it was read with."""

    frame: pd.DataFrame
    blank_lines: int
    encoding: str


def read_table(path: Path, fmt: TableFormat, fix: str) -> ParsedTable:
    """Parse ``path`` in format ``fmt``; ``fix`` says what to do if the file is bad."""
    path = Path(path)
    require_file(path, fix)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(
            f"cannot be read ({exc.strerror or exc}).", path=path, fix="make the file readable by this user."
        ) from exc
    fmt = replace(fmt, encoding=detect_encoding(raw, fmt.encoding, path, fix))
    _check_complete(raw, path, fmt, fix)
    if fmt.header:
        _check_header(raw, path, fmt, fix)
    try:
        frame = _fast_parse(raw, fmt)
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError, TypeError, OverflowError) as exc:
        _raise_first_bad_line(raw, path, fmt, fix)
        raise DataError(f"could not be parsed ({exc}).", path=path, fix=fix) from exc
    if frame.shape[1] != len(fmt.columns):
        _raise_first_bad_line(raw, path, fmt, fix)
    frame.columns = fmt.names
    first_line = 2 if fmt.header else 1
    frame[LINE_COLUMN] = np.arange(first_line, first_line + len(frame), dtype=np.int64)
    values = frame[fmt.names]
    blank = values.isna().all(axis=1).to_numpy()
    frame = frame.loc[~blank]
    incomplete = frame[fmt.required].isna().any(axis=1).to_numpy()
    if incomplete.any():
        line = int(frame[LINE_COLUMN].to_numpy()[incomplete][0])
        text = _line_text(raw, fmt, line)
        problem = _describe_bad_fields(_split(text, fmt), fmt) or "has an empty field."
        raise DataError(f"{problem} Line: {text!r}", path=path, line=line, fix=fix)
    for column in (c.name for c in fmt.columns if c.kind == "int" and c.required):
        frame[column] = frame[column].to_numpy(dtype=np.int64)
    return ParsedTable(
        frame=frame.reset_index(drop=True), blank_lines=int(blank.sum()), encoding=fmt.encoding
    )


def detect_encoding(raw: bytes, own: str, path: Path, fix: str) -> str:
    """'utf-8' if ``raw`` is valid UTF-8, else the release's ``own`` encoding (an error if that is
    UTF-8 too): a UTF-8 copy of a Latin-1 file is read as UTF-8, never turned into mojibake."""
    try:
        raw.decode("utf-8", errors="strict")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if codecs.lookup(own).name == "utf-8":
            line = raw.count(b"\n", 0, exc.start) + 1
            raise DataError(
                f"is not valid UTF-8 text (byte offset {exc.start}: {raw[exc.start : exc.start + 4]!r}).",
                path=path,
                line=line,
                fix=fix,
            ) from exc
        return own


def _check_complete(raw: bytes, path: Path, fmt: TableFormat, fix: str) -> None:
    """A non-empty file ends with a line break; otherwise its last line may have been cut short."""
    if raw and not raw.endswith(b"\n"):
        last = raw.rsplit(b"\n", 1)[-1].decode(fmt.encoding, errors="replace")
        line = raw.count(b"\n") + 1
        raise DataError(
            f"the last line has no line break, so the file was probably cut short (last line: {last!r}).",
            path=path,
            line=line,
            fix=f"{fix} (If you edited the file yourself, end it with a newline.)",
        )


def _fast_parse(raw: bytes, fmt: TableFormat) -> pd.DataFrame:
    """pandas' C parser over the whole file: integers as nullable Int64 and floats as float64, so that
    gaps show as missing values."""
    data, sep = raw, fmt.sep
    if len(sep) > 1:
        data, sep = raw.replace(sep.encode(fmt.encoding), MULTI_CHAR_SEP.encode()), MULTI_CHAR_SEP
    dtypes = {
        i: {"int": "Int64", "float": "float64", "str": "str"}[c.kind] for i, c in enumerate(fmt.columns)
    }
    with warnings.catch_warnings():
        # pandas only warns when a line has more fields than expected; that is an error here
        warnings.simplefilter("error", pd.errors.ParserWarning)
        return pd.read_csv(
            io.BytesIO(data),
            sep=sep,
            header=None,
            names=list(range(len(fmt.columns))),
            index_col=False,
            skiprows=1 if fmt.header else 0,
            dtype=dtypes,
            encoding=fmt.encoding,
            skip_blank_lines=False,
            keep_default_na=False,
            na_values=[""],
            quoting=csv.QUOTE_MINIMAL if fmt.quoted else csv.QUOTE_NONE,
            engine="c",
        )


def _check_header(raw: bytes, path: Path, fmt: TableFormat, fix: str) -> None:
    """The first line names the expected columns."""
    first = next(iter(raw.split(b"\n", 1)), b"").decode(fmt.encoding, errors="replace")
    found = _split(first.rstrip("\r"), fmt)
    if found != fmt.names:
        raise DataError(
            f"header is {fmt.sep.join(found)!r}, expected {fmt.sep.join(fmt.names)!r}.",
            path=path,
            line=1,
            fix=fix,
        )


def reject_first(
    frame: pd.DataFrame, bad: np.ndarray, problem: Callable[[dict[str, Any]], str], path: Path, fix: str
) -> None:
    """Raise a DataError at the first row flagged in ``bad``; ``problem`` describes that row."""
    if bad.any():
        row = frame.loc[bad].head(1).to_dict("records")[0]
        raise DataError(problem(row), path=path, line=int(row[LINE_COLUMN]), fix=fix)


def _lines(raw: bytes, fmt: TableFormat) -> Iterator[tuple[int, str]]:
    """Physical lines with their 1-based numbers, decoded as the format says."""
    text = raw.decode(fmt.encoding, errors="strict")
    for number, line in enumerate(io.StringIO(text, newline=None), start=1):
        yield number, line.rstrip("\r\n")


def _split(line: str, fmt: TableFormat) -> list[str]:
    """The fields of one line."""
    if fmt.quoted:
        return next(csv.reader([line], delimiter=fmt.sep), [])
    return line.split(fmt.sep)


def _line_text(raw: bytes, fmt: TableFormat, wanted: int) -> str:
    """The text of line ``wanted``."""
    for number, line in _lines(raw, fmt):
        if number == wanted:
            return line
    return ""


def _describe_bad_fields(fields: Sequence[str], fmt: TableFormat) -> str | None:
    """What is wrong with one line's fields, or None when they fit the format."""
    if len(fields) != len(fmt.columns):
        return (
            f"has {len(fields)} field(s) separated by {fmt.sep!r}, expected {len(fmt.columns)} "
            f"({', '.join(fmt.names)}). Is this the right file, with the right delimiter?"
        )
    for value, column in zip(fields, fmt.columns, strict=True):
        if value.strip() == "":
            if column.required:
                return f"column '{column.name}' is empty."
            continue
        problem = _describe_number(value.strip(), column)
        if problem:
            return problem
    return None


def _describe_number(value: str, column: Column) -> str | None:
    """What is wrong with one numeric field, or None."""
    if column.kind == "str":
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        return f"column '{column.name}' must be a number, found {value!r}."
    if column.kind == "float":
        return None
    try:
        whole = int(value)
    except ValueError:
        if number != math.floor(number):
            return f"column '{column.name}' must be a whole number, found {value!r}."
        whole = int(number)
    if abs(whole) > INT64_MAX:
        return (
            f"id too large: column '{column.name}' holds {value}, above the largest 64-bit integer "
            f"{INT64_MAX}."
        )
    return None


def _raise_first_bad_line(raw: bytes, path: Path, fmt: TableFormat, fix: str) -> None:
    """Scan line by line and raise a DataError for the first line that does not fit ``fmt``."""
    try:
        lines = list(_lines(raw, fmt))
    except UnicodeDecodeError as exc:
        raise DataError(
            f"is not valid {fmt.encoding} text (byte offset {exc.start}).", path=path, fix=fix
        ) from exc
    for number, line in lines:
        if (fmt.header and number == 1) or line.strip() == "":
            continue
        problem = _describe_bad_fields(_split(line, fmt), fmt)
        if problem:
            raise DataError(f"{problem} Line: {line!r}", path=path, line=number, fix=fix)
