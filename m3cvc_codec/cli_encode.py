"""m3v-encode: code a video into an .m3v stream."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from m3cvc_format.cli import run, show_progress

from .cli_pack import add_pack_arguments, runtime_options

PROG = "m3v-encode"


def _size(text: str) -> tuple[int, int]:
    from .errors import CodecError
    from .video_io import parse_size

    try:
        return parse_size(text)
    except CodecError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _parser() -> argparse.ArgumentParser:
    from .keyframes import KeyframeParams as d
    from .packs import DEFAULT_PACK

    p = argparse.ArgumentParser(prog=PROG, description="Code a video into an .m3v stream (M3-CVC).")
    p.add_argument("input", help="video file (anything FFmpeg reads: mp4, mkv, avi, webm, y4m, ...)")
    p.add_argument("-o", "--output", required=True, help="output .m3v file, or - for standard output")
    add_pack_arguments(p, pack_default=DEFAULT_PACK, pack_help=f"model pack id (default {DEFAULT_PACK})")
    p.add_argument("--grid", default="1/16", help="index grid variant of the pack (default 1/16)")
    p.add_argument(
        "--mode",
        default="interpolation",
        choices=["interpolation", "prediction"],
        help="reconstruction mode of the clips (the last clip is always prediction)",
    )
    sel = p.add_argument_group("keyframe selection")
    sel.add_argument(
        "--lambda1", type=float, default=d.lambda1, help=f"weight of the semantic distance (default {d.lambda1:g})"
    )
    sel.add_argument(
        "--lambda2", type=float, default=d.lambda2, help=f"weight of the motion in pixels (default {d.lambda2:g})"
    )
    sel.add_argument("--threshold", type=float, default=d.threshold, help=f"D_th (default {d.threshold:g})")
    sel.add_argument("--interval", type=int, help="a keyframe every N frames instead of the composite score")
    sel.add_argument("--min-clip", type=int, default=2, help="shortest clip in frames (default 2)")
    sel.add_argument("--max-clip", type=int, default=32, help="longest clip in frames (default 32)")
    rate = sel.add_mutually_exclusive_group()
    rate.add_argument("--target-bpp", type=float, help="choose D_th to meet this rate in bits per pixel")
    rate.add_argument("--target-kbps", type=float, help="choose D_th to meet this rate in kbit/s")
    p.add_argument(
        "--refresh",
        type=int,
        default=8,
        metavar="N",
        help="code an index map against the previous keyframe's where that is smaller, keeping one "
        "independent map at least every N clips (default 8; 0 or 1: every map independent)",
    )
    p.add_argument(
        "--reuse",
        type=float,
        default=0.5,
        metavar="T",
        help="with --refresh: keep the previous keyframe's index where its codeword is within a factor "
        "1+T of the nearest (squared latent distance; default 0.5, 0: always the nearest)",
    )
    p.add_argument("--texts", help="description sidecar JSON (docs/sidecar.md)")
    p.add_argument("--size", type=_size, default=(512, 320), help="coding size WxH, multiples of 16 (default 512x320)")
    p.add_argument("--fps", default="8", help="coding frame rate (default 8)")
    p.add_argument("--pad", action="store_true", help="letterbox to the coding aspect instead of cropping")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, notices or closing line")
    return p


def _encode(args: argparse.Namespace) -> int:
    from .encoder import encode

    report = encode(
        args.input,
        args.output,
        pack=args.pack,
        pack_config=args.pack_config,
        options=runtime_options(args),
        grid=args.grid,
        mode=args.mode,
        lambda1=args.lambda1,
        lambda2=args.lambda2,
        threshold=args.threshold,
        interval=args.interval,
        min_clip=args.min_clip,
        max_clip=args.max_clip,
        target_bpp=args.target_bpp,
        target_kbps=args.target_kbps,
        texts=args.texts,
        size=args.size,
        fps=args.fps,
        fit="pad" if args.pad else "crop",
        refresh=args.refresh,
        reuse=args.reuse,
        progress=show_progress(args.quiet),
    )
    if not args.quiet:
        print(f"{PROG}: {report.summary()}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, _parser(), _encode, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
