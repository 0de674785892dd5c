"""The lite pack's training module (m3cvc_codec/packs/lite/training.py): models and losses
importable outside the training script, and kept out of the pack's own imports."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from conftest import ROOT


def need_torch():
    if importlib.util.find_spec("torch") is None:
        if os.environ.get("CI"):
            pytest.fail("torch (the train extra) missing in CI")
        pytest.skip("torch not installed (pip install -e .[train])")
    from m3cvc_codec.packs.lite import training

    return training


def _trainer():
    spec = importlib.util.spec_from_file_location("train_lite", ROOT / "tools" / "train_lite.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_pack_never_imports_the_training_module():
    code = (
        "import sys\n"
        "import m3cvc_codec.packs.lite\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m.endswith('.training'))\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_script_reads_arguments_without_torch():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('t', {str(ROOT / 'tools' / 'train_lite.py')!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "assert mod.colour_shares('1/8=0.5') == {'1/8': 0.5}\n"
        "assert 'torch' not in sys.modules\n"
    )
    r = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


@pytest.mark.slow  # imports torch (about 2 s)
def test_script_variants_are_the_models():
    training = need_torch()
    assert tuple(training.VARIANTS) == _trainer().VARIANT_NAMES


@pytest.mark.slow  # imports torch (about 2 s)
def test_model_shapes_and_losses():
    training = need_torch()
    import torch

    torch.manual_seed(0)
    model = training.VQAE(training.VARIANTS["1/8"]["channels"])
    model.train()
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        y, idx, commit = model(x, torch.Generator().manual_seed(1))
    assert y.shape == x.shape and idx.shape == (2, 4, 6)
    assert int(idx.min()) >= 0 and int(idx.max()) < training.VOCAB
    assert commit.ndim == 0 and float(commit) >= 0
    # SSIM of a batch with itself is 1; the losses add up as the docs say
    assert float(training.ssim2(x, x)) == pytest.approx(1.0, abs=1e-5)
    loss, l1, s = training.reconstruction_loss(y, x, 0.2)
    assert float(loss) == pytest.approx(float(l1) + 0.2 * (1 - float(s)), rel=1e-6)
    total, l1b, sb = training.training_loss(y, x, commit, 0.2)
    assert float(l1b) == float(l1) and float(sb) == float(s)
    assert float(total) == pytest.approx(float(loss) + training.BETA * float(commit), rel=1e-6)
    assert training.count_params(model.encoder) > 0


@pytest.mark.slow  # imports torch (about 2 s)
def test_onnx_weights_round_trip_and_refusal(tmp_path):
    training = need_torch()
    if importlib.util.find_spec("onnx") is None:
        pytest.skip("onnx not installed (pip install -e .[train])")
    import numpy as np
    import torch

    torch.manual_seed(0)
    channels = training.VARIANTS["1/8"]["channels"]
    model = training.VQAE(channels)
    with torch.no_grad():  # trained weights: no two parameters alike (the exporter shares equal ones)
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    training.export_variant(model, tmp_path, np.ones(training.VOCAB, np.int64))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(training.WEIGHT_FILES)
    dec = training.VQAE(channels).decoder
    training.load_onnx_weights(dec, tmp_path / "decoder.onnx")
    for name, value in dec.state_dict().items():  # read back: float16-stored, but for tensors under 16 values
        expected = model.decoder.state_dict()[name]
        assert torch.equal(value, expected.half().float() if expected.numel() >= 16 else expected), name
    with pytest.raises(ValueError, match="no weights for"):
        training.load_onnx_weights(model.encoder, tmp_path / "decoder.onnx")
