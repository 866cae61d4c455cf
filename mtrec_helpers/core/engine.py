"""One training engine for every stage that trains, on Hugging Face Accelerate.

A stage supplies an :class:`Objective` — how one epoch is cut into batches, the loss of one batch
and the validation record — and :func:`fit` does the rest, the same way for every stage:

- ``Accelerator`` places the model, runs bf16 autocast on CUDA (fp32 on the CPU, so CPU runs stay
  exact), accumulates gradients and wraps the model for distributed data parallel when the script
  runs under a launcher (``accelerate launch``, ``torchrun``, ``notebook_launcher``);
- AdamW, linear warm-up then cosine decay, gradient clipping;
- after every epoch: the validation record, early stopping on its ``score``, a copy of the best
  weights, and a checkpoint written atomically — ``accelerator.save_state`` (weights in
  safetensors; optimizer and random states read back with ``weights_only=True``) plus the engine's
  own state as JSON and tensors as safetensors. Nothing that is read back unpickles arbitrary
  objects. Calling :func:`fit` again with the same arguments continues from the checkpoint, and a
  finished run is returned without training again;
- dropout on the CPU draws its masks from uniform numbers, a quarter of the cost of torch's
  (:mod:`mtrec_helpers.core.dropout`; ``MTREC_DROPOUT=torch`` keeps torch's, and its checkpoints).

With N processes every process draws the same batches (one seeded generator) and trains on its
``1/N`` share of each, so the global batch is the same as on one process; random draws inside a
loss (BERT4Rec's masks) come from a second generator per process.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import gather_object
from accelerate.utils import load as accelerate_load
from accelerate.utils.constants import RNG_STATE_NAME
from safetensors.torch import load_file, save_file

from mtrec_helpers.core.atomic import atomic_directory
from mtrec_helpers.core.dropout import dropout_mode, use_mask_dropout
from mtrec_helpers.core.memory import reusing_heap
from mtrec_helpers.core.progress import LoopProgress
from mtrec_helpers.core.stages import ArtifactError, damaged_artifact

CHECKPOINT, STATE, TENSORS = "checkpoint", "engine.json", "engine.safetensors"
TRIM_STEPS = 10  # on large catalogues, free heap goes back to the system every this many steps


class _TiedWeightsNote(logging.Filter):
    """Drop Accelerate's note that tied tensors (item embeddings = output layer) are saved once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Removed shared tensor" not in record.getMessage()


logging.getLogger("accelerate.utils.other").addFilter(_TiedWeightsNote())


@dataclass(frozen=True)
class EngineConfig:
    """The optimisation settings every stage shares, named in one place. The first five are notebook
    parameters (``EPOCHS``, ``LR``, ``PATIENCE``, ``SEED``, ``MAX_STEPS``: a chapter's settings build
    them, :mod:`mtrec_helpers.core.settings`); the rest are the engine's own constants, which a
    chapter may change for all its runs (03 warms up over 10% of the steps)."""

    epochs: int
    lr: float
    patience: int  # epochs without a better validation score before stopping
    seed: int
    max_batches: int  # 0: every batch of an epoch; N: only the first N (a step budget, e.g. benchmarks)
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    clip_norm: float = 1.0
    accumulation: int = 1  # batches whose gradients add up before one optimizer step
    schedule: str = "cosine"  # linear warm-up then cosine decay; "constant": a fixed learning rate
    select_best: bool = True  # validate every epoch, stop early, keep the best; False: keep the last


def warmup_cosine(step: int, *, warmup: int, total: int) -> float:
    """The learning-rate factor at ``step``: linear warm-up from 0 over ``warmup`` steps, then half a
    cosine down to 0 at ``total`` — transformers' ``get_cosine_schedule_with_warmup``, step for step
    (a test compares them; importing transformers' optimization module also imports peft, seconds
    for every notebook)."""
    if step < warmup:
        return float(step) / float(max(1, warmup))
    progress = float(step - warmup) / float(max(1, total - warmup))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))


def _one(step: int) -> float:
    """A constant learning rate."""
    return 1.0


