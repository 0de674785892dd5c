"""Writing a path atomically: write a temporary file beside it, then rename it into place,
so a reader never sees a half-written file and a failed write leaves the old file alone.

The temporary file is ``.NAME.PID.XXXXXXXX.tmp`` (plus a suffix a caller asks for) beside
``NAME``.  It does not outlive its process:

- an exception (Ctrl-C included) removes it (:meth:`AtomicFile.discard`);
- SIGTERM and SIGHUP remove every temporary file of the process before it dies of the signal,
  where the program left those signals at their default (a handler of the program's own is
  never replaced);
- SIGKILL cannot be caught: the next atomic write to the same path removes the temporary files
  of that path whose process is gone (the PID in the name is no longer running).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import BinaryIO

__all__ = ["AtomicFile", "atomic_file", "publish", "remove_stale_temporaries"]

_TEMP_TAIL = re.compile(r"(\d+)\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9_-]+)?\Z")  # after ".NAME."
_lock = threading.Lock()
_live: set[Path] = set()  # this process's temporary files, not yet published or discarded
_CLEANUP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_handlers_installed = False


def publish(temp: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Give ``temp`` (made by mkstemp, mode 0600) the permissions a plain open() would
    and rename it to ``path`` in one step."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(temp, 0o666 & ~mask)
    os.replace(temp, path)


def _alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no cheap check: never take another process's file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files an atomic write to ``path`` left behind when its process
    was killed (``.NAME.PID.XXXXXXXX.tmp*`` whose PID no longer runs); returns them.  Files of
    running processes, of this process's writes in progress, and anything else are kept."""
    target = Path(path)
    prefix = f".{target.name}."
    parent = target.parent
    removed: list[Path] = []
    try:
        names = os.listdir(parent if str(parent) else ".")
    except OSError:
        return removed
    me = os.getpid()
    for name in names:
        if not name.startswith(prefix):
            continue
        match = _TEMP_TAIL.match(name, len(prefix))
        if match is None:
            continue
        temp = parent / name
        pid = int(match.group(1))
        if temp in _live or (pid != me and _alive(pid)):
            continue
        try:
            temp.unlink()
        except OSError:
            continue
        removed.append(temp)
    return removed


def _remove_live() -> None:
    for temp in list(_live):
        with contextlib.suppress(OSError):
            os.unlink(temp)
    _live.clear()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Remove this process's temporary files, then die of the signal as the default would."""
    _remove_live()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    global _handlers_installed
    if _handlers_installed or threading.current_thread() is not threading.main_thread():
        return
    _handlers_installed = True
    for signum in _CLEANUP_SIGNALS:
        try:
            if signal.getsignal(signum) == signal.SIG_DFL:
                signal.signal(signum, _on_signal)
        except (OSError, ValueError):  # pragma: no cover - not settable here
            pass


class AtomicFile:
    """A temporary file beside ``path`` (``.file``, open for binary writing and seeking),
    renamed to ``path`` by :meth:`publish` or removed by :meth:`discard`.  Creating one
    removes the stale temporary files of ``path`` (see the module documentation)."""

    def __init__(self, path: str | os.PathLike[str], suffix: str = ".tmp") -> None:
        self.path = Path(path)
        _install_handlers()
        with _lock:
            remove_stale_temporaries(self.path)
            fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.{os.getpid()}.", suffix=suffix, dir=self.path.parent)
            self.temp = Path(temp)
            _live.add(self.temp)
        self.file: BinaryIO = os.fdopen(fd, "w+b")

    def publish(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        publish(self.temp, self.path)
        _live.discard(self.temp)

    def discard(self) -> None:
        self.file.close()
        self.temp.unlink(missing_ok=True)
        _live.discard(self.temp)


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
