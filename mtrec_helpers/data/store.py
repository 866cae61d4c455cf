"""Prepare a dataset once and persist it under ``<ARTIFACTS_DIR>/processed/``.

Files: ``interactions.parquet`` (one row per interaction, with split and labels),
``items.parquet``, ``users.parquet``, ``vocab.json`` (special ids and label vocabularies) and
``manifest.json`` (dataset, source checksums and encodings, parameters, counts, split sizes, and
the MD5 of every file written). A second call with the same sources and parameters reuses the
folder once every file matches its recorded MD5; anything changed or damaged rebuilds it,
atomically. Readers check the same checksums, so a damaged file is reported, never read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mtrec_helpers.core.atomic import atomic_directory, remove_stale_temporaries
from mtrec_helpers.core.errors import DataError
from mtrec_helpers.core.memory import bound_heap
from mtrec_helpers.core.paths import ensure_writable
from mtrec_helpers.core.protocol import SPLITS
from mtrec_helpers.core.stages import STAGES
from mtrec_helpers.data.files import present, require_file
from mtrec_helpers.data.movielens import DATASETS, training_tags
from mtrec_helpers.data.preprocess import (
    LIKE_THRESHOLD,
    PAD,
    add_time_context,
    encode,
    index_map,
    kcore_filter,
    order_and_split,
)
from mtrec_helpers.data.schema import AGE_BUCKETS, RawData
from mtrec_helpers.data.sources import file_md5, locate
from mtrec_helpers.data.synthetic import SyntheticConfig, generate

PROCESSED_FIX = (
    f"delete {{folder}} and run notebooks/{STAGES[0].notebook} (or `make data`) again to rebuild it."
)

PROCESSING_VERSION = (
    5  # 4: items carry tags and genome tags; 5: tags only from before each user's held-out period
)
TIE_BREAK = "timestamp, then the order of lines in the source file (stable sort)"
DATA_FILES = ("interactions.parquet", "items.parquet", "users.parquet", "vocab.json")
FILES = (*DATA_FILES, "manifest.json")


@dataclass
class ProcessedData:
    """A prepared dataset: interactions in sequence order with split and labels, items, users."""

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    vocab: dict[str, Any]
    manifest: dict[str, Any]
    folder: Path
    reused: bool = False

    @property
    def n_items(self) -> int:
        """Number of real items (indices 1..n_items)."""
        return int(self.vocab["n_items"])

    @property
    def n_users(self) -> int:
        """Number of users (indices 0..n_users-1)."""
        return int(self.vocab["n_users"])

    @property
    def mask_id(self) -> int:
        """The reserved [MASK] item index."""
        return int(self.vocab["mask"])

    def sequences(self, through: str = "train") -> list[np.ndarray]:
        """Each user's item indices in time order, up to and including split ``through``."""
        if through not in SPLITS:
            raise ValueError(f"through={through!r}; expected one of {SPLITS}")
        keep = self.interactions["split"].cat.codes.to_numpy() <= SPLITS.index(through)
        frame = self.interactions.loc[keep, ["user_idx", "item_idx"]]
        items = frame["item_idx"].to_numpy()
        bounds = np.searchsorted(frame["user_idx"].to_numpy(), np.arange(self.n_users + 1))
        return [items[bounds[u] : bounds[u + 1]] for u in range(self.n_users)]

    def targets(self, split: str) -> np.ndarray:
        """The held-out item index of each user for ``valid`` or ``test`` (ordered by user)."""
        frame = self.interactions[self.interactions["split"] == split]
        return frame.sort_values("user_idx")["item_idx"].to_numpy()

    def genre_matrix(self) -> np.ndarray:
        """Multi-hot genres per item index, shape (n_items + 2, n_genres); PAD and MASK rows zero."""
        genres = self.vocab["genres"]
        matrix = np.zeros((self.n_items + 2, len(genres)), dtype=np.float32)
        column = {g: j for j, g in enumerate(genres)}
        for index, names in zip(self.items["item_idx"], self.items["genres"], strict=True):
            matrix[index, [column[g] for g in names]] = 1.0
        return matrix

    def year_buckets(self) -> np.ndarray:
        """Release decade bucket per item index, shape (n_items + 2,); 0 for PAD, MASK and unknown."""
        buckets = np.zeros(self.n_items + 2, dtype=np.int64)
        buckets[self.items["item_idx"].to_numpy()] = decade_buckets(self.items["year"])
        return buckets


