"""Keyframe scorers: the pack's own (default, unchanged streams) and the paper's CLIP + optical
flow, on the tiny random-weight CLIP of tools/make_tiny_models.py through the real loading code.
Flow: OpenCV DIS where torchvision does not import; RAFT's wiring with a stand-in torchvision."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import types

import numpy as np
import pytest
from conftest import _load_tool
from fake_pack import FakePack, moving_square, textured_pan

from m3cvc_codec import CodecError
from m3cvc_codec.keyframes import KeyframeParams, MotionScorer, SemanticScorer, select_composite
from m3cvc_codec.models import ModelError, ModelNotFoundError
from m3cvc_codec.models import flow as flow_mod
from m3cvc_codec.models.flow import FlowMagnitude, working_size
from m3cvc_codec.packs.config import RuntimeOptions
from m3cvc_codec.scorers import SCORERS, ClipScorer, KeyframeScorer, PackScorer, scorer_for

CLIP_ID = "openai/clip-vit-base-patch32"


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A models folder holding only the tiny CLIP (under the real id), built once here."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("tiny-clip")
    _load_tool("make_tiny_models").make_tiny_models(root, ["clip"])
    return root


@pytest.fixture(scope="module")
def embedder(tiny_clip):
    from m3cvc_codec.models.clip import ClipEmbedder

    return ClipEmbedder(CLIP_ID, RuntimeOptions(models_dir=str(tiny_clip)), batch=4)


class _Lines(logging.Handler):
    """The messages logged on the codec's logger (the CLIs' setup stops them propagating to
    pytest's caplog, so listen on the logger itself)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def logged():
    log = logging.getLogger("m3cvc_codec")
    handler, level = _Lines(), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield handler.lines
    log.removeHandler(handler)
    log.setLevel(level)


