"""The one schema every dataset reader returns, and the checks every reader's output passes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

INTERACTION_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]
ITEM_COLUMNS = ["item_id", "title", "year", "genres", "tags", "genome"]
USER_COLUMNS = ["user_id", "age", "age_bucket", "gender", "occupation"]
TAG_COLUMNS = ["user_id", "item_id", "tag", "timestamp"]

AGE_BUCKETS = ["Under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"]
"""MovieLens 1M's age groups; ML-100k's exact ages are binned into the same groups."""
_AGE_EDGES = [18, 25, 35, 45, 50, 56]


def age_bucket(ages: pd.Series) -> pd.Series:
    """Bin exact ages into MovieLens 1M's age groups (missing ages stay missing)."""
    codes = np.searchsorted(_AGE_EDGES, ages.fillna(-1).to_numpy(), side="right")
    labels = pd.Series(np.asarray(AGE_BUCKETS, dtype=object)[codes], index=ages.index)
    return labels.where(ages.notna(), None).astype("string")


@dataclass
class RawData:
    """A dataset as read from its files, in the common schema, before any filtering.

    ``interactions``: user_id, item_id (the dataset's own ids), rating (float), timestamp (Unix s).
    ``items``: item_id, title, year (nullable), genres (list of names), tags (empty: filled from
    ``tag_events`` once the data is split, see :func:`~mtrec_helpers.data.movielens.training_tags`)
    and genome (the most relevant genome tags; empty where the release has none). ``tag_events``:
    user_id, item_id, tag (lower-cased), timestamp — each user's first application of each tag.
    ``users``: user_id, age (nullable), age_bucket, gender, occupation (missing where the dataset
    has no profiles). ``repairs`` counts documented fixes applied while reading; ``encodings``
    names the text encoding each file was read with.
    """

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    genres: list[str]
    rating_scale: tuple[float, float, float]
    has_user_profile: bool
    repairs: dict[str, int] = field(default_factory=dict)
    encodings: dict[str, str] = field(default_factory=dict)
    tag_events: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TAG_COLUMNS))


def empty_users(user_ids: np.ndarray) -> pd.DataFrame:
    """A users table for datasets without profiles: every profile field missing."""
    ids = np.unique(user_ids).astype(np.int64)
    missing = [pd.NA] * len(ids)
    return pd.DataFrame(
        {
            "user_id": ids,
            "age": pd.array(missing, dtype="Int64"),
            "age_bucket": pd.array(missing, dtype="string"),
            "gender": pd.array(missing, dtype="string"),
            "occupation": pd.array(missing, dtype="string"),
        }
    )
