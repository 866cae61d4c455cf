"""Save and load trained recommenders as folders a colleague can use without our training code.

A folder holds ``config.json`` + ``model.safetensors`` (``save_pretrained``), ``vocab.json``
(special ids, item index → MovieLens id, label vocabularies) and ``mtrec_params.json`` (the
parameters that made it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from transformers.utils import logging as hf_logging

from mtrec_helpers.core.atomic import atomic_directory
from mtrec_helpers.core.results import plain
from mtrec_helpers.core.stages import damaged_artifact, missing_artifact
from mtrec_helpers.data.store import ProcessedData
from mtrec_helpers.pretraining.models import SeqRecModel


def save_recommender(model: SeqRecModel, folder: Path, data: ProcessedData, params: dict[str, Any]) -> Path:
    """Write the model, its vocabulary and its parameters to ``folder`` (atomically)."""
    vocab = {**data.vocab, "item_ids": [0, *data.items["item_id"].tolist(), -1]}
    hf_logging.disable_progress_bar()
    with atomic_directory(Path(folder)) as tmp:
        model.save_pretrained(tmp)
        (tmp / "vocab.json").write_text(json.dumps(vocab, indent=1), encoding="utf-8")
        (tmp / "mtrec_params.json").write_text(json.dumps(plain(params), indent=2), encoding="utf-8")
    return Path(folder)


def load_recommender(
    folder: Path, model_class: type[SeqRecModel] = SeqRecModel
) -> tuple[SeqRecModel, dict[str, Any], dict[str, Any]]:
    """The model (in eval mode; ``model_class`` e.g. ``MultiTaskModel``), its vocabulary and parameters."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise missing_artifact(folder, "a saved model (config.json)")
    hf_logging.disable_progress_bar()
    try:
        model = model_class.from_pretrained(folder, use_safetensors=True).eval()
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        params = json.loads((folder / "mtrec_params.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:  # JSON, shape errors too
        raise damaged_artifact(folder, f"the saved model cannot be loaded ({_first_line(exc)})") from exc
    return model, vocab, params


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message, with its type."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
