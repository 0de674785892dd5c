"""The full pack's clip reconstruction (m3cvc_codec.packs.full.clips): frame-count planning,
settings, and both backends (LTX-Video, AnimateDiff SparseCtrl) in both modes on the tiny
random-weight models of tools/make_tiny_models.py (tools/tiny_models/video.py and sd.py)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from conftest import ROOT

from m3cvc_codec.packs import PackConfig, PackError, RuntimeOptions
from m3cvc_codec.packs.full.clips import (
    ClipBackend,
    ClipSettings,
    LtxBackend,
    SparseCtrlBackend,
    frame_schedule,
    load_clip_backend,
)

LTX_ID = "Lightricks/LTX-Video-0.9.5"
SD15_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SD_PARTS = ("vae", "unet", "text_encoder", "tokenizer", "scheduler")
TEXT = "a dog runs across the grass"


def clip_config(backend: str, **clips: Any) -> PackConfig:
    """A pack config naming the clip models by their real ids (the tiny ones under --models)."""
    comps: dict[str, Any] = {n: {"source": SD15_ID, "subfolder": n} for n in SD_PARTS}
    comps["video"] = {"source": LTX_ID}
    comps["motion_adapter"] = {"source": "guoyww/animatediff-motion-adapter-v1-5-3"}
    comps["sparse_controlnet"] = {"source": "guoyww/animatediff-sparsectrl-rgb"}
    settings = {"backend": backend, "steps": 2, "guidance": 3.0, **clips}
    return PackConfig("full", comps, settings={"clips": settings})


def frames(seed: int, height: int = 32, width: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


class Spy:
    """Wraps a pipeline: records each call's keyword arguments and counts prompt encodings."""

    def __init__(self, pipe: Any) -> None:
        self._pipe = pipe
        self.calls: list[dict[str, Any]] = []
        self.prompts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)

    def encode_prompt(self, *args: Any, **kwargs: Any) -> Any:
        self.prompts += 1
        return self._pipe.encode_prompt(*args, **kwargs)

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self._pipe(**kwargs)


# -- without models ----------------------------------------------------------------------


