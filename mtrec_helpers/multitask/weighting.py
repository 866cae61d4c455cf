"""Four ways to weight task losses behind one small interface.

Every strategy turns a dict of per-task losses into the one scalar to backpropagate:

    total = weighting.combine(losses, shared)   # shared: parameters every task flows through
    total.backward()
    weighting.end_epoch(mean_losses)            # strategies that adapt per epoch (DWA)

- :class:`FixedWeights` — L = Σ λ_t L_t. A tuned fixed sum is a strong reference: replication
  studies find it matches most adaptive methods.
- :class:`UncertaintyWeighting` — Kendall, Gal & Cipolla (2018): L = Σ ½·exp(−s_t)·L_t + ½·s_t with
  a learned s_t = log σ_t²; at the optimum exp(s_t) equals the task's loss, so noisy tasks count less.
- :class:`GradNorm` — Chen et al. (2018): learned weights w_t pushed so that each task's gradient
  norm on the shared parameters approaches the mean norm times (relative inverse training rate)^α.
- :class:`DynamicWeightAverage` — Liu, Johns & Davison (2019): w_t ∝ exp(r_t / T) with r_t the ratio
  of the task's last two epoch losses, so tasks whose loss stalls get more weight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

Losses = Mapping[str, torch.Tensor]


class LossWeighting(nn.Module):
    """Base class: tasks in a fixed order, a ``combine`` step and an optional per-epoch update."""

    def __init__(self, tasks: Sequence[str]) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("at least one task is needed")
        self.tasks = list(tasks)

    def _stack(self, losses: Losses) -> torch.Tensor:
        """The losses as a vector in task order; a missing or extra task is an error."""
        if set(losses) != set(self.tasks):
            raise ValueError(
                f"losses for {sorted(losses)} but the weighting was built for {sorted(self.tasks)}"
            )
        return torch.stack([losses[task] for task in self.tasks])

    def combine(self, losses: Losses, shared: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """The scalar to backpropagate."""
        raise NotImplementedError

    def weights(self) -> dict[str, float]:
        """The current effective weight of each task (for logging and plots)."""
        raise NotImplementedError

    def end_epoch(self, epoch_losses: Mapping[str, float]) -> None:
        """Per-epoch update from the epoch's mean task losses (no-op unless a strategy needs it)."""

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters the model's optimiser should train with the model (e.g. learned log-variances)."""
        return list(self.parameters())

    def extra_state(self) -> dict[str, Any]:
        """JSON-ready state beyond the module's parameters and buffers (kept across a resume)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`extra_state` returned."""


