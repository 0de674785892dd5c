"""Model packs, found by id through the ``m3cvc.packs`` entry-point group.

A third-party pack registers itself in its own pyproject::

    [project.entry-points."m3cvc.packs"]
    "org.example.mypack" = "mypack:MyPack"
"""

from __future__ import annotations

from functools import cache, lru_cache
from importlib.metadata import entry_points

from .base import GridSpec, Pack, PackError

__all__ = ["GridSpec", "Pack", "PackError", "available_packs", "check_stream_pack", "load_pack"]

GROUP = "m3cvc.packs"


def available_packs() -> list[str]:
    """Ids of the installed packs."""
    return sorted(ep.name for ep in entry_points(group=GROUP))


@cache
def load_pack(pack_id: str) -> Pack:
    """The installed pack ``pack_id`` (PackError naming what is installed if it is not)."""
    found = [ep for ep in entry_points(group=GROUP) if ep.name == pack_id]
    if not found:
        have = ", ".join(available_packs()) or "none"
        raise PackError(f"pack {pack_id!r} is not installed (installed packs: {have})")
    return found[0].load()()


def check_stream_pack(header) -> tuple[Pack, GridSpec]:
    """The pack and grid variant that decode a stream with this header, or PackError saying
    why not: the pack is missing, no variant has the stream's grid, or the weights differ."""
    if header.pack_id == "none":
        raise PackError("stream has pack 'none': its index maps are not meant to be decoded to pixels")
    pack = load_pack(header.pack_id)
    for grid in pack.grids:
        if (
            grid.grid(header.width, header.height) == (header.grid_h, header.grid_w)
            and header.vocab_size == pack.vocab_size
        ):
            if any(header.pack_hash) and header.pack_hash != pack.weights_hash(grid):
                raise PackError(
                    f"stream was coded with {header.pack_id} weights {header.pack_hash.hex()[:16]}..., "
                    f"the installed pack's {grid.name} weights are {pack.weights_hash(grid).hex()[:16]}...: "
                    "decoding would give wrong frames"
                )
            return pack, grid
    raise PackError(
        f"installed pack {header.pack_id!r} has no variant with a {header.grid_h}x{header.grid_w} grid "
        f"for {header.width}x{header.height} frames and vocabulary {header.vocab_size}"
    )
