"""Read delimited text files fast, and on bad input say exactly which line is wrong.

The fast path is pandas' C parser. Anything it rejects, or any row that comes back incomplete,
is diagnosed by a slow line-by-line scan that names the line and what is wrong with it.
Blank lines are skipped and counted (the ML-100k copy used here has two).
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from mtrec_helpers.data.errors import DataError

ColumnKind = Literal["int", "float", "str"]
MULTI_CHAR_SEP = "\x1f"  # multi-character separators ('::') are rewritten to this for the C parser
LINE_COLUMN = "_line"


@dataclass(frozen=True)
class Column:
    """One expected column: its name, whether it is an integer, a float or text, and if required."""

    name: str
    kind: ColumnKind
    required: bool = True


@dataclass(frozen=True)
class TableFormat:
    """How one file is laid out: separator, encoding, header row and quoting."""

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
    """A parsed file: rows with their physical line numbers, and how many blank lines were skipped."""

    frame: pd.DataFrame
    blank_lines: int


def read_table(path: Path, fmt: TableFormat, fix: str) -> ParsedTable:
    """Parse ``path`` in format ``fmt``; ``fix`` says what to do if the file is bad."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found.", path=path, fix=fix)
    raw = path.read_bytes()
    if fmt.header:
        _check_header(raw, path, fmt, fix)
    try:
        frame = _fast_parse(raw, fmt)
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError) as exc:
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
    frame = _to_integers(frame, fmt, path, fix)
    return ParsedTable(frame=frame.reset_index(drop=True), blank_lines=int(blank.sum()))


def _fast_parse(raw: bytes, fmt: TableFormat) -> pd.DataFrame:
    """pandas' C parser over the whole file; numbers as float64 so that gaps show as NaN."""
    data, sep = raw, fmt.sep
    if len(sep) > 1:
        data, sep = raw.replace(sep.encode(fmt.encoding), MULTI_CHAR_SEP.encode()), MULTI_CHAR_SEP
    dtypes = {i: ("float64" if c.kind != "str" else "str") for i, c in enumerate(fmt.columns)}
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


def _to_integers(frame: pd.DataFrame, fmt: TableFormat, path: Path, fix: str) -> pd.DataFrame:
    """Cast integer columns, naming the first line whose value is not a whole number."""
    for column in (c.name for c in fmt.columns if c.kind == "int"):
        values = frame[column].to_numpy()
        reject_first(
            frame,
            values != np.floor(values),
            lambda row, column=column: f"column '{column}' must be a whole number, found {row[column]:g}.",
            path,
            fix,
        )
        frame[column] = values.astype(np.int64)
    return frame


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
        if column.kind != "str":
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                return f"column '{column.name}' must be a number, found {value!r}."
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
