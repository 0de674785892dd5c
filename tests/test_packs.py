"""The pack interface (m3cvc_codec.packs): the Pack ABC, PackConfig / RuntimeOptions, the one
weights-hash rule, load_pack's explicit cache, and the lite pack loaded from a config."""

from __future__ import annotations

import hashlib
import io
import json
import shutil

import numpy as np
import pytest
from conftest import ROOT
from fake_pack import FakePack, moving_square, textured_pan

import m3cvc_codec
import m3cvc_format as m
from m3cvc_codec.clip_decoder import ClipDecoder
from m3cvc_codec.packs import (
    Component,
    GridSpec,
    Pack,
    PackCache,
    PackConfig,
    PackError,
    RuntimeOptions,
    check_stream_pack,
    load_pack,
    weights_hash,
)
from m3cvc_codec.packs.lite import LitePack

WEIGHTS = ROOT / "m3cvc_codec" / "packs" / "lite" / "weights"
MANIFEST = json.loads((WEIGHTS / "manifest.json").read_text())


# -- the ABC ------------------------------------------------------------------------------


class _Minimal(Pack):
    pack_id = "test.minimal"
    grids = (GridSpec("g", 8, 4),)

    @classmethod
    def default_config(cls):
        return PackConfig("test.minimal", {"w": Component("w.bin", sha256="ab" * 32)}, {"g": ["w"]})

    def encode_keyframe(self, frame, grid):
        return np.zeros(grid.grid(frame.shape[1], frame.shape[0]), np.int64)

    def decode_keyframe(self, indices, grid, text, seed):
        return np.zeros((indices.shape[0] * 8, indices.shape[1] * 8, 3), np.uint8)

    def reconstruct_clip(self, first, last, clip_text, frame_count, seed):
        return [first] * frame_count

    def embed(self, frames):
        return np.ones((len(frames), 2))

    def motion_features(self, frames):
        return [f[..., 0] for f in frames]

    def motion(self, before, after):
        return np.zeros(len(before))


def test_abc_refuses_incomplete_packs():
    abstract = {
        "encode_keyframe",
        "decode_keyframe",
        "reconstruct_clip",
        "embed",
        "motion_features",
        "motion",
    }
    assert Pack.__abstractmethods__ == abstract
    for name in abstract:
        namespace = {k: _Minimal.__dict__[k] for k in abstract | {"pack_id", "grids", "default_config"} if k != name}
        incomplete = type("Incomplete", (Pack,), namespace)
        assert incomplete.__abstractmethods__ == {name}
        with pytest.raises(TypeError, match=name):
            incomplete()
    _Minimal()  # complete


def test_defaults_of_the_base_class():
    pack = _Minimal()
    g = pack.grid("g")
    assert g.vocab_size == 4 and pack.prior(g) == ()
    frame = np.zeros((16, 24, 3), np.uint8)
    assert np.array_equal(pack.encode_keyframe_near(frame, g, np.ones((2, 3), np.int64), 0.5), np.zeros((2, 3)))
    assert pack.weights_hash(g) == weights_hash({"w": "ab" * 32})
    assert pack.options == RuntimeOptions() and pack.options.device == "cpu"
    with pytest.raises(PackError, match="no grid variant"):
        pack.grid("h")
    with pytest.raises(PackError, match="for pack 'other'"):
        _Minimal(PackConfig("other"))

    class Configless(_Minimal):
        pack_id = "test.configless"
        default_config = Pack.__dict__["default_config"]

    with pytest.raises(PackError, match=r"'test\.configless' needs a config"):
        Configless()
    assert isinstance(FakePack(), Pack) and isinstance(LitePack(), Pack)


# -- config -------------------------------------------------------------------------------


def test_weights_hash_rule():
    entries = {"b": "22", "a": "11"}
    assert weights_hash(entries) == hashlib.sha256(b"a 11\nb 22\n").digest()
    for grid, v in MANIFEST["variants"].items():
        assert weights_hash(v["files"]).hex() == v["weights_hash"], grid


