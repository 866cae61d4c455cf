"""Each loss-weighting strategy checked against its definition on toy problems."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtrec_helpers.multitask.weighting import (
    DynamicWeightAverage,
    FixedWeights,
    GradNorm,
    UncertaintyWeighting,
    make_weighting,
)

TASKS = ["next", "rating"]


def test_fixed_weights_are_a_weighted_sum() -> None:
    weighting = FixedWeights(TASKS, {"rating": 0.25})
    total = weighting.combine({"next": torch.tensor(2.0), "rating": torch.tensor(4.0)})
    assert total.item() == pytest.approx(2.0 + 0.25 * 4.0)
    assert weighting.weights() == {"next": 1.0, "rating": 0.25}
    with pytest.raises(ValueError, match="unknown tasks"):
        FixedWeights(TASKS, {"genre": 1.0})
    with pytest.raises(ValueError, match="built for"):
        weighting.combine({"next": torch.tensor(1.0)})


def test_uncertainty_weights_approach_inverse_noise_variances() -> None:
    """Two regressions on the same inputs with noise variances 0.25 and 4: the learned σ_t² match."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 3, generator=generator)
    noise = {"next": 0.5, "rating": 2.0}
    targets = {
        "next": x @ torch.tensor([1.0, -2.0, 0.5]) + noise["next"] * torch.randn(4000, generator=generator),
        "rating": x @ torch.tensor([0.3, 1.0, -1.0])
        + noise["rating"] * torch.randn(4000, generator=generator),
    }
    torch.manual_seed(0)
    heads = nn.ModuleDict({task: nn.Linear(3, 1) for task in TASKS})
    weighting = UncertaintyWeighting(TASKS)
    optimizer = torch.optim.Adam([*heads.parameters(), *weighting.parameters()], lr=0.05)
    for _ in range(600):
        losses = {task: ((heads[task](x).squeeze(1) - targets[task]) ** 2).mean() for task in TASKS}
        optimizer.zero_grad()
        weighting.combine(losses).backward()
        optimizer.step()
    variances = torch.exp(weighting.log_variance.detach())
    assert variances[0].item() == pytest.approx(noise["next"] ** 2, rel=0.15)
    assert variances[1].item() == pytest.approx(noise["rating"] ** 2, rel=0.15)
    assert weighting.weights()["next"] > 10 * weighting.weights()["rating"]  # ∝ 1/σ²: 16 times


def test_gradnorm_moves_gradient_norms_towards_their_targets() -> None:
    """With α = 0 the targets are equal norms; a task whose loss is 100× larger starts far off."""
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    shared = nn.Linear(8, 8)
    heads = nn.ModuleDict({task: nn.Linear(8, 1) for task in TASKS})
    weighting = GradNorm(TASKS, alpha=0.0, lr=0.05)
    optimizer = torch.optim.SGD([*shared.parameters(), *heads.parameters()], lr=1e-3)
    ratios = []
    for _ in range(150):
        hidden = torch.relu(shared(x))
        losses = {
            "next": heads["next"](hidden).pow(2).mean(),
            "rating": 100 * heads["rating"](hidden).pow(2).mean(),
        }
        total = weighting.combine(losses, [shared.weight])
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        norms = weighting.last_norms
        ratios.append(float(torch.max(norms) / torch.min(norms)))
    assert ratios[0] > 10
    assert ratios[-1] < 1.5
    assert sum(weighting.weights().values()) == pytest.approx(len(TASKS))
    assert weighting.weights()["next"] > weighting.weights()["rating"]
    with pytest.raises(ValueError, match="shared parameters"):
        weighting.combine(losses)


def test_dynamic_weight_average_favours_the_stalling_task() -> None:
    weighting = DynamicWeightAverage(TASKS, temperature=2.0)
    buffer = weighting.current
    losses = {"next": torch.tensor(1.0), "rating": torch.tensor(1.0)}
    assert weighting.weights() == {"next": 1.0, "rating": 1.0}
    weighting.end_epoch({"next": 1.0, "rating": 1.0})
    assert weighting.weights() == {"next": 1.0, "rating": 1.0}  # needs two epochs of history
    weighting.end_epoch({"next": 0.5, "rating": 1.0})
    weights = weighting.weights()
    expected = torch.softmax(torch.tensor([0.5, 1.0]) / 2.0, dim=0) * 2
    assert weights["next"] == pytest.approx(expected[0].item())
    assert weights["rating"] > weights["next"] and sum(weights.values()) == pytest.approx(2.0)
    assert weighting.combine(losses).item() == pytest.approx(2.0)
    # updated in place, so weights moved to a GPU with the model stay there (a new CPU tensor broke CUDA runs)
    assert weighting.current is buffer and "current" in dict(weighting.named_buffers())


def test_make_weighting() -> None:
    assert isinstance(make_weighting("dwa", TASKS, temperature=1.0), DynamicWeightAverage)
    with pytest.raises(ValueError, match="unknown weighting 'pcgrad'"):
        make_weighting("pcgrad", TASKS)
