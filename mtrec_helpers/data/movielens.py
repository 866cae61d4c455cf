"""Readers for GroupLens' official MovieLens file formats, all returning :class:`RawData`.

- ml-100k: ``u.data`` (tab-separated), ``u.item`` (``|``, Latin-1, 19 genre flags), ``u.genre``,
  ``u.user`` (exact ages).
- ml-1m: ``ratings.dat``, ``movies.dat``, ``users.dat`` (``::``-separated, Latin-1; ages and
  occupations as codes).
- ml-20m, ml-25m, ml-latest-small: ``ratings.csv`` and ``movies.csv`` (UTF-8, ``|``-separated
  genres, half-star ratings); no user profiles. Where the release has them, ``tags.csv`` (free-text
  tags users applied: every release of the three) and the tag genome (``genome-scores.csv`` and
  ``genome-tags.csv``: ml-20m, ml-25m) give each item its most applied tags and its most relevant
  genome tags (:data:`TAGS_PER_ITEM` of each), the item text of notebook 02b.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mtrec_helpers.core.errors import DataError
from mtrec_helpers.data.files import present
from mtrec_helpers.data.parsing import LINE_COLUMN, Column, ParsedTable, TableFormat, read_table, reject_first
from mtrec_helpers.data.scale import SCALE_PRESETS, ScalePreset, synthesize
from mtrec_helpers.data.schema import AGE_BUCKETS, ITEM_COLUMNS, TAG_COLUMNS, RawData, age_bucket, empty_users
from mtrec_helpers.data.validation import (
    check_ids,
    check_known,
    check_ratings,
    check_timestamps,
    check_unique,
    drop_duplicate_events,
)
from mtrec_helpers.data.windows import MOVIELENS_START, collection_window

BASE_URL = "https://files.grouplens.org/datasets/movielens"
WINDOW_MARGIN_DAYS = 30
WHOLE_STARS = (1.0, 5.0, 1.0)
HALF_STARS = (0.5, 5.0, 0.5)

ML1M_AGES = dict(zip([1, 18, 25, 35, 45, 50, 56], AGE_BUCKETS, strict=True))
ML1M_OCCUPATIONS = [
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
]  # fmt: skip
NO_GENRES = "(no genres listed)"
TAGS_PER_ITEM = 10
"""Tags kept per item: the most applied user tags, and separately the most relevant genome tags."""
OPTIONAL_FILES = ("tags.csv", "genome-scores.csv", "genome-tags.csv")
"""Files a CSV release may have and the readers use when present (their MD5s join the sources)."""
_YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:[-\u2013]\d{0,4})?\)\s*$")


@dataclass(frozen=True)
class DatasetSpec:
    """A MovieLens release: its files, where to download it, its published MD5 and its reader."""

    name: str
    files: tuple[str, ...]
    reader: Callable[[Path], RawData]
    window: tuple[str, str | None]  # documented collection window, used where the README states none
    md5: str | None = None  # None: read the published checksum from ``<url>.md5``
    base_url: str = BASE_URL
    synthesize: Callable[[Path], None] | None = None  # a generated release: writes its files, no download
    optional: tuple[str, ...] = ()  # files read when present (tags, the tag genome)

    @property
    def url(self) -> str:
        """The official zip."""
        return f"{self.base_url}/{self.name}.zip"

    def fix(self, folder: Path | None = None) -> str:
        """What to tell a user whose copy of this dataset is unusable."""
        if self.synthesize is not None:
            return f"delete {folder or 'its folder'} and run again: {self.name} is generated anew."
        where = f" into {folder}" if folder else ""
        return f"re-download the official {self.name}.zip from {self.url} and unzip it{where} unchanged."


def year_from_title(titles: pd.Series) -> pd.Series:
    """The release year written at the end of a MovieLens title, e.g. 'Toy Story (1995)'."""
    return pd.to_numeric(titles.str.extract(_YEAR_IN_TITLE, expand=False), errors="coerce").astype("Int64")


def _finish(
    name: str,
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame | None,
    genres: list[str],
    scale: tuple[float, float, float],
    paths: dict[str, Path],
    tables: dict[str, ParsedTable],
    tag_events: pd.DataFrame | None = None,
) -> RawData:
    """Checks shared by every reader, then the common schema."""
    ratings_path = paths["ratings"]
    fix = DATASETS[name].fix(ratings_path.parent)
    if interactions.empty:
        raise DataError(
            "has no ratings (the file is empty or holds only blank lines).", path=ratings_path, fix=fix
        )
    check_ids(interactions, ["user_id", "item_id", "timestamp"], ratings_path, fix)
    window, source = collection_window(ratings_path.parent, ratings_path, DATASETS[name].window)
    check_timestamps(interactions, ratings_path, window, source, WINDOW_MARGIN_DAYS, fix)
    check_ratings(interactions, ratings_path, scale, fix)
    check_unique(items, "item_id", paths["items"], fix)
    check_known(interactions, "item_id", items["item_id"], ratings_path, paths["items"], fix)
    if users is not None:
        check_unique(users, "user_id", paths["users"], fix)
        check_known(interactions, "user_id", users["user_id"], ratings_path, paths["users"], fix)
    interactions, duplicates = drop_duplicate_events(interactions, ratings_path, fix)
    interactions = interactions[["user_id", "item_id", "rating", "timestamp"]].astype(
        {"user_id": np.int64, "item_id": np.int64, "rating": np.float32, "timestamp": np.int64}
    )
    if users is None:
        users = empty_users(interactions["user_id"].to_numpy())
    users = users.drop(columns=[LINE_COLUMN], errors="ignore").reset_index(drop=True)
    items = items.drop(columns=[LINE_COLUMN], errors="ignore").reset_index(drop=True)
    for column in ("tags", "genome"):  # items without tags (every item of a release without them): none
        values = items[column] if column in items else [None] * len(items)
        items[column] = [value if isinstance(value, list) else [] for value in values]
    return RawData(
        name=name,
        interactions=interactions.reset_index(drop=True),
        items=items[ITEM_COLUMNS],
        users=users[["user_id", "age", "age_bucket", "gender", "occupation"]],
        genres=genres,
        rating_scale=scale,
        has_user_profile=bool(users["gender"].notna().any()),
        repairs={
            "duplicate_rows_dropped": duplicates,
            "blank_lines_skipped": sum(table.blank_lines for table in tables.values()),
        },
        encodings={file: table.encoding for file, table in tables.items()},
        tag_events=pd.DataFrame(columns=TAG_COLUMNS) if tag_events is None else tag_events,
    )


def read_ml100k(folder: Path) -> RawData:
    """MovieLens 100K from ``u.data``, ``u.item``, ``u.genre`` and ``u.user``."""
    folder = Path(folder)
    fix = ML100K.fix(folder)
    ids = [Column("user_id", "int"), Column("item_id", "int")]
    ratings = read_table(
        folder / "u.data",
        TableFormat("\t", (*ids, Column("rating", "float"), Column("timestamp", "int"))),
        fix,
    )
    genre_table = read_table(
        folder / "u.genre",
        TableFormat("|", (Column("genre", "str"), Column("index", "int")), encoding="latin-1"),
        fix,
    )
    genres = genre_table.frame.sort_values("index")["genre"].tolist()
    item_columns = (
        Column("item_id", "int"),
        Column("title", "str"),
        Column("release_date", "str", required=False),
        Column("video_release_date", "str", required=False),
        Column("imdb_url", "str", required=False),
        *(Column(f"genre_{i}", "int") for i in range(len(genres))),
    )
    items = read_table(folder / "u.item", TableFormat("|", item_columns, encoding="latin-1"), fix)
    frame = items.frame
    flag_columns = [f"genre_{i}" for i in range(len(genres))]
    values = frame[flag_columns].to_numpy()
    reject_first(
        frame,
        ~np.isin(values, (0, 1)).all(axis=1),
        lambda row: f"genre flags are 0 or 1; found {[int(row[c]) for c in flag_columns]}.",
        folder / "u.item",
        fix,
    )
    flags = values.astype(bool)
    names = np.asarray(genres, dtype=object)
    frame["genres"] = [list(names[row]) for row in flags]
    release_year = pd.to_datetime(frame["release_date"], format="%d-%b-%Y", errors="coerce").dt.year
    frame["year"] = year_from_title(frame["title"]).fillna(release_year.astype("Int64"))
    user_columns = (
        Column("user_id", "int"),
        Column("age", "int"),
        Column("gender", "str"),
        Column("occupation", "str"),
        Column("zip", "str"),
    )
    users = read_table(folder / "u.user", TableFormat("|", user_columns, encoding="latin-1"), fix)
    profiles = users.frame
    profiles["age"] = profiles["age"].astype("Int64")
    profiles["age_bucket"] = age_bucket(profiles["age"])
    profiles = profiles.astype({"gender": "string", "occupation": "string"})
    return _finish(
        "ml-100k",
        ratings.frame,
        frame,
        profiles,
        genres,
        WHOLE_STARS,
        {"ratings": folder / "u.data", "items": folder / "u.item", "users": folder / "u.user"},
        {"u.data": ratings, "u.genre": genre_table, "u.item": items, "u.user": users},
    )


def _split_genres(values: pd.Series) -> tuple[list[list[str]], list[str]]:
    """Per-item genre lists from '|'-joined strings, and the sorted list of all genres."""
    lists = [[] if v in ("", NO_GENRES) else v.split("|") for v in values.fillna("")]
    return lists, sorted({g for genres in lists for g in genres})


def read_ml1m(folder: Path, name: str = "ml-1m") -> RawData:
    """MovieLens 1M from ``ratings.dat``, ``movies.dat`` and ``users.dat`` (or a release ``name``
    written in its format)."""
    folder = Path(folder)
    fix = DATASETS[name].fix(folder)
    ratings = read_table(
        folder / "ratings.dat",
        TableFormat(
            "::",
            (
                Column("user_id", "int"),
                Column("item_id", "int"),
                Column("rating", "float"),
                Column("timestamp", "int"),
            ),
            encoding="latin-1",
        ),
        fix,
    )
    movie_columns = (Column("item_id", "int"), Column("title", "str"), Column("genre_names", "str"))
    movies = read_table(folder / "movies.dat", TableFormat("::", movie_columns, "latin-1"), fix)
    items = movies.frame
    items["genres"], genres = _split_genres(items["genre_names"])
    items["year"] = year_from_title(items["title"])
    user_columns = (
        Column("user_id", "int"),
        Column("gender", "str"),
        Column("age_code", "int"),
        Column("occupation_code", "int"),
        Column("zip", "str"),
    )
    users = read_table(folder / "users.dat", TableFormat("::", user_columns, "latin-1"), fix)
    profiles = users.frame
    profiles["age"] = pd.array([pd.NA] * len(profiles), dtype="Int64")
    profiles["age_bucket"] = profiles["age_code"].map(ML1M_AGES).astype("string")
    occupations = np.asarray(ML1M_OCCUPATIONS, dtype=object)
    codes = profiles["occupation_code"].to_numpy()
    valid = (codes >= 0) & (codes < len(occupations))
    profiles["occupation"] = pd.array(
        np.where(valid, occupations[np.clip(codes, 0, len(occupations) - 1)], None), dtype="string"
    )
    profiles["gender"] = profiles["gender"].astype("string")
    return _finish(
        name,
        ratings.frame,
        items,
        profiles,
        genres,
        WHOLE_STARS,
        {
            "ratings": folder / "ratings.dat",
            "items": folder / "movies.dat",
            "users": folder / "users.dat",
        },
        {"ratings.dat": ratings, "movies.dat": movies, "users.dat": users},
    )


def _top_per_item(frame: pd.DataFrame, score: str, ascending: bool = False) -> pd.Series:
    """item_id → its :data:`TAGS_PER_ITEM` tags with the highest ``score`` (ties: alphabetical)."""
    ranked = frame.sort_values(["item_id", score, "tag"], ascending=[True, ascending, True], kind="stable")
    top = ranked.groupby("item_id", sort=False).head(TAGS_PER_ITEM)
    return top.groupby("item_id", sort=False)["tag"].agg(list)


def read_tags(folder: Path, fix: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, ParsedTable]]:
    """The user tags (``tags.csv``: lower-cased and stripped, each user's first application of each
    tag: see :func:`training_tags` for what reaches the items) and each item's most relevant genome
    tags (``genome-scores.csv`` + ``genome-tags.csv``), for the files present: a frame item_id,
    genome (lists), the tag events, and the parsed tables."""
    folder, tables = Path(folder), {}
    result = pd.DataFrame({"item_id": pd.Series([], dtype=np.int64)})
    events = pd.DataFrame(columns=TAG_COLUMNS)
    if present(folder / "tags.csv"):  # anything there is read: a folder or a link loop is an error
        columns = (
            Column("userId", "int"),
            Column("movieId", "int"),
            Column("tag", "str"),
            Column("timestamp", "int"),
        )
        tables["tags.csv"] = read_table(
            folder / "tags.csv", TableFormat(",", columns, header=True, quoted=True), fix
        )
        tags = tables["tags.csv"].frame.rename(columns={"userId": "user_id", "movieId": "item_id"})
        tags["tag"] = tags["tag"].fillna("").str.strip().str.lower()
        tags = tags[tags["tag"] != ""].sort_values("timestamp", kind="stable")
        events = tags.drop_duplicates(["user_id", "item_id", "tag"])[TAG_COLUMNS].reset_index(drop=True)
    if present(folder / "genome-scores.csv") or present(folder / "genome-tags.csv"):  # both, or an error
        score_columns = (Column("movieId", "int"), Column("tagId", "int"), Column("relevance", "float"))
        names = (Column("tagId", "int"), Column("tag", "str"))
        tables["genome-scores.csv"] = read_table(
            folder / "genome-scores.csv", TableFormat(",", score_columns, header=True), fix
        )
        tables["genome-tags.csv"] = read_table(
            folder / "genome-tags.csv", TableFormat(",", names, header=True, quoted=True), fix
        )
        vocabulary = tables["genome-tags.csv"].frame.set_index("tagId")["tag"]
        scores = tables["genome-scores.csv"].frame.rename(columns={"movieId": "item_id"})
        scores["tag"] = scores["tagId"].map(vocabulary)
        unknown = scores[scores["tag"].isna()]
        if len(unknown):
            raise DataError(
                f"tagId {unknown['tagId'].iloc[0]} is not in genome-tags.csv.",
                path=folder / "genome-scores.csv",
                line=int(unknown[LINE_COLUMN].iloc[0]),
                fix=fix,
            )
        result = result.merge(_top_per_item(scores, "relevance").rename("genome").reset_index(), how="outer")
    return result, events, tables


def training_tags(events: pd.DataFrame, held_out_from: pd.Series) -> pd.Series:
    """item_id → its :data:`TAGS_PER_ITEM` most applied user tags (counted once per user; ties:
    alphabetical), from the tags applied *before their user's held-out period*: a tag a user applied
    at or after ``held_out_from`` (user_id → the time of their first validation or test interaction)
    is dropped — it may describe what that user watched in the period the course tests on. Tags of
    users outside the processed data (filtered away) are kept: no held-out period of theirs exists."""
    cutoff = events["user_id"].map(held_out_from)
    kept = events[cutoff.isna() | (events["timestamp"] < cutoff)]
    counts = kept.groupby(["item_id", "tag"]).size().rename("count").reset_index()
    return _top_per_item(counts, "count")


def _csv_reader(name: str) -> Callable[[Path], RawData]:
    """A reader for the CSV releases (ml-20m, ml-25m, ml-latest-small)."""

    def read(folder: Path) -> RawData:
        folder = Path(folder)
        fix = DATASETS[name].fix(folder)
        rating_columns = (
            Column("userId", "int"),
            Column("movieId", "int"),
            Column("rating", "float"),
            Column("timestamp", "int"),
        )
        ratings = read_table(folder / "ratings.csv", TableFormat(",", rating_columns, header=True), fix)
        movie_columns = (Column("movieId", "int"), Column("title", "str"), Column("genres", "str"))
        movies = read_table(
            folder / "movies.csv", TableFormat(",", movie_columns, header=True, quoted=True), fix
        )
        interactions = ratings.frame.rename(columns={"userId": "user_id", "movieId": "item_id"})
        items = movies.frame.rename(columns={"movieId": "item_id"})
        items["genres"], genres = _split_genres(items["genres"])
        items["year"] = year_from_title(items["title"])
        genome, tag_events, tag_tables = read_tags(folder, fix)
        items = items.merge(
            genome, on="item_id", how="left"
        )  # genome rows of items not in movies.csv: dropped
        return _finish(
            name,
            interactions,
            items,
            None,
            genres,
            HALF_STARS,
            {"ratings": folder / "ratings.csv", "items": folder / "movies.csv"},
            {"ratings.csv": ratings, "movies.csv": movies, **tag_tables},
            tag_events,
        )

    read.__name__ = f"read_{name.replace('-', '_')}"
    read.__doc__ = f"MovieLens {name} from ``ratings.csv`` and ``movies.csv`` (and its tags where present)."
    return read


def _scale_spec(preset: ScalePreset) -> DatasetSpec:
    """A generated release (:mod:`.scale`), read back by the reader of the format it is written in."""
    if preset.written_as == "ml-1m":
        reader: Callable[[Path], RawData] = functools.partial(read_ml1m, name=preset.name)
    else:
        reader = _csv_reader(preset.name)
    return DatasetSpec(
        preset.name,
        preset.files,
        reader,
        preset.window,
        synthesize=functools.partial(synthesize, preset.name),
    )


ML100K = DatasetSpec(
    "ml-100k", ("u.data", "u.item", "u.genre", "u.user"), read_ml100k, ("1997-09-19", "1998-04-22"),
    md5="0e33842e24a9c977be4e0107933c0723",
)  # fmt: skip
ML1M = DatasetSpec(
    "ml-1m", ("ratings.dat", "movies.dat", "users.dat"), read_ml1m, ("2000-04-25", "2003-02-28"),
    md5="c4d9eecfca2ab87c1945afe126590906",
)  # fmt: skip
DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        ML100K,
        ML1M,
        DatasetSpec(
            "ml-20m", ("ratings.csv", "movies.csv"), _csv_reader("ml-20m"), (MOVIELENS_START, "2015-03-31"),
            md5="cd245b17a1ae2cc31bb14903e1204af3", optional=OPTIONAL_FILES,
        ),
        DatasetSpec(
            "ml-25m", ("ratings.csv", "movies.csv"), _csv_reader("ml-25m"), (MOVIELENS_START, "2019-11-21"),
            md5="6b51fb2759a8657d3bfcbfc42b592ada", optional=OPTIONAL_FILES,
        ),
        DatasetSpec(
            "ml-latest-small", ("ratings.csv", "movies.csv"), _csv_reader("ml-latest-small"),
            (MOVIELENS_START, None),  # regenerated by GroupLens: its README.txt states each version's window
            optional=OPTIONAL_FILES,
        ),
        *(_scale_spec(preset) for preset in SCALE_PRESETS.values()),
    )
}  # fmt: skip
"""Every MovieLens release the course reads; the MD5s are GroupLens' published ones. A release's
collection window is what its own README states (:mod:`.windows`); the windows here apply where it
states none: the fixed releases' documented periods (ml-1m's README says only "users who joined in
2000"; its window is the span of the published file), MovieLens' whole span for ml-latest-small."""
