"""The training loop: learns, is deterministic, stops early, and resumes after being killed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from configs import engine, train_config
from hostile import Payload

from mtrec_helpers.core.engine import Objective, accelerator_for, fit
from mtrec_helpers.core.evaluation import evaluate
from mtrec_helpers.core.stages import ArtifactError
from mtrec_helpers.data import ProcessedData, RawData, SyntheticConfig, prepare_dataset
from mtrec_helpers.data.schema import empty_users
from mtrec_helpers.data.store import build
from mtrec_helpers.pretraining.baselines import fit_popularity
from mtrec_helpers.pretraining.models import build_config
from mtrec_helpers.pretraining.train import train

SYNTHETIC = SyntheticConfig(n_users=200, n_items=120, min_length=10, max_length=30)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("training")
    prepare_dataset("synthetic", folder, min_interactions=3, synthetic=SYNTHETIC)
    return folder


def _data(folder: Path):
    return prepare_dataset("synthetic", folder, min_interactions=3, synthetic=SYNTHETIC)


def _configs(objective: str = "causal", epochs: int = 6, lr: float = 5e-3, patience: int = 20):
    model_config = build_config(
        SYNTHETIC.n_items, objective, hidden=16, layers=1, heads=2, max_len=20, dropout=0.1
    )
    return model_config, train_config(epochs=epochs, lr=lr, patience=patience, warmup_ratio=0.1)


def _cyclic_data(folder: Path, n_users: int = 150, n_items: int = 30) -> ProcessedData:
    """Every user walks the catalogue in order (item i, then i + 1, cyclically) from a random start:
    the next item is certain given the last one, and popularity knows nothing of it."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(1, n_users + 1):
        start, length = rng.integers(n_items), rng.integers(8, 16)
        rows += [(user, (start + step) % n_items + 1, 4.0, 1000 * user + step) for step in range(length)]
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    items = pd.DataFrame(
        {"item_id": np.arange(1, n_items + 1), "title": "x", "year": 2000, "genres": [["g"]] * n_items}
    )
    raw = RawData(
        "cyclic",
        interactions,
        items,
        empty_users(interactions["user_id"].to_numpy()),
        ["g"],
        (1.0, 5.0, 1.0),
        False,
    )
    frames = build(raw, min_interactions=3)
    manifest = {"fingerprint": "cyclic", "dataset": "cyclic"}
    return ProcessedData(*frames, manifest=manifest, folder=folder)


@pytest.mark.parametrize(("objective", "negatives"), [("causal", 0), ("masked", 0), ("causal", 8)])
def test_learns_a_sequential_pattern_popularity_cannot(
    tmp_path: Path, objective: str, negatives: int
) -> None:
    data = _cyclic_data(tmp_path)
    model_config = build_config(
        data.n_items, objective, hidden=32, layers=1, heads=2, max_len=16, dropout=0.0
    )
    config = train_config(
        epochs=12, batch_size=16, lr=1e-2, warmup_ratio=0.1, last_prob=0.5, negatives=negatives
    )
    result = train(model_config, config, data, tmp_path / "run", CPU, progress=False)
    popularity = evaluate(fit_popularity(data).score, data, "valid").ndcg(10).mean()
    assert popularity < 0.3
    assert result.best_valid_ndcg > (0.8 if objective == "causal" else 0.5)  # masked learns slower
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.train_seq_per_s > 0 and result.peak_memory_mb > 0


def test_same_arguments_same_numbers(data_dir: Path, tmp_path: Path) -> None:
    model_config, config = _configs(epochs=3)
    first = train(model_config, config, _data(data_dir), tmp_path / "a", CPU, progress=False)
    second = train(model_config, config, _data(data_dir), tmp_path / "b", CPU, progress=False)
    assert first.history == second.history


class _Counting(Objective):
    """Ten batches of four examples; counts the batches the engine trains on."""

    def __init__(self) -> None:
        self.calls = 0

    def batches(self, generator: torch.Generator) -> list[np.ndarray]:
        return list(torch.randperm(40, generator=generator).numpy().reshape(10, 4))

    def loss(self, call, indices, generator):
        self.calls += 1
        return call("forward", torch.ones(len(indices), 1)).square().mean(), {"loss": 0.0}

    def validate(self, model, accelerator):
        return {"score": 0.0}


def test_max_batches_caps_every_epoch_at_that_many_steps() -> None:
    for max_batches, expected in ((0, 30), (2, 6)):
        objective = _Counting()
        model = torch.nn.Linear(1, 1)
        config = engine(epochs=3, lr=0.1, select_best=False, max_batches=max_batches)
        result = fit(model, [{"params": list(model.parameters())}], objective, config, accelerator_for("cpu"),
                     progress=False)  # fmt: skip
        assert objective.calls == expected and result.examples_seen == 4 * expected


def test_early_stopping(data_dir: Path, tmp_path: Path) -> None:
    model_config, config = _configs(epochs=10, lr=0.0, patience=2)
    result = train(model_config, config, _data(data_dir), tmp_path / "run", CPU, progress=False)
    assert len(result.history) == 3 and result.stopped_early and result.best_epoch == 1


def test_finished_run_is_returned_without_training_again(data_dir: Path, tmp_path: Path) -> None:
    model_config, config = _configs(epochs=2)
    first = train(model_config, config, _data(data_dir), tmp_path / "run", CPU, progress=False)
    seen = []
    again = train(
        model_config, config, _data(data_dir), tmp_path / "run", CPU, progress=False, on_epoch=seen.append
    )
    assert seen == [] and again.resumed_from_epoch == 2 and again.history == first.history
    other = train(
        model_config,
        train_config(epochs=2, lr=1e-3),
        _data(data_dir),
        tmp_path / "run",
        CPU,
        progress=False,
    )
    assert other.resumed_from_epoch == 0  # a different call does not reuse the checkpoint


