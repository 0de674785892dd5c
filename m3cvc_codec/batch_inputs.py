"""What ``m3v-batch`` reads: its INPUTS arguments expanded into the list of videos to code, each
with the name of its output, and a local copy of a remote video for the encoder.

An INPUT is one of:

- a video file (any name: it is coded whatever its extension);
- a folder: every file under it (recursively) whose extension is a video's
  (:data:`VIDEO_EXTENSIONS`), its output keeping its path below the folder (``a/b.mp4`` ->
  ``OUTDIR/a/b.m3v``);
- a glob (``clips/*.mp4``, ``**`` for any depth);
- a list file (``.txt``, ``.lst`` or ``.list``, or any file named with a leading ``@``): one INPUT
  a line (paths relative to the list's folder; blank lines and ``#`` comments skipped);
- a URL (``s3://bucket/x.mp4``, ``https://host/x.mp4``, any protocol fsspec knows, with its
  package installed): a single object, a glob of objects, or a "folder" ending in ``/``.

Expanding reads names only (a folder's listing, a list file, a bucket's keys): no video is opened
until a worker codes it, and a remote one is copied to a local temporary file only then
(:func:`local_copy`; PyAV reads the file twice, and seeks).  A path that does not exist is
still an input: coding it fails with "no such file", recorded like any failure.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import CodecError

__all__ = ["LIST_SUFFIXES", "VIDEO_EXTENSIONS", "BatchInput", "expand_inputs", "is_url", "local_copy"]

#: What a folder or a remote "folder" contributes: files with these extensions (lower case).
VIDEO_EXTENSIONS = frozenset(
    [
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".y4m",
        ".mpg",
        ".mpeg",
        ".ts",
        ".mts",
        ".m2ts",
        ".flv",
        ".wmv",
        ".ogv",
        ".3gp",
        ".mxf",
        ".h264",
        ".hevc",
        ".ivf",
    ]
)
#: A file with one of these extensions is a list of INPUTS, not a video.
LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})

# scheme://..., or an fsspec chain such as simplecache::s3://...; one letter is a drive (C://).
_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*::)*[A-Za-z][A-Za-z0-9+.-]+://")
_GLOB_CHARS = re.compile(r"[*?[]")


def is_url(text: str) -> bool:
    """Whether ``text`` is a URL (read through fsspec) rather than a local path."""
    return bool(_URL.match(text))


@dataclass(frozen=True)
class BatchInput:
    """One video to code: ``source`` (an absolute local path or a URL) and ``name``, the output's
    path below OUTDIR without its ``.m3v`` (POSIX separators)."""

    source: str
    name: str

    @property
    def output(self) -> str:
        return f"{self.name}.m3v"


def expand_inputs(specs: Iterable[str]) -> Iterator[BatchInput]:
    """The videos ``specs`` name, in order (a folder's and a glob's in sorted order), each once."""
    seen: set[str] = set()
    for spec in specs:
        for item in _expand(str(spec), depth=0):
            if item.source not in seen:
                seen.add(item.source)
                yield item


def _expand(spec: str, depth: int) -> Iterator[BatchInput]:
    if depth > 8:
        raise CodecError(f"{spec}: list files nest more than 8 deep (does a list name itself?)")
    if is_url(spec):
        yield from _expand_url(spec)
        return
    path = Path(spec[1:] if spec.startswith("@") else spec).expanduser()
    if spec.startswith("@") or (path.suffix.lower() in LIST_SUFFIXES and path.is_file()):
        yield from _expand_list(path, depth)
    elif path.is_dir():
        yield from _expand_folder(path)
    elif not path.exists() and _GLOB_CHARS.search(spec):
        for match in sorted(glob.glob(str(path), recursive=True)):
            found = Path(match)
            if found.is_dir():
                yield from _expand_folder(found)
            else:
                yield _local(found, found.stem)
    else:
        yield _local(path, path.stem)


def _local(path: Path, name: str) -> BatchInput:
    return BatchInput(os.path.abspath(path), name)


def _expand_folder(folder: Path) -> Iterator[BatchInput]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for file in sorted(files):
            path = Path(root) / file
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                relative = path.relative_to(folder).with_suffix("")
                yield _local(path, relative.as_posix())


def _expand_list(path: Path, depth: int) -> Iterator[BatchInput]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CodecError(f"{path}: is not a UTF-8 text list of inputs") from None
    for line in text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if not is_url(entry) and not os.path.isabs(os.path.expanduser(entry)):
            entry = str(path.parent / entry)
        yield from _expand(entry, depth + 1)


def _filesystem(url: str):
    try:
        import fsspec
    except ImportError:
        raise CodecError(f'{url}: reading URLs needs fsspec (pip install -e ".[batch]")') from None
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as err:
        raise CodecError(f"{url}: {str(err).splitlines()[0]}") from None
    return fs, path


def _expand_url(url: str) -> Iterator[BatchInput]:
    protocol_chain = url[: url.index("://") + 3]
    tail = url[len(protocol_chain) :]
    if not (_GLOB_CHARS.search(tail) or url.endswith("/")):
        yield BatchInput(url, PurePosixPath(tail).stem or "video")
        return
    fs, path = _filesystem(url)
    base = path.split("*", 1)[0].rsplit("/", 1)[0] if _GLOB_CHARS.search(tail) else path.rstrip("/")
    found = fs.glob(path) if _GLOB_CHARS.search(tail) else fs.find(path)
    for key in sorted(found):
        if url.endswith("/") and PurePosixPath(key).suffix.lower() not in VIDEO_EXTENSIONS:
            continue
        relative = PurePosixPath(key).relative_to(base) if key.startswith(base + "/") else PurePosixPath(key).name
        unstripped = fs.unstrip_protocol(key)
        yield BatchInput(unstripped, str(PurePosixPath(relative).with_suffix("")))


@contextlib.contextmanager
def local_copy(source: str) -> Iterator[str]:
    """``source`` as a local path: itself, or for a URL a temporary copy (removed after)."""
    if not is_url(source):
        yield source
        return
    fs, path = _filesystem(source)
    suffix = PurePosixPath(path).suffix
    with tempfile.TemporaryDirectory(prefix="m3v-batch-") as folder:
        local = os.path.join(folder, f"input{suffix}")
        with fs.open(path, "rb") as remote, open(local, "wb") as out:
            shutil.copyfileobj(remote, out, 1 << 20)
        yield local
