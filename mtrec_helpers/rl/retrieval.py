"""Candidates for the RL stage: the finetuned multi-task model retrieves and describes them.

For every user, the N items the finetuned model scores highest for the next interaction (history
excluded), their scores, and what the model's own heads predict for each of them — predicted
rating and like probability. Agents see only these (never the simulator's user model). The
candidate set is fixed for a session (retrieval, then re-ranking); items the user clicks during
the session drop out of it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from mtrec_helpers.core.device import autocast
from mtrec_helpers.core.evaluation import history_mask
from mtrec_helpers.core.memory import reusing_heap
from mtrec_helpers.multitask.model import MultiTaskModel
from mtrec_helpers.multitask.tasks import TaskData


@dataclass
class CandidateTable:
    """Per user (rows in user order): candidate items (U, N), retrieval scores and head predictions."""

    items: torch.Tensor
    scores: torch.Tensor
    like: torch.Tensor  # predicted like probability
    rating: torch.Tensor  # predicted rating

    @classmethod
    def joined(cls, parts: list[CandidateTable]) -> CandidateTable:
        """The tables of consecutive batches of users as one."""
        return cls(*(torch.cat([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def rows(self, users: torch.Tensor) -> CandidateTable:
        """The table of these users only."""
        return CandidateTable(self.items[users], self.scores[users], self.like[users], self.rating[users])

    def lookup(self, users: torch.Tensor, history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``Candidates`` function of the simulator: the users' candidates, clicked ones at −inf."""
        items = self.items[users]
        scores = self.scores[users].masked_fill(history.gather(1, items) > 0, -torch.inf)
        return items, scores


def retrieve_batch(
    model: MultiTaskModel, task_data: TaskData, users: np.ndarray, n: int, split: str
) -> tuple[torch.Tensor, CandidateTable]:
    """One batch of users: the model's next-item scores over the catalogue (B, V), as its evaluator
    score function gives them, and its top-``n`` unseen items with the heads' predictions (call under
    ``torch.no_grad()`` and :func:`~mtrec_helpers.core.device.autocast`)."""
    batch = task_data.split_batch(users, split, model.config.max_len).to(model.device)
    scores = model.next_item_outputs(batch).float()
    histories = [task_data.item[task_data.user_rows(int(u), split)[:-1]].numpy() for u in users]
    unseen = scores.masked_fill(history_mask(histories, scores.shape[1], model.device), -torch.inf)
    unseen[:, [0, -1]] = -torch.inf
    top = torch.topk(unseen, n, dim=1)
    heads = model.candidate_outputs(batch, top.indices)
    table = CandidateTable(
        top.indices.cpu(),
        top.values.cpu(),
        torch.sigmoid(heads["like"].float()).cpu(),
        heads["rating"].float().cpu(),
    )
    return scores, table


def retrieve(
    model: MultiTaskModel, task_data: TaskData, n: int, split: str = "test", batch_size: int = 256
) -> CandidateTable:
    """The model's top-``n`` unseen items per user for the ``split`` interaction, with its heads'
    rating and like predictions for each."""
    model.eval()
    n_users = task_data.data.n_users
    with torch.no_grad(), autocast(model.device):
        parts = [
            retrieve_batch(model, task_data, np.arange(start, min(start + batch_size, n_users)), n, split)[1]
            for start in reusing_heap(range(0, n_users, batch_size))
        ]
    return CandidateTable(
        *(torch.cat([getattr(p, f) for p in parts]) for f in ("items", "scores", "like", "rating"))
    )