class Objective:
    """What a stage supplies: its batches, its loss and its validation record (and, if it adapts
    between epochs, what it logs and keeps across a resume)."""

    def batches(self, generator: torch.Generator) -> Sequence[np.ndarray]:
        """One epoch's batches of example indices, drawn with ``generator`` (the same on every process)."""
        raise NotImplementedError

    def loss(
        self, call: Callable[..., Any], indices: np.ndarray, generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss to minimise on these examples, computed through ``call("method", *args)`` (the
        model's method, under DDP when distributed); random draws such as masks come from this
        process's ``generator``. Returns the loss and the parts to log."""
        raise NotImplementedError

    def validate(self, model: torch.nn.Module, accelerator: Accelerator) -> dict[str, float]:
        """The validation record; its ``score`` is maximised by early stopping."""
        raise NotImplementedError

    def end_epoch(self, sums: dict[str, float]) -> dict[str, float]:
        """Called with the epoch's mean logged losses; returns more to log (e.g. task weights)."""
        return {}

    def state(self) -> dict[str, Any]:
        """JSON-ready state that a resumed run needs beyond the weights (e.g. loss histories)."""
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state` returned."""


@dataclass
class FitResult:
    """How training went; the model passed to :func:`fit` holds the best epoch's weights."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = -np.inf
    train_seconds: float = 0.0
    examples_seen: int = 0
    resumed_from_epoch: int = 0
    stopped_early: bool = False

    @property
    def examples_per_s(self) -> float:
        """Training throughput (examples of the objective per second of training)."""
        return self.examples_seen / max(self.train_seconds, 1e-9)


class Forward(torch.nn.Module):
    """Routes a named method of ``model`` through ``forward``: distributed data parallel syncs the
    gradients of computations that pass through the wrapped module's ``forward`` only."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.model, method)(*args, **kwargs)


@functools.cache
def accelerator_for(device: str) -> Accelerator:
    """The process's one Accelerator for ``device`` ('cpu', 'cuda', 'cuda:N'): bf16 on CUDA."""
    cuda = torch.device(device).type == "cuda"
    return Accelerator(
        cpu=not cuda,
        mixed_precision="bf16" if cuda else "no",
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


def shard(indices: np.ndarray, accelerator: Accelerator) -> np.ndarray:
    """This process's share of a global batch (every process sees the same global batch)."""
    return indices[accelerator.process_index :: accelerator.num_processes]


def gather_rows(part: np.ndarray, accelerator: Accelerator) -> np.ndarray:
    """Every process's rows of a per-user array, in process order (exact: nothing duplicated)."""
    if accelerator.num_processes == 1:
        return part
    return np.concatenate(gather_object([part]))


def run_key(settings: Any, *modules: torch.nn.Module | torch.Tensor) -> str:
    """A fingerprint of a run: its settings (JSON) and the starting values of ``modules``."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for module in modules:
        tensors = module.state_dict().values() if isinstance(module, torch.nn.Module) else [module]
        for tensor in tensors:
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


@dataclass
class _Run:
    """Everything one call of :func:`fit` trains with."""

    wrapped: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator  # batch order, the same on every process
    draws: torch.Generator  # random draws inside losses, one per process
    trained: list[torch.nn.Parameter]


def _epoch_batches(
    objective: Objective, generator: torch.Generator, max_batches: int
) -> Sequence[np.ndarray]:
    """The objective's batches for one epoch, the first ``max_batches`` of them if that is set."""
    batches = objective.batches(generator)
    return batches[:max_batches] if max_batches > 0 else batches


def _train_epoch(
    run: _Run, objective: Objective, accelerator: Accelerator, config: EngineConfig
) -> tuple[dict[str, float], int]:
    """One pass over the objective's batches; returns the mean of each logged part and the number
    of examples (over all processes)."""
    sums: dict[str, float] = {}
    batches = _epoch_batches(objective, run.generator, config.max_batches)
    run.wrapped.train()
    for indices in reusing_heap(batches, TRIM_STEPS):
        with accelerator.accumulate(run.wrapped):
            with accelerator.autocast():
                loss, parts = objective.loss(run.wrapped, shard(indices, accelerator), run.draws)
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(run.trained, config.clip_norm)
            run.optimizer.step()
            if accelerator.sync_gradients:
                run.scheduler.step()
            run.optimizer.zero_grad(set_to_none=True)
        for name, value in parts.items():
            sums[name] = sums.get(name, 0.0) + value / len(batches)
    return _mean_across(sums, accelerator), sum(len(b) for b in batches)


def fit(
    model: torch.nn.Module,
    param_groups: list[dict[str, Any]],
    objective: Objective,
    config: EngineConfig,
    accelerator: Accelerator,
    run_dir: Path | None = None,
    key: str = "",
    label: str = "training",
    progress: bool = True,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    generator: torch.Generator | None = None,
) -> FitResult:
    """Train ``model``'s ``param_groups`` on ``objective``; resume from ``run_dir`` when it holds a
    checkpoint of the same ``key`` (a fingerprint of everything that defines the run). Seed the
    global random state before building ``model`` (dropout continues from it); ``generator``, if
    given, carries the batch order on from an earlier phase."""
    accelerator.free_memory()  # forget the models and optimizers of earlier fits (one per checkpoint)
    use_mask_dropout(model)  # dropout masks from uniform draws on the CPU (MTREC_DROPOUT=torch: torch's own)
    key = key if dropout_mode() == "torch" else f"{key}:dropout=uniform"
    generator = generator or torch.Generator().manual_seed(config.seed)
    draws = torch.Generator().manual_seed(config.seed + 1 + accelerator.process_index)
    optimizer = torch.optim.AdamW(param_groups, lr=config.lr, weight_decay=config.weight_decay)
    n_batches = len(_epoch_batches(objective, torch.Generator().manual_seed(0), config.max_batches))
    steps = -(-n_batches // config.accumulation) * config.epochs
    warmup = int(config.warmup_ratio * steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        functools.partial(warmup_cosine, warmup=warmup, total=steps) if config.schedule == "cosine" else _one,
    )
    wrapped, optimizer = accelerator.prepare(Forward(model), optimizer)
    accelerator.gradient_accumulation_steps = config.accumulation
    trained = [p for group in param_groups for p in group["params"]]
    run = _Run(wrapped, optimizer, scheduler, generator, draws, trained)
    result, best, state = FitResult(), None, {"epoch": 0, "bad_epochs": 0, "finished": False}
    if run_dir is not None and (Path(run_dir) / CHECKPOINT / STATE).is_file():
        restored = _restore(Path(run_dir) / CHECKPOINT, key, accelerator, run, objective)
        if restored is not None:
            state, result, best = restored
            result.resumed_from_epoch = state["epoch"]
    shown = progress and not state["finished"] and accelerator.is_main_process
    bar = LoopProgress(label, state["epoch"], config.epochs, enabled=shown)
    for epoch in range(state["epoch"], config.epochs):
        if state["finished"]:
            break
        start = time.perf_counter()
        sums, examples = _train_epoch(run, objective, accelerator, config)
        result.train_seconds += time.perf_counter() - start
        result.examples_seen += examples
        record = {"epoch": epoch + 1, **sums}
        record.update(objective.end_epoch(record))
        if config.select_best:
            wrapped.eval()
            with torch.no_grad():
                record.update(objective.validate(model, accelerator))
        result.history.append(record)
        if not config.select_best or record["score"] > result.best_score:
            result.best_score = record.get("score", -np.inf)
            result.best_epoch, state["bad_epochs"] = epoch + 1, 0
            best = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch + 1
        state["finished"] = state["bad_epochs"] >= config.patience or epoch + 1 == config.epochs
        if run_dir is not None:
            _save(Path(run_dir), key, state, result, best, accelerator, run, objective)
        if on_epoch is not None:
            on_epoch(record)
        bar.step(f"valid {record['score']:.4f}" if "score" in record else "")
    bar.close()
    result.stopped_early = state["bad_epochs"] >= config.patience
    if best is not None:
        model.load_state_dict(best)
    model.eval()
    return result


def _mean_across(sums: dict[str, float], accelerator: Accelerator) -> dict[str, float]:
    """Each logged loss averaged over the processes."""
    if accelerator.num_processes == 1 or not sums:
        return sums
    values = torch.tensor(list(sums.values()), device=accelerator.device)
    return dict(zip(sums, accelerator.reduce(values, "mean").tolist(), strict=True))


def _save(
    run_dir: Path,
    key: str,
    state: dict[str, Any],
    result: FitResult,
    best: dict[str, torch.Tensor] | None,
    accelerator: Accelerator,
    run: _Run,
    objective: Objective,
) -> None:
    """Write the checkpoint: Accelerate's state, then the engine's, swapped in atomically."""
    mine = run.draws.get_state()
    draws = gather_object([mine]) if accelerator.num_processes > 1 else [mine]
    accelerator.wait_for_everyone()
    staging = run_dir / f".{CHECKPOINT}.staging"
    accelerator.save_state(str(staging), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        engine = {
            "key": key,
            "state": state,
            "result": {k: v for k, v in result.__dict__.items() if k != "resumed_from_epoch"},
            "scheduler": run.scheduler.state_dict(),
            "objective": objective.state(),
        }
        tensors = {
            "generator": run.generator.get_state(),
            **{f"draws.{rank}": value for rank, value in enumerate(draws)},
            **{f"best.{k}": v.contiguous() for k, v in (best or {}).items()},
        }
        with atomic_directory(run_dir / CHECKPOINT) as tmp:
            for path in staging.iterdir():
                path.rename(tmp / path.name)
            (tmp / STATE).write_text(json.dumps(engine), encoding="utf-8")
            save_file(tensors, tmp / TENSORS)
        staging.rmdir()
    accelerator.wait_for_everyone()


def saved_history(run_dir: Path) -> list[dict[str, float]]:
    """The epoch records (loss parts, and ``score`` where the run selects on validation) of the
    checkpoint in ``run_dir``, read from its engine state (JSON: nothing read can run code)."""
    engine = json.loads((Path(run_dir) / CHECKPOINT / STATE).read_text(encoding="utf-8"))
    return engine["result"]["history"]


def _restore(
    folder: Path, key: str, accelerator: Accelerator, run: _Run, objective: Objective
) -> tuple[dict[str, Any], FitResult, dict[str, torch.Tensor] | None] | None:
    """The checkpoint's state when it belongs to this run (same key), else None."""
    try:
        engine = json.loads((folder / STATE).read_text(encoding="utf-8"))
        if engine.get("key") != key:
            return None
        tensors = load_file(folder / TENSORS)
        _check_random_states(folder / f"{RNG_STATE_NAME}_{accelerator.process_index}.pkl")
        accelerator.load_state(str(folder))
    except ArtifactError:
        raise
    except Exception as exc:  # safetensors, JSON, torch's weights-only unpickler: any of them
        raise damaged_artifact(folder, f"is not a checkpoint that can be loaded safely ({exc})") from exc
    run.scheduler.load_state_dict(engine["scheduler"])
    run.generator.set_state(tensors["generator"])
    run.draws.set_state(tensors[f"draws.{accelerator.process_index}"])
    objective.restore(engine["objective"])
    best = {k.removeprefix("best."): v for k, v in tensors.items() if k.startswith("best.")} or None
    return engine["state"], FitResult(**engine["result"]), best


RANDOM_STATES = ("random_state", "numpy_random_seed", "torch_manual_seed")


def _check_random_states(path: Path) -> None:
    """Accelerate skips a random-state file it cannot read with a log line only, and the resumed run
    then quietly differs from an uninterrupted one: here a missing or damaged file is an error naming
    it. Read as Accelerate reads it (weights only: a pickled object is refused, never run)."""
    try:
        states = accelerate_load(path)
    except Exception as exc:
        raise damaged_artifact(path, f"the random states cannot be loaded safely ({exc})") from exc
    missing = (
        [name for name in RANDOM_STATES if name not in states] if isinstance(states, dict) else RANDOM_STATES
    )
    if missing:
        raise damaged_artifact(path, f"the random states lack {', '.join(missing)}")
