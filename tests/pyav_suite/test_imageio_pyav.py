"""imageio's PyAV plugin (imageio.plugins.pyav, a typical library written for PyAV) reading
the suite's clip as .m3v and .mkv through ``m3cvc_format.open``, and the .mp4 control through
real PyAV: the 13 reading tests of imageio's tests/test_pyav.py (v2.37.4), adapted to the clip
(imageio's use cockatoo.mp4: 280 frames of 1280x720 yuv444p at 20 fps).

The plugin calls ``av.open(file)`` on a file object imageio opened; ``pyav_open`` below stands
in for it, as an application would route `.m3v`/`.mkv` to the facade: by the file's name, else
by its first bytes.  What the plugin then uses: ``container.streams.video[0]``,
``container.decode(video=0)``, ``container.seek(pts, stream=...)``, ``container.format.flags``,
``container.metadata``; on the stream ``thread_type`` (reads ``.name``), ``codec_context``
(``width``, ``height``, ``pix_fmt``, ``thread_count``), ``codec.name``/``long_name``,
``profile``, ``guessed_rate``, ``duration``, ``time_base``, ``frames``, ``metadata``; frames'
``reformat``, ``planes``, ``format``, ``pts``, ``time_base``, ``key_frame``, ``time``,
``interlaced_frame``, ``pict_type``, ``side_data``; ``av.filter.Graph.add_buffer(template=stream)``
for filters; and it catches ``av.FFmpegError`` at open.

Left out: imageio's writing tests (test_mp4_writing, test_write_bytes, test_write_png,
test_gif_write, ...), its PNG/GIF reading (not video containers) and test_uri_reading (DASH
over the network, skipped by imageio itself).
"""

from __future__ import annotations

import io
import os

import av
import numpy as np
import pyav_suite_clips
import pytest
from pyav_suite_clips import FPS, FRAMES, KEYFRAMES, SIZE

import m3cvc_format
from m3cvc_format.constants import SIGNATURE
from m3cvc_format.opener import EBML_MAGIC

clip = pyav_suite_clips.clip  # the parametrised fixture: .m3v, .mkv, .mp4 control

iio = pytest.importorskip("imageio.v3")
W, H = SIZE


def _ours(file) -> bool:
    name = os.fspath(file) if isinstance(file, (str, os.PathLike)) else getattr(file, "name", None)
    if isinstance(name, str) and name.endswith((".m3v", ".mkv")):
        return True
    if hasattr(file, "peek") or hasattr(file, "seek"):
        start = file.tell()
        head = file.read(len(SIGNATURE))
        file.seek(start)
        return head == SIGNATURE
    return False


@pytest.fixture(autouse=True)
def pyav_open(monkeypatch):
    """av.open, with `.m3v` and `.mkv` going to m3cvc_format.open."""
    real_open = av.open

    def dispatch(file, *args, **kwargs):
        if kwargs.get("mode", args[0] if args else "r") == "r" and _ours(file):
            return m3cvc_format.open(file, *args, **kwargs)
        if isinstance(file, io.IOBase) and file.read(4) == EBML_MAGIC:  # an .mkv without a name
            file.seek(0)
            try:
                return m3cvc_format.open(file, *args, **kwargs)
            except av.FFmpegError:  # not from m3v-mux: our errors are PyAV's too
                file.seek(0)
        elif isinstance(file, io.IOBase):
            file.seek(0)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", dispatch)


def _frame(clip, index):
    with clip.open() as container:
        for idx, frame in enumerate(container.decode(video=0)):
            if idx == index:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"no frame {index}")


def test_mp4_read(clip):
    expected = _frame(clip, 4)

    result = iio.imread(clip.path, index=4, plugin="pyav", format="rgb24")
    assert np.allclose(result, expected)

    result = iio.imread(clip.path, index=4, plugin="pyav", constant_framerate=False, format="rgb24")
    assert np.allclose(result, expected)


def test_mp4_read_bytes(clip):
    encoded_video = clip.path.read_bytes()

    img_expected = iio.imread(clip.path, index=5, plugin="pyav")
    img = iio.imread(encoded_video, plugin="pyav", index=5)

    assert np.allclose(img, img_expected)


def test_metadata(clip):
    with iio.imopen(str(clip.path), "r", plugin="pyav") as plugin:
        meta = plugin.metadata()

        assert meta["codec"] == ("m3v" if clip.ours else "h264")
        assert meta["profile"] == (None if clip.ours else "Main")
        assert meta["duration"] == FRAMES / FPS
        assert meta["fps"] == float(FPS)

        meta = plugin.metadata(index=5)  # imageio's index 4 is a keyframe of the clip

        assert meta["time"] == 5 / FPS
        assert meta["key_frame"] is False


def test_properties(clip):
    with iio.imopen(str(clip.path), "r", plugin="pyav") as plugin:
        with pytest.raises(IOError):
            # subsampled format
            plugin.properties(format="yuv420p")

        with pytest.raises(IOError):
            # components per channel differs
            plugin.properties(format="nv24")

        props = plugin.properties()
        assert props.shape == (FRAMES, H, W, 3)
        assert props.dtype == np.uint8
        assert props.n_images == FRAMES
        assert props.is_batch is True

        props = plugin.properties(index=4, format="rgb48")
        assert props.shape == (H, W, 3)
        assert props.dtype == np.uint16
        assert props.n_images is None
        assert props.is_batch is False

        props = plugin.properties(index=5)
        assert props.shape == (H, W, 3)
        assert props.dtype == np.uint8
        assert props.n_images is None
        assert props.is_batch is False