class FixedWeights(LossWeighting):
    """L = Σ λ_t L_t with constant λ."""

    def __init__(self, tasks: Sequence[str], lambdas: Mapping[str, float] | None = None) -> None:
        super().__init__(tasks)
        lambdas = lambdas or {}
        unknown = sorted(set(lambdas) - set(self.tasks))
        if unknown:
            raise ValueError(f"weights given for unknown tasks {unknown}; tasks are {self.tasks}")
        self.register_buffer("lambdas", torch.tensor([float(lambdas.get(t, 1.0)) for t in self.tasks]))

    def combine(self, losses: Losses, shared: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        return (self.lambdas * self._stack(losses)).sum()

    def weights(self) -> dict[str, float]:
        return dict(zip(self.tasks, self.lambdas.tolist(), strict=True))


class UncertaintyWeighting(LossWeighting):
    """Kendall et al. (2018): L = Σ ½·exp(−s_t)·L_t + ½·s_t, with s_t = log σ_t² learned."""

    def __init__(self, tasks: Sequence[str]) -> None:
        super().__init__(tasks)
        self.log_variance = nn.Parameter(torch.zeros(len(self.tasks)))

    def combine(self, losses: Losses, shared: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        precision = torch.exp(-self.log_variance)
        return (0.5 * precision * self._stack(losses) + 0.5 * self.log_variance).sum()

    def weights(self) -> dict[str, float]:
        return dict(zip(self.tasks, (0.5 * torch.exp(-self.log_variance.detach())).tolist(), strict=True))


def mean_over_processes(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` averaged over the processes of a distributed run (itself on one process)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return tensor
    tensor = tensor.clone()
    torch.distributed.all_reduce(tensor)
    return tensor / torch.distributed.get_world_size()


class GradNorm(LossWeighting):
    """Chen et al. (2018): weights trained so per-task gradient norms on ``shared`` meet their targets.

    Target for task t: mean_j G_j · (r_t)^α, with r_t = (L_t / L_t(0)) / mean_j (L_j / L_j(0)).
    The weights take one step of their own optimiser per ``combine`` (or every ``every`` calls:
    each update costs one extra backward pass per task) and are renormalised to sum to the number
    of tasks; the model's loss is Σ w_t L_t with the weights held fixed.
    """

    def __init__(self, tasks: Sequence[str], alpha: float = 1.5, lr: float = 0.025, every: int = 1) -> None:
        super().__init__(tasks)
        if every < 1:
            raise ValueError(f"GradNorm every={every}: update the weights every 1 or more steps")
        self.alpha = alpha
        self.every = every
        self.calls = 0
        self.task_weights = nn.Parameter(torch.ones(len(self.tasks)))
        self.register_buffer("initial_losses", torch.zeros(len(self.tasks)))
        self.optimizer = torch.optim.Adam([self.task_weights], lr=lr)
        self.last_norms: torch.Tensor | None = None

    def combine(self, losses: Losses, shared: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        if not shared:
            raise ValueError("GradNorm needs the shared parameters whose gradients it balances")
        stacked = self._stack(losses)
        if not bool(self.initial_losses.any()):
            self.initial_losses.copy_(mean_over_processes(stacked.detach()))
        self.calls += 1
        if (self.calls - 1) % self.every:
            return (self.task_weights.detach() * stacked).sum()
        norms = torch.stack(
            [
                torch.cat(
                    [
                        g.flatten()
                        for g in torch.autograd.grad(w * loss, shared, retain_graph=True, create_graph=True)
                    ]
                ).norm()
                for w, loss in zip(self.task_weights, stacked, strict=True)
            ]
        )
        ratios = stacked.detach() / self.initial_losses
        targets = (norms.mean() * (ratios / ratios.mean()) ** self.alpha).detach()
        balance = (norms - targets).abs().sum()
        self.optimizer.zero_grad(set_to_none=True)
        grad = torch.autograd.grad(balance, self.task_weights, retain_graph=True)[0]
        self.task_weights.grad = mean_over_processes(grad)  # every process keeps the same weights
        self.optimizer.step()
        with torch.no_grad():
            self.task_weights.clamp_(min=1e-3)
            self.task_weights.mul_(len(self.tasks) / self.task_weights.sum())
        self.last_norms = norms.detach()
        return (self.task_weights.detach() * stacked).sum()

    def weights(self) -> dict[str, float]:
        return dict(zip(self.tasks, self.task_weights.detach().tolist(), strict=True))

    def trainable_parameters(self) -> list[nn.Parameter]:
        return []  # the weights have their own optimiser, stepped inside combine

    def extra_state(self) -> dict[str, Any]:
        saved = self.optimizer.state_dict()
        moments = {str(k): {n: v.tolist() for n, v in s.items()} for k, s in saved["state"].items()}
        return {"calls": self.calls, "optimizer": {"state": moments, "param_groups": saved["param_groups"]}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.calls = state["calls"]
        moments = {
            int(k): {n: torch.tensor(v) for n, v in s.items()} for k, s in state["optimizer"]["state"].items()
        }
        self.optimizer.load_state_dict({"state": moments, "param_groups": state["optimizer"]["param_groups"]})


class DynamicWeightAverage(LossWeighting):
    """Liu et al. (2019): w_t = K·softmax(r / T)_t, r_t = L_t(epoch − 1) / L_t(epoch − 2); 1 at first."""

    def __init__(self, tasks: Sequence[str], temperature: float = 2.0) -> None:
        super().__init__(tasks)
        self.temperature = temperature
        self.history: list[torch.Tensor] = []
        self.register_buffer("current", torch.ones(len(self.tasks)))

    def combine(self, losses: Losses, shared: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        return (self.current * self._stack(losses)).sum()

    def end_epoch(self, epoch_losses: Mapping[str, float]) -> None:
        self.history.append(torch.tensor([float(epoch_losses[t]) for t in self.tasks]))
        if len(self.history) >= 2:
            rates = self.history[-1] / self.history[-2]
            weights = len(self.tasks) * torch.softmax(rates / self.temperature, dim=0)
            self.current.copy_(weights)  # in place: the buffer stays on the model's device

    def weights(self) -> dict[str, float]:
        return dict(zip(self.tasks, self.current.tolist(), strict=True))

    def extra_state(self) -> dict[str, Any]:
        return {"history": [losses.tolist() for losses in self.history]}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.history = [torch.tensor(losses) for losses in state["history"]]


STRATEGIES = {
    "fixed": FixedWeights,
    "uncertainty": UncertaintyWeighting,
    "gradnorm": GradNorm,
    "dwa": DynamicWeightAverage,
}


def make_weighting(name: str, tasks: Sequence[str], **options: object) -> LossWeighting:
    """A weighting strategy by name: fixed, uncertainty, gradnorm or dwa."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown weighting {name!r}; choose one of {sorted(STRATEGIES)}")
    return STRATEGIES[name](tasks, **options)
