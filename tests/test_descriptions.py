"""Descriptions: the DescriptionProvider interface (what the encoder hands a provider), the
sidecars of docs/sidecar.md (both forms, validation errors), provider lookup."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from fake_pack import fake_pack, moving_square, write_video  # noqa: F401 (fixture)

import m3cvc_format as m
from m3cvc_codec import CodecError, encode
from m3cvc_codec.descriptions import (
    ClipSpan,
    DescriptionProvider,
    NoDescriptions,
    SidecarDescriptions,
    load_sidecar,
    provider_for,
)


def span(k, first, n=4, fps=8):
    return ClipSpan(k, first, n, Fraction(fps))


def texts(provider, sp, keyframe=None, frames=None):
    """(D^F, D^C) of one clip, asked the way the encoder asks (clip 0 has no previous keyframe)."""
    kf = provider.describe_keyframe(sp, keyframe, None, None)
    return kf, provider.describe_clip(sp, frames, kf)


def test_per_index(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "clips": [
                    {"index": 0, "keyframe": "A dog.", "clip": "It runs."},
                    {"index": 2, "keyframe": "Ünïcode ✓"},
                ],
            }
        ),
        encoding="utf-8",
    )
    p = load_sidecar(path)
    assert texts(p, span(0, 0)) == ("A dog.", "It runs.")
    assert texts(p, span(1, 4)) == ("", "")
    assert texts(p, span(2, 8)) == ("Ünïcode ✓", "")
    p.check_clips(3)
    with pytest.raises(CodecError, match="describes clip 2 but the video has 2 clips"):
        p.check_clips(2)


def test_per_range():
    p = SidecarDescriptions(
        {
            "ranges": [
                {"start": 2.5, "end": 10, "keyframe": "later", "clip": "b"},
                {"start": 0, "end": 2.5, "keyframe": "first", "clip": "a"},
            ]
        }
    )
    assert texts(p, span(0, 0)) == ("first", "a")
    assert texts(p, span(1, 19)) == ("first", "a")  # 2.375 s
    assert texts(p, span(2, 20)) == ("later", "b")  # 2.5 s: start is inside, end is not
    assert texts(p, span(3, 80)) == ("", "")  # 10 s: in no range


@pytest.mark.parametrize(
    "data,match",
    [
        ([], "top level"),
        ({}, "exactly one"),
        ({"clips": [], "ranges": []}, "exactly one"),
        ({"clip": []}, "unknown key 'clip'"),
        ({"version": 2, "clips": []}, "version"),
        ({"clips": {}}, "must be a list"),
        ({"clips": [{"keyframe": "x"}]}, r"clips\[0\].*'index'"),
        ({"clips": [{"index": -1}]}, "'index'"),
        ({"clips": [{"index": True}]}, "'index'"),
        ({"clips": [{"index": 0}, {"index": 0}]}, "twice"),
        ({"clips": [{"index": 0, "keyframe": 3}]}, r"clips\[0\]\.keyframe must be a string"),
        ({"clips": [{"index": 0, "text": "x"}]}, "unknown key 'text'"),
        ({"ranges": [{"start": 0}]}, "needs 'start' and 'end'"),
        ({"ranges": [{"start": 2, "end": 1}]}, "not after"),
        ({"ranges": [{"start": -1, "end": 1}]}, "negative"),
        ({"ranges": [{"start": "0", "end": 1}]}, "number"),
        ({"ranges": [{"start": 0, "end": 2}, {"start": 1, "end": 3}]}, "overlap"),
        ({"clips": [{"index": 0, "clip": "x" * 70000}]}, "longer than"),
    ],
)
def test_validation_errors(data, match):
    with pytest.raises(CodecError, match=match):
        SidecarDescriptions(data)


def test_file_errors(tmp_path):
    with pytest.raises(CodecError, match="no such file"):
        load_sidecar(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"clips": [\n  {"index": 0,}\n]}')
    with pytest.raises(CodecError, match="invalid JSON at line 2"):
        load_sidecar(bad)
    bad.write_bytes(b"\xff\xfe{}")
    with pytest.raises(CodecError, match="UTF-8"):
        load_sidecar(bad)


def test_provider_for(tmp_path):
    assert isinstance(provider_for(None), NoDescriptions)
    assert texts(provider_for(None), span(0, 0)) == ("", "")
    assert isinstance(provider_for({"clips": []}), SidecarDescriptions)
    custom = NoDescriptions()
    assert provider_for(custom) is custom
    with pytest.raises(CodecError, match="texts must be"):
        provider_for(42)

    class OldStyle:  # the interface before DescriptionProvider: describe() -> (kf, clip)
        needs_frames = False

        def describe(self, span, keyframe, frames):
            return "a", "b"

    with pytest.raises(CodecError, match="DescriptionProvider instance, got OldStyle"):
        provider_for(OldStyle())


# --------------------------------------------------------------------------- the interface


def test_provider_is_an_abc():
    class KeyframeOnly(DescriptionProvider):
        def describe_keyframe(self, span, keyframe, previous_keyframe, previous_text):
            return "x"

    with pytest.raises(TypeError, match="describe_clip"):
        KeyframeOnly()
    assert DescriptionProvider.needs_frames is True  # a provider gets the clip's frames unless it declines
    assert NoDescriptions().metadata() == {} and SidecarDescriptions({"clips": []}).metadata() == {}
    NoDescriptions().check_clips(10**6)  # the default check accepts any number of clips


class Dialogue(DescriptionProvider):
    """Records what the encoder hands it, like the VLM dialogue (turn 2 compares with the
    previous keyframe and its description; the clip is described from the keyframe's)."""

    def __init__(self, needs_frames=True):
        self.needs_frames = needs_frames
        self.keyframe_calls = []
        self.clip_calls = []
        self.keyframe_texts = []

    def describe_keyframe(self, span, keyframe, previous_keyframe, previous_text):
        self.keyframe_calls.append((span, keyframe.copy(), previous_keyframe, previous_text))
        self.keyframe_texts.append(f"keyframe {span.index} after [{previous_text}]")
        return self.keyframe_texts[-1]

    def describe_clip(self, span, frames, keyframe_text):
        self.clip_calls.append((span, frames, keyframe_text))
        return f"clip {span.index} of {keyframe_text}"

    def metadata(self):
        return {"prompts": {"keyframe": ["What is there?", "What changed?"], "clip": ["What moves?"]}}


@pytest.mark.parametrize("needs_frames", [True, False])
def test_encoder_hands_provider_previous_keyframe_and_texts(fake_pack, tmp_path, needs_frames):  # noqa: F811
    frames = moving_square(16, 128, 80, step=2, cut_at=8)
    video = write_video(tmp_path / "v.mp4", frames, fps=8)
    provider = Dialogue(needs_frames)
    out = tmp_path / "v.m3v"
    rep = encode(video, out, pack="test.fake", size=(128, 80), interval=4, texts=provider)
    assert rep.clips == [(0, 4), (4, 4), (8, 4), (12, 4)]

    kf_calls, clip_calls = provider.keyframe_calls, provider.clip_calls
    assert [c[0].index for c in kf_calls] == [c[0].index for c in clip_calls] == [0, 1, 2, 3]
    assert [(c[0].first_frame, c[0].frame_count) for c in kf_calls] == rep.clips
    first_span, _, prev_key, prev_text = kf_calls[0]
    assert prev_key is None and prev_text is None and first_span.fps == 8
    given = provider.keyframe_texts
    for k in range(1, 4):
        _, key, prev_key, prev_text = kf_calls[k]
        assert np.array_equal(prev_key, kf_calls[k - 1][1])  # the previous clip's keyframe ...
        assert prev_text == given[k - 1]  # ... and the text given for it
        assert key.shape == (80, 128, 3) and key.dtype == np.uint8
    assert given[2] == "keyframe 2 after [keyframe 1 after [keyframe 0 after [None]]]"
    assert not np.array_equal(kf_calls[1][1], kf_calls[2][1])  # the scene cut at frame 8
    for (_, clip_frames, kf_text), (_, key, _, _), text in zip(clip_calls, kf_calls, given):
        assert kf_text == text  # the clip is described from its keyframe's text
        if needs_frames:
            assert clip_frames.shape == (4, 80, 128, 3) and np.array_equal(clip_frames[0], key)
        else:
            assert clip_frames is None

    with m.Reader(out) as r:
        got = [r.decode_clip(k) for k in range(r.clip_count)]
        meta = r.header.metadata
    assert [c.keyframe_text for c in got] == given
    assert [c.clip_text for c in got] == [f"clip {k} of {given[k]}" for k in range(4)]
    assert meta["prompts"] == provider.metadata()["prompts"]  # the provider's metadata goes in the header
    assert meta["keyframe_selection"]["strategy"] == "interval"


def test_provider_can_refuse_the_clip_count(fake_pack, tmp_path):  # noqa: F811
    class AtMostTwo(NoDescriptions):
        def check_clips(self, clip_count):
            if clip_count > 2:
                raise CodecError(f"can describe 2 clips, not {clip_count}")

    video = write_video(tmp_path / "v.mp4", moving_square(16, 128, 80), fps=8)
    with pytest.raises(CodecError, match="not 4"):
        encode(video, tmp_path / "v.m3v", pack="test.fake", size=(128, 80), interval=4, texts=AtMostTwo())
    assert not (tmp_path / "v.m3v").exists()
    encode(video, tmp_path / "v.m3v", pack="test.fake", size=(128, 80), interval=8, texts=AtMostTwo())
