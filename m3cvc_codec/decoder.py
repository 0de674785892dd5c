"""`.m3v` stream -> video: keyframes through the pack, clips through :mod:`reconstruct`.

The decoder refuses a stream whose pack is not installed or whose weights hash differs
(:func:`m3cvc_codec.packs.check_stream_pack`). Interpolation clips need the next clip's
keyframe; a clip without a successor (the last one) is reconstructed in prediction mode
(spec/m3v.md §6.2). ``frames=(A, B)`` decodes only the clips that hold frames A..B-1, plus the
keyframe of the clip after the last one when that clip interpolates.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from . import packs as _packs
from .errors import CodecError
from .reconstruct import interpolate_clip, predict_clip
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
    input_m3v, output, *, frames=None, codec: str | None = None, chroma: str = "420", progress: bool = False
) -> DecodeReport:
    """Decode ``input_m3v`` (path, bytes or binary stream) to ``output`` (.y4m, .mp4/.mkv/...,
    or a folder of PNGs).  Raises CodecError, PackError, M3VError, OSError."""
    import m3cvc_format as m

    with m.Reader(input_m3v) as reader:
        header = reader.header
        pack, grid = _packs.check_stream_pack(header)
        total = reader.frame_count
        if total == 0:
            raise CodecError("stream holds no clips")
        a, b = parse_frames(frames, total)
        k_first, k_last = reader.clip_at_frame(a), reader.clip_at_frame(b - 1)
        keyframes: dict[int, np.ndarray] = {}
        records: dict[int, object] = {}
        maps: dict[int, np.ndarray] = {}  # decoded index maps: references of dependent clips

        def clip(k):
            if k not in records:
                records[k] = reader.decode_clip(k, maps)
                for old in [j for j in maps if j < k - 1]:
                    del maps[old]
            return records[k]

        def keyframe(k):
            if k not in keyframes:
                c = clip(k)
                seed = m.decode_seed(header.stream_seed, k, c.seed)
                frame = np.asarray(pack.decode_keyframe(np.asarray(c.index_map), grid, c.keyframe_text, seed))
                if frame.shape != (header.height, header.width, 3):
                    import cv2

                    frame = cv2.resize(
                        frame.astype(np.uint8), (header.width, header.height), interpolation=cv2.INTER_AREA
                    )
                keyframes[k] = np.ascontiguousarray(frame, dtype=np.uint8)
                keyframes.pop(k - 2, None)  # at most the current and the next are needed
            return keyframes[k]

        bar = None
        if progress:
            try:
                from tqdm import tqdm

                bar = tqdm(total=b - a, desc="decoding", unit="frame", leave=False, dynamic_ncols=True)
            except ImportError:
                pass
        written = 0
        with open_writer(output, header.width, header.height, header.fps, codec=codec, chroma=chroma) as out:
            for k in range(k_first, k_last + 1):
                c = clip(k)
                k0 = keyframe(k)
                if c.mode == m.Mode.INTERPOLATION and k + 1 < reader.clip_count:
                    gen = interpolate_clip(k0, keyframe(k + 1), c.frame_count)
                else:
                    gen = predict_clip(k0, c.frame_count)
                for i, frame in enumerate(gen):
                    n = c.first_frame + i
                    if n >= b:
                        break
                    if n >= a:
                        out.write(frame)
                        written += 1
                        if bar is not None:
                            bar.update()
                records.pop(k, None)
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
