"""Reading and writing video for the codec.

Reading takes anything PyAV (FFmpeg) demuxes and decodes -- mp4, mkv, avi, webm, y4m, ... in
any pixel format -- and yields RGB ``uint8`` frames (H x W x 3) preprocessed as the paper does:

1. **fit** to the target aspect: ``"crop"`` (default) cuts the centre of the frame to the target
   aspect ratio, ``"pad"`` letterboxes it with black;
2. **resize** to the target size (default 512x320, area interpolation when shrinking);
3. **resample** to the target rate (default 8 fps): output frame *n* has time *n / fps* from the
   first frame's timestamp and is the source frame nearest that time (ties go to the earlier one).
   A video whose last source frame ends at ``T`` gives the output frames with time below
   ``T - 0.5 / fps``, and always at least one.

Audio and subtitle streams are ignored (one notice through :mod:`logging`). A header frame count
of 0 (unknown) is fine: frames are counted as they are decoded. The sample aspect ratio is
ignored (pixels are taken as square).

Writers (:func:`open_writer`) pick the output by its name:

- ``*.y4m``: YUV4MPEG2 written here, 4:2:0 ``C420jpeg`` (default) or ``C444``; full-range BT.601
  (JPEG) YCbCr, chroma sited at the centre of each 2x2 block, ``XCOLORRANGE=FULL``;
- ``*.mp4``, ``*.mkv``, ``*.mov``, ``*.webm``: PyAV, codec ``libx264`` by default (CRF 18,
  ``yuv420p``), any encoder FFmpeg has (``libx265``, ``libsvtav1``, ``ffv1``, ...);
- anything else (an existing folder, a name ending in ``/``, or a name without a suffix): a folder
  of PNG frames ``frame_000000.png``, ``frame_000001.png``, ...

Files are written beside their final name and renamed into place when complete.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from m3cvc_format.atomic import AtomicFile

from .errors import CodecError

__all__ = [
    "MAX_SIDE",
    "MIN_SIDE",
    "SourceInfo",
    "VideoWriter",
    "check_size",
    "fit_frame",
    "open_writer",
    "parse_size",
    "probe",
    "read_frames",
]

log = logging.getLogger("m3cvc_codec")

#: Largest width or height the codec accepts (the format allows 65535; the packs' grids and
#: memory do not).
MAX_SIDE = 4096
#: Smallest width or height: two cells of the coarsest (1/16) grid.
MIN_SIDE = 32

_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}


@dataclass(frozen=True)
class SourceInfo:
    """What the input's header says (frame_count 0 = unknown)."""

    path: str
    width: int
    height: int
    fps: Fraction | None
    frame_count: int
    codec: str
    pix_fmt: str | None
    has_audio: bool


def _open_input(path):
    import av

    p = Path(path)
    if not p.exists():
        raise CodecError(f"{path}: no such file")
    if p.is_dir():
        raise CodecError(f"{path}: is a folder, not a video file")
    try:
        container = av.open(str(p), "r")
    except av.FFmpegError as err:
        raise CodecError(f"{path}: cannot read as video ({_ff_message(err)})") from None
    if not container.streams.video:
        container.close()
        raise CodecError(f"{path}: has no video stream")
    return container


def _ff_message(err) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return str(text).splitlines()[0] if text else type(err).__name__


def probe(path) -> SourceInfo:
    """Facts about the input's first video stream (CodecError if it cannot be read)."""
    container = _open_input(path)
    try:
        s = container.streams.video[0]
        rate = s.average_rate or s.guessed_rate
        return SourceInfo(
            path=str(path),
            width=s.codec_context.width,
            height=s.codec_context.height,
            fps=Fraction(rate) if rate else None,
            frame_count=int(s.frames or 0),
            codec=s.codec_context.name,
            pix_fmt=s.codec_context.format.name if s.codec_context.format else None,
            has_audio=bool(container.streams.audio),
        )
    finally:
        container.close()


def parse_size(text: str) -> tuple[int, int]:
    """``"512x320"`` -> (512, 320); CodecError for anything else."""
    parts = str(text).lower().replace("*", "x").split("x")
    try:
        if len(parts) != 2:
            raise ValueError
        w, h = int(parts[0]), int(parts[1])
    except ValueError:
        raise CodecError(f"size {text!r} is not WIDTHxHEIGHT (e.g. 512x320)") from None
    return w, h


def check_size(size, multiple: int = 16) -> tuple[int, int]:
    """Validate a target (width, height): integers, multiples of ``multiple`` (the pack's
    largest downsample), between MIN_SIDE and MAX_SIDE.  Sizes that are not multiples are
    refused with the nearest valid size in the message, never silently rounded."""
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise CodecError(f"size {size!r} is not a (width, height) pair") from None
    if w > MAX_SIDE or h > MAX_SIDE:
        raise CodecError(f"size {w}x{h} is too large: at most {MAX_SIDE}x{MAX_SIDE}")
    if w < MIN_SIDE or h < MIN_SIDE:
        raise CodecError(f"size {w}x{h} is too small: at least {MIN_SIDE}x{MIN_SIDE}")
    if w % multiple or h % multiple:
        near = (max(MIN_SIDE, round(w / multiple) * multiple), max(MIN_SIDE, round(h / multiple) * multiple))
        raise CodecError(
            f"size {w}x{h} is not a multiple of {multiple} in both sides (the pack's grid needs it); "
            f"try {near[0]}x{near[1]}"
        )
    return w, h


