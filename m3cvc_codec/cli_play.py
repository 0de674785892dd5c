"""m3v-play: play an .m3v stream in a window, in the terminal, or headless."""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time
from collections.abc import Sequence

from m3cvc_format.cli import run

from .cli_pack import add_pack_arguments, runtime_options

PROG = "m3v-play"

KEYS_HELP = """keys: space pause/resume, left/right previous/next clip, ',' / '.' one frame back/forward
(pauses), f fullscreen (window), t clip number and description, q or Esc quit"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Play an .m3v stream at its frame rate.",
        epilog=KEYS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "input",
        metavar="FILE",
        help="the .m3v stream: a file or a URL (https://, s3://, read in ranges); not a pipe, playing seeks",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--terminal", action="store_true", help="draw in the terminal with true-colour half blocks instead of a window"
    )
    where.add_argument(
        "--headless", action="store_true", help="decode and pace with no output; print frames shown and dropped"
    )
    p.add_argument("--speed", type=float, default=1.0, help="playback speed factor (default 1)")
    p.add_argument("--start", type=float, default=0.0, metavar="SECONDS", help="start at this time")
    p.add_argument("--frames", type=int, metavar="N", help="stop after N frames (shown or dropped)")
    p.add_argument("--loop", action="store_true", help="start again at the end")
    p.add_argument("--keep-open", action="store_true", help="pause on the last frame instead of exiting")
    p.add_argument("--pause", action="store_true", help="start paused on the first frame")
    p.add_argument("--overlay", action="store_true", help="start with the clip overlay shown (t toggles)")
    p.add_argument("--fullscreen", action="store_true", help="start fullscreen (window)")
    p.add_argument("--scale", type=float, help="window size as a factor of the stream's (default: fit ~640 px)")
    p.add_argument(
        "--no-prefetch",
        action="store_true",
        help="decode each frame when it is due instead of in a thread one second ahead",
    )
    add_pack_arguments(
        p, pack_default=None, pack_help="refuse a stream coded with another pack (default: the pack the stream names)"
    )
    p.add_argument("--screenshot", metavar="PATH", help=argparse.SUPPRESS)  # tests: save the window at the end
    return p


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors argparse cannot see (``parser.error``: exit status 2)."""
    if not (math.isfinite(args.speed) and args.speed > 0):
        parser.error("--speed must be a positive number")
    if not (math.isfinite(args.start) and args.start >= 0):
        parser.error("--start must be a time in seconds, 0 or more")
    if args.frames is not None and args.frames < 1:
        parser.error("--frames must be 1 or more")
    if args.scale is not None and not (math.isfinite(args.scale) and args.scale > 0):
        parser.error("--scale must be a positive number")
    if args.screenshot and (args.terminal or args.headless):
        parser.error("--screenshot needs the window (not --terminal or --headless)")
    if args.input == "-":
        parser.error("FILE must be a file: the player seeks (save a piped stream first)")


def _terminate(signum, frame):  # SIGTERM / SIGHUP: unwind, so the terminal is restored
    raise SystemExit(128 + signum)


def play(args: argparse.Namespace):
    """Play ``args.input`` as the parsed arguments say; returns ``(Stats, output)``.  Errors
    (OSError, M3VError, PackError, PlayerError) propagate; the stream is closed either way."""
    from .player import HeadlessOutput, Output, Player, PlayerError, PlayerSource, PrefetchSource, open_player_source

    name = args.input
    if not (args.terminal or args.headless):
        from .player.sdl import import_pygame

        import_pygame()  # before any work: say at once that the window cannot be had
    began = time.monotonic()
    opened = open_player_source(args.input, pack=args.pack, pack_config=args.pack_config, options=runtime_options(args))
    source: PlayerSource = opened
    old_handlers = {}
    try:
        start = math.floor(args.start * source.fps + 1e-9)
        if start >= source.frame_count:
            raise PlayerError(
                f"--start {args.start:g} s is past the end of the stream "
                f"({float(source.frame_count / source.fps):.3f} s)"
            )
        source.frame(start)  # decoding errors (no pack, damaged clip) before any window opens
        if not args.no_prefetch:
            source = PrefetchSource(source, start=start)
        output: Output
        if args.headless:
            output = HeadlessOutput()
        elif args.terminal:
            from .player.terminal import TerminalOutput

            output = TerminalOutput(name)
        else:
            from .player.sdl import SDLOutput

            output = SDLOutput(name, scale=args.scale, screenshot=args.screenshot)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
                if sig is not None:
                    old_handlers[sig] = signal.signal(sig, _terminate)
        player = Player(
            source,
            output,
            speed=args.speed,
            start=start,
            limit=args.frames,
            loop=args.loop,
            keep_open=args.keep_open,
            paused=args.pause,
            overlay=args.overlay,
            fullscreen=args.fullscreen,
        )
        prepared = time.monotonic() - began  # opening and the first frame's decoding
        stats = player.run()
        stats.startup += prepared
        stats.wall += prepared
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        source.close()
    return stats, output


def _known_errors() -> tuple[type[BaseException], ...]:
    from .packs import PackError
    from .player import PlayerError

    return (PackError, PlayerError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()

    def body(args: argparse.Namespace) -> int:
        from .models.hub import quiet_model_loading

        check_arguments(parser, args)
        quiet_model_loading()  # a full-pack stream loads models: no loading bars over the picture
        stats, output = play(args)
        if args.headless:
            print(f"{PROG}: {stats.summary()}")
        if args.screenshot:
            shot = getattr(output, "screenshot_frame", None)
            if shot is None:
                print(f"{PROG}: no frame was shown, no screenshot saved", file=sys.stderr)
                return 1
            print(f"{PROG}: screenshot of frame {shot} -> {args.screenshot}")
        return 0

    return run(PROG, parser, body, argv, known=_known_errors())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
