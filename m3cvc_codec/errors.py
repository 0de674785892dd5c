"""The codec pipeline's own error type."""

from __future__ import annotations

__all__ = ["CodecError"]


class CodecError(ValueError):
    """Bad input to the codec: an unreadable or empty video, an unsupported size or option,
    a malformed description sidecar.  The message is one line that names the problem."""
