"""m3v-play: play an .m3v stream in a window, in the terminal, or headless."""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time
from collections.abc import Sequence

PROG = "m3v-play"

KEYS_HELP = """keys: space pause/resume, left/right previous/next clip, ',' / '.' one frame back/forward
(pauses), f fullscreen (window), t clip number and description, q or Esc quit"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Play an .m3v stream at its frame rate.",
        epilog=KEYS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="FILE", help="the .m3v stream (a file: playing seeks)")
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
    p.add_argument("--screenshot", metavar="PATH", help=argparse.SUPPRESS)  # tests: save the window at the end
    return p


def _usage(parser: argparse.ArgumentParser, message: str) -> int:
    parser.print_usage(sys.stderr)
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _error(name: str, err: BaseException) -> int:
    from ._cli import error_text

    text = error_text(err)
    where = "" if isinstance(err, OSError) and getattr(err, "filename", None) else f"{name}: "
    print(f"{PROG}: {where}{text}", file=sys.stderr)
    return 1


def _terminate(signum, frame):  # SIGTERM / SIGHUP: unwind, so the terminal is restored
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv)[0]


def run(argv: Sequence[str] | None = None):
    """``main``'s work: ``(exit status, Stats or None)`` (benchmarks read the counts)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return (int(exc.code or 0) if not isinstance(exc.code, str) else 2), None
    if not (math.isfinite(args.speed) and args.speed > 0):
        return _usage(parser, "--speed must be a positive number"), None
    if not (math.isfinite(args.start) and args.start >= 0):
        return _usage(parser, "--start must be a time in seconds, 0 or more"), None
    if args.frames is not None and args.frames < 1:
        return _usage(parser, "--frames must be 1 or more"), None
    if args.scale is not None and not (math.isfinite(args.scale) and args.scale > 0):
        return _usage(parser, "--scale must be a positive number"), None
    if args.screenshot and (args.terminal or args.headless):
        return _usage(parser, "--screenshot needs the window (not --terminal or --headless)"), None
    if args.input == "-":
        return _usage(parser, "FILE must be a file: the player seeks (save a piped stream first)"), None

    from .player.core import HeadlessOutput, Player, PlayerError, PrefetchSource, open_source

    name = args.input
    output = None
    if not (args.terminal or args.headless):
        from .player.sdl import import_pygame

        try:
            import_pygame()  # before any work: say at once that the window cannot be had
        except PlayerError as err:
            print(f"{PROG}: {err}", file=sys.stderr)
            return 1, None
    began = time.monotonic()
    try:
        source = open_source(args.input)
    except (PlayerError, OSError, ValueError) as err:
        return _error(name, err), None
    except KeyboardInterrupt:
        return 130, None

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
    except (PlayerError, OSError, ValueError) as err:
        return _error(name, err), None
    except KeyboardInterrupt:
        return 130, None
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        source.close()

    if args.headless:
        print(f"{PROG}: {stats.summary()}")
    if args.screenshot:
        shot = getattr(output, "screenshot_frame", None)
        if shot is None:
            print(f"{PROG}: no frame was shown, no screenshot saved", file=sys.stderr)
            return 1, None
        print(f"{PROG}: screenshot of frame {shot} -> {args.screenshot}")
    return 0, stats


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
