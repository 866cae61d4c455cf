"""The ensemble's members, loaded from what notebooks 02–05 (and 02b) saved in the artifacts folder.

- ``pop``, ``itemknn``, ``ease``: refitted on the training items with the settings 02 chose on
  validation (seconds; they are not saved as files);
- ``bert4rec``, ``causal``: the two pretrained objectives (``pretrained/<name>/``);
- ``text_aware``: 02b's dual-path model — 02's causal model with the rows of items it never trained
  written from their text (``text/text_aware/``);
- ``multitask``: the finetuned multi-task model (``multitask/model/``);
- ``multi_scenario``: 03b's chosen scenario-aware model (``multi_scenario/model/``) where 03b has run,
  scored over the whole catalogue (under ``domain``, a mixture over the genre families:
  ``mtrec_helpers/multi_scenario/member.py``);
- ``student``: the small student 05 chose (``distillation/model/``) — which may be one trained
  without the teacher's soft targets; :func:`describe_student` says how it was trained;
- ``rl_reranker``: 04's REINFORCE policy re-ordering the multitask model's top-N candidates
  (``rl/policy/``). Its scores exist only among those candidates, so it joins the table and the
  rank fusion (its top N), not the score fusions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtrec_helpers.core.device import autocast
from mtrec_helpers.core.evaluation import ScoreFn
from mtrec_helpers.core.results import read_metrics
from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.ensemble.scores import ScoreBatch, score_batches
from mtrec_helpers.multi_scenario.member import ScenarioMember, load_scenario_member
from mtrec_helpers.multitask.metrics import multitask_scorer
from mtrec_helpers.multitask.model import MultiTaskModel
from mtrec_helpers.multitask.tasks import TaskData
from mtrec_helpers.pretraining.artifacts import load_recommender
from mtrec_helpers.pretraining.baselines import fit_ease, fit_itemknn, fit_popularity
from mtrec_helpers.pretraining.models import SeqRecModel, scorer
from mtrec_helpers.rl.policy import first_slate_logits, load_policy, reranked_scores
from mtrec_helpers.rl.retrieval import retrieve_batch

RERANKER = "rl_reranker"
FINETUNED = {"multitask": ("multitask", "model"), "student": ("distillation", "model")}
SCENARIO = "multi_scenario"  # a member only where chapter 03b has run (``OPTIONAL``)
OPTIONAL = (SCENARIO,)


@dataclass
class Members:
    """Every member's model; :meth:`scorers` gives their score functions for one split."""

    baselines: dict[str, Any]
    pretrained: dict[str, SeqRecModel]
    finetuned: dict[str, MultiTaskModel]
    policy: Any
    policy_name: str
    n_candidates: int
    task_data: TaskData
    student: str = "student"
    scenario: ScenarioMember | None = None

    @property
    def score_names(self) -> list[str]:
        """The members with catalogue-wide scores (all but the re-ranker)."""
        return [*self.baselines, *self.pretrained, *self.finetuned, *([SCENARIO] if self.scenario else [])]

    def check_score_members(self, names: list[str], parameter: str = "SCORE_MEMBERS") -> list[str]:
        """``names`` less the optional members not trained in this artifacts folder (said, not
        hidden); refuse any other name that is not a catalogue-wide member, saying which are."""
        absent = [name for name in names if name in OPTIONAL and name not in self.score_names]
        kept = [name for name in names if name not in absent]
        unknown = sorted(set(kept) - set(self.score_names))
        if unknown or not kept:
            raise ValueError(
                f"{parameter}={names!r}: {', '.join(unknown) or 'empty'} cannot be fused by score; "
                f"choose among {', '.join(self.score_names)} ({RERANKER} only joins rank fusion)."
            )
        if absent:
            print(f"{parameter}: {', '.join(absent)} left out: not trained in this artifacts folder "
                  "(run notebooks/03b_multi_scenario.ipynb first to include it)")  # fmt: skip
        return kept

    def scorers(self, split: str) -> dict[str, ScoreFn]:
        """Score functions of the catalogue-wide members (all but the re-ranker) for ``split``."""
        scorers: dict[str, ScoreFn] = {name: model.score for name, model in self.baselines.items()}
        scorers.update({name: scorer(model) for name, model in self.pretrained.items()})
        scorers.update(
            {name: multitask_scorer(model, self.task_data, split) for name, model in self.finetuned.items()}
        )
        if self.scenario is not None:
            scorers[SCENARIO] = self.scenario.scorer(split)
        return scorers

    def batches(self, split: str, users: np.ndarray | None = None) -> Iterator[ScoreBatch]:
        """Every member's scores on ``split`` for one batch of users (default: all) at a time, the
        re-ranker's included: one forward pass of the multitask model gives its member scores and the
        re-ranker's candidates (its top N, with the heads' predictions) for the batch."""
        model, tables = self.finetuned["multitask"], []

        def multitask(batch_users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
            with torch.no_grad(), autocast(model.device):
                scores, table = retrieve_batch(model, self.task_data, batch_users, self.n_candidates, split)
            tables.append(table)
            return scores

        model.eval()
        scorers = {**self.scorers(split), "multitask": multitask}
        for batch in score_batches(scorers, self.task_data.data, split, users=users):
            table = tables.pop()
            logits = first_slate_logits(self.policy, table)
            batch.scores[RERANKER] = reranked_scores(batch.scores["multitask"], table, logits)
            yield batch


def describe_student(distillation: dict[str, Any]) -> str:
    """How 05's chosen student was trained, from ``distillation/metrics.json``: its size and which
    loss terms it used (a student without soft targets is not called distilled)."""
    name = distillation["best"]
    record = distillation["results"][name]
    terms = ["next-item cross-entropy"]
    if record.get("soft_weight", 0) > 0:
        terms.append("the teacher's soft targets")
    if record.get("cluster_weight", 0) > 0:
        terms.append("the cluster-balanced loss")
    trained = "distilled from the teacher" if len(terms) > 1 else "trained without the teacher's soft targets"
    start = (
        "started in the teacher's subspace" if record.get("from_teacher", True) else "randomly initialised"
    )
    size = f"{record.get('layers', '?')} layer(s) of width {record.get('hidden', '?')}"
    return f"{name}: {size}, {trained} ({' + '.join(terms)}), {start}"


def fit_saved_baselines(data: ProcessedData, tuning: dict[str, Any]) -> dict[str, Any]:
    """Most-popular, item-kNN and EASE with the neighbours, λ and item head chosen in notebook 02."""
    return {
        "pop": fit_popularity(data),
        "itemknn": fit_itemknn(
            data, int(tuning["itemknn"]["best"]), max_items=_head(tuning["itemknn"], data)
        ),
        "ease": fit_ease(data, float(tuning["ease"]["best"]), max_items=_head(tuning["ease"], data)),
    }


def _head(search: dict[str, Any], data: ProcessedData) -> int:
    """How many items 02 fitted a baseline on (every item for runs that predate the setting)."""
    return int(search.get("items", data.n_items))


def load_members(
    artifacts: Path, task_data: TaskData, device: torch.device, progress: Callable[[str], None] = print
) -> Members:
    """Load every member saved under ``artifacts`` onto ``device``."""
    artifacts = Path(artifacts)
    pretraining = read_metrics(artifacts, "pretraining")
    text = read_metrics(artifacts, "text")
    rl = read_metrics(artifacts, "rl")
    distillation = read_metrics(artifacts, "distillation")
    baselines = fit_saved_baselines(task_data.data, pretraining["tuning"])
    pretrained = {
        **{name: load_recommender(artifacts / "pretrained" / name)[0] for name in pretraining["model_dirs"]},
        **{name: load_recommender(artifacts / "text" / name)[0] for name in text["model_dirs"]},
    }
    pretrained = {name: model.to(device) for name, model in pretrained.items()}
    finetuned = {
        name: load_recommender(artifacts.joinpath(*parts), MultiTaskModel)[0].to(device)
        for name, parts in FINETUNED.items()
    }
    policy, policy_name = load_policy(artifacts / "rl" / "policy")
    student = describe_student(distillation)
    scenario = load_scenario_member(artifacts, task_data, device)
    names = [*baselines, *pretrained, *finetuned, *([SCENARIO] if scenario else []), RERANKER]
    progress(f"members: {', '.join(names)} (policy: {policy_name})")
    progress(f"student = {student}")
    if scenario:
        progress(f"{SCENARIO} = 03b's {scenario.name} ({scenario.data.scenarios.definition} scenarios)")
    return Members(
        baselines,
        pretrained,
        finetuned,
        policy,
        policy_name,
        int(rl["params"]["N_CANDIDATES"]),
        task_data,
        student,
        scenario,
    )