def test_import_does_not_import_torch():
    code = "import sys, m3cvc_codec.packs.full.clips; assert 'torch' not in sys.modules, 'torch'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize(
    ("count", "interpolate", "step", "max_frames", "made", "picks"),
    [
        (9, True, 8, 121, 9, list(range(9))),  # 8k + 1: as asked
        (6, True, 8, 121, 9, [0, 2, 3, 5, 6, 8]),  # spread over 9, first and last kept
        (2, True, 8, 121, 9, [0, 8]),
        (5, False, 8, 121, 9, [0, 1, 2, 3, 4]),  # prediction: the first five, speed kept
        (1, False, 8, 121, 9, [0]),
        (6, True, 1, 16, 6, list(range(6))),  # SparseCtrl: any count
        (20, False, 1, 16, 16, [(2 * t * 15 + 19) // 38 for t in range(20)]),  # too long: stretched
    ],
)
def test_frame_schedule(count, interpolate, step, max_frames, made, picks):
    assert frame_schedule(count, interpolate, step=step, max_frames=max_frames) == (made, picks)
    assert picks[0] == 0 and (not interpolate or picks[-1] == made - 1)


def test_frame_schedule_caps_long_clips():
    made, picks = frame_schedule(300, True, step=8, max_frames=121)
    assert made == 121 and len(picks) == 300 and picks[0] == 0 and picks[-1] == 120
    assert picks == sorted(picks)
    made, picks = frame_schedule(130, True, step=8, max_frames=125)  # 125 is not 8k + 1: 121
    assert made == 121
    with pytest.raises(ValueError):
        frame_schedule(0, False, step=8, max_frames=121)
    with pytest.raises(ValueError):
        frame_schedule(5, False, step=8, max_frames=8)


def test_settings():
    s = ClipSettings.from_settings({"clips": {"backend": "sparsectrl", "steps": 4, "size": [512, 320]}})
    assert (s.backend, s.steps, s.max_frames, s.size, s.guidance) == ("sparsectrl", 4, 16, (512, 320), 3.0)
    assert ClipSettings.from_settings({}).backend == "ltx" and ClipSettings.from_settings({}).max_frames == 121
    for bad, message in [
        ({"backend": "sora"}, "unknown clip backend 'sora'"),
        ({"steps": 0}, "steps must be at least 1"),
        ({"steps": "many"}, "steps must be a number"),
        ({"size": [512]}, "size must be [width, height]"),
        ({"backend": "sparsectrl", "max_frames": 64}, "at most 32"),
        ({"scheduler": "euler"}, "scheduler"),
    ]:
        with pytest.raises(PackError, match=message.replace("[", r"\[").replace("]", r"\]")):
            ClipSettings.from_settings({"clips": bad})
    with pytest.raises(PackError, match="must be an object"):
        ClipSettings.from_settings({"clips": "ltx"})


# -- LTX-Video ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ltx(tiny_models) -> LtxBackend:
    backend = load_clip_backend(clip_config("ltx"), RuntimeOptions(models_dir=str(tiny_models)))
    assert isinstance(backend, LtxBackend) and isinstance(backend, ClipBackend)
    return backend


def test_ltx_interpolation(ltx):
    ltx.pipe = spy = Spy(ltx.pipe)
    try:
        first, last = frames(1), frames(2, 40, 80)  # the last keyframe is resized to first's size
        video = ltx.reconstruct(first, last, TEXT, 6, seed=5)
        assert video.shape == (6, 32, 64, 3) and video.dtype == np.uint8
        call = spy.calls[-1]
        assert call["num_frames"] == 9 and (call["width"], call["height"]) == (64, 32)
        assert [c.frame_index for c in call["conditions"]] == [0, 8]
        assert call["prompt_embeds"] is not None and "prompt" not in call
        # the same inputs and seed give the same frames; another seed other frames
        assert np.array_equal(video, ltx.reconstruct(first, last, TEXT, 6, seed=5))
        assert not np.array_equal(video, ltx.reconstruct(first, last, TEXT, 6, seed=6))
        assert not np.array_equal(video, ltx.reconstruct(first, frames(7), TEXT, 6, seed=5))
        # the clip text once per clip, the negative prompt once per backend
        before = spy.prompts
        ltx.reconstruct(first, last, "another text", 9, seed=1)
        assert spy.prompts - before == 1 and spy.calls[-1]["num_frames"] == 9
    finally:
        ltx.pipe = spy._pipe


def test_ltx_prediction(ltx):
    ltx.pipe = spy = Spy(ltx.pipe)
    try:
        first = frames(3, 40, 70)  # not multiples of 32: the model runs at 32 x 64, frames come back at 40 x 70
        video = ltx.reconstruct(first, None, TEXT, 10, seed=2)
        assert video.shape == (10, 40, 70, 3) and video.dtype == np.uint8
        call = spy.calls[-1]
        assert call["num_frames"] == 17 and (call["width"], call["height"]) == (64, 32)
        assert [c.frame_index for c in call["conditions"]] == [0]
        assert np.array_equal(video, ltx.reconstruct(first, None, TEXT, 10, seed=2))
        # one frame: the keyframe itself, no model run
        calls = len(spy.calls)
        assert np.array_equal(ltx.reconstruct(first, None, TEXT, 1, seed=2), first[None])
        assert len(spy.calls) == calls
    finally:
        ltx.pipe = spy._pipe


def test_ltx_bad_inputs(ltx):
    with pytest.raises(ValueError, match="RGB uint8"):
        ltx.reconstruct(frames(1).astype(np.float32), None, TEXT, 3, seed=0)
    with pytest.raises(ValueError, match="at least one frame"):
        ltx.reconstruct(frames(1), None, TEXT, 0, seed=0)


def test_missing_models(tiny_models, tmp_path):
    from m3cvc_codec.models.hub import ModelNotFoundError

    config = clip_config("ltx")
    with pytest.raises(ModelNotFoundError, match="video model"):
        load_clip_backend(config, RuntimeOptions(models_dir=str(tmp_path)))
    no_video = PackConfig("full", {}, settings={"clips": {"backend": "ltx"}})
    with pytest.raises(PackError, match="no component 'video'"):
        load_clip_backend(no_video, RuntimeOptions(models_dir=str(tiny_models)))
    no_adapter = PackConfig("full", {}, settings={"clips": {"backend": "sparsectrl"}})
    with pytest.raises(PackError, match="no component"):
        load_clip_backend(no_adapter, RuntimeOptions(models_dir=str(tiny_models)))


def test_relative_folder_sources_under_models_dir(tiny_models, tmp_path, monkeypatch):
    """Clip models named by relative folders are found as the keyframe codec finds its models:
    beside the config file, else under --models DIR; never in the current directory (an empty
    decoy of the same name there is not taken)."""
    models = tmp_path / "models"
    for link, target in (
        ("my-ltx", "Lightricks/LTX-Video-0.9.5"),
        ("animatediff/adapter", "guoyww/animatediff-motion-adapter-v1-5-3"),
        ("animatediff/sparsectrl", "guoyww/animatediff-sparsectrl-rgb"),
        (SD15_ID, SD15_ID),
    ):
        (models / link).parent.mkdir(parents=True, exist_ok=True)
        (models / link).symlink_to(tiny_models / target, target_is_directory=True)
    work = tmp_path / "work"
    for decoy in ("my-ltx", "animatediff/adapter"):
        (work / decoy).mkdir(parents=True)
    monkeypatch.chdir(work)
    options = RuntimeOptions(models_dir=str(models))

    def config(backend: str, **sources: str) -> PackConfig:
        data = clip_config(backend).to_dict()
        for name, source in sources.items():
            data["components"][name] = {"source": source}
        return PackConfig.from_dict(data, root=tmp_path / "configs")

    assert isinstance(load_clip_backend(config("ltx", video="./my-ltx"), options), LtxBackend)
    sparse = config("sparsectrl", motion_adapter="animatediff/adapter", sparse_controlnet="./animatediff/sparsectrl")
    assert isinstance(load_clip_backend(sparse, options), SparseCtrlBackend)


# -- AnimateDiff SparseCtrl --------------------------------------------------------------


@pytest.fixture(scope="module")
def sparsectrl(tiny_models) -> SparseCtrlBackend:
    backend = load_clip_backend(clip_config("sparsectrl"), RuntimeOptions(models_dir=str(tiny_models)))
    assert isinstance(backend, SparseCtrlBackend) and isinstance(backend, ClipBackend)
    return backend


def test_sparsectrl_both_modes(sparsectrl):
    import torch

    sparsectrl.pipe = spy = Spy(sparsectrl.pipe)
    try:
        first, last = frames(4), frames(5)
        video = sparsectrl.reconstruct(first, last, TEXT, 5, seed=3)
        assert video.shape == (5, 32, 64, 3) and video.dtype == np.uint8
        call = spy.calls[-1]
        assert call["num_frames"] == 5 and call["controlnet_frame_indices"] == [0, 4]
        assert len(call["conditioning_frames"]) == 2
        assert np.array_equal(video, sparsectrl.reconstruct(first, last, TEXT, 5, seed=3))
        assert not np.array_equal(video, sparsectrl.reconstruct(first, last, TEXT, 5, seed=4))

        # the keyframes condition the clip; the caller's random state neither matters nor changes
        # (the conditioning latents are sampled from torch's global generator)
        assert not np.array_equal(video, sparsectrl.reconstruct(first, frames(6), TEXT, 5, seed=3))
        torch.manual_seed(123)
        state = torch.get_rng_state()
        assert np.array_equal(video, sparsectrl.reconstruct(first, last, TEXT, 5, seed=3))
        assert torch.equal(state, torch.get_rng_state())

        # longer than max_frames 16: a run of 16 predicted from the keyframe, then one of the 5
        # left (4 new frames and the one it starts from) predicted from its last frame
        calls, prompts = len(spy.calls), spy.prompts
        video = sparsectrl.reconstruct(first, None, TEXT, 20, seed=3)
        assert video.shape == (20, 32, 64, 3)
        runs = spy.calls[calls:]
        assert [c["num_frames"] for c in runs] == [16, 5]
        assert all(c["controlnet_frame_indices"] == [0] for c in runs)
        chained = np.asarray(runs[1]["conditioning_frames"][0])
        assert spy.prompts == prompts  # the clip text once (cached since the calls above)
        alone = sparsectrl.reconstruct(first, None, TEXT, 16, seed=3)  # the first run by itself
        assert np.array_equal(video[:15], alone[:15])
        assert np.array_equal(chained, alone[15])  # the second run starts from the first's last frame
        # interpolated and longer than one run: chained runs, the last one towards the keyframe
        calls = len(spy.calls)
        video = sparsectrl.reconstruct(first, last, TEXT, 40, seed=3)
        assert video.shape == (40, 32, 64, 3)
        runs = spy.calls[calls:]
        assert [c["num_frames"] for c in runs] == [16, 16, 10]
        assert [c["controlnet_frame_indices"] for c in runs] == [[0], [0], [0, 9]]
    finally:
        sparsectrl.pipe = spy._pipe


# -- runtime options ---------------------------------------------------------------------


def test_sparsectrl_attention_slicing(sparsectrl, tiny_models):
    """attention_slicing reaches the motion UNet and the SparseCtrl model (sliced processors
    on every attention layer) and VAE batch slicing; the clip equals the unsliced one (same
    seed) up to float rounding."""
    from diffusers.models.attention_processor import Attention, SlicedAttnProcessor

    options = RuntimeOptions(models_dir=str(tiny_models), attention_slicing="max")
    sliced = load_clip_backend(clip_config("sparsectrl"), options)
    assert isinstance(sliced, SparseCtrlBackend)
    for model in (sliced.pipe.unet, sliced.pipe.controlnet):
        layers = [m for m in model.modules() if isinstance(m, Attention)]
        assert layers and all(isinstance(m.processor, SlicedAttnProcessor) for m in layers)
        assert {m.processor.slice_size for m in layers} == {1}
    assert sliced.pipe.vae.use_slicing and not sparsectrl.pipe.vae.use_slicing
    first, last = frames(4), frames(5)
    video = sliced.reconstruct(first, last, TEXT, 3, seed=3)
    plain = sparsectrl.reconstruct(first, last, TEXT, 3, seed=3)
    assert video.shape == plain.shape == (3, 32, 64, 3)
    assert np.abs(video.astype(int) - plain.astype(int)).max() <= 1


def test_ltx_refuses_attention_slicing(tiny_models):
    """LTX-Video has no sliced attention: one line naming it, before any model loads."""
    options = RuntimeOptions(models_dir="/nonexistent", attention_slicing="auto")
    with pytest.raises(PackError, match="not supported by the ltx clip backend") as refusal:
        load_clip_backend(clip_config("ltx"), options)
    assert "\n" not in str(refusal.value)
