"""What a model pack is: everything model-specific in the codec.

A *pack* owns the keyframe codec (frame <-> index map per grid variant), clip reconstruction
(a clip's frames from its decoded keyframe and the next one), the keyframe-selection scorers
(appearance embedding, motion magnitude) and the weights they need.  The pipeline (encoder,
:class:`~m3cvc_codec.clip_decoder.ClipDecoder`, player) talks to packs only through
:class:`Pack`, so the CPU ``lite`` pack and a pack of the paper's models (Stable Diffusion
keyframe decoder, a video-diffusion clip model) are interchangeable.

A pack is built from a :class:`~m3cvc_codec.packs.config.PackConfig` (which weights: model ids
or local folders, revisions, SHA-256 of trained files) and
:class:`~m3cvc_codec.packs.config.RuntimeOptions` (where and how to run them: device, dtype,
a local models folder, CPU offload); :func:`m3cvc_codec.packs.load_pack` does that.

Frames are RGB ``uint8`` arrays (H x W x 3) throughout.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:
    from .config import PackConfig, RuntimeOptions

__all__ = ["GridSpec", "Pack", "PackError"]


class PackError(ValueError):
    """A pack is missing, misconfigured, or cannot decode the stream it was asked to (wrong id
    or weights)."""


@dataclass(frozen=True)
class GridSpec:
    """One keyframe-codec variant: its index grid as a fraction of the frame, and its
    vocabulary (per grid: the paper's 32x32 and 64x64 variants need not share one)."""

    name: str  # e.g. "1/16"
    downsample: int  # 16 -> a 512x320 frame gives a 20x32 grid
    vocab_size: int  # index vocabulary l_v of this variant

    def grid(self, width: int, height: int) -> tuple[int, int]:
        """(grid_h, grid_w) for frames of ``width`` x ``height``."""
        return height // self.downsample, width // self.downsample


class Pack(abc.ABC):
    """The interface every pack implements (see the module documentation).

    Subclasses set :attr:`pack_id` and :attr:`grids`, implement the abstract methods, accept
    ``cls(config, options)`` and call ``super().__init__(config, options)``; a pack with
    default weights overrides :meth:`default_config`.  Construct packs with
    :func:`m3cvc_codec.packs.load_pack`, which shares one instance per (pack id, config,
    options) through an explicit cache.

    A pack of large models loads them lazily (on first use), from
    ``self.config.resolve(name, self.options.models_dir)`` (a local folder, or a model id for
    ``from_pretrained`` with ``self.config.components[name].revision``), on
    ``self.options.device`` in ``self.options.dtype``, offloading to the CPU when
    ``self.options.cpu_offload``; it refuses options it cannot honour with a PackError."""

    #: Registered pack id written to the stream header (spec/m3v.md, "Packs").
    pack_id: ClassVar[str]
    #: The keyframe-codec variants this pack offers, finest last.
    grids: Sequence[GridSpec]

    def __init__(self, config: PackConfig | None = None, options: RuntimeOptions | None = None) -> None:
        from .config import RuntimeOptions

        self.config: PackConfig = config if config is not None else type(self).default_config()
        if self.config.pack_id != self.pack_id:
            raise PackError(f"pack {self.pack_id!r} was given a config for pack {self.config.pack_id!r}")
        self.options: RuntimeOptions = options if options is not None else RuntimeOptions()

    # -- configuration --------------------------------------------------------------------

    @classmethod
    def default_config(cls) -> PackConfig:
        """The configuration used when none is given (a pack that ships or names default
        weights overrides this); PackError by default."""
        raise PackError(f"pack {cls.pack_id!r} needs a config (it has no default weights)")

    def grid(self, name: str) -> GridSpec:
        """The variant called ``name`` (PackError naming the variants when there is none)."""
        for g in self.grids:
            if g.name == name:
                return g
        have = ", ".join(g.name for g in self.grids)
        raise PackError(f"pack {self.pack_id!r} has no grid variant {name!r} (it has {have})")

    def weights_hash(self, grid: GridSpec) -> bytes:
        """SHA-256 (32 bytes) identifying the weights a stream coded with ``grid`` needs: the
        header's ``pack_hash``.  Default: from the config's components for the grid
        (:func:`m3cvc_codec.packs.config.weights_hash`)."""
        return self.config.weights_hash(grid.name)

    def prior(self, grid: GridSpec) -> Sequence[int]:
        """Index counts for the stream header (empty for none, the default)."""
        return ()

    # -- keyframe codec -------------------------------------------------------------------

    @abc.abstractmethod
    def encode_keyframe(self, frame: np.ndarray, grid: GridSpec) -> np.ndarray:
        """Keyframe -> int64 index map (grid_h x grid_w, values below ``grid.vocab_size``)."""

    def encode_keyframe_near(
        self, frame: np.ndarray, grid: GridSpec, reference: np.ndarray, tolerance: float
    ) -> np.ndarray:
        """Like :meth:`encode_keyframe`, but a pack may keep ``reference``'s index (the
        previous keyframe's map) where that costs at most a factor ``1 + tolerance`` in
        distortion.  Default: :meth:`encode_keyframe` (no reuse)."""
        return self.encode_keyframe(frame, grid)

    @abc.abstractmethod
    def decode_keyframe(self, indices: np.ndarray, grid: GridSpec, text: str, seed: int) -> np.ndarray:
        """Index map + keyframe description + decode seed (spec/m3v.md §6.4) -> RGB uint8 frame
        (grid x downsample size; the caller resizes to the stream's size if it differs)."""

    # -- clip reconstruction --------------------------------------------------------------

    @abc.abstractmethod
    def reconstruct_clip(
        self, first: np.ndarray, last: np.ndarray | None, clip_text: str, frame_count: int, seed: int
    ) -> Iterable[np.ndarray]:
        """The clip's ``frame_count`` frames, in order, starting from its decoded keyframe
        ``first``: interpolated towards ``last`` (the next clip's keyframe, not itself part of
        the clip), or predicted from ``first`` alone when ``last`` is None.  May be lazy."""

    # -- keyframe-selection scorers -------------------------------------------------------

    @abc.abstractmethod
    def embed(self, frames: np.ndarray) -> np.ndarray:
        """Appearance embeddings of a batch of frames (N x H x W x 3 uint8) -> N x D float."""

    @abc.abstractmethod
    def motion_features(self, frames: np.ndarray) -> list[np.ndarray]:
        """Per-frame features (N x H x W x 3 uint8 -> N small arrays) the keyframe selector
        keeps instead of the frames, to measure motion between them later."""

    @abc.abstractmethod
    def motion(self, before: Sequence[np.ndarray], after: Sequence[np.ndarray]) -> np.ndarray:
        """N motion magnitudes, float64: the mean end-point length of the optical flow from
        ``before[i]`` to ``after[i]`` (features from :meth:`motion_features`), in pixels of the
        frames the features were made from."""
