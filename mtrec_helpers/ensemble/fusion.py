"""Three ways to combine members' scores into one ranking.

- **Softmax-weighted fusion** (the course's ensemble): ŷ_u = softmax(Σ_m α_m z_m(u)) over the items
  user u can be recommended, z_m the member's per-user z-scores (:func:`.scores.zscore`). The
  weights α_m = exp(w_m) > 0 are fitted on the *validation* split by minimising the mean
  cross-entropy of every user's held-out validation item under ŷ (full batch, L-BFGS): a proper,
  smooth surrogate of the ranking metrics whose optimum is found in a few dozen steps. Their sum
  acts as a temperature and does not change rankings; their shares say how much each member counts.
- **Uniform averaging**: the mean of the z-scores, every α_m = 1/M for M members (no fitting); as
  rankings go, the same as any equal α.
- **Reciprocal-rank fusion** (Cormack et al. 2009): Σ_m 1 / (k + rank_m(i)), ranks over the
  eligible items, each member contributing for its top ``depth`` items (the paper fuses truncated
  result lists; a re-ranker that orders only its candidates contributes nothing beyond them).
  Scale-free, so no normalisation and no fitting. Truncating is what makes it cheap: one top-k per
  member instead of sorting the catalogue for every user.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

RRF_K = 60  # Cormack et al.'s constant
TOP_K_SHARE = 8  # a member's top list is found by top-k when it is shorter than 1/8 of the catalogue


@dataclass(frozen=True)
class FusionFit:
    """Fitted weights and the validation cross-entropy before (uniform averaging) and after."""

    alphas: dict[str, float]
    valid_loss: float
    uniform_loss: float
    steps: int

    @property
    def shares(self) -> dict[str, float]:
        """Each member's α as a share of their sum (the ranking depends only on these)."""
        total = sum(self.alphas.values())
        return {name: value / total for name, value in self.alphas.items()}


def weighted_sum(normalised: Mapping[str, torch.Tensor], alphas: Mapping[str, float]) -> torch.Tensor:
    """Σ_m α_m z_m over the members named in ``alphas``, summed term by term in one buffer."""
    missing = sorted(set(alphas) - set(normalised))
    if missing:
        raise KeyError(f"no scores for member(s) {', '.join(missing)}; members: {', '.join(normalised)}")
    first, *rest = alphas
    total = torch.mul(normalised[first], alphas[first])
    term = torch.empty_like(total)
    for name in rest:
        total += torch.mul(normalised[name], alphas[name], out=term)
    return total


