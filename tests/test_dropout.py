"""Dropout with masks from uniform draws (core/dropout.py): the same distribution as torch's, the same
model outside training, the attention's masks kept, and torch's own dropout one switch away."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from configs import train_config
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from mtrec_helpers.core.dropout import ATTENTION, ENV, MaskDropout, attention, mask_dropout, use_mask_dropout
from mtrec_helpers.data import SyntheticConfig, prepare_dataset
from mtrec_helpers.pretraining.models import SeqRecModel, build_config
from mtrec_helpers.pretraining.train import train

N_ITEMS = 40


def _model(objective: str = "causal", dropout: float = 0.3) -> SeqRecModel:
    torch.manual_seed(0)
    return SeqRecModel(
        build_config(
            N_ITEMS, objective, hidden=16, layers=2, heads=2, max_len=12, dropout=dropout, seen_bias=True
        )
    )


def _inputs() -> torch.Tensor:
    inputs = torch.randint(1, N_ITEMS + 1, (6, 12), generator=torch.Generator().manual_seed(1))
    inputs[:2, :5] = 0  # left padding
    return inputs


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_mask_dropout_keeps_one_minus_p_and_the_mean(p: float) -> None:
    torch.manual_seed(0)
    out = mask_dropout(torch.ones(400_000), p)
    kept = out != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.005  # 400,000 draws: sd < 0.0008
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / (1 - p)))
    assert abs(out.mean().item() - 1.0) < 0.02
    assert torch.count_nonzero(mask_dropout(torch.ones(100), 1.0)) == 0


def test_mask_dropout_is_seeded_and_passes_gradients_through_the_mask() -> None:
    x = torch.randn(64, 32, requires_grad=True)
    torch.manual_seed(5)
    first = mask_dropout(x, 0.5)
    torch.manual_seed(5)
    assert torch.equal(first, mask_dropout(x, 0.5))
    first.sum().backward()
    assert torch.equal(x.grad, (first != 0).float() * 2.0)


def test_swapped_model_is_the_same_model_outside_training() -> None:
    model = _model().eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        before = model(_inputs())
    use_mask_dropout(model)
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(type(m) is MaskDropout and not m.training for m in dropouts)
    assert model.config._attn_implementation == ATTENTION
    with torch.no_grad():
        assert torch.equal(model(_inputs()), before)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    model.train()
    torch.manual_seed(0)
    assert not torch.equal(model(_inputs()), before)  # dropout acts while training


@pytest.mark.parametrize("objective", ["causal", "masked"])
def test_attention_keeps_the_padding_and_causal_masks(objective: str) -> None:
    """With a dropout too small to drop anything, the training path equals transformers' sdpa on every
    position that is not padding, and a fully masked row (padding of a causal model) stays finite."""
    model = _model(objective).train()
    layer = model.bert.encoder.layer[0].attention.self
    captured = {}

    def capture(module, query, key, value, mask, **kwargs):
        captured.setdefault("args", (module, query, key, value, mask))  # the first layer's
        return attention(module, query, key, value, mask, **kwargs)

    AttentionInterface.register("capture", capture)
    AttentionMaskInterface.register("capture", sdpa_mask)
    model.set_attn_implementation("capture")
    with torch.no_grad():
        model.encode(_inputs())
    args = captured["args"]
    assert args[0] is layer and args[4].dtype == torch.bool
    ours, _ = attention(*args, dropout=1e-12, scaling=layer.scaling)
    model.set_attn_implementation("sdpa")
    reference, _ = attention(*args, dropout=0.0, scaling=layer.scaling)  # delegates to sdpa
    real = _inputs() != 0
    assert torch.isfinite(ours).all()
    assert torch.allclose(ours[real], reference[real], atol=1e-6)


def test_torch_mode_leaves_the_model_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "torch")
    model = _model()
    use_mask_dropout(model)
    assert not any(isinstance(m, MaskDropout) for m in model.modules())
    assert model.config._attn_implementation == "sdpa"
    monkeypatch.setenv(ENV, "fast")
    with pytest.raises(ValueError, match="MTREC_DROPOUT='fast'"):
        use_mask_dropout(model)


def test_engine_trains_with_mask_dropout_and_keeps_each_modes_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synthetic = SyntheticConfig(n_users=60, n_items=N_ITEMS, min_length=8, max_length=16)
    data = prepare_dataset("synthetic", tmp_path / "data", min_interactions=3, synthetic=synthetic)
    model_config = build_config(data.n_items, "causal", hidden=16, layers=1, max_len=12, dropout=0.3)
    config = train_config(epochs=2)
    uniform = train(model_config, config, data, tmp_path / "run", torch.device("cpu"), progress=False)
    assert any(isinstance(m, MaskDropout) for m in uniform.model.modules())
    monkeypatch.setenv(ENV, "torch")
    own = train(model_config, config, data, tmp_path / "run", torch.device("cpu"), progress=False)
    assert own.resumed_from_epoch == 0  # the other mode's checkpoint is not taken for this one
    assert own.history != uniform.history  # another random stream
    assert not any(isinstance(m, MaskDropout) for m in own.model.modules())
