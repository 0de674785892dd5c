"""m3v-encode: code a video into an .m3v stream."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from m3cvc_format.cli import run, show_progress

from .cli_pack import add_pack_arguments, runtime_options

PROG = "m3v-encode"
# Spelt here, not imported, so --help loads no model code (tests check they match the modules').
CLIP_DEFAULT = "openai/clip-vit-base-patch32"
VLM_DEFAULT = "Qwen/Qwen2-VL-7B-Instruct"


def _size(text: str) -> tuple[int, int]:
    from .errors import CodecError
    from .video_io import parse_size

    try:
        return parse_size(text)
    except CodecError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Code a video into an .m3v stream (M3-CVC).")
    p.add_argument("input", nargs="?", help="video file (anything FFmpeg reads: mp4, mkv, avi, webm, y4m, ...)")
    p.add_argument("-o", "--output", help="output .m3v file, or - for standard output (required)")
    add_encode_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, notices or closing line")
    return p


def add_encode_options(p: argparse.ArgumentParser) -> None:
    """Every option of m3v-encode but the input, the output and --quiet (m3v-batch encode takes
    the same ones, so its streams are the same bytes)."""
    from .keyframes import KeyframeParams as d
    from .packs import DEFAULT_PACK

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
        "--scorer",
        default="pack",
        choices=["pack", "clip"],
        help="what measures D: the pack's own embedding and motion (default), or clip: CLIP image "
        "features and RAFT optical flow (DIS where torchvision does not import; the full extra)",
    )
    sel.add_argument(
        "--clip-model", metavar="ID", help=f"with --scorer clip: the CLIP model id or folder (default {CLIP_DEFAULT})"
    )
    sel.add_argument(
        "--flow",
        choices=["auto", "raft_large", "raft_small", "dis"],
        help="with --scorer clip: the optical flow (default auto: RAFT-large where torchvision imports and "
        "its weights are local, else OpenCV DIS)",
    )
    sel.add_argument(
        "--lambda1",
        type=float,
        help=f"weight of the semantic distance 1 - cos (default: the scorer's; {d.lambda1:g} for the lite pack)",
    )
    sel.add_argument(
        "--lambda2",
        type=float,
        help=f"weight of the motion in pixels, 0: semantic only (default: the scorer's; {d.lambda2:g} for the lite pack)",
    )
    sel.add_argument("--threshold", type=float, help=f"D_th (default: the scorer's; {d.threshold:g} for the lite pack)")
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
    txt = p.add_argument_group("descriptions")
    txt.add_argument(
        "--describe",
        choices=["none", "sidecar", "vlm"],
        help="who writes each clip's texts: none, sidecar (--texts), or vlm: the paper's dialogue with a "
        "vision-language model (the full extra). Default: sidecar with --texts, else none",
    )
    txt.add_argument("--texts", help="description sidecar JSON (docs/sidecar.md)")
    txt.add_argument(
        "--text-codec",
        choices=["auto", "tokans-1", "lzw", "utf8"],
        default="auto",
        help="how texts are coded (default auto: whichever codes this stream's texts smallest; tokans-1 "
        "for English, LZW for most other text)",
    )
    txt.add_argument("--vlm", metavar="ID", help=f"with --describe vlm: the model id or folder (default {VLM_DEFAULT})")
    txt.add_argument(
        "--prompts",
        metavar="FILE",
        help="with --describe vlm: your prompts file (copy it from m3v-encode --print-prompts)",
    )
    txt.add_argument(
        "--print-prompts", action="store_true", help="print the default prompts file (to copy and edit) and exit"
    )
    txt.add_argument(
        "--dialogue-turns",
        type=int,
        choices=[1, 2, 4],
        default=4,
        help="with --describe vlm: turns per keyframe (4: the paper's dialogue, default; 1: everything in one step)",
    )
    txt.add_argument(
        "--max-new-tokens", type=int, metavar="N", help="with --describe vlm: longest answer per turn, in tokens"
    )
    txt.add_argument(
        "--no-record-prompts",
        dest="record_prompts",
        action="store_false",
        help="with --describe vlm: leave the prompts out of the stream (its PRMT chunk, about 1.2 kB with "
        "the default prompts)",
    )
    p.add_argument("--size", type=_size, default=(512, 320), help="coding size WxH, multiples of 16 (default 512x320)")
    p.add_argument("--fps", default="8", help="coding frame rate (default 8)")
    p.add_argument("--pad", action="store_true", help="letterbox to the coding aspect instead of cropping")


def _encode(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .encoder import encode

    if args.print_prompts:
        from .prompts import default_prompts_text

        sys.stdout.write(default_prompts_text())
        return 0
    if args.input is None or args.output is None:
        parser.error("the following arguments are required: input, -o/--output")
    from .models.hub import quiet_model_loading

    quiet_model_loading()  # models load with --pack full, --describe vlm, --scorer clip: no loading bars

    report = encode(args.input, args.output, **encode_kwargs(args), progress=show_progress(args.quiet))
    if not args.quiet:
        print(f"{PROG}: {report.summary()}", file=sys.stderr)
    return 0


def encode_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`m3cvc_codec.encoder.encode` that the options of
    :func:`add_encode_options` ask for (all but input, output and progress)."""
    return dict(
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
        scorer=args.scorer,
        clip_model=args.clip_model,
        flow=args.flow,
        texts=args.texts,
        describe=args.describe,
        vlm=args.vlm,
        prompts=args.prompts,
        dialogue_turns=args.dialogue_turns,
        max_new_tokens=args.max_new_tokens,
        record_prompts=args.record_prompts,
        text_codec=args.text_codec,
        size=args.size,
        fps=args.fps,
        fit="pad" if args.pad else "crop",
        refresh=args.refresh,
        reuse=args.reuse,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    return run(PROG, parser, lambda args: _encode(args, parser), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
