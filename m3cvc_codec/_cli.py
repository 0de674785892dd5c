"""Shared command-line plumbing: logging to stderr, progress decision, error reporting."""

from __future__ import annotations

import logging
import sys


class _Stderr(logging.Handler):
    """Writes to whatever sys.stderr is at the time (tests swap it)."""

    _m3cvc_cli = True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # pragma: no cover
            self.handleError(record)


def setup_logging(prog: str, quiet: bool) -> None:
    log = logging.getLogger("m3cvc_codec")
    for h in list(log.handlers):
        if getattr(h, "_m3cvc_cli", False):
            log.removeHandler(h)
    handler = _Stderr()
    handler.setFormatter(logging.Formatter(f"{prog}: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def known_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean bad input: reported on one line, exit status 1."""
    import m3cvc_format as m

    from .errors import CodecError
    from .packs import PackError

    return (CodecError, PackError, m.M3VError, OSError, ValueError)


def error_text(err: BaseException) -> str:
    if isinstance(err, OSError) and not isinstance(err, ValueError):
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        return f"{where}{err.strerror or err}"
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