def frames(n=6, w=96, h=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- CLIP


def test_clip_embeddings_shape_determinism_batching(embedder):
    x = frames(7)
    a = embedder.embed(x)
    assert a.shape == (7, 16) and a.dtype == np.float32  # tiny CLIP: projection_dim 16
    assert np.array_equal(a, embedder.embed(x))  # same frames, same features
    one_by_one = np.concatenate([embedder.embed(f) for f in x])  # a single frame works too
    assert np.allclose(a, one_by_one, atol=1e-5)
    assert embedder.embed(x[:0]).shape == (0, 16)
    with pytest.raises(ModelError, match="N x H x W x 3"):
        embedder.embed(np.zeros((2, 8, 8), np.uint8))


def test_clip_scorer_through_select_composite(tiny_clip, logged):
    pack = FakePack()
    scorer = scorer_for("clip", pack, RuntimeOptions(models_dir=str(tiny_clip)), flow="dis")
    assert not logged  # flow named: no fallback line
    assert isinstance(scorer, ClipScorer) and isinstance(scorer, KeyframeScorer)
    assert scorer.metadata() == {"name": "clip", "clip_model": CLIP_ID, "flow": "dis-medium", "flow_side": 256}
    assert scorer.default_params == {"lambda1": 3.0, "lambda2": 0.015, "threshold": 0.35}
    video = moving_square(20, 128, 80, step=2, cut_at=9)
    sem, mot = SemanticScorer(scorer), MotionScorer(scorer)
    assert sem.batch == 16 and mot.lookahead == 1  # DIS: pair by pair
    for f in video:
        sem.add(f)
        mot.add(f)
    assert sem(3, 3) == pytest.approx(0.0, abs=1e-6) and sem(2, 9) == pytest.approx(sem(9, 2))
    assert 0.0 < mot(1, 0) < mot(6, 0)  # a small square moving 2 px a frame over a plain background
    params = KeyframeParams(**scorer.default_params)
    clips = select_composite(20, sem, mot, params)
    assert clips[0][0] == 0 and sum(c for _, c in clips) == 20
    assert clips == select_composite(20, sem, mot, params)
    # semantic only (the paper's lambda2 = 0 ablation): threshold just under the cut's distance
    only = KeyframeParams(lambda1=1.0, lambda2=0.0, threshold=sem(9, 0) - 1e-6, min_clip=9)
    assert [a for a, _ in select_composite(20, sem, mot, only)][:2] == [0, 9]


def test_missing_clip_model_is_one_line(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(ModelNotFoundError) as err:
        scorer_for("clip", FakePack(), RuntimeOptions(models_dir=str(tmp_path)))
    message = str(err.value)
    assert "\n" not in message and CLIP_ID in message and "--local-dir" in message
    with pytest.raises(ModelNotFoundError, match="clip-other"):
        scorer_for("clip", FakePack(), RuntimeOptions(models_dir=str(tmp_path)), clip_model="org/clip-other")


# --------------------------------------------------------------------------- the pack scorer


def test_pack_scorer_is_the_pack_unchanged():
    pack = FakePack()
    scorer = scorer_for("pack", pack)
    assert isinstance(scorer, PackScorer) and scorer.metadata() == {}
    assert scorer.default_params == {"lambda1": 10.0, "lambda2": 0.02, "threshold": 0.35}  # KeyframeParams()
    video = textured_pan(4, 128, 80, step=2)
    assert np.array_equal(scorer.embed(video), pack.embed(video))
    fa, fb = scorer.motion_features(video), pack.motion_features(video)
    assert np.array_equal(scorer.motion(fa[:3], fa[1:]), pack.motion(fb[:3], fb[1:]))
    assert SCORERS[0] == "pack"
    with pytest.raises(CodecError, match="not one of pack, clip"):
        scorer_for("raft", pack)
    with pytest.raises(CodecError, match="clip scorer only"):
        scorer_for("pack", pack, clip_model=CLIP_ID)


def test_scorer_modules_do_not_import_torch():
    code = (
        "import sys, json\nimport m3cvc_codec.keyframes, m3cvc_codec.scorers, m3cvc_codec.models.clip, "
        "m3cvc_codec.models.flow\nprint(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    assert not loaded & {"torch", "transformers", "torchvision"}


# --------------------------------------------------------------------------- flow


@pytest.mark.parametrize("side", [128, 256, 512])
def test_flow_magnitude_is_in_coding_pixels(side):
    flow = FlowMagnitude("dis", side=side)
    assert flow.backend == "dis" and flow.metadata() == {"flow": "dis-medium", "flow_side": side}
    video = textured_pan(2, 512, 320, step=3)
    feats = flow.motion_features(video)
    assert feats[0].shape == (round(320 * side / 512), side) and feats[0].frame_size == (512, 320)
    assert flow.motion([feats[0]], [feats[1]])[0] == pytest.approx(3.0, abs=0.3)
    assert flow.motion([feats[0]], [feats[0]])[0] == pytest.approx(0.0, abs=0.05)
    assert flow.motion([], []).shape == (0,)


def test_flow_rejects_mismatches():
    flow = FlowMagnitude("dis")
    a = flow.motion_features(textured_pan(1, 128, 80))
    b = flow.motion_features(textured_pan(1, 64, 48))
    with pytest.raises(ModelError, match="different sizes"):
        flow.motion(a, b)
    with pytest.raises(ModelError, match="1 features before, 0 after"):
        flow.motion(a, [])
    with pytest.raises(ModelError, match="not one of"):
        FlowMagnitude("farneback")


def test_tiny_frames_fall_back_to_grey_difference():
    flow = FlowMagnitude("dis")
    a, b = flow.motion_features(np.stack([np.zeros((8, 12, 3), np.uint8), np.full((8, 12, 3), 51, np.uint8)]))
    assert flow.motion([a], [b])[0] == pytest.approx(0.2)


def test_working_size():
    assert working_size(512, 320, 256) == (256, 160)
    assert working_size(176, 144, 256) == (176, 144)  # never upscaled
    assert working_size(512, 288, 256, 8, 128) == (256, 144)
    assert working_size(1280, 720, 256, 8, 128) == (256, 144)
    assert working_size(1024, 300, 256, 8, 128) == (440, 128)  # RAFT's minimum side wins
    assert working_size(100, 60, 256, 8, 128) == (216, 128)  # upscaled to RAFT's minimum


def test_auto_falls_back_to_dis_with_one_line(logged, monkeypatch):
    pytest.importorskip("torch")
    # where torchvision imports, make its weights absent (they are never downloaded)
    monkeypatch.setattr(flow_mod, "_weights_file", lambda filename, models_dir: (None, []))
    flow = FlowMagnitude("auto")
    assert flow.backend == "dis" and flow.batch == 1
    lines = list(logged)
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert lines[0].startswith("RAFT is unavailable (") and "DIS" in lines[0]
    with pytest.raises(ModelError):  # asked for by name: an error, not a fallback
        FlowMagnitude("raft_small")


# A stand-in torchvision.models.optical_flow: the RAFT path's wiring (weights found locally,
# inputs in [-1, 1] at a multiple of 8, batched pairs, flow scaled back per axis).
def _fake_torchvision(monkeypatch, calls):
    import torch

    class FakeRaft(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.tensor([1.5, -2.0]))

        def forward(self, image1, image2, num_flow_updates=12):
            calls.append((tuple(image1.shape), float(image1.min()), float(image1.max()), num_flow_updates))
            n, _, h, w = image1.shape
            flow = self.bias[None, :, None, None].expand(n, 2, h, w)
            return [flow * 0.5, flow]

    weights = types.SimpleNamespace(url="https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth")
    of = types.ModuleType("torchvision.models.optical_flow")
    of.raft_large = lambda weights=None, progress=False: FakeRaft()  # type: ignore[attr-defined]
    of.Raft_Large_Weights = types.SimpleNamespace(DEFAULT=weights)  # type: ignore[attr-defined]
    models = types.ModuleType("torchvision.models")
    models.optical_flow = of  # type: ignore[attr-defined]
    tv = types.ModuleType("torchvision")
    tv.models = models  # type: ignore[attr-defined]
    for name, module in (("torchvision", tv), ("torchvision.models", models), ("torchvision.models.optical_flow", of)):
        monkeypatch.setitem(sys.modules, name, module)
    return FakeRaft


def test_raft_path_with_a_stand_in_torchvision(tmp_path, monkeypatch, logged):
    torch = pytest.importorskip("torch")
    calls: list = []
    fake = _fake_torchvision(monkeypatch, calls)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    options = RuntimeOptions(models_dir=str(tmp_path / "models"))
    with pytest.raises(ModelNotFoundError, match=r"raft_large_C_T_SKHT_V2-ff5fadd5\.pth are not in"):
        FlowMagnitude("raft_large", options)
    (tmp_path / "models" / "torchvision").mkdir(parents=True)
    torch.save(fake().state_dict(), tmp_path / "models" / "torchvision" / "raft_large_C_T_SKHT_V2-ff5fadd5.pth")
    if not torch.cuda.is_available():  # a bad device is an error, not a reason to fall back
        with pytest.raises(ModelError, match="CUDA is not available"):
            FlowMagnitude("auto", RuntimeOptions(device="cuda", models_dir=options.models_dir))
    flow = FlowMagnitude("auto", options, batch=3)
    assert not logged and flow.backend == "raft_large" and flow.metadata()["flow"] == "raft_large"
    video = textured_pan(5, 512, 320, step=1)
    feats = flow.motion_features(video)
    assert feats[0].shape == (160, 256, 3)
    got = flow.motion(feats[:4], feats[1:])
    assert got == pytest.approx([np.hypot(1.5 * 2, 2.0 * 2)] * 4)  # working 256x160 -> coding 512x320
    assert [c[0][0] for c in calls] == [3, 1] and all(c[0][2:] == (160, 256) for c in calls)
    assert all(lo >= -1.0 and hi <= 1.0 and n == 12 for _, lo, hi, n in calls)
    # MotionScorer batches RAFT pairs ahead: one call measures (1, 0), (2, 0), (3, 0)
    calls.clear()
    scorer = ClipScorer(types.SimpleNamespace(batch=4, metadata=dict), flow)
    mot = MotionScorer(scorer)
    assert mot.lookahead == 3
    for f in video:
        mot.add(f)
    mot(1, 0), mot(2, 0), mot(3, 0), mot(4, 0)
    assert [c[0][0] for c in calls] == [3, 1]
