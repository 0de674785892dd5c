"""Reading a stream from a URL (``https://``, ``s3://``, any protocol fsspec knows) with range
requests, through :func:`~m3cvc_format.opener.open_source`.

:func:`open_url` asks for the object's size (one request: HEAD over HTTP) and returns a
:class:`RemoteFile`, a seekable binary file whose every read that no block it holds covers is
one ranged request, for the bytes asked for or :data:`MIN_REQUEST` bytes if that is more.  The
readers above it already read in the pattern a remote wants: the :class:`~m3cvc_format.Reader`
reads the first 64 KiB (signature, HEAD, PRMT), the last 64 KiB (TAIL and, up to some
thousands of clips, the INDX), and then each clip it is asked for in one read of its bytes.  So
opening a stream and reading its index takes 3 requests (size, head, tail) and a clip 1,
whatever the file's size.  No block cache of fsspec's sits in between: its blocks would not
line up with those reads.  :meth:`RemoteFile.prefetch` holds the first block, so the look at
the first bytes that tells an ``.mkv`` from an ``.m3v`` costs no request of its own.

fsspec (and the protocol's own package: aiohttp for HTTP, s3fs for S3, gcsfs, adlfs, ...) is
imported only when a URL is opened; ``import m3cvc_format`` does not import it.  A missing
package, an object that is not there, a refused connection or an HTTP error status is a
:class:`RemoteError` (an ``OSError``; ``FileNotFoundError`` for a missing object), so every
command prints one line naming the URL and exits 1.
"""

from __future__ import annotations

import errno
import io
import re
from typing import Any

__all__ = [
    "MissingProtocolError",
    "RemoteConnectionError",
    "RemoteError",
    "RemoteFile",
    "RemoteNotFoundError",
    "RemotePermissionError",
    "is_url",
    "open_url",
]

# scheme://..., or an fsspec chain such as simplecache::s3://...; a scheme of one letter is a
# Windows drive, not a URL.
_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*::)*[A-Za-z][A-Za-z0-9+.-]+://")

#: What to install for a protocol whose fsspec class is in fsspec itself but needs more.
_EXTRA_PACKAGES = {"http": "aiohttp", "https": "aiohttp"}

#: The fewest bytes a request asks for.  Up to about this much comes in the same round trip as
#: one byte (TCP's initial window is 10 segments, ~14 kB), and it usually holds the clips after
#: the one asked for: decoding a clip of interpolation mode needs the next clip's keyframe, and
#: playing reads on; so those cost no request of their own.
MIN_REQUEST = 12 * 1024

#: The install line for the protocols this project names an extra for.
_REMOTE_EXTRA = "pip install 'm3cvc[remote]'"


class RemoteError(OSError):
    """A URL could not be read: the message says why, ``filename`` is the URL."""

    def __init__(self, message: str, url: str, code: int = errno.EIO) -> None:
        super().__init__(code, message, url)


class RemoteNotFoundError(RemoteError, FileNotFoundError):
    """No object at the URL (HTTP 404 or 410, a missing key or bucket)."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message, url, errno.ENOENT)


class RemotePermissionError(RemoteError, PermissionError):
    """The server refused access (HTTP 401 or 403, denied credentials)."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message, url, errno.EACCES)


class RemoteConnectionError(RemoteError, ConnectionError):
    """The server could not be reached (refused, unknown host, timed out, reset)."""

    def __init__(self, message: str, url: str, code: int = errno.ECONNREFUSED) -> None:
        super().__init__(message, url, code)


class MissingProtocolError(RemoteError):
    """The package that reads the URL's protocol is not installed; ``package`` names it."""

    def __init__(self, message: str, url: str, package: str) -> None:
        super().__init__(message, url, errno.ENOSYS)
        self.package = package


def is_url(src: object) -> bool:
    """Whether ``src`` is a string naming a URL (``scheme://...``), not a local path."""
    return isinstance(src, str) and bool(_URL.match(src))


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _translate(err: Exception, url: str) -> RemoteError:
    """``err``, raised by fsspec or its protocol package, as one of our classes."""
    if isinstance(err, RemoteError):
        return err
    cause = err.__cause__ or err.__context__
    if isinstance(err, FileNotFoundError) and isinstance(cause, Exception):
        # fsspec's HTTP filesystem reports any failure to get a size (a refused connection
        # too) as FileNotFoundError, the real error as its cause
        return _translate(cause, url)
    status = getattr(err, "status", None) or getattr(err, "code", None)  # aiohttp, botocore
    if isinstance(err, FileNotFoundError) or status in (404, 410):
        return RemoteNotFoundError("no such object (not found on the server)", url)
    if isinstance(err, PermissionError) or status in (401, 403):
        return RemotePermissionError(f"access refused: {_first_line(err)}", url)
    if isinstance(status, int) and 400 <= status < 600:
        reason = getattr(err, "message", "") or ""
        return RemoteError(f"HTTP {status}{' ' + reason if reason else ''}", url)
    if isinstance(err, TimeoutError) or "timeout" in type(err).__name__.lower():
        return RemoteConnectionError(f"the server did not answer: {_first_line(err)}", url, errno.ETIMEDOUT)
    if isinstance(err, ConnectionError) or "connect" in type(err).__name__.lower():
        return RemoteConnectionError(f"cannot reach the server: {_first_line(err)}", url)
    return RemoteError(f"{type(err).__name__}: {_first_line(err)}", url)


