"""Writing a path atomically: write a temporary file beside it, then rename it into place,
so a reader never sees a half-written file and a failed write leaves the old file alone."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["AtomicFile", "atomic_file", "publish"]


def publish(temp: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Give ``temp`` (made by mkstemp, mode 0600) the permissions a plain open() would
    and rename it to ``path`` in one step."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(temp, 0o666 & ~mask)
    os.replace(temp, path)


class AtomicFile:
    """A temporary file beside ``path`` (``.file``, open for binary writing and seeking),
    renamed to ``path`` by :meth:`publish` or removed by :meth:`discard`."""

    def __init__(self, path: str | os.PathLike[str], suffix: str = ".tmp") -> None:
        self.path = Path(path)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=suffix, dir=self.path.parent)
        self.temp = Path(temp)
        self.file: BinaryIO = os.fdopen(fd, "w+b")

    def publish(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        publish(self.temp, self.path)

    def discard(self) -> None:
        self.file.close()
        self.temp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """``with atomic_file(path) as f:`` writes ``f`` and publishes it as ``path`` on success."""
    target = AtomicFile(path)
    try:
        yield target.file
    except BaseException:
        target.discard()
        raise
    target.publish()
