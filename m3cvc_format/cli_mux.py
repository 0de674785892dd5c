"""m3v-mux: package an `.m3v` stream in a Matroska file any player opens.

    m3v-mux IN.m3v -o OUT.mkv [--no-preview] [--no-subtitles] [--plain-subtitles] [--no-chapters] [--crf N] [-q]

The `.m3v` bytes travel unchanged as an attachment (``m3v-demux`` gives them back); the
descriptions become a subtitle track (zlib-compressed, Matroska's ContentCompression, unless
``--plain-subtitles``), each clip a chapter, and the decoded video an H.264
preview track.  The preview needs the codec (``m3cvc_codec``) and the stream's pack; without
them the file is written without a preview, with a one-line notice.  Exit status: 0 written,
1 bad input or an error writing, 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .cli import error_text, run

PROG = "m3v-mux"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Put an .m3v stream into a Matroska file: the stream as an attachment, the "
        "descriptions as subtitles, a chapter per clip and an H.264 preview of the decoded video.",
    )
    p.add_argument("input", help="the .m3v stream (a file, a URL), or - for standard input")
    p.add_argument("-o", "--output", required=True, help="the Matroska file to write (OUT.mkv)")
    p.add_argument("--no-preview", action="store_true", help="no video track (no decoding)")
    p.add_argument("--no-subtitles", action="store_true", help="no subtitle track of the descriptions")
    p.add_argument(
        "--plain-subtitles",
        action="store_true",
        help="store the subtitle track uncompressed (by default zlib, which FFmpeg, mkvtoolnix and VLC read)",
    )
    p.add_argument("--no-chapters", action="store_true", help="no chapter at each clip start")
    p.add_argument(
        "--crf",
        type=int,
        default=30,
        metavar="N",
        help="H.264 quality of the preview, 0-51, lower is better (default 30)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no notices or closing line")
    return p


def decoded_frames(data: bytes) -> Iterator[Any]:
    """The stream's frames as RGB arrays, in order, decoded through the frame decoder the
    format layer finds for the stream's pack (as m3v-decode and m3v-play see them)."""
    import io

    import m3cvc_format as m

    with m.open(io.BytesIO(data)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def _preview(data: bytes) -> tuple[Callable[[], Iterator[Any]] | None, str | None]:
    """(a callable giving the decoded frames, None) or (None, why they cannot be had)."""
    import m3cvc_format as m
    from m3cvc_format.framedecoders import find_frame_decoder

    with m.Reader(data) as reader:
        header = reader.header
    try:
        find_frame_decoder(header.pack_id)(header)  # checks the pack and its weights
    except (ValueError, ImportError, OSError) as err:  # our errors and the pack's are ValueErrors
        return None, error_text(err)
    return (lambda: decoded_frames(data)), None


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _body(args: argparse.Namespace) -> int:
    if not 0 <= args.crf <= 51:
        _parser().error(f"--crf must be 0-51, got {args.crf}")
    from .mkv import mux
    from .opener import open_source

    with open_source(args.input) as source:  # an .mkv made by m3v-mux gives its .m3v
        data = source.read_all()
    name = None if args.input == "-" else Path(args.input).name
    frames, why = (None, None) if args.no_preview else _preview(data)
    report = mux(
        data,
        args.output,
        preview_frames=frames,
        preview_crf=args.crf,
        subtitles=not args.no_subtitles,
        chapters=not args.no_chapters,
        name=name,
        compress_subtitles=not args.plain_subtitles,
    )
    if not args.quiet:
        if why:
            print(f"{PROG}: {why}; wrote no preview track (--no-preview silences this)", file=sys.stderr)
        parts = []
        if report.preview_frames:
            parts.append(f"H.264 preview ({report.preview_frames} frames)")
        if "subtitles" in report.tracks:
            parts.append(f"subtitles ({report.subtitles})")
        if report.chapters:
            parts.append(f"{report.chapters} chapters")
        parts.append(f"attachment {report.attachment_name} ({report.m3v_size} bytes)")
        print(
            f"{PROG}: {_count(report.clips, 'clip')}, {_count(report.frames, 'frame')} -> {report.output}: "
            f"{', '.join(parts)}; {report.size} bytes (+{report.overhead})",
            file=sys.stderr,
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    # M3VError, PackError and CodecError are ValueErrors; ImportError: the codec half-installed
    return run(PROG, _parser(), _body, argv, known=(ImportError,))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
