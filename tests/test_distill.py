"""K-means against scikit-learn, the distillation losses by hand, the teacher-subspace start, and
students that learn what each loss term asks of them."""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from configs import distill_config
from interruption import Interrupted, count_calls, interrupt_on_call
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_samples, silhouette_score

from mtrec_helpers.core import chunked
from mtrec_helpers.data import SyntheticConfig, prepare_dataset
from mtrec_helpers.distill import train as distill_train
from mtrec_helpers.distill.benchmark import scoring_throughput, size_on_disk
from mtrec_helpers.distill.clusters import dominant_genres, user_representations
from mtrec_helpers.distill.experiments import choose_student
from mtrec_helpers.distill.kmeans import kmeans, silhouette, sweep_k
from mtrec_helpers.distill.losses import centroid_logits, cluster_balanced_loss, soft_target_loss
from mtrec_helpers.distill.student import StudentSize, build_student, init_from_teacher, scoring_parameters
from mtrec_helpers.distill.train import (
    Clusters,
    DistillObjective,
    StudentWithProbe,
    distill,
    teacher_scores,
)
from mtrec_helpers.multitask.tasks import TaskData
from mtrec_helpers.pretraining.artifacts import load_recommender, save_recommender

CPU = torch.device("cpu")


def _blobs(seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, size=(5, 8))
    truth = rng.integers(0, 5, 600)
    return torch.tensor(centres[truth] + rng.normal(0, 1, size=(600, 8)), dtype=torch.float32), truth


def test_kmeans_recovers_separated_blobs_and_matches_sklearn() -> None:
    points, truth = _blobs()
    ours = kmeans(points, 5, n_init=3, seed=0)
    assert adjusted_rand_score(truth, ours.labels.numpy()) == pytest.approx(1.0)
    reference = KMeans(5, n_init=3, random_state=0).fit(points.numpy())
    assert ours.inertia == pytest.approx(reference.inertia_, rel=0.01)
    recomputed = ((points - ours.centroids[ours.labels]) ** 2).sum()
    assert ours.inertia == pytest.approx(float(recomputed), rel=1e-5)


@pytest.mark.parametrize("k", [3, 8, 20])
def test_kmeans_inertia_within_one_percent_of_sklearn_on_unstructured_data(k: int) -> None:
    points = torch.randn(1500, 16, generator=torch.Generator().manual_seed(k))
    ours = kmeans(points, k, n_init=3, seed=0)
    reference = KMeans(k, n_init=3, random_state=0).fit(points.numpy()).inertia_
    assert abs(ours.inertia / reference - 1) < 0.01


def test_kmeans_is_seeded_and_refuses_bad_k() -> None:
    points, _ = _blobs(1)
    first, second = kmeans(points, 4, seed=3), kmeans(points, 4, seed=3)
    assert torch.equal(first.labels, second.labels)
    with pytest.raises(ValueError, match="k must be"):
        kmeans(points[:3], 4)


def test_silhouette_matches_sklearn_and_sweep_reports_it() -> None:
    points, _ = _blobs(2)
    labels = kmeans(points, 4, seed=0).labels
    assert silhouette(points, labels, chunk=97) == pytest.approx(
        silhouette_score(points.numpy(), labels.numpy()), abs=1e-4
    )
    sweep = sweep_k(points, [2, 5, 8])
    assert list(sweep["k"]) == [2, 5, 8] and sweep["inertia"].is_monotonic_decreasing
    assert int(sweep.loc[sweep["silhouette"].idxmax(), "k"]) == 5  # the planted number of blobs
    every = torch.arange(len(points))
    assert silhouette(points, labels, chunk=97, rows=every) == silhouette(points, labels, chunk=97)
    rows = torch.arange(0, len(points), 7)  # a sample's points, each against every point
    each = silhouette_samples(points.numpy(), labels.numpy())[rows.numpy()]
    assert silhouette(points, labels, chunk=97, rows=rows) == pytest.approx(float(each.mean()), abs=1e-4)
    sampled = sweep_k(points, [2, 5, 8], rows=rows)
    assert int(sampled.loc[sampled["silhouette"].idxmax(), "k"]) == 5 and sampled["inertia"].equals(
        sweep["inertia"]
    )


