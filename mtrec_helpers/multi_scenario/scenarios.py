"""Scenarios: named partitions of the interactions, and the task data that carries them.

A *scenario* is the setting a recommendation is asked in. Each definition gives every interaction
one scenario, known at the moment of the request:

- ``domain`` — the genre family of the item the user goes on to choose: one page of a multi-domain
  service (the family page they are on), ranked within that family's catalogue. Every release has
  genres, so this works everywhere (the default).
- ``user_group`` — the user's age group where the release has profiles (ML-100k, ML-1M), else the
  user's activity on the training split (terciles of training interactions: light, medium, heavy).
  Same catalogue, different populations: the setting STAR was built for.
- ``time`` — weekday or weekend (UTC) of the interaction: a weak context, the negative control.

A scenario with fewer than ``min_users`` held-out users (test) is merged into its smaller neighbour
in the definition's order (age groups and activity levels are ordered, families by the table below)
until every scenario has enough, and the merge is reported; one scenario left is allowed (nothing to
compare, said so), never an error or a NaN.

To add a definition: write a function ``(data) -> (codes per interaction, names)`` and put it in
:data:`DEFINITIONS`; everything downstream (models, weights, tables) reads only the codes and names.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mtrec_helpers.core.evaluation import Ranker
from mtrec_helpers.core.protocol import SPLITS
from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.multitask.tasks import Batch, TaskData

FAMILIES: dict[str, tuple[str, ...]] = {
    "family": ("Animation", "Children's", "Children", "Musical", "Fantasy"),
    "action": ("Action", "Adventure", "Sci-Fi", "War", "Western"),
    "dark": ("Thriller", "Horror", "Crime", "Mystery", "Film-Noir"),
    "comedy": ("Comedy", "Romance"),
    "drama": ("Drama", "Documentary", "IMAX"),
    "other": ("unknown", "(no genres listed)"),
}
"""MovieLens genres → families, in priority order: an item belongs to the first family one of its
genres is in (a children's adventure is ``family``, a romantic drama ``comedy``). A genre outside
the table (e.g. a synthetic release's) is a family of its own, before ``other``, which also takes the
items without genres."""

AGE_GROUPS = {"under 25": ("Under 18", "18-24"), "25-34": ("25-34",), "35-44": ("35-44",),
              "45+": ("45-49", "50-55", "56+")}  # fmt: skip
"""MovieLens age buckets → the four groups of ``user_group``."""

ACTIVITY = ("light", "medium", "heavy")


def genre_families(data: ProcessedData) -> tuple[np.ndarray, list[str]]:
    """Each item index's family code (PAD and MASK: 0, unused) and the family names (code = position)."""
    genres = data.vocab["genres"]
    family_of = {g: f for f, members in FAMILIES.items() for g in members}
    names = [f for f in FAMILIES if f != "other" and any(family_of.get(g) == f for g in genres)]
    names += [g for g in genres if g not in family_of] + ["other"]
    codes = np.zeros(data.n_items + 2, dtype=np.int64)
    for index, item_genres in zip(data.items["item_idx"], data.items["genres"], strict=True):
        families = [names.index(family_of.get(g, g)) for g in item_genres]
        codes[index] = min(families) if families else names.index("other")
    return codes, names


def domain(data: ProcessedData) -> tuple[np.ndarray, list[str]]:
    """The chosen item's genre family."""
    families, names = genre_families(data)
    return families[data.interactions["item_idx"].to_numpy()], names


def user_group(data: ProcessedData) -> tuple[np.ndarray, list[str]]:
    """Age group with profiles, else activity tercile on the training split."""
    users = data.interactions["user_idx"].to_numpy()
    ages = data.users.set_index("user_idx").reindex(range(data.n_users))["age_bucket"]
    if data.manifest.get("has_user_profile", True) and ages.notna().all():
        group_of = {bucket: k for k, buckets in enumerate(AGE_GROUPS.values()) for bucket in buckets}
        return ages.map(group_of).to_numpy(np.int64)[users], list(AGE_GROUPS)
    train = data.interactions["split"].to_numpy() == "train"
    counts = np.bincount(users[train], minlength=data.n_users)
    cuts = np.quantile(counts, [1 / 3, 2 / 3])
    return np.searchsorted(cuts, counts, side="right")[users].astype(np.int64), list(ACTIVITY)


def time(data: ProcessedData) -> tuple[np.ndarray, list[str]]:
    """Weekday (Monday–Friday) or weekend, UTC."""
    return (data.interactions["weekday"].to_numpy() >= 5).astype(np.int64), ["weekday", "weekend"]


DEFINITIONS: dict[str, Callable[[ProcessedData], tuple[np.ndarray, list[str]]]] = {
    "domain": domain,
    "user_group": user_group,
    "time": time,
}


@dataclass(frozen=True)
class Scenarios:
    """A definition applied to a dataset: each interaction's code (1..k; 0 is padding) and the names."""

    definition: str
    codes: np.ndarray  # per interaction (rows of data.interactions), 1..k
    names: list[str]
    merged: dict[str, list[str]]  # a merged scenario's name → the definition's scenarios in it
    item_codes: np.ndarray | None  # ``domain``: each item's scenario (its catalogue), else None

    @property
    def k(self) -> int:
        """The number of scenarios."""
        return len(self.names)


def merge_small(
    codes: np.ndarray, names: list[str], held_out: np.ndarray, min_users: int
) -> tuple[np.ndarray, list[str], dict[str, list[str]]]:
    """Merge the scenario with the fewest held-out users, while it has fewer than ``min_users``, into
    its smaller neighbour (in the definition's order) until none is below or one is left. Scenarios
    without any interaction are dropped. Returns codes 0..k-1, the names ("a+b" when merged), the merges."""
    groups = [[n] for k, n in enumerate(names) if (codes == k).any()]
    group_of = {n: g for g, members in enumerate(groups) for n in members}
    mapping = np.array([group_of.get(n, -1) for n in names])
    while len(groups) > 1:
        sizes = np.bincount(mapping[held_out], minlength=len(groups))
        worst = int(np.argmin(sizes))
        if sizes[worst] >= min_users:
            break
        neighbours = [g for g in (worst - 1, worst + 1) if 0 <= g < len(groups)]
        into = min(neighbours, key=lambda g: sizes[g])
        pair = sorted([worst, into])
        groups[pair[0]] = groups[pair[0]] + groups.pop(pair[1])  # definition order kept
        mapping = np.where(mapping == pair[1], pair[0], mapping)
        mapping = np.where(mapping > pair[1], mapping - 1, mapping)
    merged = {"+".join(g): g for g in groups if len(g) > 1}
    return mapping[codes], ["+".join(g) for g in groups], merged


def define_scenarios(data: ProcessedData, definition: str, min_users: int) -> Scenarios:
    """``definition`` (a key of :data:`DEFINITIONS`) on ``data``, scenarios with fewer than
    ``min_users`` test users merged."""
    if definition not in DEFINITIONS:
        raise ValueError(f"SCENARIOS={definition!r}: choose one of {sorted(DEFINITIONS)}")
    codes, names = DEFINITIONS[definition](data)
    test = data.interactions["split"].to_numpy() == "test"
    family_codes = codes
    codes, kept, merged = merge_small(codes, names, codes[test], min_users)
    item_codes = None
    if definition == "domain":  # each item's catalogue: the (merged) scenario of its family
        families, _ = genre_families(data)
        lookup = np.full(len(names), -1, dtype=np.int64)
        lookup[family_codes] = codes
        item_codes = lookup[families] + 1
        item_codes[[0, -1]] = 0  # PAD and MASK are in no catalogue
    return Scenarios(definition, codes + 1, kept, merged, item_codes)


@dataclass
class ScenarioBatch(Batch):
    """A :class:`Batch` plus the scenario (1..k, 0 = padding) of the interaction each position predicts."""

    scenario: torch.Tensor


class ScenarioData(TaskData):
    """03's task data with each interaction's scenario; ranked within the scenario's catalogue when the
    definition has catalogues (``domain``). :meth:`focus` restricts validation to one scenario."""

    def __init__(self, data: ProcessedData, scenarios: Scenarios, seed: int = 0) -> None:
        super().__init__(data, seed)
        self.scenarios = scenarios
        self.scenario = torch.from_numpy(np.concatenate([[0], scenarios.codes]).astype(np.int64))
        self.focused: int | None = None  # a scenario code: validation selects on its users alone

    def extend(self, batch: Batch, targets: torch.Tensor) -> ScenarioBatch:
        return ScenarioBatch(**vars(batch), scenario=self.scenario[targets])

    def held_out(self, split: str) -> np.ndarray:
        """Each user's scenario code of their held-out ``split`` interaction (user order)."""
        keep = self.split_code == SPLITS.index(split)
        order = np.argsort(self.user[1:].numpy()[keep], kind="stable")
        return self.scenario[1:].numpy()[keep][order]

    def ranker(self, split: str) -> Ranker:
        if self.scenarios.item_codes is None:
            return Ranker(self.data, split)
        return CatalogueRanker(self.data, split, self.held_out(split), self.scenarios.item_codes)

    def train_windows(self, max_len: int) -> list[np.ndarray]:
        """03's training windows; when focused, only those predicting some interaction of the scenario
        (the others would add nothing but time)."""
        windows = super().train_windows(max_len)
        if self.focused is None:
            return windows
        codes = self.scenario.numpy()
        return [w for w in windows if (codes[w[1:]] == self.focused).any()]

    def validation_sample(self, limit: int, seed: int) -> np.ndarray:
        sample = super().validation_sample(limit, seed)
        if self.focused is None:
            return sample
        return sample[self.held_out("valid")[sample] == self.focused]

    def focus(self, code: int | None) -> ScenarioData:
        """The same data whose validation selects on the users of scenario ``code`` (None: all)."""
        view = copy.copy(self)
        view.focused = code
        return view


class CatalogueRanker(Ranker):
    """Ranks each user's held-out item among the items of the user's held-out scenario only."""

    def __init__(
        self, data: ProcessedData, split: str, user_codes: np.ndarray, item_codes: np.ndarray
    ) -> None:
        super().__init__(data, split)
        self.user_codes = torch.from_numpy(np.asarray(user_codes, dtype=np.int64))
        self.item_codes = torch.from_numpy(np.asarray(item_codes, dtype=np.int64))

    def add(self, users: np.ndarray, histories: list[np.ndarray], scores: torch.Tensor) -> None:
        codes = self.user_codes[users].to(scores.device)
        outside = self.item_codes.to(scores.device)[None, :] != codes[:, None]
        super().add(users, histories, scores.masked_fill(outside, float("-inf")))
