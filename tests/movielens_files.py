"""Small MovieLens releases written in GroupLens' official formats, for reader and loader tests."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from mtrec_helpers.data.synthetic import SyntheticConfig, generate

ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
]  # fmt: skip


def ml100k_item_line(item: int, title: str, genres: list[str], date: str = "01-Jan-1995") -> str:
    """One u.item line: id|title|release|video release|url|19 genre flags."""
    flags = "|".join("1" if g in genres else "0" for g in ML100K_GENRES)
    return f"{item}|{title}|{date}||http://us.imdb.com/M/title-exact?x|{flags}"


def write_ml100k(folder: Path, ratings: list[tuple[int, int, int, int]] | None = None) -> Path:
    """A tiny ml-100k folder: 4 users, 5 items (one with a Latin-1 title), 5 ratings per user."""
    folder.mkdir(parents=True, exist_ok=True)
    if ratings is None:
        ratings = [
            (user, item, 1 + (user + item) % 5, 880000000 + 1000 * user + 10 * item)
            for user in range(1, 5)
            for item in range(1, 6)
        ]
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in ratings))
    items = [
        ml100k_item_line(1, "Toy Story (1995)", ["Animation", "Children's", "Comedy"]),
        ml100k_item_line(2, "GoldenEye (1995)", ["Action", "Adventure", "Thriller"]),
        ml100k_item_line(3, "Amélie (2001)", ["Comedy", "Romance"], date="01-Jan-2001"),
        ml100k_item_line(4, "unknown", ["unknown"], date=""),
        ml100k_item_line(5, "Heat (1995)", ["Action", "Crime", "Thriller"]),
    ]
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(ML100K_GENRES)) + "\n")
    (folder / "u.user").write_text(
        "1|24|M|technician|85711\n2|53|F|other|94043\n3|17|M|student|32067\n4|60|F|retired|T8H1N\n"
    )
    return folder


def write_ml1m(folder: Path) -> Path:
    """A tiny ml-1m folder in the '::'-separated Latin-1 format."""
    folder.mkdir(parents=True, exist_ok=True)
    ratings = [(u, i, 1 + (u * i) % 5, 978300000 + 100 * u + i) for u in range(1, 4) for i in (1, 2, 3)]
    (folder / "ratings.dat").write_text("".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in ratings))
    (folder / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n"
        "2::Jumanji (1995)::Adventure|Children's|Fantasy\n"
        "3::Cité des enfants perdus, La (1995)::Adventure|Sci-Fi\n".encode("latin-1")
    )
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n")
    return folder


def write_csv_release(folder: Path, genome: bool = True) -> Path:
    """A tiny ml-20m/25m/latest-small folder: CSV with a header, quoted titles, half stars, user tags
    (quoted, mixed case, one applied twice by the same user) and, with ``genome``, the tag genome."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        "1,1,4.0,964982703\n1,3,4.5,964981247\n1,6,0.5,964982224\n"
        "2,1,5.0,1262304000\n2,3,3.5,1262304050\n2,6,2.0,1262304117\n"
    )
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        '3,"American President, The (1995)",Comedy|Drama|Romance\n'
        "6,Generation Kill (2008),(no genres listed)\n",
        encoding="utf-8",
    )
    (folder / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\n"
        "1,1,pixar,964982703\n2,1,Pixar,1262304000\n2,1,pixar ,1262304001\n1,1,fun,964982704\n"
        '2,3,"politics, romance",1262304050\n2,99,orphan tag,1262304060\n',
        encoding="utf-8",
    )
    if genome:
        (folder / "genome-tags.csv").write_text("tagId,tag\n1,toys\n2,presidents\n3,war\n")
        (folder / "genome-scores.csv").write_text(
            "movieId,tagId,relevance\n1,1,0.95\n1,2,0.05\n1,3,0.20\n3,1,0.10\n3,2,0.90\n3,3,0.30\n"
        )
    return folder