def decade_buckets(years: pd.Series, first_decade: int = 1900, n_buckets: int = 13) -> np.ndarray:
    """Release decade as 1..n_buckets (1900s → 1, clipped at both ends); 0 where the year is unknown."""
    decade = ((years.astype("Float64") - first_decade) // 10 + 1).clip(1, n_buckets)
    return decade.fillna(0).to_numpy(dtype=np.int64)


def check_dataset(dataset: str) -> None:
    """Refuse a name that is not a dataset the course reads, before anything is created for it."""
    if dataset != "synthetic" and dataset not in DATASETS:
        raise DataError(
            f"unknown dataset {dataset!r}.", fix=f"set DATASET to one of {sorted([*DATASETS, 'synthetic'])}."
        )


def locate_sources(dataset: str) -> tuple[Path | None, dict[str, str]]:
    """Where a dataset's files are and their MD5s (no folder and no files for ``synthetic``)."""
    check_dataset(dataset)
    if dataset == "synthetic":
        return None, {}
    spec = DATASETS[dataset]
    folder = locate(spec)
    found = [*spec.files, *(name for name in spec.optional if present(folder / name))]
    for name in found:  # a tags.csv that is a folder or a link loop is an error, never silently skipped
        require_file(folder / name, spec.fix(folder))
    return folder, {name: file_md5(folder / name) for name in found}


def load_raw(dataset: str, folder: Path | None, synthetic: SyntheticConfig | None = None) -> RawData:
    """Read a located dataset (or generate the synthetic one) in the common schema."""
    if dataset == "synthetic":
        return generate(synthetic or SyntheticConfig())[0]
    return DATASETS[dataset].reader(folder)


def build(
    raw: RawData, min_interactions: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Filter, index, order, split and label ``raw``; returns interactions, items, users, vocab."""
    interactions = kcore_filter(raw.interactions, min_interactions)
    item_index = index_map(interactions["item_id"], start=PAD + 1)
    user_index = index_map(interactions["user_id"], start=0)
    interactions = interactions.assign(
        user_idx=interactions["user_id"].map(user_index).to_numpy(),
        item_idx=interactions["item_id"].map(item_index).to_numpy(),
    )
    interactions = add_time_context(order_and_split(interactions))
    interactions["like"] = (interactions["rating"] >= LIKE_THRESHOLD).astype(np.int8)
    interactions = interactions[
        ["user_idx", "item_idx", "position", "split", "rating", "like", "timestamp", "hour",
         "weekday", "user_id", "item_id"]
    ].astype({"user_idx": np.int32, "item_idx": np.int32})  # fmt: skip
    items = raw.items[raw.items["item_id"].isin(item_index.index)].copy()
    held_out = interactions["split"] != SPLITS[0]
    held_out_from = interactions.loc[held_out].groupby("user_id")["timestamp"].min()
    tags = training_tags(raw.tag_events, held_out_from)
    items["tags"] = [list(tags.get(item, [])) for item in items["item_id"]]
    items.insert(0, "item_idx", items["item_id"].map(item_index).astype(np.int32))
    items = items.sort_values("item_idx").reset_index(drop=True)
    users = raw.users[raw.users["user_id"].isin(user_index.index)].copy()
    users.insert(0, "user_idx", users["user_id"].map(user_index).astype(np.int32))
    users = users.sort_values("user_idx").reset_index(drop=True)
    genders = sorted(users["gender"].dropna().unique().tolist())
    occupations = sorted(users["occupation"].dropna().unique().tolist())
    users["age_bucket_idx"] = encode(users["age_bucket"], AGE_BUCKETS)
    users["gender_idx"] = encode(users["gender"], genders)
    users["occupation_idx"] = encode(users["occupation"], occupations)
    n_items = len(item_index)
    vocab = {
        "pad": PAD,
        "mask": n_items + 1,
        "n_items": n_items,
        "vocab_size": n_items + 2,
        "n_users": len(user_index),
        "genres": raw.genres,
        "age_buckets": AGE_BUCKETS,
        "genders": genders,
        "occupations": occupations,
        "n_hours": 24,
        "n_weekdays": 7,
        "like_threshold": LIKE_THRESHOLD,
        "rating_scale": list(raw.rating_scale),
    }
    return interactions, items, users, vocab


def _counts(interactions: pd.DataFrame) -> dict[str, int]:
    """Users, items and interactions in a frame."""
    return {
        "n_users": int(interactions["user_id"].nunique()),
        "n_items": int(interactions["item_id"].nunique()),
        "n_interactions": len(interactions),
    }


def fingerprint(dataset: str, params: dict[str, Any], sources: dict[str, str]) -> str:
    """A hash of everything that determines the processed data."""
    payload = json.dumps(
        {"dataset": dataset, "params": params, "sources": sources, "version": PROCESSING_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def prepare_dataset(
    dataset: str,
    artifacts_dir: Path,
    min_interactions: int = 5,
    seed: int = 0,
    synthetic: SyntheticConfig | None = None,
) -> ProcessedData:
    """Processed data for ``dataset`` in ``<artifacts_dir>/processed``, reused when up to date."""
    check_dataset(dataset)
    folder = Path(artifacts_dir) / "processed"
    ensure_writable(folder.parent, "ARTIFACTS_DIR")
    remove_stale_temporaries(folder)
    synthetic = (
        dataclasses.replace(synthetic or SyntheticConfig(), seed=seed) if dataset == "synthetic" else None
    )
    params: dict[str, Any] = {"min_interactions": int(min_interactions), "seed": int(seed)}
    if synthetic is not None:
        params["synthetic"] = dataclasses.asdict(synthetic)
    source_dir, sources = locate_sources(dataset)
    key = fingerprint(dataset, params, sources)
    if _is_current(folder, key):
        try:
            return load_processed(folder, reused=True)  # checksums match: no need to parse the files
        except DataError as exc:
            warnings.warn(f"rebuilding the processed data: {exc.problem}", stacklevel=2)
    raw = load_raw(dataset, source_dir, synthetic)
    bound_heap(len(raw.items))  # large catalogues: freed score blocks go back to the system
    interactions, items, users, vocab = build(raw, min_interactions)
    split_sizes = interactions["split"].value_counts().reindex(SPLITS).astype(int).to_dict()
    manifest = {
        "dataset": dataset,
        "fingerprint": key,
        "processing_version": PROCESSING_VERSION,
        "params": params,
        "seed": int(seed),
        "sources": sources,
        "source_encodings": raw.encodings,
        "source_dir": str(source_dir) if source_dir else "generated",
        "tie_break": TIE_BREAK,
        "raw": {**_counts(raw.interactions), "n_items_in_catalogue": len(raw.items)},
        "counts": _counts(interactions),
        "splits": split_sizes,
        "repairs": raw.repairs,
        "has_user_profile": raw.has_user_profile,
        "files": list(FILES),
    }
    with atomic_directory(folder) as tmp:
        interactions.to_parquet(tmp / "interactions.parquet", index=False)
        items.to_parquet(tmp / "items.parquet", index=False)
        users.to_parquet(tmp / "users.parquet", index=False)
        (tmp / "vocab.json").write_text(json.dumps(vocab, indent=2), encoding="utf-8")
        manifest["file_md5"] = {name: file_md5(tmp / name) for name in DATA_FILES}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return load_processed(folder)


def _is_current(folder: Path, key: str) -> bool:
    """The folder holds every file and was made from the same inputs and parameters."""
    if not all((folder / name).is_file() for name in FILES):
        return False
    try:
        return _read_json(folder / "manifest.json", folder).get("fingerprint") == key
    except DataError:
        return False


def _read_json(path: Path, folder: Path) -> dict[str, Any]:
    """A JSON file of the processed folder, or a DataError naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"is damaged ({exc}).", path=path, fix=PROCESSED_FIX.format(folder=folder)) from exc


def verify_processed(folder: Path) -> dict[str, Any]:
    """The manifest, once every file of ``folder`` is there and matches the MD5 it records."""
    fix = PROCESSED_FIX.format(folder=folder)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise DataError(
            f"processed data is incomplete: {', '.join(missing)} missing.",
            path=folder,
            fix=STAGES[0].run_first(),
        )
    manifest = _read_json(folder / "manifest.json", folder)
    recorded = manifest.get("file_md5")
    if not isinstance(recorded, dict) or set(recorded) != set(DATA_FILES):
        raise DataError(
            "manifest.json records no checksums: this folder was written by an older version.",
            path=folder,
            fix=fix,
        )
    for name in DATA_FILES:
        if file_md5(folder / name) != recorded[name]:
            raise DataError("is damaged: its MD5 differs from the one recorded.", path=folder / name, fix=fix)
    return manifest


def load_processed(folder: Path, reused: bool = False) -> ProcessedData:
    """Read a processed folder written by :func:`prepare_dataset`, after checking its checksums."""
    folder = Path(folder)
    manifest = verify_processed(folder)
    try:
        interactions = pd.read_parquet(folder / "interactions.parquet")
        items = pd.read_parquet(folder / "items.parquet")
        users = pd.read_parquet(folder / "users.parquet")
    except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
        raise DataError(
            f"could not be read ({exc}).", path=folder, fix=PROCESSED_FIX.format(folder=folder)
        ) from exc
    interactions["split"] = interactions["split"].astype(pd.CategoricalDtype(list(SPLITS)))
    bound_heap(len(items))  # large catalogues: freed score blocks go back to the system
    return ProcessedData(
        interactions=interactions,
        items=items,
        users=users,
        vocab=_read_json(folder / "vocab.json", folder),
        manifest=manifest,
        folder=folder,
        reused=reused,
    )
