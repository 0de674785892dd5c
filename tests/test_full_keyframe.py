"""The full pack's keyframe codec (paper II-C) on tiny random-weight SD parts: the tokenizer, the
widened UNet, encode/decode through the pack config and models.hub, determinism, errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from m3cvc_codec.models.hub import ModelNotFoundError
from m3cvc_codec.packs.base import PackError
from m3cvc_codec.packs.config import PackConfig, RuntimeOptions

pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


def _sd_tool():
    spec = importlib.util.spec_from_file_location("m3cvc_tiny_sd_test", ROOT / "tools" / "tiny_models" / "sd.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SD = _sd_tool()


def tiny_config(root: Path, steps: int = 2, **components) -> PackConfig:
    comps = SD.keyframe_components(root)
    comps.update(components)
    comps = {k: v for k, v in comps.items() if v is not None}
    grids = {
        g: [n for n in comps if n in SD.SD15_PARTS or n.endswith(g) or n == "keyframe_unet"] for g in ("1/16", "1/8")
    }
    return PackConfig("full", comps, grids, {"keyframe": {"steps": steps, "guidance": 3.0, "scheduler": "ddim"}})


@pytest.fixture(scope="module")
def codec(tiny_models):
    from m3cvc_codec.packs.full.keyframe import KeyframeCodec

    return KeyframeCodec.from_config(tiny_config(tiny_models), RuntimeOptions(models_dir=str(tiny_models)))


def frame(h=64, w=96, seed=0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    img = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], -1)
    return np.clip(img + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)


# -- building blocks ----------------------------------------------------------------------------


def test_tokenizer_shapes_and_save_load(tmp_path):
    from m3cvc_codec.packs.full.keyframe import KeyframeTokenizer

    torch.manual_seed(0)
    for stride, (gh, gw) in ((2, (5, 8)), (1, (10, 16))):
        tok = KeyframeTokenizer(stride=stride, channels=16, code_dim=8, blocks=1).eval()
        z = torch.randn(2, 4, 10, 16)
        idx = tok.tokenize(z)
        assert idx.shape == (2, gh, gw) and idx.dtype == torch.int64
        assert int(idx.min()) >= 0 and int(idx.max()) < 256
        z_hat = tok.dequantize(idx)
        assert z_hat.shape == z.shape
        h, idx2, z_st = tok(z)
        assert torch.equal(idx, idx2) and h.shape == (2, 8, gh, gw) and z_st.shape == z.shape
        with torch.no_grad():
            tok.codebook.mul_(1.5)  # buffers are part of the saved state
        tok.save_pretrained(tmp_path / f"s{stride}")
        back = KeyframeTokenizer.from_pretrained(tmp_path / f"s{stride}").eval()
        assert back.config.stride == stride and back.config.vocab_size == 256
        assert torch.equal(back.codebook, tok.codebook)
        assert torch.equal(back.tokenize(z), tok.tokenize(z))
        assert torch.allclose(back.dequantize(idx), tok.dequantize(idx))


def test_nearest_is_euclidean_argmin():
    from m3cvc_codec.packs.full.keyframe import KeyframeTokenizer

    tok = KeyframeTokenizer(stride=1, channels=8, code_dim=3, vocab_size=4, blocks=1)
    with torch.no_grad():
        tok.codebook.copy_(torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]))
    h = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.1, 0.1], [0.0, 0.2, 0.7]]).t().reshape(1, 3, 1, 3)
    assert tok.nearest(h).tolist() == [[[1, 0, 3]]]
    assert tok.lookup(torch.tensor([[[2]]])).flatten().tolist() == [0.0, 1.0, 0.0]


def test_widen_conv_in_zero_init_keeps_the_unet():
    from m3cvc_codec.packs.full.keyframe import widen_conv_in

    torch.manual_seed(0)
    unet = SD.tiny_unet().eval()
    x = torch.randn(1, 4, 8, 8)
    states = torch.randn(1, 5, SD.TEXT_WIDTH)
    with torch.no_grad():
        before = unet(x, 10, encoder_hidden_states=states).sample
        widen_conv_in(unet, 4)
        assert unet.config.in_channels == 8 and unet.conv_in.in_channels == 8
        after = unet(torch.cat([x, torch.randn(1, 4, 8, 8)], 1), 10, encoder_hidden_states=states).sample
    assert torch.allclose(before, after, atol=1e-6)


# -- the codec --------------------------------------------------------------------------------


def test_encode_both_grids(codec):
    img = frame()
    for grid, shape in (("1/16", (4, 6)), ("1/8", (8, 12))):
        idx = codec.encode(img, grid)
        assert idx.shape == shape and idx.dtype == np.int64
        assert idx.min() >= 0 and idx.max() < 256
        assert np.array_equal(idx, codec.encode(img, grid))
    # a frame that is not a whole number of cells is resized to one
    assert codec.encode(frame(70, 100), "1/16").shape == (4, 6)
    with pytest.raises(PackError, match="no grid"):
        codec.encode(img, "1/4")


def test_decode_is_deterministic_and_conditioned(codec):
    img = frame()
    idx = codec.encode(img, "1/16")
    a = codec.decode(idx, "1/16", "a red car on a road", seed=5)
    assert a.shape == (64, 96, 3) and a.dtype == np.uint8
    assert np.array_equal(a, codec.decode(idx, "1/16", "a red car on a road", seed=5))
    assert not np.array_equal(a, codec.decode(idx, "1/16", "a red car on a road", seed=6))
    assert not np.array_equal(a, codec.decode(idx, "1/16", "a blue boat at sea", seed=5))
    # the tiny UNet's new conv_in channels are random (the builder's stand-in for training):
    # the index map changes the frame
    other = (idx + 17) % 256
    assert not np.array_equal(a, codec.decode(other, "1/16", "a red car on a road", seed=5))
    steps = []
    b = codec.decode(codec.encode(img, "1/8"), "1/8", "x", seed=1, progress=lambda i, n: steps.append((i, n)))
    assert b.shape == (64, 96, 3) and steps == [(1, 2), (2, 2)]
    with pytest.raises(PackError, match="outside"):
        codec.decode(np.full((4, 6), 256), "1/16", "", 0)


def test_schedulers_and_no_guidance(tiny_models):
    from m3cvc_codec.packs.full.keyframe import SCHEDULERS, KeyframeCodec

    idx = np.arange(24).reshape(4, 6)
    opts = RuntimeOptions(models_dir=str(tiny_models))
    for name in ("euler", "dpm", "pndm"):
        cfg = tiny_config(tiny_models)
        data = cfg.to_dict()
        data["settings"]["keyframe"]["scheduler"] = name
        data["settings"]["keyframe"]["guidance"] = 1.0
        codec = KeyframeCodec.from_config(PackConfig.from_dict(data), opts)
        out = codec.decode(idx, "1/16", "a", seed=3)
        assert out.shape == (64, 96, 3)
        assert np.array_equal(out, codec.decode(idx, "1/16", "a", seed=3))
    assert "ddim" in SCHEDULERS
    data = tiny_config(tiny_models).to_dict()
    data["settings"]["keyframe"]["scheduler"] = "nope"
    with pytest.raises(PackError, match="scheduler"):
        KeyframeCodec.from_config(PackConfig.from_dict(data), opts)


def test_slice_sizes():
    from m3cvc_codec.packs.full.slicing import slice_size

    assert [slice_size("auto", h) for h in (1, 2, 8)] == [1, 1, 4]
    assert [slice_size("max", h) for h in (1, 8)] == [1, 1]
    assert [slice_size(3, h) for h in (1, 2, 8)] == [1, 2, 3]  # at most the layer's heads


def test_attention_slicing_is_applied_and_keeps_the_frame(codec, tiny_models, slicing="auto"):
    """RuntimeOptions.attention_slicing gives the UNet sliced attention processors and the
    same frame as unsliced attention (same seed) up to float rounding."""
    from diffusers.models.attention_processor import Attention, SlicedAttnProcessor

    from m3cvc_codec.packs.full.keyframe import KeyframeCodec
    from m3cvc_codec.packs.full.slicing import slice_size

    opts = RuntimeOptions(models_dir=str(tiny_models), attention_slicing=slicing)
    sliced = KeyframeCodec.from_config(tiny_config(tiny_models), opts)
    idx = np.arange(24).reshape(4, 6)
    out = sliced.decode(idx, "1/16", "a red car on a road", seed=5)
    layers = [m for m in sliced.unet("1/16").modules() if isinstance(m, Attention)]
    assert layers and all(isinstance(m.processor, SlicedAttnProcessor) for m in layers)
    assert [m.processor.slice_size for m in layers] == [slice_size(slicing, m.heads) for m in layers]
    assert not any(isinstance(getattr(m, "processor", None), SlicedAttnProcessor) for m in codec.unet("1/16").modules())
    plain = codec.decode(idx, "1/16", "a red car on a road", seed=5)
    assert np.abs(out.astype(int) - plain.astype(int)).max() <= 1
    assert np.array_equal(out, sliced.decode(idx, "1/16", "a red car on a road", seed=5))


def test_cpu_offload_on_the_cpu_changes_nothing(codec, tiny_models):
    """CPU offload with the CPU device is accepted and has nothing to move: the same frame."""
    from m3cvc_codec.packs.full.keyframe import KeyframeCodec

    offload = KeyframeCodec.from_config(
        tiny_config(tiny_models), RuntimeOptions(models_dir=str(tiny_models), cpu_offload=True)
    )
    img = frame()
    idx = offload.encode(img, "1/16")
    assert np.array_equal(idx, codec.encode(img, "1/16"))
    out = offload.decode(idx, "1/16", "x", seed=2)
    assert np.array_equal(out, codec.decode(idx, "1/16", "x", seed=2))
    assert offload.unet("1/16").device.type == "cpu"


def test_errors_name_the_trained_weights(tiny_models, tmp_path):
    from m3cvc_codec.packs.full.keyframe import KeyframeCodec, folder_digest

    opts = RuntimeOptions(models_dir=str(tiny_models))
    img = frame()
    # no trained tokenizer in the config
    codec = KeyframeCodec.from_config(tiny_config(tiny_models, **{"keyframe_tokenizer_1/16": None}), opts)
    with pytest.raises(PackError, match=r"tools/train_full\.py"):
        codec.encode(img, "1/16")
    # a trained folder that is not there
    missing = {"keyframe_unet": {"source": str(tmp_path / "nowhere")}}
    codec = KeyframeCodec.from_config(tiny_config(tiny_models, **missing), opts)
    with pytest.raises(ModelNotFoundError, match=r"tools/train_full\.py") as err:
        codec.decode(np.zeros((4, 6), np.int64), "1/16", "", 0)
    assert "\n" not in str(err.value)
    # a base UNet (not widened) where the trained one should be
    base = {"keyframe_unet": {"source": SD.SD15_ID, "subfolder": "unet"}}
    codec = KeyframeCodec.from_config(tiny_config(tiny_models, **base), opts)
    with pytest.raises(PackError, match="input channels"):
        codec.decode(np.zeros((4, 6), np.int64), "1/16", "", 0)
    # SHA-256 of the trained folder: checked when the config gives one
    folder = tiny_models / SD.KEYFRAME_TINY / "tokenizer_1-16"
    good = {"keyframe_tokenizer_1/16": {"source": str(folder), "sha256": folder_digest(folder)}}
    assert KeyframeCodec.from_config(tiny_config(tiny_models, **good), opts).encode(img, "1/16").shape == (4, 6)
    bad = {"keyframe_tokenizer_1/16": {"source": str(folder), "sha256": "0" * 64}}
    with pytest.raises(PackError, match="digest"):
        KeyframeCodec.from_config(tiny_config(tiny_models, **bad), opts).encode(img, "1/16")
    # a missing SD part without --models: one line naming the model
    data = tiny_config(tiny_models).to_dict()
    del data["components"]["text_encoder"]
    data["grids"] = {}
    with pytest.raises(PackError, match="text_encoder"):
        KeyframeCodec.from_config(PackConfig.from_dict(data), opts)


def test_tiny_sd_layout(tiny_models):
    sd = tiny_models / SD.SD15_ID
    for part in SD.SD15_PARTS:
        assert (sd / part).is_dir(), part
    sched = json.loads((sd / "scheduler" / "scheduler_config.json").read_text())
    assert sched["_class_name"] == "PNDMScheduler" and sched["beta_schedule"] == "scaled_linear"
    vae = json.loads((sd / "vae" / "config.json").read_text())
    assert 2 ** (len(vae["block_out_channels"]) - 1) == 8 and vae["latent_channels"] == 4
    unet = json.loads((tiny_models / SD.KEYFRAME_TINY / "unet" / "config.json").read_text())
    assert unet["in_channels"] == 8