def fit_frame(rgb: np.ndarray, width: int, height: int, fit: str = "crop") -> np.ndarray:
    """Centre-crop (``fit="crop"``) or letterbox (``"pad"``) ``rgb`` to width x height."""

    h, w = rgb.shape[:2]
    if fit == "crop":
        if w * height > h * width:  # too wide: keep the centre columns
            cw = max(1, round(h * width / height))
            x0 = (w - cw) // 2
            rgb = rgb[:, x0 : x0 + cw]
        elif w * height < h * width:  # too tall
            ch = max(1, round(w * height / width))
            y0 = (h - ch) // 2
            rgb = rgb[y0 : y0 + ch]
        return _resize(rgb, width, height)
    if fit == "pad":
        scale = min(width / w, height / h)
        sw, sh = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
        out = np.zeros((height, width, 3), np.uint8)
        x0, y0 = (width - sw) // 2, (height - sh) // 2
        out[y0 : y0 + sh, x0 : x0 + sw] = _resize(rgb, sw, sh)
        return out
    raise CodecError(f"fit {fit!r} is not 'crop' or 'pad'")


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    if (w, h) == (width, height):
        return np.ascontiguousarray(rgb)
    interp = cv2.INTER_AREA if width <= w and height <= h else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(rgb), (width, height), interpolation=interp)


def _decoded(path) -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds, RGB frame) for every decoded frame, in presentation order."""
    import av

    container = _open_input(path)
    try:
        stream = container.streams.video[0]
        others = [s.type for s in container.streams if s is not stream]
        if others:
            log.info("%s: ignoring %s stream(s)", Path(path).name, ", ".join(sorted(set(others))))
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        step = float(1 / rate) if rate else 1 / 25
        last = None
        count = 0
        try:
            for frame in container.decode(stream):
                t = frame.time
                if t is None:
                    t = count * step
                if last is not None and t <= last:  # missing or repeated timestamps
                    t = last + step
                last = t
                count += 1
                yield t, frame.to_ndarray(format="rgb24")
        except av.FFmpegError as err:
            if count == 0:
                raise CodecError(f"{path}: cannot decode video ({_ff_message(err)})") from None
            log.warning("%s: decoding stopped after %d frames (%s)", Path(path).name, count, _ff_message(err))
    finally:
        container.close()


def read_frames(path, size=(512, 320), fps=8, fit: str = "crop") -> Iterator[np.ndarray]:
    """Preprocessed RGB frames of ``path`` (see the module docstring), one at a time.

    Raises CodecError when the file cannot be read or holds no video frame."""
    width, height = size
    rate = Fraction(fps).limit_denominator(1001000) if not isinstance(fps, Fraction) else fps
    if rate <= 0:
        raise CodecError(f"frame rate {fps} must be positive")
    period = 1 / float(rate)
    n = 0  # next output frame
    t0 = None
    prev: tuple[float, np.ndarray] | None = None
    src_step = None
    for t, rgb in _decoded(path):
        if t0 is None:
            t0 = t
        t -= t0
        if prev is not None:
            src_step = t - prev[0]
            # every pending output time nearer prev than this frame goes to prev
            while n * period <= (prev[0] + t) / 2 + 1e-9:
                yield fit_frame(prev[1], width, height, fit)
                n += 1
        prev = (t, rgb)
    if prev is None:
        raise CodecError(f"{path}: holds no video frames")
    end = prev[0] + (src_step if src_step else period)
    while n == 0 or n * period < end - 0.5 * period - 1e-9:
        yield fit_frame(prev[1], width, height, fit)
        n += 1


# --------------------------------------------------------------------------- writing


def _rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """Full-range BT.601 (JPEG) YCbCr, float32 H x W x 3."""
    x = rgb.astype(np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128.0 + (b - y) * 0.564
    cr = 128.0 + (r - y) * 0.713
    return np.stack([y, cb, cr], axis=-1)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


class VideoWriter:
    """Common interface: ``write(rgb)``, ``close()``, ``abort()``; a context manager."""

    frames = 0

    def write(self, rgb: np.ndarray) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def abort(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _atomic(path: Path) -> AtomicFile:
    """The output's temporary file beside it (its suffix kept for tools that look at it)."""
    if path.parent and not path.parent.exists():
        raise CodecError(f"{path}: folder {path.parent} does not exist")
    return AtomicFile(path, suffix=".tmp" + path.suffix)


