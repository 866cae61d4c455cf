"""The three terms of the distillation loss.

- next-item cross-entropy (the student's own task), computed by the student;
- :func:`soft_target_loss` — Hinton et al. (2015): KL(teacher_T ‖ student_T) between the
  softmaxes at temperature T of the teacher's and the student's catalogue scores, times T² so its
  gradients keep their scale as T changes;
- :func:`cluster_balanced_loss` — the student's user representation (projected to the teacher's
  width) is scored against the teacher's K-means centroids, softmax over negative squared
  distances, and trained with cross-entropy towards the user's teacher cluster, **averaged per
  cluster**: (1/K) Σ_c (1/N_c) Σ_{i∈c} CE_i, the sum over the clusters present in the batch and
  divided by all K clusters (an absent cluster adds 0), so that a small cluster of unusual users
  counts as much as the largest one and the loss keeps one scale whatever the batch holds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_target_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · mean over rows of KL(softmax(teacher / T) ‖ softmax(student / T))."""
    log_student = F.log_softmax(student.float() / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher.float() / temperature, dim=-1)
    return temperature**2 * F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean")


def centroid_logits(representation: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """(B, K) logits = −‖representation − centroid‖²."""
    return -torch.cdist(representation.float(), centroids.float()).pow(2)


def cluster_balanced_loss(logits: torch.Tensor, clusters: torch.Tensor, n_clusters: int) -> torch.Tensor:
    """(1/K) Σ_c (1/N_c) Σ_{i∈c} CE_i with N_c the batch's members of cluster c, summed over the
    clusters in the batch and divided by all K = n_clusters."""
    losses = F.cross_entropy(logits, clusters, reduction="none")
    counts = torch.bincount(clusters, minlength=n_clusters).to(losses.dtype)
    per_cluster = torch.zeros(n_clusters, dtype=losses.dtype, device=losses.device).index_add_(
        0, clusters, losses
    )
    return (per_cluster / counts.clamp(min=1)).sum() / n_clusters
