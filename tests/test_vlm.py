"""The Qwen-VL wrapper (m3cvc_codec.models.vlm) on the tiny random-weight models of
tools/make_tiny_models.py: every family loads through the real loading code (the processor built
from its tokenizer and image processor, never AutoProcessor), greedy replies are repeatable,
clips go in as frames without a video processor, and a missing model is one line."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from m3cvc_codec.models.hub import MissingExtraError, ModelError, ModelNotFoundError
from m3cvc_codec.models.vlm import DEFAULT_VLM, sample_frames
from m3cvc_codec.packs.config import RuntimeOptions

FAMILIES = {
    "Qwen/Qwen2-VL-7B-Instruct": ("qwen2_vl", "Qwen2VLProcessor"),
    "Qwen/Qwen2.5-VL-7B-Instruct": ("qwen2_5_vl", "Qwen2_5_VLProcessor"),
    "Qwen/Qwen3-VL-8B-Instruct": ("qwen3_vl", "Qwen3VLProcessor"),
}


def image(seed: int, h: int = 48, w: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def ask(content_image: np.ndarray, text: str = "Describe the objects.") -> list[dict]:
    return [{"role": "user", "content": [{"type": "image", "image": content_image}, {"type": "text", "text": text}]}]


@pytest.fixture(scope="module")
def vlm_cls():
    pytest.importorskip("transformers")
    from m3cvc_codec.models.vlm import VisionLanguageModel

    return VisionLanguageModel


def test_sample_frames_spreads_evenly():
    frames = np.arange(10)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    assert sample_frames(frames, 4)[:, 0, 0, 0].tolist() == [0, 3, 6, 9]
    assert sample_frames(frames, 20) is frames
    assert sample_frames(frames[:3], 2)[:, 0, 0, 0].tolist() == [0, 2]
    with pytest.raises(ValueError):
        sample_frames(frames, 0)


@pytest.mark.parametrize("model_id", list(FAMILIES))
def test_every_family_loads_without_autoprocessor_and_replies_greedily(tiny_models, vlm_cls, model_id, monkeypatch):
    import transformers

    def no_auto_processor(*args, **kwargs):
        raise AssertionError("AutoProcessor must not be used (it fails on CPU machines)")

    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", no_auto_processor)
    vlm = vlm_cls(model_id, RuntimeOptions(models_dir=str(tiny_models)))
    family, processor = FAMILIES[model_id]
    assert vlm.family == family and type(vlm.processor).__name__ == processor
    assert vlm.model_id == model_id and vlm.clip_input in ("video", "frames")
    first = vlm.chat(ask(image(0)), max_new_tokens=8)
    assert isinstance(first, str) and first == vlm.chat(ask(image(0)), max_new_tokens=8)
    assert vlm.generate_calls == 2
    # a second turn sees the first reply
    messages = ask(image(0)) + [{"role": "assistant", "content": first}, {"role": "user", "content": "And?"}]
    assert isinstance(vlm.chat(messages, max_new_tokens=4), str)


def test_generate_is_greedy_with_the_budget_and_frames_stand_in_for_video(tiny_models, vlm_cls, monkeypatch):
    vlm = vlm_cls(DEFAULT_VLM, RuntimeOptions(models_dir=str(tiny_models)), video=False)
    assert vlm.clip_input == "frames" and vlm.settings()["clip_input"] == "frames"
    seen = {}
    real_generate = vlm.model.generate

    def generate(**kwargs):
        seen.update(kwargs)
        return real_generate(**kwargs)

    monkeypatch.setattr(vlm.model, "generate", generate)
    clip = np.stack([image(i) for i in range(3)])
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "video", "video": clip},
                {"type": "image", "image": image(9, 32, 40)},
                {"type": "text", "text": "Motion?"},
            ],
        }
    ]
    vlm.chat(messages, max_new_tokens=5)
    assert seen["max_new_tokens"] == 5 and seen["do_sample"] is False
    assert seen["image_grid_thw"].shape[0] == 4  # three frames + one image, each an image
    assert "pixel_values_videos" not in seen
    image_pad = vlm.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    expected = int(seen["image_grid_thw"].prod(dim=1).sum()) // 4  # 2x2 patches merge into one token
    assert int((seen["input_ids"] == image_pad).sum()) == expected


def test_bad_messages(tiny_models, vlm_cls):
    vlm = vlm_cls(DEFAULT_VLM, RuntimeOptions(models_dir=str(tiny_models)))
    with pytest.raises(ModelError, match="H x W x 3 uint8"):
        vlm.chat(ask(np.zeros((8, 8), np.uint8)), 4)
    with pytest.raises(ModelError, match="unknown type 'audio'"):
        vlm.chat([{"role": "user", "content": [{"type": "audio"}]}], 4)
    with pytest.raises(ModelError, match="max_new_tokens must be positive"):
        vlm.chat(ask(image(0)), 0)


def test_missing_model_is_one_line(tiny_models, vlm_cls, tmp_path):
    with pytest.raises(ModelNotFoundError) as err:
        vlm_cls("Qwen/Qwen9-VL-1B", RuntimeOptions(models_dir=str(tiny_models)))
    text = str(err.value)
    assert "Qwen/Qwen9-VL-1B" in text and "hf download" in text and "\n" not in text
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        vlm_cls(str(tmp_path / "nowhere" / "model"), None)


def test_not_a_qwen_vl_model(tiny_models, vlm_cls):
    with pytest.raises(ModelError, match=r"supports Qwen2-VL, Qwen2\.5-VL and Qwen3-VL"):
        vlm_cls("openai/clip-vit-base-patch32", RuntimeOptions(models_dir=str(tiny_models)))


def test_without_the_full_extra(monkeypatch):
    from m3cvc_codec.models.vlm import VisionLanguageModel

    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingExtraError, match=r"--describe vlm.*full"):
        VisionLanguageModel(DEFAULT_VLM, None)


def test_video_arguments_keep_the_frame_times():
    from m3cvc_codec.models.vlm import _metadata, _video_kwargs

    frames = np.zeros((3, 8, 10, 3), np.uint8)
    item = {"type": "video", "video": frames, "fps": 25, "frames_indices": [0, 5, 9], "total_num_frames": 10}
    meta = _metadata(item, frames)
    assert meta == {"fps": 25.0, "frames_indices": [0, 5, 9], "total_num_frames": 10, "height": 8, "width": 10}
    kwargs = _video_kwargs([(frames, meta)])
    assert kwargs["do_sample_frames"] is False and len(kwargs["videos"][0]) == 4  # even: last frame repeated
    assert kwargs["video_metadata"][0]["frames_indices"] == [0, 5, 9, 9]
    assert _metadata({"video": frames}, frames) is None
    assert _video_kwargs([(frames[:2], None)])["video_metadata"][0]["frames_indices"] == [0, 1]
    with pytest.raises(ModelError, match="3 frames but 2 frame indices"):
        _metadata({**item, "frames_indices": [0, 1]}, frames)


@pytest.mark.parametrize("video_processor", ["raises", "wrong"])
def test_a_video_processor_that_fails_leaves_frames(tiny_models, vlm_cls, monkeypatch, video_processor, caplog):
    """Where torchvision imports but the video processor cannot be loaded or used, clips go in
    as frames, decided at load time and said in one log line."""
    import transformers

    import m3cvc_codec.models.vlm as vlm

    class AutoVideoProcessor:
        @staticmethod
        def from_pretrained(*args, **kwargs):
            if video_processor == "raises":
                raise OSError("no video_preprocessor_config.json")
            return object()  # not a video processor: the processor refuses it

    monkeypatch.setattr(vlm, "_torchvision_imports", lambda: None)
    monkeypatch.setattr(transformers, "AutoVideoProcessor", AutoVideoProcessor)
    logger = logging.getLogger("m3cvc_codec")
    logger.addHandler(caplog.handler)  # the CLIs may have stopped it propagating to the root
    try:
        with caplog.at_level("INFO", logger="m3cvc_codec"):
            model = vlm_cls(DEFAULT_VLM, RuntimeOptions(models_dir=str(tiny_models)))
    finally:
        logger.removeHandler(caplog.handler)
    assert model.clip_input == "frames"
    why = "no video_preprocessor_config.json" if video_processor == "raises" else "the video processor fails ("
    assert why in model.video_unavailable
    assert [r.message for r in caplog.records if "sampled frames" in r.message] != []