def test_killed_run_resumes_from_its_last_checkpoint(data_dir: Path, tmp_path: Path) -> None:
    """A process killed (SIGKILL) after epoch 3 of 6 resumes at epoch 4 and ends exactly where an
    uninterrupted run ends."""
    script = textwrap.dedent(
        f"""
        import os, signal, torch
        from pathlib import Path
        from mtrec_helpers.data import SyntheticConfig, prepare_dataset
        from mtrec_helpers.pretraining.models import build_config
        from mtrec_helpers.core.engine import EngineConfig
        from mtrec_helpers.pretraining.train import TrainConfig, train

        data = prepare_dataset("synthetic", Path({str(data_dir)!r}), min_interactions=3,
                               synthetic=SyntheticConfig(**{SYNTHETIC.__dict__!r}))
        model_config = build_config({SYNTHETIC.n_items}, "causal", hidden=16, layers=1, heads=2,
                                    max_len=20, dropout=0.1)
        config = TrainConfig(EngineConfig(6, 5e-3, 20, 0, 0, warmup_ratio=0.1), 32, 0.2, 0, 0)

        def crash(record):
            if record["epoch"] == 3:
                os.kill(os.getpid(), signal.SIGKILL)

        train(model_config, config, data, Path({str(tmp_path / "killed")!r}), torch.device("cpu"),
              progress=False, on_epoch=crash)
        """
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    model_config, config = _configs(epochs=6)
    epochs = []
    resumed = train(model_config, config, _data(data_dir), tmp_path / "killed", CPU, progress=False,
                    on_epoch=lambda r: epochs.append(r["epoch"]))  # fmt: skip
    assert resumed.resumed_from_epoch == 3 and epochs == [4, 5, 6]
    uninterrupted = train(model_config, config, _data(data_dir), tmp_path / "whole", CPU, progress=False)
    assert resumed.history == uninterrupted.history
    assert resumed.best_valid_ndcg == uninterrupted.best_valid_ndcg


def test_checkpoint_with_a_pickle_payload_is_refused_and_never_runs(data_dir: Path, tmp_path: Path) -> None:
    """A pickle planted in a run's checkpoint (here as the optimizer state that resuming reads)
    used to run as the user the moment notebook 02 resumed; now it is refused and never runs."""
    run_dir = tmp_path / "pretrained" / "runs" / "causal"
    model_config, config = _configs(epochs=1)
    train(model_config, config, _data(data_dir), run_dir, CPU, progress=False)
    marker = tmp_path / "payload-ran"
    torch.save({"state": {}, "payload": Payload(marker)}, run_dir / "checkpoint" / "optimizer.bin")
    with pytest.raises(ArtifactError) as caught:
        train(model_config, config, _data(data_dir), run_dir, CPU, progress=False)
    assert not marker.exists()
    message = str(caught.value)
    assert "checkpoint: is not a checkpoint that can be loaded safely" in message
    assert "Delete it and re-run notebooks/02_transformer_pretraining.ipynb" in message


def test_truncated_checkpoint_names_the_file_and_the_fix(data_dir: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "pretrained" / "runs" / "causal"
    model_config, config = _configs(epochs=1)
    train(model_config, config, _data(data_dir), run_dir, CPU, progress=False)
    path = run_dir / "checkpoint" / "engine.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ArtifactError, match=r"checkpoint: is not a checkpoint .* Delete it and re-run"):
        train(model_config, config, _data(data_dir), run_dir, CPU, progress=False)


@pytest.mark.parametrize("damage", ["truncated", "pickle", "missing"])
def test_damaged_random_states_stop_the_resume_naming_the_file(
    data_dir: Path, tmp_path: Path, damage: str
) -> None:
    """Accelerate logs and skips random states it cannot read; the resumed run would then quietly differ
    from an uninterrupted one. Here it is an error naming the file, and a planted pickle never runs."""
    run_dir = tmp_path / "pretrained" / "runs" / "causal"
    model_config, config = _configs(epochs=1)
    train(model_config, config, _data(data_dir), run_dir, CPU, progress=False)
    path = run_dir / "checkpoint" / "random_states_0.pkl"
    marker = tmp_path / "payload-ran"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "pickle":
        torch.save({"random_state": Payload(marker)}, path)
    else:
        path.unlink()
    with pytest.raises(ArtifactError) as caught:
        train(model_config, config, _data(data_dir), run_dir, CPU, progress=False)
    assert not marker.exists()
    message = str(caught.value)
    assert message.startswith(f"{path}: the random states cannot be loaded safely")
    assert "Delete it and re-run notebooks/02_transformer_pretraining.ipynb" in message


@pytest.mark.parametrize(("warmup", "total"), [(0, 10), (3, 50), (7, 7), (5, 123)])
def test_the_schedule_is_transformers_warmup_cosine_step_for_step(warmup: int, total: int) -> None:
    """The engine's schedule (written out: transformers' optimization module imports peft, seconds per
    notebook) gives exactly the learning rates of transformers' get_cosine_schedule_with_warmup."""
    import functools

    from transformers import get_cosine_schedule_with_warmup

    from mtrec_helpers.core.engine import warmup_cosine

    def rates(make) -> list[float]:  # noqa: ANN001
        optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=3e-3)
        scheduler = make(optimizer)
        values = []
        for _ in range(total + 3):
            values.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return values

    ours = rates(lambda o: torch.optim.lr_scheduler.LambdaLR(
        o, functools.partial(warmup_cosine, warmup=warmup, total=total)))  # fmt: skip
    assert ours == rates(lambda o: get_cosine_schedule_with_warmup(o, warmup, total))
