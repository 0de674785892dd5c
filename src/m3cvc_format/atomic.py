"""Publishing a file written under a temporary name: readers never see it half-written."""

from __future__ import annotations

import os

__all__ = ["publish"]


def publish(temp, path) -> None:
    """Give ``temp`` (made by mkstemp, mode 0600) the permissions a plain open() would
    and rename it to ``path`` in one step."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(temp, 0o666 & ~mask)
    os.replace(temp, path)
