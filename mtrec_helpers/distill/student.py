"""The student: the teacher's architecture (same inputs, causal encoder, tied output, seen-item
bias) with fewer layers and a smaller width, and the next-item task only."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mtrec_helpers.multitask.model import MultiTaskModel, multitask_config
from mtrec_helpers.multitask.tasks import TaskData
from mtrec_helpers.pretraining.models import build_config


@dataclass(frozen=True)
class StudentSize:
    """Width, depth and attention heads of a student."""

    hidden: int
    layers: int = 1
    heads: int = 1
    dropout: float | None = None  # None: the teacher's

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"student hidden={self.hidden} must be a multiple of heads={self.heads}")


def build_student(teacher: MultiTaskModel, task_data: TaskData, size: StudentSize) -> MultiTaskModel:
    """A freshly initialised student for ``teacher``'s data and inputs, of ``size``."""
    config = teacher.config
    encoder = build_config(
        n_items=config.n_items,
        objective="causal",
        hidden=size.hidden,
        layers=size.layers,
        heads=size.heads,
        max_len=config.max_len,
        dropout=config.hidden_dropout_prob if size.dropout is None else size.dropout,
        side_info=config.side_info,
        n_genres=config.n_genres,
        n_year_buckets=config.n_year_buckets,
        seen_bias=config.seen_bias,
    )
    student = MultiTaskModel(
        multitask_config(
            encoder, task_data, ("next",), context=config.context, rating_input=config.rating_input
        )
    )
    student.set_side_information(teacher.item_genres.cpu().numpy(), teacher.item_years.cpu().numpy())
    return student


def scoring_parameters(model: MultiTaskModel) -> int:
    """Parameters that next-item scoring uses (tied weights once; auxiliary heads left out)."""
    auxiliary = {id(p) for p in model.aux_head_parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in auxiliary)


PROJECTED_ROWS = (  # embedding tables (rows, hidden): projected to the student's width
    "bert.embeddings.word_embeddings.weight",
    "bert.embeddings.position_embeddings.weight",
    "year_embeddings.weight",
    "hour_embeddings.weight",
    "weekday_embeddings.weight",
    "gap_embeddings.weight",
    "rating_embeddings.weight",
)
COPIED = ("cls.predictions.bias", "seen_weight")  # item popularity bias, seen-item bias


@torch.no_grad()
def init_from_teacher(student: MultiTaskModel, teacher: MultiTaskModel) -> torch.Tensor:
    """Start the student's embeddings in the teacher's principal subspace: with P (H_t, H_s) the top
    right-singular vectors of the teacher's item embeddings, every embedding table becomes W_t P,
    the genre projection Pᵀ W_t; the output bias (item popularity) and the seen-item bias are
    copied. The encoder layers start fresh. Returns P."""
    items = teacher.bert.embeddings.word_embeddings.weight.float().cpu()
    projection = torch.linalg.svd(items, full_matrices=False).Vh[: student.config.hidden_size].T
    source = {name: value.cpu() for name, value in teacher.state_dict().items()}
    target = student.state_dict()
    projection = projection.to(next(iter(target.values())).device)
    source = {name: value.to(projection.device) for name, value in source.items()}
    for name in PROJECTED_ROWS:
        if name in source and name in target:
            target[name].copy_(source[name].float() @ projection)
    if "genre_embeddings.weight" in target:
        target["genre_embeddings.weight"].copy_(projection.T @ source["genre_embeddings.weight"].float())
    for name in COPIED:
        if name in source and name in target:
            target[name].copy_(source[name])
    student.load_state_dict(target)
    return projection
