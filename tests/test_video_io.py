"""Reading (any container and pixel format, crop/pad, resampling by timestamp) and writing
(y4m, mp4/mkv, PNG folders) of video, and the errors for bad inputs and sizes."""

from __future__ import annotations

import logging

import av
import numpy as np
import pytest
from conftest import need_media
from fake_pack import moving_square, write_video

from m3cvc_codec import CodecError
from m3cvc_codec.video_io import check_size, fit_frame, open_writer, parse_size, probe, read_frames


def numbered(n, width=64, height=48):
    """Frame i is flat grey 10 * i (so the picked source frame can be read back)."""
    return np.stack([np.full((height, width, 3), 10 * i, np.uint8) for i in range(n)])


def frame_numbers(frames):
    return [round(float(f.mean()) / 10) for f in frames]


def test_resample_picks_nearest_source_frame(tmp_path):
    path = write_video(tmp_path / "a.mkv", numbered(24), fps=24, codec="ffv1", pix_fmt="yuv444p")
    frames = list(read_frames(path, (64, 48), fps=8))
    assert len(frames) == 8  # 1 s at 8 fps
    assert frame_numbers(frames) == [0, 3, 6, 9, 12, 15, 18, 21]


def test_upsampling_repeats_frames(tmp_path):
    path = write_video(tmp_path / "a.mkv", numbered(4), fps=4, codec="ffv1", pix_fmt="yuv444p")
    assert frame_numbers(read_frames(path, (64, 48), fps=8)) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_one_frame_video_gives_one_frame(tmp_path):
    path = write_video(tmp_path / "one.mp4", numbered(1), fps=30)
    assert len(list(read_frames(path, (64, 48), fps=8))) == 1


@pytest.mark.parametrize(
    "codec,pix_fmt", [("ffv1", "yuv444p"), ("ffv1", "gray"), ("libx264", "yuv420p"), ("ffv1", "bgr0")]
)
def test_pixel_formats_become_rgb(tmp_path, codec, pix_fmt):
    rgb = np.zeros((2, 48, 64, 3), np.uint8)
    rgb[:] = (200, 200, 200) if pix_fmt == "gray" else (200, 40, 40)
    path = write_video(tmp_path / "a.mkv", rgb, fps=8, codec=codec, pix_fmt=pix_fmt)
    out = list(read_frames(path, (64, 48), fps=8))
    assert out[0].shape == (48, 64, 3) and out[0].dtype == np.uint8
    assert np.abs(out[0].astype(int) - rgb[0]).mean() < 8


def test_crop_and_pad():
    wide = np.full((100, 400, 3), 255, np.uint8)  # 4:1 into 2:1
    wide[:, :100] = 0  # dark left quarter is cropped away
    cropped = fit_frame(wide, 64, 32, "crop")
    assert cropped.shape == (32, 64, 3) and cropped.min() == 255
    padded = fit_frame(np.full((100, 100, 3), 255, np.uint8), 64, 32, "pad")
    assert padded.shape == (32, 64, 3)
    assert padded[:, :10].max() == 0 and padded[:, 16:48].min() == 255  # black bars left/right


def test_real_media_and_audio_notice(caplog):
    path = need_media("videos", "mmaction2_test_makeup.avi")  # MPEG-4 in AVI, with audio
    logger = logging.getLogger("m3cvc_codec")
    logger.addHandler(caplog.handler)  # the CLIs stop propagation to the root logger
    try:
        with caplog.at_level(logging.INFO, logger="m3cvc_codec"):
            frames = list(read_frames(path, (128, 80), fps=8))
    finally:
        logger.removeHandler(caplog.handler)
    assert 50 <= len(frames) <= 54 and frames[0].shape == (80, 128, 3)
    assert any("ignoring audio" in r.message for r in caplog.records)


def test_header_without_frame_count():
    path = need_media("videos", "decord_flipping_a_pancake.mkv")
    assert probe(path).frame_count == 0
    assert len(list(read_frames(path, (64, 48), fps=2))) == 21  # 10.4 s at 2 fps


def test_y4m_round_trip(tmp_path):
    src = moving_square(3, 64, 48)
    for chroma in ("420", "444"):
        out = tmp_path / f"a{chroma}.y4m"
        with open_writer(out, 64, 48, 8, chroma=chroma) as w:
            for f in src:
                w.write(f)
        data = out.read_bytes()
        assert data.startswith(b"YUV4MPEG2 W64 H48 F8:1 Ip A1:1 C" + (b"420jpeg" if chroma == "420" else b"444"))
        planes = 64 * 48 * (1.5 if chroma == "420" else 3)
        assert len(data) == data.index(b"\n") + 1 + 3 * (6 + planes)
        back = list(read_frames(out, (64, 48), fps=8))
        assert len(back) == 3
        assert np.abs(back[1].astype(int) - src[1]).mean() < 6


@pytest.mark.parametrize("name,codec", [("a.mp4", None), ("a.mkv", "ffv1")])
def test_compressed_writers(tmp_path, name, codec):
    out = tmp_path / name
    with open_writer(out, 64, 48, 8, codec=codec) as w:
        for f in moving_square(5, 64, 48):
            w.write(f)
    assert len(list(read_frames(out, (64, 48), fps=8))) == 5
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left


def test_png_folder_writer(tmp_path):
    with open_writer(tmp_path / "frames", 64, 48, 8) as w:
        for f in moving_square(3, 64, 48):
            w.write(f)
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [f"frame_00000{i}.png" for i in range(3)]


def test_unknown_writer_codec_and_suffix(tmp_path):
    with pytest.raises(CodecError, match="not available"):
        open_writer(tmp_path / "a.mp4", 64, 48, 8, codec="nosuchcodec")
    with pytest.raises(CodecError, match="unknown output kind"):
        open_writer(tmp_path / "a.xyz", 64, 48, 8)


def test_unreadable_inputs(tmp_path):
    with pytest.raises(CodecError, match="no such file"):
        list(read_frames(tmp_path / "missing.mp4"))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(CodecError, match=r"cannot read|cannot decode|no video"):
        list(read_frames(junk))
    with pytest.raises(CodecError, match="folder"):
        list(read_frames(tmp_path))


def test_zero_frame_video(tmp_path):
    path = tmp_path / "empty.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=8)
        s.width, s.height = 64, 48
        c.start_encoding()
    with pytest.raises(CodecError, match=r"no video|cannot read"):
        list(read_frames(path, (64, 48)))


def test_audio_only_file(tmp_path):
    path = tmp_path / "a.mka"
    with av.open(str(path), "w") as c:
        a = c.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        for p in list(a.encode(frame)) + list(a.encode()):
            c.mux(p)
    with pytest.raises(CodecError, match="no video stream"):
        list(read_frames(path))


@pytest.mark.parametrize(
    "size,match",
    [
        ((100, 80), "multiple of 16.*try 96x80"),
        ((16, 16), "too small"),
        ((8192, 4096), "too large"),
        (("a", 3), "pair"),
    ],
)
def test_bad_sizes(size, match):
    with pytest.raises(CodecError, match=match):
        check_size(size, 16)


def test_parse_size():
    assert parse_size("512x320") == (512, 320)
    with pytest.raises(CodecError):
        parse_size("512")
