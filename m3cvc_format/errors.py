"""Exceptions raised for bad `.m3v` input.

Every exception subclasses both :class:`M3VError` and :class:`ValueError`, so
callers can catch either.  Errors about a position in a file carry the byte
offset in ``offset`` (``None`` when no position applies); ``str(err)`` names
the problem and, where known, the offset, on one line.
"""

from __future__ import annotations

__all__ = [
    "ChecksumError",
    "LimitError",
    "M3VError",
    "MalformedError",
    "MissingIndexError",
    "MissingReferenceError",
    "PayloadError",
    "SignatureError",
    "TruncatedError",
    "UnknownChunkError",
    "UnsupportedVersionError",
]


class M3VError(ValueError):
    """Base class of every error about `.m3v` data."""

    def __init__(self, message: str, offset: int | None = None):
        self.message = message
        self.offset = offset
        super().__init__(message if offset is None else f"{message} (at byte {offset})")

    def at(self, offset: int) -> M3VError:
        """Return a copy of this error located at ``offset`` if it had no location."""
        if self.offset is not None:
            return self
        return type(self)(self.message, offset)


class SignatureError(M3VError):
    """The data does not start with the `.m3v` signature, or it was damaged in transfer."""


class UnsupportedVersionError(M3VError):
    """The stream's major version is not one this reader implements."""


class TruncatedError(M3VError):
    """The data ends inside a structure."""


class ChecksumError(M3VError):
    """A chunk's CRC-32C does not match its bytes."""


class MalformedError(M3VError):
    """A field holds a value the specification does not allow."""


class LimitError(MalformedError):
    """A field exceeds a limit of the specification (sizes, counts, lengths)."""


class UnknownChunkError(MalformedError):
    """A critical chunk or sub-chunk of a type this reader does not know."""


class PayloadError(M3VError):
    """A coded payload (text or index map) does not decode to a valid value."""


class MissingIndexError(M3VError):
    """Random access was asked of a stream that cannot be searched (a pipe)."""


class MissingReferenceError(M3VError):
    """A TEMPORAL index map cannot be decoded: the previous clip's map it is coded against was
    not given, or was lost to damage."""
