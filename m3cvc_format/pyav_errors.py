"""The PyAV facade's errors: each one both the project's class and PyAV's matching class.

Code written for PyAV catches ``av.FFmpegError`` (or ``av.InvalidDataError``,
``av.FileNotFoundError``...) to fall back to another reader; code written for this project
catches :class:`~m3cvc_format.M3VError` subclasses.  :func:`pyav_errors` re-raises an error of
ours as an instance of a class derived from both, made on first use and cached: a
:class:`~m3cvc_format.ChecksumError` becomes a ``ChecksumError`` that is also an
``av.InvalidDataError`` (so an ``av.FFmpegError`` and a ``ValueError``), a missing frame
decoder an ``av.DecoderNotFoundError``, a missing file ``av.FileNotFoundError``.  Its ``str``
is our one-line message; ``errno``, ``strerror`` and ``filename`` are PyAV's fields.

Only :mod:`m3cvc_format.container` uses this module, and it imports ``av`` when an error is
raised, never at import time.
"""

from __future__ import annotations

import errno as errno_codes
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import M3VError

__all__ = ["pyav_class", "pyav_error", "pyav_errors"]

#: FFmpeg's AVERROR_INVALIDDATA and AVERROR_DECODER_NOT_FOUND as PyAV reports them (positive).
INVALID_DATA_CODE = int.from_bytes(b"INDA", "little")
DECODER_NOT_FOUND_CODE = int.from_bytes(b"\xf8DEC", "little")

_combined: dict[tuple[type[BaseException], type[BaseException]], type[BaseException]] = {}


def _av_class_for(err: BaseException) -> tuple[type[BaseException], int] | None:
    """PyAV's class for ``err`` and the FFmpeg error code it carries; None when PyAV has none."""
    import av

    from .framedecoders import DecoderNotFoundError

    if isinstance(err, av.FFmpegError):
        return None
    if isinstance(err, DecoderNotFoundError):
        return av.DecoderNotFoundError, DECODER_NOT_FOUND_CODE
    if isinstance(err, M3VError):
        return av.InvalidDataError, INVALID_DATA_CODE
    if isinstance(err, OSError):
        code = err.errno if isinstance(err.errno, int) else errno_codes.EIO
        by_type = {
            FileNotFoundError: "FileNotFoundError",
            PermissionError: "PermissionError",
            IsADirectoryError: "IsADirectoryError",
            NotADirectoryError: "NotADirectoryError",
        }
        name = next((n for t, n in by_type.items() if isinstance(err, t)), "OSError")
        return getattr(av.error, name), code
    return None


def _str(self: BaseException) -> str:
    return str(getattr(self, "strerror", "") or "")


def pyav_class(ours: type[BaseException], theirs: type[BaseException]) -> type[BaseException]:
    """The class derived from ``ours`` (first, so its ``__init__`` and attributes win) and PyAV's
    ``theirs``; ``ours`` itself when it already is one."""
    if issubclass(ours, theirs):
        return ours
    key = (ours, theirs)
    cls = _combined.get(key)
    if cls is None:
        cls = type(
            ours.__name__,
            (ours, theirs),
            {
                "__module__": ours.__module__,
                "__qualname__": ours.__qualname__,
                "__doc__": f"{ours.__doc__ or ours.__name__} (also PyAV's {theirs.__name__})",
                "__str__": _str,
            },
        )
        _combined[key] = cls
    return cls


def pyav_error(err: BaseException, filename: Any = None) -> BaseException:
    """``err`` as an instance of both its class and PyAV's matching one (``err`` itself when
    PyAV has no such class or it already is one)."""
    found = _av_class_for(err)
    if found is None:
        return err
    theirs, code = found
    new: BaseException
    if isinstance(err, OSError):  # PyAV's OSError classes already subclass the builtin ones
        name = err.filename if err.filename is not None else filename
        new = theirs(code, err.strerror or str(err), *(() if name is None else (str(name),)))
    else:
        cls = pyav_class(type(err), theirs)
        new = cls.__new__(cls)
        new.__dict__.update(err.__dict__)
        message = str(err)
        new.args = (code, message) if filename is None else (code, message, str(filename))
        new.errno = code  # type: ignore[attr-defined]
        new.strerror = message  # type: ignore[attr-defined]
    new.__cause__ = err.__cause__
    new.__context__ = err.__context__
    new.__suppress_context__ = err.__suppress_context__
    return new.with_traceback(err.__traceback__)


@contextmanager
def pyav_errors(filename: Any = None) -> Iterator[None]:
    """Re-raise the project's errors about the input (and OS errors) inside the block as PyAV's
    matching classes too (:func:`pyav_error`)."""
    try:
        yield
    except (M3VError, OSError) as err:
        new = pyav_error(err, filename)
        if new is err:
            raise
        raise new from err.__cause__
