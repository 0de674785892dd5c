"""Description sidecars (docs/sidecar.md): both forms, validation errors, provider lookup."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from m3cvc_codec import CodecError
from m3cvc_codec.descriptions import ClipSpan, NoDescriptions, SidecarDescriptions, load_sidecar, provider_for


def span(k, first, n=4, fps=8):
    return ClipSpan(k, first, n, Fraction(fps))


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
    assert p.describe(span(0, 0)) == ("A dog.", "It runs.")
    assert p.describe(span(1, 4)) == ("", "")
    assert p.describe(span(2, 8)) == ("Ünïcode ✓", "")
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
    assert p.describe(span(0, 0)) == ("first", "a")
    assert p.describe(span(1, 19)) == ("first", "a")  # 2.375 s
    assert p.describe(span(2, 20)) == ("later", "b")  # 2.5 s: start is inside, end is not
    assert p.describe(span(3, 80)) == ("", "")  # 10 s: in no range


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
    assert provider_for(None).describe(span(0, 0), None, None) == ("", "")
    assert isinstance(provider_for({"clips": []}), SidecarDescriptions)
    custom = NoDescriptions()
    assert provider_for(custom) is custom
    with pytest.raises(CodecError, match="texts must be"):
        provider_for(42)