def _missing_package(url: str, err: ImportError) -> MissingProtocolError:
    """The one line for a protocol whose package is not installed: which package, how to get it."""
    protocol = url.split("://", 1)[0].split("::")[-1].lower()
    if protocol in _EXTRA_PACKAGES:
        package, hint = _EXTRA_PACKAGES[protocol], _REMOTE_EXTRA
    else:
        from fsspec.registry import known_implementations

        implementation = str(known_implementations.get(protocol, {}).get("class", ""))
        if implementation and not implementation.startswith("fsspec."):
            package = implementation.split(".")[0]  # s3fs, gcsfs, adlfs, ...
        else:  # a class of fsspec's own that needs a module (sftp: paramiko): the import that failed
            cause = err.__cause__ if isinstance(err.__cause__, ImportError) else err
            package = (cause.name or "").split(".")[0] or "its package"
        hint = f"pip install {package}"
    return MissingProtocolError(f"reading {protocol}:// URLs needs the {package} package ({hint})", url, package)


#: Seconds to wait for an HTTP server to accept a connection, and then for each read: a server
#: that stops answering fails the read in this time (aiohttp's own default is 5 minutes in all).
HTTP_TIMEOUT = 30.0


def _http_client_options() -> dict[str, Any]:
    try:
        import aiohttp
    except ImportError:
        return {}  # url_to_fs says which package is missing
    return {"timeout": aiohttp.ClientTimeout(total=None, sock_connect=HTTP_TIMEOUT, sock_read=HTTP_TIMEOUT)}


def open_url(url: str, **storage_options: Any) -> RemoteFile:
    """A :class:`RemoteFile` for ``url`` (one request, for its size).  ``storage_options`` go to
    the fsspec filesystem (credentials, endpoint, headers)."""
    try:
        import fsspec.core
    except ImportError as err:
        raise MissingProtocolError(f"reading URLs needs the fsspec package ({_REMOTE_EXTRA})", url, "fsspec") from err
    protocol = url.split("://", 1)[0].split("::")[-1].lower()
    if protocol in ("http", "https") and "client_kwargs" not in storage_options:
        storage_options = {**storage_options, "client_kwargs": _http_client_options()}
    try:
        fs, path = fsspec.core.url_to_fs(url, **storage_options)
    except ImportError as err:
        raise _missing_package(url, err) from None
    except ValueError as err:  # an unknown protocol
        raise RemoteError(f"cannot read this URL: {_first_line(err)}", url) from None
    try:
        size = fs.size(path)
    except Exception as err:  # fsspec's backends raise their own types: translated to ours
        raise _translate(err, url) from None
    if size is None:
        raise RemoteError("the server does not give the object's size, so it cannot be read in ranges", url)
    return RemoteFile(fs, path, url, int(size))


class RemoteFile(io.RawIOBase):
    """A seekable, read-only binary file over one remote object of known ``size``: a read that
    no held block covers is one ranged request for its bytes, at least :data:`MIN_REQUEST`.  ``requests`` and
    ``bytes_fetched`` count what went over the network (the size request included)."""

    def __init__(self, fs: Any, path: str, url: str, size: int) -> None:
        super().__init__()
        self.fs = fs
        self.path = path
        self.url = url
        self.name = url
        self.size = size
        self.requests = 1  # the size
        self.bytes_fetched = 0
        self._pos = 0
        self._held: list[tuple[int, bytes]] = []  # prefetched (offset, bytes)
        self._last: tuple[int, bytes] = (0, b"")  # the last block fetched

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}.get(whence)
        if base is None:
            raise ValueError(f"invalid whence {whence}")
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read of a closed remote file")
        end = self.size if size is None or size < 0 else min(self._pos + size, self.size)
        if end <= self._pos:
            return b""
        data = self._range(self._pos, end)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def prefetch(self, offset: int, n: int) -> bytes:
        """Fetch up to ``n`` bytes at ``offset`` in one request and hold them: later reads inside
        them cost nothing.  Returns them."""
        end = min(offset + n, self.size)
        if end <= offset:
            return b""
        data = self._range(offset, end)
        self._held.append(self._last if self._last[0] == offset else (offset, data))
        return data

    def _range(self, start: int, end: int) -> bytes:
        for base, block in (*self._held, self._last):
            if base <= start and end <= base + len(block):
                return block[start - base : end - base]
        fetch_end = min(max(end, start + MIN_REQUEST), self.size)
        try:
            data = self.fs.cat_file(self.path, start=start, end=fetch_end)
        except Exception as err:  # fsspec's backends raise their own types: translated to ours
            raise _translate(err, self.url) from None
        self.requests += 1
        self.bytes_fetched += len(data)
        data = bytes(data)
        if len(data) == self.size and fetch_end - start < self.size:
            # the server ignored the Range header and sent everything: keep it, ask no more
            self._held = [(0, data)]
            return data[start:end]
        if len(data) != fetch_end - start:
            raise RemoteError(
                f"asked for bytes {start}-{fetch_end - 1} and got {len(data)} bytes "
                "(the object changed while being read?)",
                self.url,
            )
        self._last = (start, data)
        return data[: end - start]
