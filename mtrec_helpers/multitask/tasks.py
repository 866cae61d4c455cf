"""Task labels and model inputs for multi-task finetuning, cut from one prepared dataset.

Every example is a run of a user's interactions in time order. For position j the model sees the
items (and, as input features, the ratings) of interactions 0..j and the time context of
interaction j+1 — the moment the recommendation is asked for: hour, weekday and the time since
interaction j — and predicts
interaction j+1: its item (primary task), rating, like (rating ≥ threshold) and genres. The
rating, like and genres of the predicted interaction never enter the input (no label leakage);
with a causal encoder nothing later than position j reaches it either.

The user-profile task (age bucket, gender, occupation) is read from the user representation at
the last position. Its labels belong to users, not interactions, so users are split once
(80/10/10, seeded): only the training users' profiles are ever used as labels, and the reported
profile metrics come from users whose profile the model never saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from mtrec_helpers.core.evaluation import Ranker, validation_users
from mtrec_helpers.core.protocol import SPLITS
from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.pretraining.sequences import IGNORE, left_pad, windows

TASKS = ("next", "rating", "like", "genre", "profile")
"""The heads: next item (primary), rating, like, genres of the next item, user profile."""
PROFILE_FIELDS = ("age_bucket_idx", "gender_idx", "occupation_idx")
PROFILE_SPLIT = (0.8, 0.1)  # shares of users whose profile is train / valid; the rest is test


def check_tasks(tasks: Sequence[str]) -> tuple[str, ...]:
    """The tasks in canonical order; an unknown or missing task list is an error naming TASKS."""
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown or not tasks:
        raise ValueError(f"TASKS={list(tasks)!r}: choose a non-empty subset of {list(TASKS)}")
    return tuple(t for t in TASKS if t in tasks)


@dataclass
class Batch:
    """Model inputs (B, L) and labels at every position; IGNORE / NaN / -1 where unlabelled."""

    items: torch.Tensor  # input item indices
    rating_in: torch.Tensor  # rating bucket of each input interaction (0 = padding)
    hour: torch.Tensor  # hour + 1 of the interaction each position predicts (0 = padding)
    weekday: torch.Tensor  # weekday + 1 of the predicted interaction (0 = padding)
    gap: torch.Tensor  # log2 bucket of the time since the previous interaction (0 = padding)
    next_item: torch.Tensor  # the predicted item (IGNORE where unlabelled)
    rating: torch.Tensor  # its rating (float, NaN where unlabelled)
    like: torch.Tensor  # its like label (float 0/1, NaN where unlabelled)
    profile: torch.Tensor  # (B, 3) profile classes of the row's user; -1 where not a label

    def to(self, device: torch.device) -> Batch:
        """The same batch on ``device``."""
        return type(self)(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


class TaskData:
    """Per-interaction feature arrays and per-user row lists of a :class:`ProcessedData`.

    Row arrays are shifted by one so that row 0 is padding: a window of (row + 1) indices
    left-padded with zeros gathers every feature in one indexing step.
    """

    def __init__(self, data: ProcessedData, seed: int = 0) -> None:
        frame = data.interactions
        self.data = data
        self.vocab = data.vocab

        def padded(values: np.ndarray, dtype: type) -> torch.Tensor:
            return torch.from_numpy(np.concatenate([[0], values]).astype(dtype))

        self.item = padded(frame["item_idx"].to_numpy(), np.int64)
        self.rating = padded(frame["rating"].to_numpy(), np.float32)
        self.rating_bucket = padded(np.rint(frame["rating"].to_numpy() * 2), np.int64)
        self.like = padded(frame["like"].to_numpy(), np.float32)
        self.hour = padded(frame["hour"].to_numpy() + 1, np.int64)
        self.weekday = padded(frame["weekday"].to_numpy() + 1, np.int64)
        self.gap = padded(gap_buckets(frame["user_idx"].to_numpy(), frame["timestamp"].to_numpy()), np.int64)
        self.user = padded(frame["user_idx"].to_numpy(), np.int64)
        self.split_code = frame["split"].cat.codes.to_numpy()
        self.bounds = np.searchsorted(frame["user_idx"].to_numpy(), np.arange(data.n_users + 1))
        self.genres = torch.from_numpy(data.genre_matrix())
        profiles = data.users.set_index("user_idx").reindex(range(data.n_users))
        self.profiles = torch.from_numpy(
            profiles[list(PROFILE_FIELDS)].fillna(-1).to_numpy(np.int64, copy=True)
        )
        self.profile_split = profile_split(data.n_users, seed)

    @property
    def n_rating_buckets(self) -> int:
        """Rating buckets (half stars) + padding."""
        return int(self.rating_bucket.max()) + 1

    def missing_labels(self) -> dict[str, str]:
        """The tasks this dataset has no labels for, each with the reason (e.g. no user profiles in
        ml-latest-small, ml-20m and ml-25m; no genres on any item)."""
        missing = {}
        if not self.genres.any():
            missing["genre"] = "no item in this dataset has a genre"
        known = (self.profiles >= 0).any(dim=0)
        if not self.data.manifest.get("has_user_profile", True) or not bool(known.all()):
            missing["profile"] = "this dataset has no user profiles (age group, gender, occupation)"
        train_likes = self.like[1:][torch.from_numpy(self.split_code == 0)]
        if train_likes.numel() == 0 or bool((train_likes == train_likes[0]).all()):
            missing["like"] = "every training interaction has the same like label"
        return missing

    def available_tasks(self, tasks: Sequence[str]) -> tuple[tuple[str, ...], dict[str, str]]:
        """The requested tasks this dataset has labels for, and the skipped ones with the reason."""
        tasks = check_tasks(tasks)
        missing = self.missing_labels()
        skipped = {task: missing[task] for task in tasks if task in missing}
        kept = tuple(task for task in tasks if task not in skipped)
        if "next" not in kept:
            raise ValueError(f"TASKS={list(tasks)!r} has no next-item task left to train")
        return kept, skipped

    @property
    def profile_classes(self) -> tuple[int, int, int]:
        """Classes of age bucket, gender and occupation."""
        return (len(self.vocab["age_buckets"]), len(self.vocab["genders"]), len(self.vocab["occupations"]))

    def user_rows(self, user: int, through: str) -> np.ndarray:
        """The (row + 1) indices of ``user``'s interactions up to and including split ``through``."""
        rows = np.arange(self.bounds[user], self.bounds[user + 1])
        keep = self.split_code[rows] <= SPLITS.index(through)
        return rows[keep] + 1

    def train_windows(self, max_len: int) -> list[np.ndarray]:
        """Training windows of max_len + 1 interactions (row indices), every transition once."""
        rows = [self.user_rows(u, "train") for u in range(self.data.n_users)]
        return windows(rows, max_len + 1, overlap=1)

    def batch(self, row_windows: Sequence[np.ndarray], last_only: bool, profile_users: np.ndarray) -> Batch:
        """A batch: inputs are each window but its last interaction, labels the next interaction.

        ``last_only`` labels only the last position (evaluation); ``profile_users`` is a boolean
        mask over users whose profile may serve as a label.
        """
        rows = left_pad(row_windows, max(len(w) for w in row_windows))
        inputs, targets = rows[:, :-1], rows[:, 1:]
        labelled = targets != 0
        if last_only:
            labelled[:, :-1] = False
        user = self.user[rows[:, -1]]
        profile = self.profiles[user].clone()
        profile[~torch.from_numpy(profile_users)[user]] = -1
        batch = Batch(
            items=self.item[inputs],
            rating_in=self.rating_bucket[inputs],
            hour=self.hour[targets],
            weekday=self.weekday[targets],
            gap=self.gap[targets],
            next_item=torch.where(labelled, self.item[targets], IGNORE),
            rating=torch.where(labelled, self.rating[targets], torch.nan),
            like=torch.where(labelled, self.like[targets], torch.nan),
            profile=profile,
        )
        return self.extend(batch, targets)

    def extend(self, batch: Batch, targets: torch.Tensor) -> Batch:
        """Where a subclass adds inputs of the predicted interactions (the rows ``targets``, (B, L))."""
        return batch

    def validation_sample(self, limit: int, seed: int) -> np.ndarray:
        """The users validation ranks (VALID_USERS: at most ``limit``, a seeded sample beyond)."""
        return validation_users(self.data.n_users, limit, seed)

    def ranker(self, split: str) -> Ranker:
        """The ranking of ``split``'s held-out items that the model is measured by (full catalogue)."""
        return Ranker(self.data, split)

    def profile_users(self, split: str) -> np.ndarray:
        """Boolean mask of the users whose profile labels belong to ``split``."""
        return self.profile_split == SPLITS.index(split)

    def split_batch(self, users: np.ndarray, split: str, max_len: int) -> Batch:
        """Evaluation batch for ``users`` on ``valid`` or ``test``: history before it → its held-out item."""
        if split not in SPLITS[1:]:
            raise ValueError(f"split={split!r}; evaluate on 'valid' or 'test'")
        rows = [self.user_rows(int(u), split)[-(max_len + 1) :] for u in users]
        return self.batch(rows, last_only=True, profile_users=self.profile_users(split))

    def train_ratings(self, through: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(user, item, rating) of every interaction up to and including split ``through``."""
        keep = self.split_code <= SPLITS.index(through)
        return (self.user[1:].numpy()[keep], self.item[1:].numpy()[keep], self.rating[1:].numpy()[keep])

    def base_rates(self) -> tuple[float, torch.Tensor]:
        """The training split's like rate and per-genre frequency of the interacted items."""
        keep = torch.from_numpy(self.split_code == 0)
        return float(self.like[1:][keep].mean()), self.genres[self.item[1:][keep]].mean(dim=0)

    def targets(self, split: str, users: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Held-out labels of ``split`` per user: item, rating, like, genres, profile (every user in
        order, or only ``users``)."""
        keep = self.split_code == SPLITS.index(split)
        order = np.argsort(self.user[1:].numpy()[keep], kind="stable")
        items = self.item[1:].numpy()[keep][order]
        targets = {
            "item": items,
            "rating": self.rating[1:].numpy()[keep][order],
            "like": self.like[1:].numpy()[keep][order],
            "genres": self.genres.numpy()[items],
            "profile": self.profiles.numpy(),
            "profile_users": self.profile_users(split),
        }
        return targets if users is None else {name: values[users] for name, values in targets.items()}


GAP_BUCKETS = 34  # padding, first interaction, same second, then one per power of two of seconds


def gap_buckets(users: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Per interaction (sorted by user, then time): 1 for a user's first, 2 for 0 s since the
    previous one, else 3 + floor(log2(seconds)) capped — the request's recency context."""
    gap = np.diff(timestamps, prepend=timestamps[:1]).astype(np.float64)
    first = np.r_[True, users[1:] != users[:-1]]
    buckets = 3 + np.floor(np.log2(np.maximum(gap, 1)))
    buckets = np.where(gap <= 0, 2, np.minimum(buckets, GAP_BUCKETS - 1))
    return np.where(first, 1, buckets).astype(np.int64)


def profile_split(n_users: int, seed: int) -> np.ndarray:
    """Each user's profile split code (0 train, 1 valid, 2 test), a seeded 80/10/10 partition."""
    order = np.random.default_rng(seed).permutation(n_users)
    cuts = np.cumsum([int(round(share * n_users)) for share in PROFILE_SPLIT])
    codes = np.full(n_users, 2, dtype=np.int8)
    codes[order[: cuts[0]]] = 0
    codes[order[cuts[0] : cuts[1]]] = 1
    return codes
