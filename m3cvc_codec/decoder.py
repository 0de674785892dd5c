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

from . import progress as progress_module
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
    #: The frame count the header promises (0: the header does not say).
    declared_frames: int = 0
    #: None when every frame asked for came out; else one line saying where the stream was cut
    #: (or ended early) and how many frames the header promised and how many came out.
    shortfall: str | None = None

    @property
    def complete(self) -> bool:
        return self.shortfall is None


def parse_frames(frames, total: int | None) -> tuple[int, int]:
    """``None``, ``"A:B"`` (either side may be empty), ``slice(A, B)`` or ``(A, B)`` ->
    (A, B) within 0..total with A < B; CodecError otherwise.  ``total`` None: the stream's
    length is not known yet (a pipe whose header gives no frame count): B may then be
    returned as -1, meaning "to the end", and negative frame numbers are refused."""
    a: int | None
    b: int | None
    if frames is None:
        if total is None:
            return 0, -1
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
        if total is None:
            if (a is not None and a < 0) or (b is not None and b < 0):
                raise CodecError(f"frames {frames!r}: counting from the end needs the stream's length, unknown here")
            a = 0 if a is None else a
            b = -1 if b is None else b
            if b == -1 or a < b:
                return a, b
            raise CodecError(f"frames {frames!r} select nothing")
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
    (:func:`m3cvc_codec.packs.load_pack`).  Raises CodecError, PackError, M3VError, OSError.
    ``progress``: a frame bar on stderr (tqdm), with the diffusion step of the clip being
    decoded as its postfix (:mod:`m3cvc_codec.progress`); False: nothing.

    A stream that cannot seek (a pipe, ``sys.stdin.buffer``) is decoded in one pass, clip by
    clip as it arrives.  A stream cut off (or ending without its index before the frames its
    header promises) is decoded as far as its intact clips go: the report's ``shortfall`` then
    says where it was cut and how many frames were promised and how many came out; a stream
    with no intact clip raises CodecError saying the same."""
    import m3cvc_format as m

    steps = _StepPostfix() if progress else None
    with m.Reader(input_m3v) as reader:
        header = reader.header
        decoder = ClipDecoder(header, pack_config=pack_config, options=options, progress=steps or False)
        source = m.FrameSource(reader, decoder=decoder)
        declared = header.frame_count
        if reader.seekable:
            available = reader.frame_count
            if available == 0:
                raise CodecError(_shortfall(reader, declared, 0, 0) or "stream holds no clips")
            a, b = parse_frames(frames, max(available, declared))
        else:
            a, b = parse_frames(frames, declared or None)
        stop = None if b < 0 else b
        bar = None
        if progress:
            try:
                from tqdm import tqdm

                bar = tqdm(
                    total=stop - a if stop else None, desc="decoding", unit="frame", leave=False, dynamic_ncols=True
                )
            except ImportError:
                decoder.progress = progress_module.StderrLine()
        if steps is not None:
            steps.bar = bar
        written = 0
        clips: set[int] = set()
        out = open_writer(output, header.width, header.height, header.fps, codec=codec, chroma=chroma)
        try:
            for n, frame in source.frames(a, stop):
                out.write(frame)
                written += 1
                record = source.locate(n)
                if record is not None:
                    clips.add(record.index)
                if bar is not None:
                    bar.update()
            wanted = (stop if stop is not None else declared) or None
            shortfall = _shortfall(reader, declared, a, written, wanted)
            if not written:
                raise CodecError(shortfall or "stream holds no clips")
        except BaseException:
            out.abort()
            raise
        finally:
            if bar is not None:
                bar.close()
        out.close()
    return DecodeReport(
        output=str(output),
        width=header.width,
        height=header.height,
        fps=header.fps,
        first_frame=a,
        frames=written,
        clips_decoded=len(clips),
        declared_frames=declared,
        shortfall=shortfall,
    )


class _StepPostfix:
    """The diffusion steps of the clip being decoded (:mod:`m3cvc_codec.progress`) as the frame
    bar's postfix: a slow pack's bar moves between frames too."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, event: progress_module.Step) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str("" if event.step >= event.steps else str(event), refresh=True)


def _shortfall(reader, declared: int, first: int, written: int, wanted: int | None = None) -> str | None:
    """One line when frames asked for did not come out because the stream was cut (or ends
    without its index before the frames its header promises); None otherwise.  ``wanted``:
    the frame the request runs up to (None: the end of the stream)."""
    from m3cvc_format import TruncatedError

    end = reader.size if reader.size is not None else reader.bytes_seen
    cut = next((d for d in reader.damage if isinstance(d.error, TruncatedError)), None)
    short = wanted is not None and first + written < wanted
    if cut is not None and reader.truncated and (wanted is None or short or written == 0):
        where = f"stream cut at byte {end} (inside the chunk at byte {cut.offset})"
    elif short and not reader.terminated:
        where = f"stream ends at byte {end} without its index"
    else:
        return None
    promise = f"the header promises {declared} frames" if declared else "the header gives no frame count"
    asked = f"; frames {first}..{wanted - 1} asked" if wanted is not None and (first or wanted != declared) else ""
    return f"{where}: {promise}{asked}, {written} decoded"