def test_config_round_trip(tmp_path):
    config = PackConfig(
        "org.example.full",
        {
            "vae": Component("stabilityai/sd-vae-ft-mse", revision="31f26fd"),
            "decoder": {"source": "ours/keyframe_decoder.safetensors", "sha256": "9f" * 32},
            "unet": {"source": "org/sd", "revision": "abc", "subfolder": "unet"},
        },
        {"32x32": ["vae", "decoder", "unet"], "64x64": ("vae", "decoder")},
        {"guidance": 3.0, "steps": [4, 8]},
        root=tmp_path,
    )
    path = tmp_path / "pack.json"
    config.save(path)
    again = PackConfig.from_file(path)
    assert again == config and again.hash() == config.hash() and again.to_dict() == config.to_dict()
    assert again.components["vae"] == Component("stabilityai/sd-vae-ft-mse", "31f26fd")
    assert again.settings["steps"] == (4, 8)
    assert again.components["unet"] == Component("org/sd", "abc", subfolder="unet")
    assert again.weights_hash("32x32") == weights_hash(
        {"vae": "stabilityai/sd-vae-ft-mse@31f26fd", "decoder": "9f" * 32, "unet": "org/sd@abc/unet"}
    )
    assert again.weights_hash("64x64") == weights_hash(
        {"vae": "stabilityai/sd-vae-ft-mse@31f26fd", "decoder": "9f" * 32}
    )
    assert again.resolve("vae") == "stabilityai/sd-vae-ft-mse"  # a model id stays one
    (tmp_path / "models" / "stabilityai" / "sd-vae-ft-mse").mkdir(parents=True)
    assert again.resolve("vae", tmp_path / "models") == tmp_path / "models" / "stabilityai" / "sd-vae-ft-mse"
    # another folder, or other data, is another config
    shutil.copy(path, tmp_path / "models" / "pack.json")
    assert PackConfig.from_file(tmp_path / "models" / "pack.json") != config
    assert PackConfig("org.example.full", config.components, config.grids, {"guidance": 4.0}, tmp_path) != config


def test_config_errors(tmp_path):
    with pytest.raises(PackError, match="unknown components"):
        PackConfig("p", {"a": Component("x")}, {"g": ["a", "b"]})
    with pytest.raises(PackError, match="needs a source"):
        PackConfig("p", {"a": {"source": ""}})
    with pytest.raises(PackError, match="no components for grid"):
        PackConfig("p").weights_hash("g")
    with pytest.raises(PackError, match="cannot read pack config"):
        PackConfig.from_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"components": {}}')
    with pytest.raises(PackError, match='"pack" id'):
        PackConfig.from_file(tmp_path / "bad.json")


def test_lite_manifest_is_the_lite_config(tmp_path):
    config = LitePack.default_config()
    assert config.pack_id == "lite" and config.root == WEIGHTS
    assert PackConfig.from_file(WEIGHTS) == config  # a folder means its manifest.json
    for grid in LitePack.grids:
        assert config.weights_hash(grid.name).hex() == MANIFEST["variants"][grid.name]["weights_hash"]
    # saved in the generic form beside the weights, it is the same config
    shutil.copytree(WEIGHTS, tmp_path / "w")
    PackConfig.from_file(tmp_path / "w").save(tmp_path / "w" / "pack.json")
    generic = PackConfig.from_file(tmp_path / "w" / "pack.json")
    assert "components" in json.loads((tmp_path / "w" / "pack.json").read_text())
    assert generic == PackConfig.from_file(tmp_path / "w")
    pack = load_pack("lite", generic, cache=None)
    assert [pack.weights_hash(g) for g in pack.grids] == [LitePack().weights_hash(g) for g in pack.grids]


# -- loading and the cache ----------------------------------------------------------------


def test_cache_shares_only_the_same_config_and_options(tmp_path):
    cache = PackCache()
    a = load_pack("lite", cache=cache)
    assert load_pack("lite", cache=cache) is a
    assert load_pack("lite", LitePack.default_config(), RuntimeOptions(), cache=cache) is a
    assert load_pack("lite", WEIGHTS, cache=cache) is a  # the same config, read again
    shutil.copytree(WEIGHTS, tmp_path / "w")
    b = load_pack("lite", tmp_path / "w", cache=cache)
    assert b is not a and b.config.root == tmp_path / "w"
    c = load_pack("lite", options=RuntimeOptions(dtype="float32"), cache=cache)
    assert c is not a
    assert len(cache) == 3 and {k[0] for k in cache} == {"lite"}
    assert load_pack("lite", cache=None) is not a  # no cache: a new pack
    cache.clear()
    assert load_pack("lite", cache=cache) is not a


def test_load_pack_errors(tmp_path):
    with pytest.raises(PackError, match="not installed"):
        load_pack("org.example.missing")
    with pytest.raises(PackError, match=r"for pack 'test\.minimal', not 'lite'"):
        load_pack("lite", _Minimal.default_config())