def test_soft_target_loss_is_temperature_squared_kl() -> None:
    teacher = torch.tensor([[2.0, 0.0, -1.0]])
    student = torch.tensor([[0.5, 0.5, 0.0]])
    p = torch.softmax(teacher / 2, 1)
    q = torch.softmax(student / 2, 1)
    expected = 4 * (p * (p.log() - q.log())).sum()
    assert soft_target_loss(student, teacher, 2.0).item() == pytest.approx(expected.item(), rel=1e-5)
    assert soft_target_loss(teacher, teacher, 3.0).item() == pytest.approx(0.0, abs=1e-6)


def test_cluster_loss_averages_per_cluster() -> None:
    logits = centroid_logits(
        torch.tensor([[0.0, 0.0], [0.0, 1.0], [3.0, 3.0]]), torch.tensor([[0.0, 0.0], [3.0, 3.0]])
    )
    assert logits[2, 1].item() == 0.0 and logits[0, 1].item() == pytest.approx(-18.0)
    clusters = torch.tensor([0, 0, 1])
    ce = torch.nn.functional.cross_entropy(logits, clusters, reduction="none")
    expected = ((ce[0] + ce[1]) / 2 + ce[2]) / 3  # K = 3 clusters, one of them absent from the batch
    assert cluster_balanced_loss(logits, clusters, 3).item() == pytest.approx(expected.item())
    # a lone member of a small cluster weighs as much as a whole large cluster
    many = torch.tensor([0] * 9 + [1])
    wrong = torch.zeros(10, 2)
    wrong[-1] = torch.tensor([5.0, -5.0])  # the small cluster's member is misassigned
    ce = torch.nn.functional.cross_entropy(wrong, many, reduction="none")
    assert cluster_balanced_loss(wrong, many, 2).item() == pytest.approx((ce[:9].mean() + ce[9]).item() / 2)
    assert cluster_balanced_loss(wrong, many, 2).item() > 3 * ce.mean().item()  # per-user mean: 1/10


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    """A small teacher (32 wide) trained on synthetic data, and its clusters."""
    data = prepare_dataset(
        "synthetic", tmp_path_factory.mktemp("distill"), min_interactions=3,
        synthetic=SyntheticConfig(n_users=200, n_items=60, min_length=10, max_length=30),
    )  # fmt: skip
    task_data = TaskData(data, seed=0)
    teacher = _teacher(task_data, 32, 20)
    fitted = kmeans(user_representations(teacher, task_data), 3, seed=0)
    return task_data, teacher, Clusters(fitted.labels, fitted.centroids)


def _kl_to_teacher(student, teacher, task_data: TaskData) -> float:
    batch = task_data.split_batch(np.arange(task_data.data.n_users), "test", 20)
    with torch.no_grad():
        return soft_target_loss(
            student.next_item_outputs(batch), teacher.next_item_outputs(batch), 1.0
        ).item()


def test_teacher_subspace_start_keeps_the_item_geometry(setup) -> None:
    task_data, teacher, _ = setup
    same_width = build_student(teacher, task_data, StudentSize(32, heads=2))
    init_from_teacher(same_width, teacher)
    items_t = teacher.bert.embeddings.word_embeddings.weight
    items_s = same_width.bert.embeddings.word_embeddings.weight
    torch.testing.assert_close(items_s @ items_s.T, items_t @ items_t.T, atol=1e-4, rtol=1e-4)
    assert torch.equal(same_width.cls.predictions.bias, teacher.cls.predictions.bias)
    small = build_student(teacher, task_data, StudentSize(8))
    init_from_teacher(small, teacher)
    assert scoring_parameters(small) < scoring_parameters(teacher) / 2
    with pytest.raises(ValueError, match="multiple of heads"):
        StudentSize(10, heads=3)


