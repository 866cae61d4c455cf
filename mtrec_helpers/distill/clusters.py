"""Users seen through the teacher: representations, clusters' dominant genres, per-cluster metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from mtrec_helpers.core.device import autocast
from mtrec_helpers.core.protocol import SPLITS
from mtrec_helpers.multitask.model import MultiTaskModel
from mtrec_helpers.multitask.tasks import TaskData


def user_representations(
    model: MultiTaskModel, task_data: TaskData, split: str = "valid", batch_size: int = 256
) -> torch.Tensor:
    """(U, H) the model's next-item state when predicting each user's ``split`` interaction (the
    history before it): for ``valid``, the training history only."""
    model.eval()
    parts = []
    with torch.no_grad(), autocast(model.device):
        for start in range(0, task_data.data.n_users, batch_size):
            users = np.arange(start, min(start + batch_size, task_data.data.n_users))
            batch = task_data.split_batch(users, split, model.config.max_len).to(model.device)
            states, _, _ = model.labelled_states(batch)
            parts.append(states["next"][:, -1].float().cpu())
    return torch.cat(parts)


def dominant_genres(
    task_data: TaskData, labels: np.ndarray, top: int = 2, min_share: float = 0.02
) -> pd.DataFrame:
    """Per cluster: its size and the ``top`` genres most over-represented in its members' training
    interactions (lift = the cluster's genre share / everyone's), among genres with at least
    ``min_share`` of all interactions."""
    train = task_data.split_code == SPLITS.index("train")
    users = task_data.user[1:].numpy()[train]
    genres = task_data.genres[task_data.item[1:][torch.from_numpy(train)]].numpy()
    names = np.array(task_data.vocab["genres"])
    overall = genres.sum(0) / genres.sum()
    eligible = (overall >= min_share) & (names != "unknown")  # rare genres make noisy lifts
    rows = []
    for cluster in range(int(labels.max()) + 1):
        members = labels[users] == cluster
        share = genres[members].sum(0) / max(genres[members].sum(), 1.0)
        lift = np.where(eligible, share / np.maximum(overall, 1e-9), -np.inf)
        best = np.argsort(-lift)[:top]
        rows.append(
            {
                "cluster": cluster,
                "users": int((labels == cluster).sum()),
                "dominant_genres": ", ".join(f"{names[g]} ×{lift[g]:.1f}" for g in best),
            }
        )
    return pd.DataFrame(rows).set_index("cluster")


def per_cluster_mean(values: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The mean of a per-user metric in every cluster (keys are cluster ids as strings)."""
    return {str(c): float(values[labels == c].mean()) for c in range(int(labels.max()) + 1)}


def projection_2d(points: torch.Tensor) -> np.ndarray:
    """The first two principal components of ``points`` (n, 2)."""
    centred = points - points.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    return (centred @ v[:2].T).numpy()