def test_lite_refuses_other_devices():
    for options in (RuntimeOptions(device="cuda"), RuntimeOptions(device="cuda:1", cpu_offload=True)):
        with pytest.raises(PackError, match="CPU only"):
            load_pack("lite", options=options, cache=None)
    with pytest.raises(PackError, match="float32"):
        LitePack(options=RuntimeOptions(dtype="float16"))
    assert LitePack(options=RuntimeOptions(models_dir="/nonexistent")).options.models_dir == "/nonexistent"


def test_attention_slicing_values():
    """RuntimeOptions.attention_slicing: off, auto, max or heads per slice, checked."""
    from m3cvc_codec.packs.config import attention_slicing_value

    for given, kept in ((None, None), (False, None), ("off", None), ("", None), (True, "auto"), ("Auto", "auto")):
        assert RuntimeOptions(attention_slicing=given).attention_slicing == kept
    assert RuntimeOptions(attention_slicing=" max ").attention_slicing == "max"
    assert RuntimeOptions(attention_slicing="4") == RuntimeOptions(attention_slicing=4)
    for bad in (0, -2, "half", "1.5", 2.0):
        with pytest.raises(PackError, match="attention slicing"):
            RuntimeOptions(attention_slicing=bad)
    assert attention_slicing_value(8) == 8


def test_lite_accepts_offload_and_slicing_with_no_effect():
    """The lite pack runs small ONNX models on the CPU: CPU offload and attention slicing are
    accepted and change nothing (one command line serves both packs)."""
    frame = moving_square(1, 64, 64)[0]
    plain = LitePack()
    asked = LitePack(options=RuntimeOptions(cpu_offload=True, attention_slicing="max"))
    grid = plain.grids[0]
    assert np.array_equal(asked.encode_keyframe(frame, grid), plain.encode_keyframe(frame, grid))


# -- streams ------------------------------------------------------------------------------


def lite_stream(pack: LitePack, grid: GridSpec, frames: np.ndarray) -> bytes:
    """A two-clip lite stream written with the format package (keyframes: frames 0 and 4)."""
    h, w = frames.shape[1:3]
    gh, gw = grid.grid(w, h)
    header = m.Header(
        width=w,
        height=h,
        fps=8,
        grid_h=gh,
        grid_w=gw,
        vocab_size=grid.vocab_size,
        pack_id=pack.pack_id,
        pack_hash=pack.weights_hash(grid),
    )
    clips = [
        m.Clip(
            index=k, first_frame=4 * k, frame_count=4, mode=mode, index_map=pack.encode_keyframe(frames[4 * k], grid)
        )
        for k, mode in enumerate((m.Mode.INTERPOLATION, m.Mode.PREDICTION))
    ]
    buf = io.BytesIO()
    m.write(buf, header, clips)
    return buf.getvalue()


def test_header_hash_is_the_config_hash_and_decodes(tmp_path):
    pack = LitePack()
    grid = pack.grid("1/16")
    frames = textured_pan(8, 128, 80, step=2)
    data = lite_stream(pack, grid, frames)
    header = m.Reader(io.BytesIO(data)).header
    assert header.pack_hash.hex() == MANIFEST["variants"]["1/16"]["weights_hash"]
    assert check_stream_pack(header) == (load_pack("lite"), grid)
    # a copied weights folder is a config that decodes the stream to the same frames
    shutil.copytree(WEIGHTS, tmp_path / "w")
    decoder = ClipDecoder(header, pack_config=tmp_path / "w")
    assert decoder.pack is not load_pack("lite") and decoder.pack.config.root == tmp_path / "w"
    with m.FrameSource.open(data) as src:
        default = [f for _, f in src.frames()]
    with m.FrameSource.open(data, decoder=decoder) as src:
        copied = [f for _, f in src.frames()]
    assert len(default) == 8 and all(np.array_equal(x, y) for x, y in zip(default, copied))
    k0 = pack.decode_keyframe(pack.encode_keyframe(frames[0], grid), grid, "", 0)
    assert np.array_equal(default[0], k0)
    assert all(np.array_equal(f, default[4]) for f in default[5:])  # the last clip is predicted
    # m3cvc_codec.decode takes the same config and writes the same frames
    report = m3cvc_codec.decode(data, tmp_path / "png", pack_config=tmp_path / "w")
    assert report.frames == 8 and report.clips_decoded == 2