def zip_release(folder: Path, archive: Path) -> Path:
    """Zip a release folder the way GroupLens does: one top folder named like the release."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.iterdir()):
            bundle.write(path, f"{folder.name}/{path.name}")
    return archive


def _latest_small_readme(
    ratings: int, tags: int, movies: int, users: int, window: str, generated: str
) -> str:
    """The opening of ml-latest-small's README.txt as GroupLens writes it for each version."""
    return (
        "Summary\n=======\n\nThis dataset (ml-latest-small) describes 5-star rating and free-text tagging "
        f"activity from [MovieLens](http://movielens.org), a movie recommendation service. It contains "
        f"{ratings} ratings and {tags} tag applications across {movies} movies. These data were created "
        f"by {users} users between {window}. This dataset was generated on {generated}.\n"
    )


ML_LATEST_SMALL_READMES = {
    "2016": _latest_small_readme(100004, 1296, 9125, 671, "January 09, 1995 and October 16, 2016",
                                 "October 17, 2016"),
    "2018": _latest_small_readme(100836, 3683, 9742, 610, "March 29, 1996 and September 24, 2018",
                                 "September 26, 2018"),
}  # fmt: skip
"""ml-latest-small is regenerated over time: the versions differ in size and collection window."""


ML1M_AGE_CODES = {"Under 18": 1, "18-24": 18, "25-34": 25, "35-44": 35, "45-49": 45, "50-55": 50, "56+": 56}
RELEASE_WINDOWS = {
    "ml-100k": (880_000_000, 890_000_000),
    "ml-1m": (960_000_000, 1_040_000_000),
    "ml-latest-small@2016": (789_652_009, 1_476_600_000),  # 1995-01-09 11:46 to 2016-10-16
    "ml-latest-small@2018": (838_598_400, 1_537_780_000),  # 1996-03-29 to 2018-09-24
}
"""Where a synthetic release's timestamps are spread: inside each release's (version's) collection
window, from its first second."""


def _release_timestamps(timestamps: np.ndarray, release: str) -> np.ndarray:
    """The synthetic timestamps moved (and squeezed, order kept) into the release's window."""
    low, high = RELEASE_WINDOWS.get(release, (1_200_000_000, 1_400_000_000))
    span = max(int(timestamps.max() - timestamps.min()), 1)
    return low + (timestamps - timestamps.min()) * (high - low) // span


