"""The description dialogue (m3cvc_codec.dialogue): the turns each keyframe and clip get for
every turn count, what each turn shows the model, repeatable texts on the tiny Qwen-VL models,
the PRMT record, and fast failures."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from m3cvc_codec.descriptions import ClipSpan, DescriptionProvider
from m3cvc_codec.dialogue import DEFAULT_MAX_NEW_TOKENS, DialogueDescriptions
from m3cvc_codec.errors import CodecError
from m3cvc_codec.packs.config import RuntimeOptions
from m3cvc_codec.prompts import PromptsError, load_prompts
from m3cvc_format.prompts import check_prompts

RNG = np.random.default_rng(5)
CLIPS = [RNG.integers(0, 256, (6, 40, 56, 3), dtype=np.uint8) for _ in range(3)]


class FakeModel:
    """Answers each turn with a numbered reply and keeps what it was sent."""

    model_id = "fake/vlm"
    clip_input = "frames"

    def __init__(self) -> None:
        self.calls: list[list[dict]] = []

    def chat(self, messages, max_new_tokens):
        self.calls.append([dict(m) for m in messages])
        return f"reply {len(self.calls)}"


def describe(provider: DescriptionProvider, clips=CLIPS) -> list[tuple[str, str]]:
    """The encoder's calling order: keyframe then clip, clip after clip."""
    out = []
    previous = previous_text = None
    for k, frames in enumerate(clips):
        span = ClipSpan(k, 6 * k, len(frames), Fraction(8))
        kf = provider.describe_keyframe(span, frames[0], previous, previous_text)
        out.append((kf, provider.describe_clip(span, frames, kf)))
        previous, previous_text = frames[0], kf
    return out


def user_turns(call: list[dict]) -> list[list[dict]]:
    return [m["content"] for m in call if m["role"] == "user"]


@pytest.mark.parametrize(("turns", "first", "later"), [(4, 3, 4), (2, 2, 2), (1, 1, 1)])
def test_turns_per_keyframe_and_clip(turns, first, later):
    model = FakeModel()
    provider = DialogueDescriptions(model, turns=turns)
    texts = describe(provider)
    kinds = [k for k, _, _ in provider.timings]
    assert kinds == ["keyframe"] * first + ["clip"] + (["keyframe"] * later + ["clip"]) * 2
    assert len(model.calls) == first + later * 2 + 3
    # D^F is the reply to the keyframe dialogue's last turn, D^C to the clip dialogue's
    assert texts[0] == (f"reply {first}", f"reply {first + 1}")
    # the second keyframe's dialogue shows the previous keyframe and its text
    second = model.calls[first + 1 : first + 1 + later]
    shown = [item for turn in user_turns(second[-1]) for item in turn]
    images = [item["image"] for item in shown if item["type"] == "image"]
    assert any(np.array_equal(i, CLIPS[1][0]) for i in images) and any(np.array_equal(i, CLIPS[0][0]) for i in images)
    assert any(item["type"] == "text" and f'"reply {first}"' in item["text"] for item in shown)
    # the first keyframe's dialogue never mentions a previous one
    first_shown = [item for turn in user_turns(model.calls[first - 1]) for item in turn]
    assert all(np.array_equal(i["image"], CLIPS[0][0]) for i in first_shown if i["type"] == "image")
    # each turn sees the replies so far
    assert [m["role"] for m in model.calls[first - 1]] == ["user", "assistant"] * (first - 1) + ["user"]


def test_clip_turn_gets_sampled_frames_and_the_keyframe_text():
    model = FakeModel()
    provider = DialogueDescriptions(model, turns=1, frames=3)
    frames = np.stack([np.full((8, 8, 3), i, np.uint8) for i in range(10)])
    span = ClipSpan(0, 0, 10, Fraction(8))
    assert provider.describe_clip(span, frames, "a red car") == "reply 1"
    (content,) = user_turns(model.calls[0])
    video = next(item["video"] for item in content if item["type"] == "video")
    assert video[:, 0, 0, 0].tolist() == [0, 4, 9]  # first, middle, last
    assert any('"a red car"' in item["text"] for item in content if item["type"] == "text")
    with pytest.raises(CodecError, match="needs the clip's frames"):
        provider.describe_clip(span, None, "x")