def test_changed_weights_are_refused(tmp_path):
    pack = LitePack()
    grid = pack.grid("1/8")
    data = lite_stream(pack, grid, moving_square(8, 128, 80))
    header = m.Reader(io.BytesIO(data)).header
    # a file changed, its manifest not: refused when the file is loaded
    shutil.copytree(WEIGHTS, tmp_path / "w")
    p = tmp_path / "w" / "ds8" / "decoder.onnx"
    p.write_bytes(p.read_bytes() + b"\0")
    decoder = ClipDecoder(header, pack_config=tmp_path / "w")
    with m.FrameSource.open(data, decoder=decoder) as src, pytest.raises(PackError, match="SHA-256"):
        src.frame(0)
    # a file changed and its manifest updated (retrained weights): the stream's hash differs
    manifest = json.loads((tmp_path / "w" / "manifest.json").read_text())
    manifest["variants"]["1/8"]["files"]["ds8/decoder.onnx"] = hashlib.sha256(p.read_bytes()).hexdigest()
    (tmp_path / "w" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackError, match="wrong frames"):
        ClipDecoder(header, pack_config=tmp_path / "w")
    with pytest.raises(PackError, match="wrong frames"):
        m3cvc_codec.decode(data, tmp_path / "out.y4m", pack_config=tmp_path / "w")
    assert not (tmp_path / "out.y4m").exists()


# -- the lite scorers ---------------------------------------------------------------------


def reference_motion(frames: np.ndarray, pairs) -> list[float]:
    """The keyframe selector's motion values before the scorers moved into the pack
    (keyframes.grey_small + MotionScorer.__call__, copied verbatim)."""
    import cv2

    side = 160
    smalls, scale = [], 1.0
    for rgb in frames:
        h, w = rgb.shape[:2]
        s = max(1.0, max(h, w) / side)
        grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        if s > 1.0:
            grey = cv2.resize(grey, (max(8, round(w / s)), max(8, round(h / s))), interpolation=cv2.INTER_AREA)
        smalls.append(grey)
        scale = w / grey.shape[1]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    out = []
    for n, l in pairs:
        a, b = smalls[l], smalls[n]
        if min(a.shape) < 16:
            out.append(float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean()) / 255.0)
        else:
            flow = dis.calc(a, b, None)
            out.append(float(np.sqrt((flow.astype(np.float64) ** 2).sum(axis=-1)).mean()) * scale)
    return out


@pytest.mark.parametrize("size", [(512, 320), (176, 144), (24, 12)])
def test_lite_motion_is_the_selectors_motion(size):
    import cv2

    w, h = size
    pan = textured_pan(6, 256, 160, step=4)
    frames = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in pan])
    pack = load_pack("lite")
    feats = pack.motion_features(frames)
    assert len(feats) == 6 and max(feats[0].shape) <= 160
    pairs = [(1, 0), (3, 0), (5, 2), (0, 5), (4, 4)]
    got = pack.motion([feats[l] for _, l in pairs], [feats[n] for n, _ in pairs])
    assert got.dtype == np.float64 and got.shape == (5,)
    assert got.tolist() == reference_motion(frames, pairs)  # exactly, not approximately
    assert got[4] == 0 and (got[:4] > 0).all()
    one = pack.motion_features(frames[3])  # a single frame works too
    assert np.array_equal(one[0], feats[3]) and one[0].scale == feats[3].scale
    assert pack.motion([], []).shape == (0,)


def test_clip_decoder_fits_a_packs_frames_to_the_stream(monkeypatch):
    """A pack whose clip model works at its own size (half the stream's here) gets its frames
    resized by the one clip decoder, and receives the clip's text and decode seed."""
    from fake_pack import install

    seen = []

    class HalfSize(FakePack):
        def reconstruct_clip(self, first, last, clip_text, frame_count, seed):
            seen.append((last is None, clip_text, seed))
            return [first[::2, ::2]] * frame_count

    pack = HalfSize()
    install(monkeypatch, {"test.fake": pack})
    grid = pack.grid("1/16")
    frames = moving_square(8, 128, 80)
    header = m.Header(
        width=128, height=80, fps=8, grid_h=5, grid_w=8, vocab_size=256, pack_id="test.fake", stream_seed=9
    )
    clips = [
        m.Clip(
            index=k,
            first_frame=4 * k,
            frame_count=4,
            clip_text=f"clip {k}",
            index_map=pack.encode_keyframe(frames[4 * k], grid),
        )
        for k in range(2)
    ]
    buf = io.BytesIO()
    m.write(buf, header, clips)
    with m.FrameSource.open(buf.getvalue(), decoder=ClipDecoder(header)) as src:
        out = [f for _, f in src.frames()]
    assert len(out) == 8 and all(f.shape == (80, 128, 3) and f.dtype == np.uint8 for f in out)
    assert seen == [(False, "clip 0", m.decode_seed(9, 0, None)), (True, "clip 1", m.decode_seed(9, 1, None))]
