"""m3v-demux: take the `.m3v` stream back out of a Matroska file made by m3v-mux (or any
Matroska file with an ``application/x-m3v`` attachment).

    m3v-demux IN.mkv -o OUT.m3v [--no-verify]     (- for standard input or output)

The bytes written are exactly the attachment's, after checking them against the SHA-256 that
m3v-mux records (or, for another muxer's file, the stream's own CRCs).  Exit status: 0 written, 1 bad input (one line
naming the problem and its byte offset), 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .atomic import atomic_file
from .cli import run

PROG = "m3v-demux"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Extract the .m3v stream attached to a Matroska file.")
    p.add_argument("input", help="the Matroska file (.mkv): a path, a URL (https://, s3://), or - for standard input")
    p.add_argument("-o", "--output", required=True, help="the .m3v file to write, or - for standard output")
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="write the attachment even if it fails its SHA-256 or CRC checks (for recovery)",
    )
    return p


def _write_atomic(path: Path, data: bytes) -> None:
    with atomic_file(path) as f:
        f.write(data)


def _body(args: argparse.Namespace) -> int:
    from .mkv import extract_m3v

    data = extract_m3v(sys.stdin.buffer if args.input == "-" else args.input, verify=not args.no_verify)
    if args.output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        _write_atomic(Path(args.output), data)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, _parser(), _body, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
