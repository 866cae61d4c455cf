"""The runs of notebook 06, streaming over batches of users: two passes over the members' scores.

1. **Validation pass** (:func:`validation_pass`): ranks every member on the validation split and
   keeps the z-scores that the softmax fusion's weights are fitted on — every user's while they fit
   in ``memory_mb`` (ML-100k and ML-1M), else those of a seeded random sample of users, as many as
   fit (at ML-20M shape, a few thousand users for seven weights).
2. **Evaluation pass** (:func:`evaluation_pass`): scores each batch once, fuses it with every fitted weighting
   (softmax, uniform, each leave-one-out refit) and by reciprocal rank, and ranks members and
   ensembles on the test split.

Only one batch of (users × catalogue) scores is alive at a time besides the fitting sample, so the
memory does not grow with the number of users; with every user in the sample the numbers are the
ones a dense (users × catalogue) computation gives (tested).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mtrec_helpers.core.evaluation import Ranker, RankingResult, paired_bootstrap
from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.ensemble.fusion import FusionFit, fit_softmax_fusion, reciprocal_rank_fusion, weighted_sum
from mtrec_helpers.ensemble.scores import ScoreBatch, in_blocks, zscore

ENSEMBLES = ("ensemble_softmax", "ensemble_uniform", "ensemble_rrf")
WITHOUT = "without "  # the leave-one-out refits are ranked as "without <member>"
FUSION_MEMORY_MB = 4096


def fit_users(n_users: int, n_columns: int, n_members: int, memory_mb: float, seed: int) -> np.ndarray:
    """The validation users the softmax weights are fitted on: all of them when their z-scores (and
    the stacked copy the fit makes) fit in ``memory_mb``, else a seeded sample of as many as fit."""
    per_user = n_columns * (8 * n_members + 1)  # float32 z-scores twice, the eligible mask once
    fitting = int(memory_mb * 2**20 // per_user)
    if fitting >= n_users:
        return np.arange(n_users)
    if fitting < 1:
        raise ValueError(
            f"FUSION_MEMORY_MB={memory_mb} holds no user's scores; give at least {per_user / 2**20:.1f}"
        )
    return np.sort(np.random.default_rng(seed).choice(n_users, fitting, replace=False))


def _rank(
    rankers: dict[str, Ranker],
    batch: ScoreBatch,
    scores: Mapping[str, torch.Tensor],
    data: ProcessedData,
    split: str,
) -> None:
    """Add this batch's ranks under every score in ``scores`` (a ranker is made once per name: making
    one reads the split's targets)."""
    for name, values in scores.items():
        if name not in rankers:
            rankers[name] = Ranker(data, split)
        rankers[name].add(batch.users, batch.histories, values)


@dataclass
class ValidationPass:
    """Every member's validation ranking and the fitting sample's z-scores, eligible items and targets."""

    rankings: dict[str, RankingResult]
    users: np.ndarray
    z: dict[str, torch.Tensor]
    eligible: torch.Tensor
    targets: torch.Tensor

    def fit(self, members: list[str]) -> FusionFit:
        """Softmax fusion of ``members`` fitted on the sample's validation items."""
        return fit_softmax_fusion({m: self.z[m] for m in members}, self.eligible, self.targets)


def validation_pass(
    batches: Iterable[ScoreBatch],
    data: ProcessedData,
    score_members: list[str],
    memory_mb: float = FUSION_MEMORY_MB,
    seed: int = 0,
    ranked: np.ndarray | None = None,
) -> ValidationPass:
    """Rank every member on validation and keep the fitting sample (see the module docstring);
    ``ranked``: the users the batches hold (default: all), among whom the sample is drawn."""
    pool = np.arange(data.n_users) if ranked is None else np.asarray(ranked)
    users = pool[fit_users(len(pool), data.n_items + 2, len(score_members), memory_mb, seed)]
    rankers: dict[str, Ranker] = {}
    z: dict[str, list[torch.Tensor]] = {m: [] for m in score_members}
    eligible: list[torch.Tensor] = []
    for batch in in_blocks(batches):
        _rank(rankers, batch, batch.scores, data, "valid")
        keep = torch.from_numpy(np.isin(batch.users, users))
        if keep.any():
            eligible.append(batch.eligible[keep])
            for member in score_members:
                z[member].append(zscore(batch.scores[member][keep], eligible[-1]))
    targets = torch.from_numpy(data.targets("valid")[users].astype(np.int64))
    return ValidationPass(
        {name: ranker.result() for name, ranker in rankers.items()},
        users,
        {m: torch.cat(parts) for m, parts in z.items()},
        torch.cat(eligible),
        targets,
    )


def fit_fusions(valid: ValidationPass, score_members: list[str], leave_one_out: bool) -> dict[str, FusionFit]:
    """The softmax fusion of every score member (``ensemble_softmax``) and, if asked, its refit
    without each member in turn (``without <member>``)."""
    fits = {"ensemble_softmax": valid.fit(score_members)}
    if leave_one_out:
        for dropped in score_members:
            fits[WITHOUT + dropped] = valid.fit([m for m in score_members if m != dropped])
    return fits


def evaluation_pass(
    batches: Iterable[ScoreBatch],
    data: ProcessedData,
    score_members: list[str],
    fits: Mapping[str, FusionFit],
    rrf_depth: Mapping[str, int],
    default_depth: int = 0,
) -> dict[str, RankingResult]:
    """Rank every member, the fitted fusions, uniform averaging of the score members and rank fusion
    of every member, each for its top ``rrf_depth[member]`` (else ``default_depth``; 0: all) items, on
    the test split."""
    weightings = {name: fit.alphas for name, fit in fits.items()}
    weightings["ensemble_uniform"] = {m: 1.0 / len(score_members) for m in score_members}
    rankers: dict[str, Ranker] = {}
    for batch in in_blocks(batches):
        weight = batch.eligible.float()
        z = {m: zscore(batch.scores[m], weight) for m in score_members}
        fused = {name: weighted_sum(z, alphas) for name, alphas in weightings.items()}
        fused["ensemble_rrf"] = reciprocal_rank_fusion(
            batch.scores, batch.eligible, depth=rrf_depth, default_depth=default_depth
        )
        _rank(rankers, batch, {**batch.scores, **fused}, data, "test")
    return {name: ranker.result() for name, ranker in rankers.items()}


def leave_one_out_table(
    fits: Mapping[str, FusionFit], rankings: Mapping[str, RankingResult], n_boot: int = 2000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """For each dropped member: the refit's validation loss, its test NDCG@10, and the paired
    bootstrap difference of the full softmax fusion minus the refit (what the member adds)."""
    table = {}
    for name, fit in fits.items():
        if name.startswith(WITHOUT):
            gain = paired_bootstrap(
                rankings["ensemble_softmax"].ndcg(10), rankings[name].ndcg(10), n_boot=n_boot, seed=seed
            )
            table[name.removeprefix(WITHOUT)] = {
                "valid_loss": fit.valid_loss,
                "ndcg@10": float(rankings[name].ndcg(10).mean()),
                "ndcg@10_gain": gain.diff,
                "ndcg@10_gain_ci": list(gain.ci),
            }
    return table
