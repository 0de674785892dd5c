"""Opening what a stream is read from: the one place that turns a path, a ``Path``, ``"-"``
(standard input), a URL (``https://``, ``s3://``, any fsspec URL: :mod:`.remote`), bytes or a
binary file object into a file to read.

A Matroska file made by ``m3v-mux`` (any Matroska file with an ``application/x-m3v``
attachment) is read as the `.m3v` stream attached to it, through
:func:`m3cvc_format.mkv.extract_m3v`; ``sniff_mkv=False`` reads the bytes as they are.
``follow=True`` reads a file that is still being written (:class:`~.follow.FollowFile`).
The :class:`~m3cvc_format.Reader`, :meth:`~m3cvc_format.FrameSource.open`,
:func:`m3cvc_format.open`, the Matroska muxer and the command-line tools all open through
:func:`open_source`.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

from .constants import SIGNATURE
from .errors import SignatureError
from .remote import is_url

__all__ = ["EBML_MAGIC", "FileWindow", "Source", "is_matroska", "open_source"]

#: The first bytes of a Matroska / WebM file (an EBML header).
EBML_MAGIC = b"\x1a\x45\xdf\xa3"


class Source:
    """An opened input: ``file`` to read, ``name`` for messages, and the files opened for it,
    closed by :meth:`close` (a file object the caller gave stays open)."""

    def __init__(self, file: BinaryIO, name: str, owned: list[Any] | None = None) -> None:
        self.file = file
        self.name = name
        self._owned = owned or []

    def read_all(self) -> bytes:
        """Everything left to read."""
        data = self.file.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"{self.name}: the source must be opened in binary mode")
        return bytes(data)

    def renamed(self, name: str) -> Source:
        self.name = name
        return self

    def close(self) -> None:
        for f in reversed(self._owned):
            f.close()
        self._owned = []

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Prefixed(io.RawIOBase):
    """``prefix`` then the rest of ``file``: puts back the bytes read to sniff a pipe."""

    def __init__(self, prefix: bytes, file: Any) -> None:
        super().__init__()
        self._prefix = prefix
        self._file = file
        self.name = getattr(file, "name", "<stream>")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        """Straight from the prefix or the file (no intermediate buffer of ``size`` bytes)."""
        if size is None or size < 0:
            prefix, self._prefix = self._prefix, b""
            rest: bytes = self._file.read()
            return prefix + rest
        if self._prefix:
            out, self._prefix = self._prefix[:size], self._prefix[size:]
            return out
        data: bytes = self._file.read(size)
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._file.read(len(view))
        view[: len(data)] = data
        return len(data)


def _read_exactly(file: Any, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = file.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def _extract(src: Any) -> bytes:
    try:
        from . import mkv

        extract = mkv.extract_m3v
    except (ImportError, AttributeError):
        raise SignatureError(
            "input is a Matroska file; reading the .m3v attached to it needs "
            "m3cvc_format.mkv.extract_m3v, which this installation does not have",
            0,
        ) from None
    data: bytes = extract(src)
    return data


def _seekable(file: Any) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, ValueError, OSError):
        return False


def _open_url(url: str, sniff_mkv: bool) -> Source:
    """A URL read with range requests (:mod:`.remote`): its first block is fetched at once (the
    Reader's first read, and the look that tells Matroska from `.m3v`); a Matroska file is read
    as a window onto its attachment's bytes, so the stream inside is read in ranges too."""
    from .framing import WINDOW
    from .remote import open_url

    remote = open_url(url)
    try:
        head = remote.prefetch(0, WINDOW)
        if sniff_mkv and head[:4] == EBML_MAGIC:
            return Source(_attached_window(remote), url, [remote])  # type: ignore[arg-type]
    except BaseException:
        remote.close()
        raise
    return Source(remote, url, [remote])  # type: ignore[arg-type]


class FileWindow(io.RawIOBase):
    """Bytes ``offset`` to ``offset + size`` of a seekable ``file``, as a file of their own.
    Each read seeks first, so the file can be shared (a Matroska file's attachment, read by
    the reader, and the whole file, read by FFmpeg for its chapters)."""

    def __init__(self, file: Any, offset: int, size: int) -> None:
        super().__init__()
        self._file, self._offset, self._size, self._pos = file, offset, size, 0
        self.name = str(getattr(file, "name", "<stream>"))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        end = self._size if size is None or size < 0 else min(self._pos + size, self._size)
        if end <= self._pos:
            return b""
        self._file.seek(self._offset + self._pos)
        data: bytes = self._file.read(end - self._pos)
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    @contextlib.contextmanager
    def kept_position(self) -> Iterator[None]:
        """From the window's start, and the shared file's position as it was afterwards (a
        caller's file object)."""
        before = self._file.tell()
        try:
            self._pos = 0
            yield
        finally:
            self._file.seek(before)


def _attached_window(remote: Any) -> FileWindow:
    """The `.m3v` attached to the Matroska file ``remote`` (a :class:`~.remote.RemoteFile`), as a
    window onto its bytes.  Unlike :func:`~.mkv.extract_m3v` it does not fetch the whole stream
    to check its SHA-256: each chunk the reader fetches has its CRC checked."""
    from .framing import WINDOW

    try:
        from .mkv_extract import m3v_attachment
    except ImportError:
        raise SignatureError(
            "input is a Matroska file; reading the .m3v attached to it needs m3cvc_format.mkv_extract", 0
        ) from None
    found = m3v_attachment(remote)
    assert found.data_offset is not None and found.data_size is not None  # m3v_attachment checked
    remote.prefetch(found.data_offset, min(WINDOW, found.data_size))  # the reader's first read
    window = FileWindow(remote, found.data_offset, found.data_size)
    if window.read(len(SIGNATURE)) != SIGNATURE:
        from .ebml import NotM3VAttachmentError

        raise NotM3VAttachmentError(
            f"attachment {found.name!r} is not an .m3v stream (no .m3v signature)", found.data_offset
        )
    window.seek(0)
    return window


def is_matroska(path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` starts as a Matroska file does (False if it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == EBML_MAGIC
    except OSError:
        return False


def open_source(
    src: Any,
    *,
    follow: bool = False,
    timeout: float | None = None,
    sniff_mkv: bool = True,
    seekable: bool = False,
) -> Source:
    """Open ``src`` for reading (see the module documentation).  A :class:`Source` is returned
    as it is.  ``seekable=True`` reads a forward-only input into memory, for readers that must
    seek (the Matroska demuxer)."""
    if isinstance(src, Source):
        return src
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        if sniff_mkv and data[:4] == EBML_MAGIC:
            data = _extract(io.BytesIO(data))
        return Source(io.BytesIO(data), "<bytes>")
    if isinstance(src, str) and is_url(src):
        if follow:
            raise ValueError(f"{src}: follow=True reads a local file being written, not a URL")
        return _open_url(src, sniff_mkv)
    if isinstance(src, (str, os.PathLike)):
        if os.fspath(src) == "-":
            return open_source(sys.stdin.buffer, follow=follow, timeout=timeout, sniff_mkv=sniff_mkv, seekable=seekable)
        name = str(os.fspath(src))
        if follow:
            from .follow import DEFAULT_FOLLOW_TIMEOUT, FollowFile

            followed = FollowFile(src, DEFAULT_FOLLOW_TIMEOUT if timeout is None else timeout)
            return Source(followed, name, [followed])  # type: ignore[arg-type]
        file = open(src, "rb")  # noqa: SIM115 (the Source closes it)
        if sniff_mkv:
            try:
                head = file.read(4)
                file.seek(0)
            except BaseException:
                file.close()
                raise
            if head == EBML_MAGIC:
                file.close()
                return Source(io.BytesIO(_extract(name)), name)
        return Source(file, name, [file])
    if not hasattr(src, "read"):
        raise TypeError(f"cannot read a stream from {type(src).__name__}")
    name = str(getattr(src, "name", "<stream>"))
    if follow:
        from .follow import DEFAULT_FOLLOW_TIMEOUT, FollowFile

        followed = FollowFile(src, DEFAULT_FOLLOW_TIMEOUT if timeout is None else timeout)
        return Source(followed, name, [followed])  # type: ignore[arg-type]
    if _seekable(src):
        if sniff_mkv:
            start = src.tell()
            head = src.read(4)
            src.seek(start)
            if head == EBML_MAGIC:
                return Source(io.BytesIO(_extract(src)), name)
        return Source(src, name)
    if seekable:  # memory bounded by the input's size
        return open_source(Source(src, name).read_all(), sniff_mkv=sniff_mkv).renamed(name)
    if not sniff_mkv:
        return Source(src, name)
    head = _read_exactly(src, len(SIGNATURE))
    if head[:4] == EBML_MAGIC:
        return Source(io.BytesIO(_extract(_Prefixed(head, src))), name)
    prefixed = _Prefixed(head, src)
    return Source(prefixed, name, [prefixed])  # type: ignore[arg-type]
