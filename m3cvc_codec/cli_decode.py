"""m3v-decode: reconstruct a video from an .m3v stream."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._cli import error_text, known_errors, setup_logging, show_progress

PROG = "m3v-decode"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Decode an .m3v stream into video frames.")
    p.add_argument("input", help="the .m3v stream, or - for standard input")
    p.add_argument(
        "-o", "--output", required=True, help="OUT.y4m, OUT.mp4 / .mkv / .mov / .webm, or a folder for PNG frames"
    )
    p.add_argument("--codec", help="video encoder for .mp4/.mkv output (default libx264, CRF 18)")
    p.add_argument("--y4m-444", action="store_true", help="write 4:4:4 y4m instead of 4:2:0 (C420jpeg)")
    p.add_argument("--frames", help="decode only frames A:B (either side may be empty)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or closing line")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(PROG, args.quiet)
    try:
        from .decoder import decode

        source = sys.stdin.buffer if args.input == "-" else args.input
        report = decode(
            source,
            args.output,
            frames=args.frames,
            codec=args.codec,
            chroma="444" if args.y4m_444 else "420",
            progress=show_progress(args.quiet),
        )
    except known_errors() as err:
        print(f"{PROG}: {args.input}: {error_text(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if not args.quiet:
        print(
            f"{PROG}: {report.frames} frames ({report.first_frame}..{report.first_frame + report.frames - 1}) "
            f"of {report.width}x{report.height} at {report.fps} fps from {report.clips_decoded} clip{'s' if report.clips_decoded != 1 else ''} "
            f"-> {report.output}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