class Y4MWriter(VideoWriter):
    """YUV4MPEG2, ``chroma="420"`` (C420jpeg) or ``"444"`` (C444), full-range BT.601."""

    def __init__(self, path, width: int, height: int, fps, chroma: str = "420"):
        if chroma not in ("420", "444"):
            raise CodecError(f"y4m chroma {chroma!r} is not '420' or '444'")
        if chroma == "420" and (width % 2 or height % 2):
            raise CodecError(f"4:2:0 y4m needs an even size, got {width}x{height}")
        self.width, self.height, self.chroma = width, height, chroma
        self._file_path = _atomic(Path(path))
        self._f = self._file_path.file
        rate = Fraction(fps)
        tag = "C420jpeg" if chroma == "420" else "C444"
        self._f.write(
            f"YUV4MPEG2 W{width} H{height} F{rate.numerator}:{rate.denominator} Ip A1:1 {tag} "
            "XCOLORRANGE=FULL\n".encode("ascii")
        )
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        ycc = _rgb_to_ycbcr(rgb)
        self._f.write(b"FRAME\n")
        self._f.write(_u8(ycc[..., 0]).tobytes())
        for c in (1, 2):
            plane = ycc[..., c]
            if self.chroma == "420":
                h, w = plane.shape
                plane = plane.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
            self._f.write(_u8(plane).tobytes())
        self.frames += 1

    def close(self) -> None:
        if self._f.closed:
            return
        self._file_path.publish()

    def abort(self) -> None:
        if not self._f.closed:
            self._file_path.discard()


class AVWriter(VideoWriter):
    """A compressed video file through PyAV (``codec`` any FFmpeg encoder)."""

    def __init__(
        self, path, width: int, height: int, fps, codec: str | None = None, crf: int = 18, pix_fmt: str | None = None
    ):
        import av

        path = Path(path)
        self._file = _atomic(path)
        codec = codec or "libx264"
        try:
            av.codec.Codec(codec, "w")
        except Exception:
            self._file.discard()
            raise CodecError(f"video encoder {codec!r} is not available in this FFmpeg build") from None
        try:
            self._c: av.container.OutputContainer | None = av.open(
                str(self._file.temp), "w", format=_CONTAINERS[path.suffix.lower()]
            )
            rate = Fraction(fps).limit_denominator(65535)
            self._s: av.VideoStream = self._c.add_stream(codec, rate=rate)  # type: ignore[assignment]
            self._s.width, self._s.height = width, height
            formats = [f.name for f in (self._s.codec_context.codec.video_formats or [])]
            if pix_fmt is None:
                pix_fmt = "yuv420p" if not formats or "yuv420p" in formats else formats[0]
            self._s.pix_fmt = pix_fmt
            options: dict[str, object] = {}
            if codec in ("libx264", "libx265", "libsvtav1", "libvpx-vp9", "libaom-av1"):
                options["crf"] = str(crf)
            if codec == "libx265":
                options["x265-params"] = "log-level=error"
            if codec == "libsvtav1":
                os.environ.setdefault("SVT_LOG", "1")  # errors only, no banner on stderr
            self._s.options = options
        except (av.FFmpegError, ValueError) as err:
            self._file.discard()
            raise CodecError(f"{path}: cannot open {codec} writer ({_ff_message(err)})") from None
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames
        if self._c is None:
            raise ValueError("write to a closed video writer")
        for packet in self._s.encode(frame):
            self._c.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self._c is None:
            return
        for packet in self._s.encode():
            self._c.mux(packet)
        self._c.close()
        self._c = None
        self._file.publish()

    def abort(self) -> None:
        if self._c is not None:
            try:
                self._c.close()
            except Exception:
                pass
            self._c = None
        self._file.discard()


class PNGFolderWriter(VideoWriter):
    """A folder of ``frame_000000.png`` ... (created if missing)."""

    def __init__(self, path, width: int, height: int, fps=None):
        self.folder = Path(path)
        if self.folder.exists() and not self.folder.is_dir():
            raise CodecError(f"{path}: exists and is not a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        import cv2

        name = self.folder / f"frame_{self.frames:06d}.png"
        if not cv2.imwrite(str(name), np.ascontiguousarray(rgb[..., ::-1])):
            raise CodecError(f"{name}: cannot write PNG")
        self.frames += 1

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def open_writer(path, width: int, height: int, fps, *, codec: str | None = None, chroma: str = "420") -> VideoWriter:
    """The writer for ``path``'s kind (see the module docstring)."""
    text = str(path)
    p = Path(path)
    suffix = p.suffix.lower()
    if text.endswith(("/", os.sep)) or p.is_dir() or not suffix:
        return PNGFolderWriter(p, width, height, fps)
    if suffix == ".y4m":
        return Y4MWriter(p, width, height, fps, chroma=chroma)
    if suffix in _CONTAINERS:
        return AVWriter(p, width, height, fps, codec=codec)
    raise CodecError(f"{path}: unknown output kind {suffix!r} (use .y4m, .mp4, .mkv, .mov, .webm or a folder)")


def frame_count_estimate(info: SourceInfo, fps) -> int:
    """Frames :func:`read_frames` will give, from the header (0 when it does not say)."""
    if not info.frame_count or not info.fps:
        return 0
    return max(1, math.floor(info.frame_count / float(info.fps) * float(fps) + 0.5))
