"""Reading a `.m3v` file that is still being written (``follow=True``)."""

from __future__ import annotations

import io
import os
import time
from typing import Any, BinaryIO

from .constants import TAIL_SIZE
from .errors import M3VError
from .framing import read_tail

__all__ = ["DEFAULT_FOLLOW_TIMEOUT", "FollowFile"]

#: Seconds ``follow=True`` waits for a growing file to grow before taking its end as final.
DEFAULT_FOLLOW_TIMEOUT = 10.0


class FollowFile(io.RawIOBase):
    """A file that is still being written, read as a stream: a read at the current end waits
    (polling every ``poll`` seconds) until more data arrives, and returns end of data once the
    bytes so far end with a complete `.m3v` trailer (INDX + TAIL) or nothing has arrived for
    ``timeout`` seconds (an unterminated stream: a crashed or stopped writer)."""

    def __init__(self, src: Any, timeout: float = DEFAULT_FOLLOW_TIMEOUT, poll: float = 0.02) -> None:
        super().__init__()
        if isinstance(src, (str, os.PathLike)):
            self._file: BinaryIO = open(src, "rb")  # noqa: SIM115 (closed by close())
            self._owns = True
            self.name = str(src)
        else:
            self._file, self._owns = src, False
            self.name = getattr(src, "name", "<stream>")
        self.timeout = float(timeout)
        self.poll = float(poll)
        self._delivered = 0
        self._last = b""  # the last TAIL_SIZE bytes delivered

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def _complete(self) -> bool:
        try:
            found = read_tail(self._last, self._delivered - TAIL_SIZE)
        except M3VError:
            return False
        return found is not None and found[0] + found[1] == self._delivered - TAIL_SIZE

    def readinto(self, buffer: Any) -> int:
        deadline = time.monotonic() + self.timeout
        view = memoryview(buffer).cast("B")
        while True:
            n = self._file.readinto(view) if hasattr(self._file, "readinto") else None
            if n is None:  # a file object without readinto
                data = self._file.read(len(view))
                n = len(data)
                view[:n] = data
            if n:
                self._delivered += n
                self._last = (self._last + bytes(view[max(0, n - TAIL_SIZE) : n]))[-TAIL_SIZE:]
                return n
            if self._complete() or time.monotonic() >= deadline:
                return 0
            time.sleep(self.poll)

    def close(self) -> None:
        if self._owns and not self._file.closed:
            self._file.close()
        super().close()
