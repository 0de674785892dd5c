"""m3v-decode: reconstruct a video from an .m3v stream."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from m3cvc_format.cli import run, show_progress

from .cli_pack import add_pack_arguments, runtime_options

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
    p.add_argument(
        "--partial",
        action="store_true",
        help="accept a cut-off stream: decode its intact clips and exit 0 (default: they are decoded and "
        "written all the same, the cut is reported and the exit status is 1)",
    )
    add_pack_arguments(
        p, pack_default=None, pack_help="refuse a stream coded with another pack (default: the pack the stream names)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or closing line")
    return p


def _decode(args: argparse.Namespace) -> int:
    from .decoder import decode
    from .models.hub import quiet_model_loading

    quiet_model_loading()  # a full-pack stream loads models: one line per problem, no loading bars

    source = sys.stdin.buffer if args.input == "-" else args.input
    if args.pack:
        if source is sys.stdin.buffer:
            source = source.read()  # read twice: for the header here, then to decode
        _check_pack(source, args.pack)
    report = decode(
        source,
        args.output,
        frames=args.frames,
        codec=args.codec,
        chroma="444" if args.y4m_444 else "420",
        progress=show_progress(args.quiet),
        pack_config=args.pack_config,
        options=runtime_options(args),
    )
    if not args.quiet:
        clips = f"{report.clips_decoded} clip{'s' if report.clips_decoded != 1 else ''}"
        last = report.first_frame + report.frames - 1
        print(
            f"{PROG}: {report.frames} frames ({report.first_frame}..{last}) of {report.width}x{report.height} "
            f"at {report.fps} fps from {clips} -> {report.output}",
            file=sys.stderr,
        )
    if report.shortfall is not None:
        name = "<stdin>" if args.input == "-" else args.input
        hint = "" if args.partial else " (--partial accepts a cut stream)"
        print(f"{PROG}: {name}: {report.shortfall}{hint}", file=sys.stderr)
        return 0 if args.partial else 1
    return 0


def _check_pack(source, pack_id: str) -> None:
    import m3cvc_format as m

    from .packs import PackError

    with m.Reader(source) as reader:
        named = reader.header.pack_id
    if named != pack_id:
        raise PackError(f"stream was coded with pack {named!r}, not {pack_id!r}")


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, _parser(), _decode, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