def test_system_turn_and_custom_prompts(tmp_path):
    data = {
        "format": "m3cvc-prompts/1",
        "name": "terse",
        "version": 3,
        "system": "Answer in five words.",
        "keyframe": {"3": ["{keyframe}Objects?", "[[{previous_keyframe}]]Changes since {previous_text}?", "Sum up."]},
        "clip": ["{keyframe}{clip}Motion?", "Shorter."],
    }
    path = tmp_path / "terse.json"
    path.write_text(json.dumps(data))
    model = FakeModel()
    provider = DialogueDescriptions(model, load_prompts(path), turns=3, max_new_tokens=7)
    describe(provider, CLIPS[:2])
    assert len(model.calls) == 2 + 2 + 3 + 2
    assert all(call[0] == {"role": "system", "content": "Answer in five words."} for call in model.calls)
    record = provider.prompts_record()
    assert record["name"] == "terse" and record["version"] == 3 and record["turns"] == 3
    assert record["keyframe"] == data["keyframe"]["3"] and record["clip"] == data["clip"]
    assert record["system"] == "Answer in five words." and record["model"] == "fake/vlm"
    assert record["settings"] == {"max_new_tokens": 7, "greedy": True, "clip_input": "frames", "frames": 8}
    with pytest.raises(PromptsError, match="no 4-turn keyframe dialogue"):
        DialogueDescriptions(FakeModel(), load_prompts(path), turns=4)


def test_record_and_metadata():
    provider = DialogueDescriptions(FakeModel(), turns=2)
    record = provider.prompts_record()
    prompts = load_prompts()
    assert record == {
        "keyframe": list(prompts.keyframe_turns(2)),
        "clip": list(prompts.clip),
        "name": prompts.name,
        "version": prompts.version,
        "turns": 2,
        "model": "fake/vlm",
        "settings": {"max_new_tokens": DEFAULT_MAX_NEW_TOKENS, "greedy": True, "clip_input": "frames", "frames": 8},
    }
    assert check_prompts(record) == record
    assert provider.metadata() == {} and provider.needs_frames


@pytest.mark.parametrize(("kwargs", "message"), [({"max_new_tokens": 0}, "max_new_tokens"), ({"frames": 0}, "frames")])
def test_bad_settings(kwargs, message):
    with pytest.raises(CodecError, match=message):
        DialogueDescriptions(FakeModel(), **kwargs)


def test_bad_prompts_fail_before_the_model_loads(tmp_path, monkeypatch):
    import m3cvc_codec.models.vlm as vlm

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not load")

    monkeypatch.setattr(vlm, "VisionLanguageModel", no_model)
    with pytest.raises(PromptsError, match="no such prompts file"):
        DialogueDescriptions.from_options(prompts=tmp_path / "none.json")
    with pytest.raises(PromptsError, match="no 3-turn keyframe dialogue"):
        DialogueDescriptions.from_options(turns=3)
    with pytest.raises(CodecError, match="max_new_tokens"):
        DialogueDescriptions.from_options(max_new_tokens=-1)


def test_importing_the_dialogue_loads_no_torch():
    probe = "import sys, m3cvc_codec.dialogue, m3cvc_codec.prompts, m3cvc_codec.models.vlm; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True, text=True).stdout
    assert out.split() == ["False", "False"]


# ---- on the tiny random-weight Qwen-VL models (the real loading and generate code) ----


@pytest.fixture(scope="module")
def qwen2_vl(tiny_models):
    from m3cvc_codec.models.vlm import VisionLanguageModel

    return VisionLanguageModel("Qwen/Qwen2-VL-7B-Instruct", RuntimeOptions(models_dir=str(tiny_models)))


@pytest.mark.parametrize(("turns", "calls"), [(4, 3 + 4 + 4 + 3), (2, 2 * 3 + 3), (1, 3 + 3)])
def test_tiny_qwen2_vl_dialogue_counts_generate_calls_and_repeats(qwen2_vl, turns, calls):
    before = qwen2_vl.generate_calls
    provider = DialogueDescriptions(qwen2_vl, turns=turns, max_new_tokens=6, frames=4)
    texts = describe(provider)
    assert qwen2_vl.generate_calls - before == calls == len(provider.timings)
    assert all(isinstance(kf, str) and isinstance(clip, str) for kf, clip in texts)
    again = DialogueDescriptions(qwen2_vl, turns=turns, max_new_tokens=6, frames=4)
    assert describe(again) == texts
    record = provider.prompts_record()
    assert record["model"] == "Qwen/Qwen2-VL-7B-Instruct" and record["turns"] == turns
    assert record["settings"]["clip_input"] == qwen2_vl.clip_input and check_prompts(record)


def test_tiny_qwen2_5_vl_through_from_options(tiny_models):
    provider = DialogueDescriptions.from_options(
        "Qwen/Qwen2.5-VL-7B-Instruct",
        turns=2,
        max_new_tokens=5,
        options=RuntimeOptions(models_dir=str(tiny_models)),
    )
    texts = describe(provider, CLIPS[:2])
    assert provider.model.generate_calls == 2 * 2 + 2 and len(texts) == 2
    assert provider.prompts_record()["model"] == "Qwen/Qwen2.5-VL-7B-Instruct"


def test_tiny_qwen3_vl_one_step(tiny_models):
    provider = DialogueDescriptions.from_options(
        "Qwen/Qwen3-VL-8B-Instruct", turns=1, max_new_tokens=5, options=RuntimeOptions(models_dir=str(tiny_models))
    )
    texts = describe(provider, CLIPS[:2])
    assert provider.model.generate_calls == 4 and len(texts) == 2