def test_filter_sequence(clip):
    frames = iio.imread(
        clip.path,
        plugin="pyav",
        filter_sequence=[
            ("drawgrid", "w=iw/3:h=ih/3:t=2:c=white@0.5"),
            ("scale", {"size": "vga", "flags": "lanczos"}),
            ("tpad", "start=3"),
        ],
    )

    assert frames.shape == (FRAMES + 3, 480, 640, 3)

    frames = iio.imread(
        clip.path,
        plugin="pyav",
        filter_sequence=[
            ("framestep", "5"),
            ("scale", {"size": "vga", "flags": "lanczos"}),
        ],
    )

    assert frames.shape == (-(-FRAMES // 5), 480, 640, 3)


def test_filter_graph(clip):
    frames = iio.imread(
        clip.path,
        plugin="pyav",
        filter_graph=(
            {
                "step": ("framestep", "5"),
                "scale": ("scale", {"size": "vga", "flags": "lanczos"}),
            },
            [
                ("video_in", "step", 0, 0),
                ("step", "scale", 0, 0),
                ("scale", "video_out", 0, 0),
            ],
        ),
    )

    assert frames.shape == (-(-FRAMES // 5), 480, 640, 3)


def test_variable_fps_seek(clip):
    with iio.imopen(clip.path, "r", plugin="pyav") as file:
        expected = iio.imread(clip.path, index=15, plugin="pyav")
        actual = file.read(index=15, constant_framerate=False)
        assert np.allclose(actual, expected)

        expected = iio.imread(clip.path, index=3, plugin="pyav")
        actual = file.read(index=3, constant_framerate=False)

        assert np.allclose(actual, expected)

    meta = iio.immeta(clip.path, index=3, plugin="pyav", constant_framerate=False)
    assert meta["interlaced_frame"] is False


def test_exceptions(clip, tmp_path):
    """Reading half of imageio's: the plugin turns av.FFmpegError at open into an IOError,
    so the facade's errors must be av.FFmpegError."""
    with pytest.raises(IOError):
        iio.imopen(b"nonsense", "r", plugin="pyav", legacy_mode=False)

    foo_file = tmp_path / f"faulty.{clip.kind}"
    foo_file.write_bytes(b"nonsense")
    with pytest.raises(IOError):
        iio.imopen(foo_file, "r", plugin="pyav", legacy_mode=False)


def test_native_pixformat_reading(clip):
    if not clip.ours:
        pytest.skip("imageio's test needs a yuv444p video (cockatoo.mp4); the control is yuv420p")
    frames = iio.imread(clip.path, index=5, plugin="pyav", format=None)

    # the .m3v decodes to rgb24
    assert frames.shape == (H, W, 3)


def test_sequential_reading(clip):
    expected_imgs = [
        iio.imread(clip.path, plugin="pyav", index=1),
        iio.imread(clip.path, plugin="pyav", index=5),
    ]

    with iio.imopen(clip.path, "r", plugin="pyav") as img_file:
        first_read = img_file.read(index=1, thread_type="FRAME", thread_count=2)
        second_read = img_file.read(index=5)
        actual_imgs = [first_read, second_read]

    assert np.allclose(actual_imgs, expected_imgs)


@pytest.mark.slow
def test_seek_vs_iter(clip, request):
    request.applymarker(
        pytest.mark.xfail(
            not clip.ours,
            reason="imageio's seek to the last frame of the control (H.264 with B-frames) runs out "
            "of frames (StopIteration): a limit of imageio's seek with reordered frames",
            raises=StopIteration,
            strict=True,
        )
    )
    n_frames = iio.improps(clip.path, plugin="pyav").shape[0]
    test_indices = [KEYFRAMES[1] - 1, KEYFRAMES[1], KEYFRAMES[1] + 1, KEYFRAMES[2] + 2, n_frames - 1]

    with iio.imopen(clip.path, "r", plugin="pyav") as file:
        for idx, expected in enumerate(iio.imiter(clip.path, plugin="pyav", thread_type="FRAME")):
            if idx not in test_indices:
                continue

            actual = file.read(index=idx, thread_type="FRAME")
            assert np.allclose(actual, expected)

            actual = iio.imread(clip.path, plugin="pyav", index=idx)
            assert np.allclose(actual, expected)


def test_read_filter(clip):
    image = iio.imread(
        clip.path,
        index=5,
        plugin="pyav",
        filter_sequence=[("scale", {"size": "vga", "flags": "lanczos"})],
    )

    assert image.shape == (480, 640, 3)


def test_trim_filter(clip):
    frames = iio.imread(
        clip.path,
        plugin="pyav",
        filter_sequence=[("trim", {"start": "00:00:00.5", "end": "00:00:01.5"})],
    )

    assert frames.shape == (FPS, H, W, 3)
