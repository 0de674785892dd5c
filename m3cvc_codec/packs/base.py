"""What a model pack provides to the codec pipeline.

A *pack* turns keyframes into index maps and back, and gives the scorers the
keyframe selector uses.  The pipeline (m3cvc_codec.encoder / decoder) talks to
packs only through :class:`Pack`, so the CPU ``lite`` pack and the ``full`` pack
of the paper's models are interchangeable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["GridSpec", "Pack", "PackError"]


class PackError(ValueError):
    """A pack is missing, or cannot decode the stream it was asked to (wrong id or weights)."""


@dataclass(frozen=True)
class GridSpec:
    """One keyframe-codec variant: its index grid for a frame size, as a fraction of it."""

    name: str  # e.g. "1/16"
    downsample: int  # 16 -> a 512x320 frame gives a 20x32 grid

    def grid(self, width: int, height: int) -> tuple[int, int]:
        return height // self.downsample, width // self.downsample


@runtime_checkable
class Pack(Protocol):
    """The interface every pack implements (frames are RGB uint8 arrays, H x W x 3)."""

    #: Registered pack id written to the stream header (spec/m3v.md, "Packs").
    pack_id: str
    #: Index vocabulary size l_v.
    vocab_size: int
    #: The variants this pack offers, finest last.
    grids: Sequence[GridSpec]

    def weights_hash(self, grid: GridSpec) -> bytes:
        """SHA-256 (32 bytes) identifying the weights a stream coded with ``grid`` needs."""

    def prior(self, grid: GridSpec) -> Sequence[int]:
        """Index counts for the stream header (empty for none)."""

    def encode_keyframe(self, frame: np.ndarray, grid: GridSpec) -> np.ndarray:
        """Keyframe -> index map (grid_h x grid_w integers below vocab_size)."""

    def decode_keyframe(self, indices: np.ndarray, grid: GridSpec, text: str, seed: int) -> np.ndarray:
        """Index map (+ keyframe description, decode seed) -> frame of grid x downsample size."""

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """Semantic embeddings of a batch of frames (N x H x W x 3) -> N x D, for keyframe selection."""
