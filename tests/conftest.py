"""Shared helpers: small streams made with the public writer, and the media folder."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest

import m3cvc_format as m

ROOT = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("M3CVC_MEDIA", ROOT.parent / "shared" / "media"))
VECTORS = ROOT / "spec" / "vectors"


def need_media(*parts: str) -> Path:
    """Path under the shared media folder, or skip (fail in CI, where it must exist)."""
    path = MEDIA.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"test media {path} missing in CI")
        pytest.skip(f"test media {path} not present")
    return path


def write_h264(frames, out: Path, rate, size: tuple[int, int], options: dict[str, str]) -> Path:
    """RGB uint8 ``frames`` (an iterable) written to ``out`` as H.264 (libx264, yuv420p, the
    x264 ``options``) at ``size`` and ``rate``: the real-PyAV control clips of the tests."""
    import av

    with av.open(str(out), "w") as outp:
        s = outp.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = *size, "yuv420p"
        s.options = dict(options)
        s.codec_context.options = dict(options)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for p in s.encode(frame):
                outp.mux(p)
        for p in s.encode():
            outp.mux(p)
    return out


def source_frames(src: Path, count: int):
    """The first ``count`` frames of the video ``src``, RGB uint8, one at a time."""
    import av

    with av.open(str(src)) as inp:
        for i, frame in enumerate(inp.decode(video=0)):
            if i == count:
                return
            yield frame.to_ndarray(format="rgb24")


def make_header(**overrides) -> m.Header:
    fields = dict(width=64, height=48, fps=8, grid_h=3, grid_w=4, vocab_size=16, text_codec=m.TextCodec.LZW)
    fields.update(overrides)
    return m.Header(**fields)


def make_clips(header: m.Header, count: int, seed: int = 0, texts=True) -> list[m.Clip]:
    rng = np.random.default_rng(seed)
    clips, first = [], 0
    for k in range(count):
        n = int(rng.integers(1, 9))
        clips.append(
            m.Clip(
                index=k,
                first_frame=first,
                frame_count=n,
                mode=m.Mode.PREDICTION if k == count - 1 else m.Mode(k % 2),
                keyframe_text=f"keyframe {k}: a dog on grass" if texts else "",
                clip_text=f"clip {k}: the dog runs" if texts and k % 3 else "",
                index_map=rng.integers(0, header.vocab_size, (header.grid_h, header.grid_w)),
                seed=k * 11 if k % 2 else None,
            )
        )
        first += n
    return clips


def make_stream(
    header: m.Header | None = None,
    count: int = 5,
    *,
    index: bool = True,
    coder: m.IndexMapCoder = m.IndexMapCoder.RAW,
    **kw,
) -> bytes:
    """A stream for container tests; the raw index-map coder keeps them independent of the
    entropy coders, which have tests of their own."""
    header = header or make_header()
    buf = io.BytesIO()
    m.write(buf, header, make_clips(header, count, **kw), index=index, index_map_coder=coder)
    return buf.getvalue()


class Pipe(io.RawIOBase):
    """A non-seekable stream that hands out at most ``step`` bytes a read, like a pipe."""

    def __init__(self, data: bytes, step: int = 7):
        self._data = io.BytesIO(data)
        self._step = step

    def readable(self):
        return True

    def seekable(self):
        return False

    def readinto(self, buf):
        chunk = self._data.read(min(len(buf), self._step))
        buf[: len(chunk)] = chunk
        return len(chunk)


def _load_tool(name: str):
    """A script of tools/ as a module (tools/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """A folder of every tiny random-weight model tools/make_tiny_models.py writes, under the
    real models' ids (so ``--models`` with the default ids loads them); built once a session.
    Skips where the full extra (torch, transformers) is missing, fails in CI."""
    for module in ("torch", "transformers"):
        try:
            __import__(module)
        except ImportError:
            if os.environ.get("CI"):
                pytest.fail(f"{module} missing in CI (the full extra)")
            pytest.skip(f"{module} not installed (the full extra)")
    root = tmp_path_factory.mktemp("tiny-models")
    _load_tool("make_tiny_models").make_tiny_models(root)
    return root