def uniform(normalised: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The mean of the members' z-scores."""
    return weighted_sum(normalised, {name: 1.0 / len(normalised) for name in normalised})


def fusion_loss(
    stacked: torch.Tensor, log_alphas: torch.Tensor, eligible: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy of the targets under softmax(Σ_m exp(w_m) z_m) over eligible items;
    ``stacked`` is (members, users, items)."""
    logits = torch.einsum("m,muv->uv", log_alphas.exp(), stacked).masked_fill(~eligible, -torch.inf)
    return torch.nn.functional.cross_entropy(logits, targets)


def fit_softmax_fusion(
    normalised: Mapping[str, torch.Tensor],
    eligible: torch.Tensor,
    targets: torch.Tensor,
    max_steps: int = 100,
) -> FusionFit:
    """Fit α on one split's held-out items (use the validation split), starting from uniform
    averaging (every α = 1/M), whose loss is reported beside the fitted one."""
    if not normalised:
        raise ValueError("fit_softmax_fusion needs at least one member")
    names = list(normalised)
    stacked = torch.stack([normalised[name].float() for name in names])
    log_alphas = torch.full((len(names),), -math.log(len(names)), requires_grad=True)  # uniform
    optimiser = torch.optim.LBFGS([log_alphas], lr=1.0, max_iter=max_steps, line_search_fn="strong_wolfe")
    steps = 0

    def closure() -> torch.Tensor:
        nonlocal steps
        steps += 1
        optimiser.zero_grad()
        loss = fusion_loss(stacked, log_alphas, eligible, targets)
        loss.backward()
        return loss

    with torch.no_grad():
        start = float(fusion_loss(stacked, log_alphas, eligible, targets))
    optimiser.step(closure)
    with torch.no_grad():
        final = float(fusion_loss(stacked, log_alphas, eligible, targets))
    alphas = {name: float(value) for name, value in zip(names, log_alphas.detach().exp(), strict=True)}
    return FusionFit(alphas=alphas, valid_loss=final, uniform_loss=start, steps=steps)


def ranks(scores: torch.Tensor, eligible: torch.Tensor) -> torch.Tensor:
    """0-based rank of every item in its row among the eligible ones (ineligible: after them all;
    ties in item order)."""
    masked = scores.masked_fill(~eligible, -torch.inf)
    order = torch.argsort(masked, dim=1, descending=True, stable=True)
    result = torch.empty_like(order)
    result.scatter_(1, order, torch.arange(scores.shape[1]).expand_as(order).contiguous())
    return result


def top_ranks(scores: torch.Tensor, eligible: torch.Tensor, depth: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``depth`` best eligible items of each row (B, depth) and their 0-based ranks, exactly those
    :func:`ranks` gives them (ties in item order), without sorting the catalogue: one top-k, then a
    sort of its ``depth`` items by score and item. Top-k picks arbitrarily among items tied at its
    last score; only rows where some of those fall outside it are chosen again (:func:`_tied_head`)."""
    masked = scores.masked_fill(~eligible, -torch.inf)
    depth = min(depth, scores.shape[1])
    values, items = torch.topk(masked, depth, dim=1)
    threshold = values[:, -1:]
    tied = (masked == threshold).sum(1, dtype=torch.int32)  # an int32 count: 5x faster than int64 on CPU
    cut = (tied > (values == threshold).sum(1, dtype=torch.int32)).nonzero()[:, 0]
    if len(cut):
        items[cut] = _tied_head(masked[cut], threshold[cut], depth)
        values[cut] = masked[cut].gather(1, items[cut])
    items, by_item = items.sort(1)
    order = torch.sort(values.gather(1, by_item), dim=1, descending=True, stable=True).indices
    return items.gather(1, order), torch.arange(depth).expand_as(items)


def _tied_head(masked: torch.Tensor, threshold: torch.Tensor, depth: int) -> torch.Tensor:
    """(B, depth) the items above ``threshold`` and, of those tied at it, the lowest-indexed that fit."""
    above = masked > threshold
    tied = masked == threshold
    room = depth - above.sum(1, keepdim=True)
    chosen = above | (tied & (tied.cumsum(1) <= room))
    return chosen.nonzero()[:, 1].view(len(masked), depth)  # row-major: ascending item order per row


def reciprocal_rank_fusion(
    scores: Mapping[str, torch.Tensor],
    eligible: torch.Tensor,
    k: float = RRF_K,
    depth: Mapping[str, int] | None = None,
    default_depth: int = 0,
) -> torch.Tensor:
    """Σ_m 1/(k + 1 + rank_m) over eligible items (1-based ranks as in the paper); a member with a
    ``depth`` (else ``default_depth``, 0: the whole catalogue) contributes only for its top that many
    items, found without sorting the catalogue (:func:`top_ranks`)."""
    depth = depth or {}
    fused = torch.zeros(eligible.shape)
    for name, member in scores.items():
        limit = depth.get(name, default_depth)
        if limit and limit * TOP_K_SHARE < member.shape[1]:
            items, rank = top_ranks(member, eligible, limit)
            contribution = (1.0 / (k + 1.0 + rank.float())).masked_fill(~eligible.gather(1, items), 0.0)
            fused.scatter_add_(1, items, contribution)
        else:  # a list this deep is cheaper to sort whole; the same contributions
            rank = ranks(member, eligible)
            contribution = 1.0 / (k + 1.0 + rank.float())
            if limit:
                contribution = contribution.masked_fill(rank >= limit, 0.0)
            fused += contribution.masked_fill(~eligible, 0.0)
    return fused
