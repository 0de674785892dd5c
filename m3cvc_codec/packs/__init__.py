"""Model packs, found by id through the ``m3cvc.packs`` entry-point group.

A third-party pack subclasses :class:`Pack` and registers itself in its own pyproject::

    [project.entry-points."m3cvc.packs"]
    "org.example.mypack" = "mypack:MyPack"

:func:`load_pack` builds a pack from a :class:`PackConfig` (default: the pack's own) and
:class:`RuntimeOptions`.  Loaded packs are kept in a :class:`PackCache`, an explicit object:
:data:`DEFAULT_CACHE` unless the caller passes its own (or None for no sharing).  Its key is
(pack id, config hash, options): loading twice with the same config and options returns the
same pack; a different config or different options never do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path

from .base import GridSpec, Pack, PackError
from .config import Component, PackConfig, RuntimeOptions, weights_hash

__all__ = [
    "DEFAULT_CACHE",
    "DEFAULT_PACK",
    "Component",
    "GridSpec",
    "Pack",
    "PackCache",
    "PackConfig",
    "PackError",
    "RuntimeOptions",
    "available_packs",
    "check_stream_pack",
    "load_pack",
    "pack_class",
    "weights_hash",
]

GROUP = "m3cvc.packs"

#: The pack the CLIs and the encoder use when none is named.
DEFAULT_PACK = "lite"

CacheKey = tuple[str, str, RuntimeOptions]


class PackCache:
    """Loaded packs by (pack id, config hash, runtime options); thread-safe.  A pack holds its
    models in memory (on a GPU for some), so an application that loads several configs may
    want its own cache, or :meth:`clear` one it is done with."""

    def __init__(self) -> None:
        self._packs: dict[CacheKey, Pack] = {}
        self._lock = threading.Lock()

    def get(self, key: CacheKey, build: Callable[[], Pack]) -> Pack:
        """The pack under ``key``, built with ``build()`` the first time."""
        with self._lock:
            pack = self._packs.get(key)
            if pack is None:
                pack = self._packs[key] = build()
            return pack

    def __iter__(self) -> Iterator[CacheKey]:
        """The keys of the packs held (a snapshot)."""
        with self._lock:
            return iter(list(self._packs))

    def clear(self) -> None:
        with self._lock:
            self._packs.clear()

    def __len__(self) -> int:
        return len(self._packs)


#: The cache :func:`load_pack` uses unless told otherwise.
DEFAULT_CACHE = PackCache()


def available_packs() -> list[str]:
    """Ids of the installed packs."""
    return sorted(ep.name for ep in entry_points(group=GROUP))


def pack_class(pack_id: str) -> type[Pack]:
    """The class of the installed pack ``pack_id`` (PackError naming what is installed if it
    is not, or if what is registered is not a :class:`Pack`)."""
    found = [ep for ep in entry_points(group=GROUP) if ep.name == pack_id]
    if not found:
        have = ", ".join(available_packs()) or "none"
        raise PackError(f"pack {pack_id!r} is not installed (installed packs: {have})")
    cls = found[0].load()
    if not (isinstance(cls, type) and issubclass(cls, Pack)):
        raise PackError(f"pack {pack_id!r} is registered as {found[0].value}, which is not a Pack subclass")
    return cls


def load_pack(
    pack_id: str,
    config: PackConfig | str | Path | None = None,
    options: RuntimeOptions | None = None,
    *,
    cache: PackCache | None = DEFAULT_CACHE,
) -> Pack:
    """The installed pack ``pack_id`` built from ``config`` (a :class:`PackConfig`, or a config
    file / weights folder; default: the pack's own) and ``options`` (default: CPU).  Shared
    through ``cache`` (None: a new pack every call).  PackError when the pack is missing, the
    config is for another pack or cannot be read, or the pack refuses the options."""
    cls = pack_class(pack_id)
    if isinstance(config, (str, Path)):
        config = PackConfig.from_file(config)
    if config is None:
        config = cls.default_config()
    if config.pack_id != pack_id:
        raise PackError(f"the pack config is for pack {config.pack_id!r}, not {pack_id!r}")
    options = options if options is not None else RuntimeOptions()
    if cache is None:
        return cls(config, options)
    return cache.get((pack_id, config.hash(), options), lambda: cls(config, options))


def check_stream_pack(
    header,
    config: PackConfig | str | Path | None = None,
    options: RuntimeOptions | None = None,
    *,
    cache: PackCache | None = DEFAULT_CACHE,
) -> tuple[Pack, GridSpec]:
    """The pack (built from ``config`` and ``options``, as :func:`load_pack`) and grid variant
    that decode a stream with this header, or PackError saying why not: the pack is missing,
    no variant has the stream's grid and vocabulary, or the weights differ."""
    if header.pack_id == "none":
        raise PackError("stream has pack 'none': its index maps are not meant to be decoded to pixels")
    pack = load_pack(header.pack_id, config, options, cache=cache)
    for grid in pack.grids:
        if (
            grid.grid(header.width, header.height) == (header.grid_h, header.grid_w)
            and header.vocab_size == grid.vocab_size
        ):
            if any(header.pack_hash) and header.pack_hash != pack.weights_hash(grid):
                raise PackError(
                    f"stream was coded with {header.pack_id} weights {header.pack_hash.hex()[:16]}..., "
                    f"the loaded pack's {grid.name} weights are {pack.weights_hash(grid).hex()[:16]}...: "
                    "decoding would give wrong frames"
                )
            return pack, grid
    raise PackError(
        f"pack {header.pack_id!r} has no variant with a {header.grid_h}x{header.grid_w} grid "
        f"for {header.width}x{header.height} frames and vocabulary {header.vocab_size}"
    )