def write_synthetic_release(
    folder: Path, release: str, config: SyntheticConfig | None = None, id_stride: int = 1, version: str = ""
) -> Path:
    """The synthetic generator's data written in ``release``'s official format (ml-100k, ml-1m, or a
    CSV release), so that it goes through the real reader: Latin-1 titles, ml-1m's age and occupation
    codes, the CSV releases' half stars, quoted titles, items without genres and sparse movie ids
    (``id_stride``), and no user profiles where the release has none. A ``version`` of ml-latest-small
    ("2016", "2018") gets that version's README.txt and collection window."""
    config = config or SyntheticConfig()
    raw, _ = generate(config)
    folder.mkdir(parents=True, exist_ok=True)
    ratings = raw.interactions.copy()
    shape = f"{release}@{version}" if version else release
    ratings["timestamp"] = _release_timestamps(ratings["timestamp"].to_numpy(), shape)
    if version:
        (folder / "README.txt").write_text(ML_LATEST_SMALL_READMES[version])
    ratings["item_id"] = ratings["item_id"] * id_stride
    items = raw.items.assign(item_id=raw.items["item_id"] * id_stride)
    titles = [f"Mélodie n°{i}, La ({year})" for i, year in zip(items["item_id"], items["year"], strict=True)]
    users = raw.users
    if release == "ml-100k":
        genres = [f"genre-{g}" for g in range(config.n_genres)]
        (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(genres)) + "\n")
        (folder / "u.item").write_bytes(
            "".join(
                f"{i}|{t}|01-Jan-{y}||http://x|" + "|".join("1" if g in gs else "0" for g in genres) + "\n"
                for i, t, y, gs in zip(items["item_id"], titles, items["year"], items["genres"], strict=True)
            ).encode("latin-1")
        )
        (folder / "u.user").write_text(
            "".join(
                f"{u}|{a}|{g}|{o}|00000\n"
                for u, a, g, o in zip(users["user_id"], users["age"], users["gender"], users["occupation"],
                                      strict=True)
            )
        )  # fmt: skip
        rows = ratings.astype({"rating": int})
        (folder / "u.data").write_text(rows.to_csv(sep="\t", header=False, index=False))
    elif release == "ml-1m":
        lines = [f"{u}::{i}::{int(r)}::{t}\n" for u, i, r, t in ratings.itertuples(index=False)]
        (folder / "ratings.dat").write_text("".join(lines))
        (folder / "movies.dat").write_bytes(
            "".join(
                f"{i}::{t}::{'|'.join(gs)}\n"
                for i, t, gs in zip(items["item_id"], titles, items["genres"], strict=True)
            ).encode("latin-1")
        )
        occupation = {name: code for code, name in enumerate(sorted(set(users["occupation"])))}
        profiles = zip(
            users["user_id"], users["gender"], users["age_bucket"], users["occupation"], strict=True
        )
        (folder / "users.dat").write_text(
            "".join(f"{u}::{g}::{ML1M_AGE_CODES[a]}::{occupation[o]}::00000\n" for u, g, a, o in profiles)
        )
    else:
        half = np.random.default_rng(config.seed).random(len(ratings)) < 0.5
        ratings["rating"] = np.clip(ratings["rating"] - 0.5 * half, 0.5, 5.0)
        ratings = ratings.rename(columns={"user_id": "userId", "item_id": "movieId"})
        (folder / "ratings.csv").write_text(ratings.to_csv(index=False, float_format="%.1f"))
        genres = ["|".join(gs) if i % 7 else "(no genres listed)" for i, gs in enumerate(items["genres"])]
        movies = pd.DataFrame({"movieId": items["item_id"], "title": titles, "genres": genres})
        (folder / "movies.csv").write_text(movies.to_csv(index=False), encoding="utf-8")
        _write_tags(folder, ratings, items, genome=release in ("ml-20m", "ml-25m"), seed=config.seed)
    return folder


def _write_tags(folder: Path, ratings: pd.DataFrame, items: pd.DataFrame, genome: bool, seed: int) -> None:
    """User tags (a tenth of the ratings get their item's first genre, quoted, in mixed case) and,
    with ``genome``, a tag genome of five tags with a relevance for every item."""
    rng = np.random.default_rng(seed)
    tagged = ratings.sample(frac=0.1, random_state=seed)
    first_genre = {
        i: (gs[0] if len(gs) else "untagged") for i, gs in zip(items["item_id"], items["genres"], strict=True)
    }
    tags = tagged[["userId", "movieId", "timestamp"]].assign(
        tag=[f"Very {first_genre[i]}, really" for i in tagged["movieId"]]
    )[["userId", "movieId", "tag", "timestamp"]]
    (folder / "tags.csv").write_text(tags.to_csv(index=False), encoding="utf-8")
    if genome:
        names = ["dark", "funny", "space", "romantic", "twist ending"]
        (folder / "genome-tags.csv").write_text(
            "tagId,tag\n" + "".join(f"{k},{n}\n" for k, n in enumerate(names, 1))
        )
        scores = pd.DataFrame({
            "movieId": np.repeat(items["item_id"].to_numpy(), len(names)),
            "tagId": np.tile(np.arange(1, len(names) + 1), len(items)),
            "relevance": rng.random(len(items) * len(names)).round(5),
        })  # fmt: skip
        (folder / "genome-scores.csv").write_text(scores.to_csv(index=False))
