"""m3v-edit: change the descriptions of an `.m3v` stream without re-encoding its video.

    m3v-edit IN.m3v --texts FILE -o OUT.m3v
    m3v-edit IN.m3v --clip N [--keyframe-text S] [--clip-text S] -o OUT.m3v

``--texts`` takes the per-clip description sidecar (docs/sidecar.md) or the JSON that
``m3v-info --texts --json`` prints, so ``m3v-info --json IN.m3v > t.json``, an edit of t.json and
``m3v-edit IN.m3v --texts t.json -o OUT.m3v`` change exactly the texts edited.  Only text
sub-chunks change; index maps are copied byte for byte (m3cvc_format.edit).  OUT may be IN: the
file is replaced atomically, and a failed edit leaves it as it was.  Exit status: 0 written, 1
bad input (one line), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .cli import run

PROG = "m3v-edit"

log = logging.getLogger("m3cvc_format.edit")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Change the texts of an .m3v stream without re-encoding its video."
    )
    p.add_argument("input", help="the .m3v file to edit, or - for standard input")
    p.add_argument(
        "-o", "--output", required=True, help="the .m3v file to write (may be the input), or - for standard output"
    )
    p.add_argument(
        "--texts",
        metavar="FILE",
        help="new texts: a per-clip sidecar or the output of m3v-info --texts --json (- for standard input)",
    )
    p.add_argument("--clip", type=int, metavar="N", help="the clip whose texts --keyframe-text and --clip-text set")
    p.add_argument("--keyframe-text", metavar="S", help="the new keyframe description of clip N ('' removes it)")
    p.add_argument("--clip-text", metavar="S", help="the new clip description of clip N ('' removes it)")
    p.add_argument("-q", "--quiet", action="store_true", help="say nothing on success")
    return p


def _read_texts(name: str) -> dict[int, tuple[str | None, str | None]]:
    from .edit import parse_texts

    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{name}: not JSON: {err}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{name}: not UTF-8: {err}") from None
    try:
        return parse_texts(data)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


def _body(args: argparse.Namespace) -> int:
    from .edit import edit_texts

    parser = _parser()
    if args.texts is None and args.clip is None:
        parser.error("nothing to change: give --texts FILE or --clip N with --keyframe-text or --clip-text")
    if args.clip is None and (args.keyframe_text is not None or args.clip_text is not None):
        parser.error("--keyframe-text and --clip-text need --clip N")
    if args.clip is not None and args.keyframe_text is None and args.clip_text is None:
        parser.error("--clip N needs --keyframe-text or --clip-text")
    if args.input == "-" and args.texts == "-":
        parser.error("standard input cannot be both the stream and the texts")
    texts = _read_texts(args.texts) if args.texts is not None else {}
    if args.clip is not None:
        old = texts.get(args.clip, (None, None))
        texts[args.clip] = (
            args.keyframe_text if args.keyframe_text is not None else old[0],
            args.clip_text if args.clip_text is not None else old[1],
        )
    src = sys.stdin.buffer.read() if args.input == "-" else args.input
    dst = sys.stdout.buffer if args.output == "-" else args.output
    changed = edit_texts(src, dst, texts)
    if args.output != "-":
        log.info("%s: texts of %d clip%s changed", args.output, changed, "" if changed == 1 else "s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, _parser(), _body, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