def test_soft_targets_pull_the_student_towards_the_teacher(setup) -> None:
    task_data, teacher, clusters = setup
    base = distill_config(epochs=8, lr=1e-2, patience=8, soft_weight=0.0, cluster_weight=0.0)
    kls = {}
    for name, config in {"alone": base, "soft": replace(base, ce_weight=0.0, soft_weight=1.0)}.items():
        torch.manual_seed(1)
        student = build_student(teacher, task_data, StudentSize(8))
        distill(student, teacher, task_data, config, CPU, clusters, progress=False)
        kls[name] = _kl_to_teacher(student, teacher, task_data)
    assert kls["soft"] < 0.7 * kls["alone"], kls


def _teacher(task_data: TaskData, hidden: int, epochs: int):
    from mtrec_helpers.multitask.model import MultiTaskModel, multitask_config
    from mtrec_helpers.pretraining.models import build_config

    torch.manual_seed(0)
    data = task_data.data
    encoder = build_config(
        data.n_items, "causal", hidden=hidden, layers=1, heads=2, max_len=20, dropout=0.0, side_info=True,
        n_genres=len(data.vocab["genres"]), n_year_buckets=13, seen_bias=True,
    )  # fmt: skip
    teacher = MultiTaskModel(multitask_config(encoder, task_data, ("next",)))
    teacher.set_side_information(data.genre_matrix(), data.year_buckets())
    config = distill_config(soft_weight=0.0, epochs=epochs, lr=1e-2, patience=epochs, cluster_weight=0.0)
    distill(teacher, teacher, task_data, config, CPU, progress=False)
    return teacher


def test_cluster_loss_teaches_the_teacher_clusters(tmp_path: Path) -> None:
    """Two planted kinds of users; the 'clusters' are the kinds, their centroids the teacher's mean
    representation of each kind. Only the student trained with the cluster loss places held-out
    states (the validation-time representation) nearer the right centroid."""
    from test_multitask import _two_camps

    task_data = _two_camps(tmp_path)
    teacher = _teacher(task_data, 16, 6)
    kinds = task_data.profiles[:, 1]
    representations = user_representations(teacher, task_data)
    clusters = Clusters(kinds, torch.stack([representations[kinds == k].mean(0) for k in (0, 1)]))
    accuracy, loss = {}, {}
    for weight in (0.0, 1.0):
        torch.manual_seed(2)
        student = build_student(teacher, task_data, StudentSize(8))
        config = distill_config(epochs=10, lr=1e-2, patience=10, soft_weight=0.0, cluster_weight=weight)
        result = distill(student, teacher, task_data, config, CPU, clusters, progress=False)
        with torch.no_grad():
            projected = result.probe(user_representations(student, task_data))
        logits = centroid_logits(projected, clusters.centroids)
        accuracy[weight] = float((logits.argmax(1) == kinds).float().mean())
        loss[weight] = cluster_balanced_loss(logits, kinds, 2).item()
    # measured: accuracy 0.82 vs 0.69, balanced loss 0.41 vs 0.64 (seeded, CPU)
    assert accuracy[1.0] > 0.78 and accuracy[1.0] > accuracy[0.0] + 0.08, (accuracy, loss)
    assert loss[1.0] < 0.8 * loss[0.0], (accuracy, loss)
    with pytest.raises(ValueError, match="clusters"):
        config = distill_config(cluster_weight=1.0, epochs=30, lr=3e-3, patience=3)
        distill(
            build_student(teacher, task_data, StudentSize(8)),
            teacher,
            task_data,
            config,
            CPU,
            None,
            progress=False,
        )


