"""The one runner every ``m3v-*`` command goes through: parsing, logging, errors, exit status.

Each command is ``main(argv=None) -> int`` returning :func:`run`'s value::

    def main(argv: Sequence[str] | None = None) -> int:
        return run("m3v-info", _parser(), _body, argv)

Exit status (the same for every command):

- 0: done (or ``--help``);
- 1: bad input or an error reading or writing: ONE line ``prog: message`` on stderr that names
  the file once (``m3v-decode: x.m3v: No such file or directory``), never a traceback;
- 2: usage error (argparse's message; a body can call ``parser.error(...)`` for checks of its own);
- 130: interrupted (Ctrl-C);
- 141: standard output closed early (piped into ``head``): no message, as ``cat`` does.

The ``m3cvc_format`` and ``m3cvc_codec`` loggers write to stderr as ``prog: message``: INFO and
above, or WARNING and above when the parsed arguments have ``quiet`` set.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "LOGGERS",
    "error_text",
    "matroska_hint",
    "run",
    "setup_logging",
    "show_progress",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer killed by a closed pipe

#: The loggers whose records a command shows on stderr.
LOGGERS = ("m3cvc_format", "m3cvc_codec")

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"  # a Matroska / WebM file starts with an EBML header
_INPUT_ATTRIBUTES = ("input", "file")  # where a parser keeps the input file's name


class _Stderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (tests swap it)."""

    _m3cvc_cli = True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # pragma: no cover
            self.handleError(record)


def setup_logging(prog: str, quiet: bool = False) -> None:
    """Log the ``m3cvc_format`` and ``m3cvc_codec`` loggers to stderr as ``prog: message``."""
    for name in LOGGERS:
        log = logging.getLogger(name)
        for handler in list(log.handlers):
            if getattr(handler, "_m3cvc_cli", False):
                log.removeHandler(handler)
        handler = _Stderr()
        handler.setFormatter(logging.Formatter(f"{prog}: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.WARNING if quiet else logging.INFO)
        log.propagate = False


def show_progress(quiet: bool) -> bool:
    """Whether to draw a progress bar: not asked to be quiet, and stderr is a terminal."""
    return not quiet and sys.stderr.isatty()


def _is_matroska(name: str | None) -> bool:
    if not name or name == "-":
        return False
    try:
        with open(name, "rb") as f:
            return f.read(4) == _EBML_MAGIC
    except OSError:
        return False


def matroska_hint(name: str) -> str:
    """What to say when a Matroska file is given where an `.m3v` stream is expected."""
    return f"this is a Matroska file; `m3v-demux {name} -o OUT.m3v` takes the .m3v out of it"


def error_text(err: BaseException, name: str | None = None) -> str:
    """``err`` as one line that names the file once.

    An OSError names the file it is about (``x.m3v: No such file or directory``); any other
    error is prefixed with ``name`` (the command's input) unless its text names it already.
    An `.m3v` signature error on a Matroska file says how to take the stream out of it."""
    from .errors import SignatureError

    if isinstance(err, OSError) and not isinstance(err, ValueError):
        what = err.strerror or str(err) or type(err).__name__
        if err.filename is not None:
            where = os.fsdecode(err.filename)
            if err.filename2 is not None:
                where += f" -> {os.fsdecode(err.filename2)}"
            return f"{where}: {what}"
        text = what
    else:
        lines = str(err).strip().splitlines()
        text = lines[0] if lines else type(err).__name__
        mkv_error = type(err).__module__.startswith("m3cvc_format.mkv")
        if isinstance(err, SignatureError) and not mkv_error and _is_matroska(name):
            assert name is not None
            return f"{name}: {matroska_hint(name)}"
    if name and not (text.startswith(f"{name}:") or f" {name}:" in text):
        return f"{name}: {text}"
    return text


def _input_name(args: argparse.Namespace) -> str | None:
    for attribute in _INPUT_ATTRIBUTES:
        value = getattr(args, attribute, None)
        if isinstance(value, (str, os.PathLike)):
            text = os.fspath(value)
            return "<stdin>" if text == "-" else str(text)
    return None


def _exit_status(exit_: SystemExit) -> int:
    code = exit_.code
    if code is None:
        return EXIT_OK
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message"), as the interpreter would
    return EXIT_ERROR


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so the interpreter's flush at exit finds no closed
    pipe to complain about (``Exception ignored ... BrokenPipeError``)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # stdout is not a file (tests capture it)
        pass


def run(
    prog: str,
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace], int | None],
    argv: Sequence[str] | None = None,
    *,
    known: tuple[type[BaseException], ...] = (),
) -> int:
    """Parse ``argv``, set up logging, run ``body(args)`` and turn what happens into an exit
    status (see the module documentation).  ``body`` returns the status (None: 0).

    M3VError, OSError, ValueError and the exception types in ``known`` are bad input: one line
    on stderr, status 1.  Anything else is a bug and keeps its traceback."""
    from .errors import M3VError

    handled: tuple[type[BaseException], ...] = (M3VError, OSError, ValueError, *known)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2): argparse printed it
        return _exit_status(exit_)
    setup_logging(prog, bool(getattr(args, "quiet", False)))
    name = _input_name(args)
    try:
        status = body(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's flush at exit
        return EXIT_OK if status is None else int(status)
    except SystemExit as exit_:  # parser.error() from the body's own checks
        return _exit_status(exit_)
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except handled as err:
        print(f"{prog}: {error_text(err, name)}", file=sys.stderr)
        return EXIT_ERROR
