"""Loss weights over the scenario × task grid: L = Σ_s Σ_t λ_{s,t} L_{s,t}.

Each L_{s,t} is a mean over scenario s's positions, so the fixed schemes are w_s · λ_t, with λ_t
chapter 03's task weights (1 for the next item, 03's chosen λ for each auxiliary task) and w_s, of
mean 1 over the k scenarios:

- ``proportional`` — w_s = k·n_s / N (n_s: scenario s's training positions): every position counts
  the same, which is 03's pooled loss — large scenarios dominate;
- ``uniform`` — w_s = 1: every scenario counts the same, however small;
- ``balanced`` — w_s ∝ 1 / n_s: the smaller a scenario, the more it counts;
- ``only:<scenario>`` — w = 1 for that scenario and 0 for the others (the *separate* models).

The adaptive schemes are 03's, over the s×t grid: ``uncertainty`` learns one noise level per
(s, t); ``dwa`` moves weight to the (s, t) pairs whose loss stalls. GradNorm is left out here: it
costs one extra backward pass per pair (k × tasks of them) at every update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mtrec_helpers.multitask.weighting import FixedWeights, LossWeighting, make_weighting

FIXED = ("proportional", "uniform", "balanced")
ADAPTIVE = ("uncertainty", "dwa")
WEIGHTINGS = FIXED + ADAPTIVE


def scenario_shares(scheme: str, events: Sequence[int]) -> np.ndarray:
    """w_s of a fixed ``scheme`` for scenarios with ``events`` training positions (mean 1)."""
    counts = np.maximum(np.asarray(events, dtype=np.float64), 1.0)
    raw = {"proportional": counts, "uniform": np.ones_like(counts), "balanced": 1.0 / counts}[scheme]
    return raw * len(counts) / raw.sum()


def grid_weighting(
    scheme: str,
    scenarios: Sequence[str],
    events: Sequence[int],
    task_lambdas: Mapping[str, float],
    options: Mapping[str, float] | None = None,
) -> LossWeighting:
    """The loss weighting ``scheme`` (a name of :data:`WEIGHTINGS` or ``only:<scenario>``) over the
    keys ``"<scenario>/<task>"``."""
    keys = [f"{s}/{t}" for s in scenarios for t in task_lambdas]
    if scheme in ADAPTIVE:
        return make_weighting(scheme, keys, **dict(options or {}))
    if scheme.startswith("only:"):
        shares = np.array([float(s == scheme.removeprefix("only:")) for s in scenarios])
        if not shares.any():
            raise ValueError(f"{scheme!r}: no scenario of that name; scenarios are {list(scenarios)}")
    elif scheme in FIXED:
        shares = scenario_shares(scheme, events)
    else:
        raise ValueError(f"weighting {scheme!r}: choose one of {list(WEIGHTINGS)} or only:<scenario>")
    lambdas = {f"{s}/{t}": float(w) * lam for s, w in zip(scenarios, shares, strict=True)
               for t, lam in task_lambdas.items()}  # fmt: skip
    return FixedWeights(keys, lambdas)