def test_student_round_trip_size_and_throughput(setup, tmp_path: Path) -> None:
    task_data, teacher, _ = setup
    student = build_student(teacher, task_data, StudentSize(8)).eval()
    folder = save_recommender(student, tmp_path / "student", task_data.data, {})
    restored = load_recommender(folder, type(student))[0]
    batch = task_data.split_batch(np.arange(10), "test", 20)
    with torch.no_grad():
        torch.testing.assert_close(restored.next_item_outputs(batch), student.next_item_outputs(batch))
    assert size_on_disk(folder) == (folder / "model.safetensors").stat().st_size
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        size_on_disk(tmp_path)
    assert scoring_throughput(student, task_data, repeats=1) > 0
    timed, split_batch = [], task_data.split_batch

    def recorded(users, *args):
        timed.append(np.asarray(users))
        return split_batch(users, *args)

    task_data.split_batch = recorded  # the rate is timed on the users given (a sample), in batches
    try:
        sample = np.arange(3, task_data.data.n_users, 2)
        assert scoring_throughput(student, task_data, batch_size=7, repeats=1, users=sample) > 0
    finally:
        del task_data.split_batch
    assert np.array_equal(np.concatenate(timed), sample) and max(len(t) for t in timed) == 7


def test_dominant_genres_and_choice_of_student(setup) -> None:
    task_data, _, clusters = setup
    table = dominant_genres(task_data, clusters.labels.numpy())
    assert table["users"].sum() == task_data.data.n_users and "unknown" not in " ".join(
        table["dominant_genres"]
    )
    results = {
        "teacher": {"params": 100, "valid_ndcg@10": 0.3},
        "big": {"params": 50, "valid_ndcg@10": 0.29},
        "small": {"params": 20, "valid_ndcg@10": 0.2},
        "tiny": {"params": 10, "valid_ndcg@10": 0.1},
    }
    assert choose_student(results, 100, 4.0) == "small"  # "big" is only 2x smaller
    assert choose_student(results, 100, 50.0) == "big"  # none qualifies: the best of all


def test_bad_distill_config_is_refused() -> None:
    with pytest.raises(ValueError, match="every loss weight is 0"):
        distill_config(ce_weight=0.0, soft_weight=0.0, epochs=30, lr=3e-3, patience=3, cluster_weight=0.0)
    with pytest.raises(ValueError, match="temperature"):
        distill_config(temperature=0.0, epochs=30, lr=3e-3, patience=3, cluster_weight=0.0)


