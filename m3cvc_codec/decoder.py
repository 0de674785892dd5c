"""`.m3v` stream -> video file: frames from :class:`m3cvc_format.FrameSource` through the
codec's :class:`~m3cvc_codec.clip_decoder.ClipDecoder` (the same path as ``m3cvc_format.open``
and the player), written by :mod:`.video_io`.

The decoder refuses a stream whose pack is not installed or whose weights hash differs
(:func:`m3cvc_codec.packs.check_stream_pack`).  ``frames=(A, B)`` decodes only the clips that
hold frames A..B-1, plus the keyframe of the clip after the last one when that clip
interpolates (FrameSource decides interpolation or prediction, spec/m3v.md §6.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from .clip_decoder import ClipDecoder
from .errors import CodecError
from .packs import PackConfig, RuntimeOptions
from .video_io import open_writer

__all__ = ["DecodeReport", "decode", "parse_frames"]


@dataclass
class DecodeReport:
    output: str
    width: int
    height: int
    fps: Fraction
    first_frame: int
    frames: int
    clips_decoded: int


def parse_frames(frames, total: int) -> tuple[int, int]:
    """``None``, ``"A:B"`` (either side may be empty), ``slice(A, B)`` or ``(A, B)`` ->
    (A, B) within 0..total with A < B; CodecError otherwise."""
    a: int | None
    b: int | None
    if frames is None:
        a, b = 0, total
    else:
        if isinstance(frames, str):
            parts = frames.split(":")
            if len(parts) != 2:
                raise CodecError(f"frames {frames!r} is not A:B")
            try:
                a = int(parts[0]) if parts[0].strip() else None
                b = int(parts[1]) if parts[1].strip() else None
            except ValueError:
                raise CodecError(f"frames {frames!r} is not A:B with integers") from None
        elif isinstance(frames, slice):
            if frames.step not in (None, 1):
                raise CodecError("frames: a step is not supported")
            a, b = frames.start, frames.stop
        else:
            try:
                a, b = frames
            except (TypeError, ValueError):
                raise CodecError(f"frames {frames!r} is not A:B") from None
        a = 0 if a is None else a
        b = total if b is None else b
        if a < 0:
            a += total
        if b < 0:
            b += total
        b = min(b, total)
    if not 0 <= a < b:
        raise CodecError(f"frames {frames if frames is not None else ''} select nothing of the stream's {total} frames")
    return a, b


def decode(
    input_m3v,
    output,
    *,
    frames=None,
    codec: str | None = None,
    chroma: str = "420",
    progress: bool = False,
    pack_config: PackConfig | str | Path | None = None,
    options: RuntimeOptions | None = None,
) -> DecodeReport:
    """Decode ``input_m3v`` (path, bytes or binary stream) to ``output`` (.y4m, .mp4/.mkv/...,
    or a folder of PNGs), with the stream's pack built from ``pack_config`` and ``options``
    (:func:`m3cvc_codec.packs.load_pack`).  Raises CodecError, PackError, M3VError, OSError."""
    import m3cvc_format as m

    with m.Reader(input_m3v) as reader:
        header = reader.header
        source = m.FrameSource(reader, decoder=ClipDecoder(header, pack_config=pack_config, options=options))
        total = reader.frame_count
        if total == 0:
            raise CodecError("stream holds no clips")
        a, b = parse_frames(frames, total)
        k_first, k_last = reader.clip_at_frame(a), reader.clip_at_frame(b - 1)
        bar = None
        if progress:
            try:
                from tqdm import tqdm

                bar = tqdm(total=b - a, desc="decoding", unit="frame", leave=False, dynamic_ncols=True)
            except ImportError:
                pass
        written = 0
        with open_writer(output, header.width, header.height, header.fps, codec=codec, chroma=chroma) as out:
            for _, frame in source.frames(a, b):
                out.write(frame)
                written += 1
                if bar is not None:
                    bar.update()
        if bar is not None:
            bar.close()
    return DecodeReport(
        output=str(output),
        width=header.width,
        height=header.height,
        fps=header.fps,
        first_frame=a,
        frames=written,
        clips_decoded=k_last - k_first + 1,
    )