def test_interrupted_distillation_resumes_to_the_same_student(
    setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notebook 05 re-run after an interruption continues from the run's last checkpoint and ends
    with exactly the student an uninterrupted run gives."""
    task_data, teacher, clusters = setup
    config = distill_config(epochs=4, lr=1e-2, patience=4, soft_weight=1.0, cluster_weight=0.1)

    def student():
        torch.manual_seed(3)
        return build_student(teacher, task_data, StudentSize(8))

    whole = distill(student(), teacher, task_data, config, CPU, clusters, False, run_dir=tmp_path / "whole")
    interrupt_on_call(monkeypatch, distill_train, "validation_metrics", 3)
    with pytest.raises(Interrupted):
        distill(student(), teacher, task_data, config, CPU, clusters, False, run_dir=tmp_path / "cut")
    validations = count_calls(monkeypatch, distill_train, "validation_metrics")
    scored, teacher_scores = [], distill_train.teacher_scores
    monkeypatch.setattr(distill_train, "teacher_scores", lambda *a: scored.append(1) or teacher_scores(*a))
    resumed_student = student()
    resumed = distill(
        resumed_student, teacher, task_data, config, CPU, clusters, False, run_dir=tmp_path / "cut"
    )
    assert len(validations) == 2, "epochs 1 and 2 came from the checkpoint, only 3 and 4 were trained"
    assert len(scored) == 1  # the soft targets, once, for the epochs it trained
    again = distill(student(), teacher, task_data, config, CPU, clusters, False, run_dir=tmp_path / "whole")
    assert len(scored) == 1 and again.history == whole.history  # read back finished: no teacher pass
    assert len(resumed.history) == 4 and resumed.history == whole.history
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed_student.state_dict()[name]), name


def test_soft_targets_per_batch_equal_the_cached_ones(setup) -> None:
    """Past ``soft_cache_mb`` the teacher scores each batch as it comes: the same soft targets as
    the cache (both fp16), so the same loss, without positions × catalogue in memory."""
    task_data, teacher, clusters = setup
    config = distill_config(soft_weight=1.0, cluster_weight=0.1, epochs=30, lr=3e-3, patience=3)
    student = build_student(teacher, task_data, StudentSize(8))
    module = StudentWithProbe(student, torch.nn.Linear(8, 32))
    examples = task_data.train_windows(student.config.max_len)
    cached = teacher_scores(teacher, task_data, examples, CPU)
    with_cache = DistillObjective(task_data, config, examples, cached, clusters, CPU)
    per_batch = DistillObjective(task_data, config, examples, None, clusters, CPU, teacher.eval())
    call = functools.partial(_call, module)
    for indices in with_cache.batches(torch.Generator().manual_seed(0))[:3]:
        _, parts_cached = with_cache.loss(call, indices, torch.Generator())
        _, parts_batch = per_batch.loss(call, indices, torch.Generator())
        assert parts_batch == pytest.approx(parts_cached, rel=1e-3)
        assert parts_batch["loss_soft"] > 0


def _call(module: torch.nn.Module, method: str, *args):
    return getattr(module, method)(*args)


def test_distillation_past_the_cache_budget_trains_the_same_student(setup) -> None:
    task_data, teacher, clusters = setup
    histories = {}
    for budget in (2048, 0):
        torch.manual_seed(1)
        student = build_student(teacher, task_data, StudentSize(8))
        config = distill_config(
            epochs=2, lr=1e-2, soft_weight=1.0, soft_cache_mb=budget, patience=3, cluster_weight=0.0
        )
        histories[budget] = distill(
            student, teacher, task_data, config, CPU, clusters, progress=False
        ).history
    for cached, per_batch in zip(histories[2048], histories[0], strict=True):
        assert per_batch["loss_soft"] == pytest.approx(cached["loss_soft"], rel=1e-3)
        assert per_batch["valid_ndcg@10"] == pytest.approx(cached["valid_ndcg@10"], abs=0.01)


@pytest.mark.parametrize("cached", [True, False])
def test_student_losses_in_catalogue_chunks_equal_the_whole(setup, monkeypatch, cached: bool) -> None:
    """Cross-entropy and soft-target loss computed a few positions at a time (each chunk's logits
    recomputed in the backward pass) give the loss and gradients of the one-chunk computation."""
    task_data, teacher, clusters = setup
    config = distill_config(soft_weight=1.0, cluster_weight=0.1, epochs=30, lr=3e-3, patience=3)
    torch.manual_seed(0)
    module = StudentWithProbe(build_student(teacher, task_data, StudentSize(8)), torch.nn.Linear(8, 32))
    examples = task_data.train_windows(module.student.config.max_len)
    scores = teacher_scores(teacher, task_data, examples, CPU) if cached else None
    objective = DistillObjective(
        task_data, config, examples, scores, clusters, CPU, None if cached else teacher
    )
    indices = objective.batches(torch.Generator().manual_seed(0))[0]
    module.eval()  # no dropout: both passes see the same function

    def loss_and_grads():
        module.zero_grad()
        loss, parts = objective.loss(functools.partial(_call, module), indices, torch.Generator())
        loss.backward()
        return parts, [p.grad.clone() for p in module.student.parameters() if p.grad is not None]

    whole, whole_grads = loss_and_grads()
    monkeypatch.setattr(chunked, "LOGIT_BUDGET", 3 * module.student.config.vocab_size)
    parts, parts_grads = loss_and_grads()
    assert parts == pytest.approx(whole, rel=1e-5)
    for got, expected in zip(parts_grads, whole_grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
