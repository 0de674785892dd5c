"""Keyframe scorers: what measures ``sem`` and ``motion`` in the composite score D
(:mod:`m3cvc_codec.keyframes`).

A :class:`KeyframeScorer` has the pack's three selection methods (``embed``,
``motion_features``, ``motion``: see :class:`~m3cvc_codec.packs.Pack`), a :attr:`name`, the
:attr:`default_params` (lambda1, lambda2, D_th) calibrated for its scale of scores, and
:meth:`metadata` (what a stream records about it).  :func:`scorer_for` makes one by name:

- ``"pack"`` (default): the pack's own scorers (the lite pack: its encoder features and DIS
  flow).  Its defaults are :class:`~m3cvc_codec.keyframes.KeyframeParams`' and its metadata is
  empty, so streams coded with it are byte for byte what they were before scorers existed.
- ``"clip"``: the paper's (section II-A): CLIP image features
  (:class:`~m3cvc_codec.models.clip.ClipEmbedder`, default ``openai/clip-vit-base-patch32``) and
  optical flow (:class:`~m3cvc_codec.models.flow.FlowMagnitude`: RAFT where torchvision imports
  and its weights are local, else OpenCV DIS).  Needs the ``full`` extra.

Motion means the same with every scorer: the mean end-point length of the optical flow from
F_l to F_n in pixels of the coding size (:mod:`m3cvc_codec.models.flow`), so lambda2 carries
over; the semantic distances 1 - cos differ in scale between embeddings, so lambda1 does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from .errors import CodecError
from .keyframes import KeyframeParams

if TYPE_CHECKING:
    from .packs import Pack
    from .packs.config import RuntimeOptions

__all__ = ["SCORERS", "ClipScorer", "KeyframeScorer", "PackScorer", "scorer_for"]

#: The scorer names :func:`scorer_for` knows, default first.
SCORERS = ("pack", "clip")


@runtime_checkable
class KeyframeScorer(Protocol):
    """What keyframe selection needs of a scorer (a :class:`~m3cvc_codec.packs.Pack` has the
    three methods; :class:`~m3cvc_codec.keyframes.SemanticScorer` and
    :class:`~m3cvc_codec.keyframes.MotionScorer` take either)."""

    #: Short name recorded in streams ("pack", "clip").
    name: str
    #: Calibrated ``lambda1``, ``lambda2``, ``threshold`` for this scorer's scale of scores.
    default_params: Mapping[str, float]

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """N x H x W x 3 uint8 -> N x D float embeddings."""

    def motion_features(self, frames: np.ndarray) -> list[np.ndarray]:
        """N x H x W x 3 uint8 -> N small per-frame features for :meth:`motion`."""

    def motion(self, before: Sequence[np.ndarray], after: Sequence[np.ndarray]) -> np.ndarray:
        """N motion magnitudes (float64), coding-size pixels, from ``before[i]`` to ``after[i]``."""

    def metadata(self) -> dict[str, Any]:
        """Keys a stream's ``keyframe_selection`` metadata records about the scorer."""


def _params(p: KeyframeParams) -> dict[str, float]:
    return {"lambda1": p.lambda1, "lambda2": p.lambda2, "threshold": p.threshold}


class PackScorer:
    """The pack's own scorers, unchanged (the default).  Its :attr:`default_params` are the
    pack's ``selection_defaults`` where the pack has them (the full pack's CLIP + flow
    scorers: :class:`ClipScorer`'s calibration), else :class:`~m3cvc_codec.keyframes.KeyframeParams`'."""

    name = "pack"
    default_params: Mapping[str, float] = _params(KeyframeParams())

    def __init__(self, pack: Pack) -> None:
        self.pack = pack
        defaults = getattr(pack, "selection_defaults", None)
        if defaults is not None:
            self.default_params = {k: float(defaults[k]) for k in ("lambda1", "lambda2", "threshold")}

    def embed(self, frames: np.ndarray) -> np.ndarray:
        return self.pack.embed(frames)

    def motion_features(self, frames: np.ndarray) -> list[np.ndarray]:
        return self.pack.motion_features(frames)

    def motion(self, before: Sequence[np.ndarray], after: Sequence[np.ndarray]) -> np.ndarray:
        return self.pack.motion(before, after)

    def metadata(self) -> dict[str, Any]:
        return {}  # nothing: streams coded with the pack's scorers keep their bytes


class ClipScorer:
    """CLIP image features + optical-flow magnitude (the paper's f_Clip and f_Raft)."""

    name = "clip"
    # Calibration (no real CLIP weights here: the semantic figures are from the literature, the
    # motion ones measured).  Motion is the same quantity as the lite pack's (mean flow
    # end-point length in coding-size pixels), but a better estimator reads more: on the shared
    # clips at 512x320, 8 fps, frames 4 apart, DIS medium at 256 px gives 1.06-1.64x (median
    # ~1.35x) what the lite pack's DIS fast at 160 px gives (it misses large displacements:
    # handheld pool clip 46 vs 20 px), and RAFT reads at least as much.  So lambda2 = 0.015
    # (the lite's 0.02 / 1.35): 25 px of motion alone passes D_th.  The semantic term is
    # rescaled: reported CLIP ViT-B/32 image-image cosine similarities (shot-boundary and
    # near-duplicate work on CLIP features) are 0.95-0.99 between nearby frames of a shot,
    # 0.85-0.95 for frames 1-2 s apart with camera or subject motion, and only 0.5-0.8 across
    # a hard cut (CLIP's embedding space is anisotropic: unrelated photos still score ~0.5).
    # So 1 - cos runs 0.01-0.15 within a shot and 0.2-0.5 at a cut, about three times the lite
    # embedding's 0.005-0.05 / 0.1-0.2; lambda1 = 3 (the lite's 10 / 3) keeps the balance of
    # the two terms and the lite's D_th = 0.35: a cut (>= 0.2 * 3 = 0.6) is a keyframe on its
    # own, a calm shot (0.02 * 3 + 3 px * 0.015 = 0.1) stays one clip up to max_clip, a busy
    # one (0.08 * 3 + 15 px * 0.015 = 0.47) cuts every few frames.  Re-check on the real
    # ViT-B/32 (1 - cos over the /work/shared/media clips) when its weights are at hand.
    default_params: Mapping[str, float] = {"lambda1": 3.0, "lambda2": 0.015, "threshold": 0.35}

    def __init__(self, embedder: Any, flow: Any) -> None:
        self.embedder = embedder
        self.flow = flow
        # batch sizes the memoising scorers of m3cvc_codec.keyframes take from here
        self.embed_batch = int(getattr(embedder, "batch", 16))
        self.motion_batch = int(getattr(flow, "batch", 1))

    def embed(self, frames: np.ndarray) -> np.ndarray:
        return self.embedder.embed(frames)

    def motion_features(self, frames: np.ndarray) -> list[np.ndarray]:
        return self.flow.motion_features(frames)

    def motion(self, before: Sequence[np.ndarray], after: Sequence[np.ndarray]) -> np.ndarray:
        return self.flow.motion(before, after)

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, **self.embedder.metadata(), **self.flow.metadata()}


def scorer_for(
    name: str,
    pack: Pack,
    options: RuntimeOptions | None = None,
    clip_model: str | None = None,
    flow: str | None = None,
) -> PackScorer | ClipScorer:
    """The keyframe scorer called ``name`` (:data:`SCORERS`).

    ``pack`` gives the ``"pack"`` scorer; ``options`` (RuntimeOptions: device, dtype, models
    folder) where the ``"clip"`` scorer's models run and are found; ``clip_model`` the CLIP id
    or folder (default ``openai/clip-vit-base-patch32``); ``flow`` the flow backend (``auto``,
    ``raft_large``, ``raft_small``, ``dis``; default ``auto``).  CodecError for an unknown name
    or options that do not apply; the models' errors (ModelNotFoundError, MissingExtraError:
    both CodecError) as :mod:`m3cvc_codec.models.hub` gives them."""
    if name == "pack":
        if clip_model is not None or flow is not None:
            raise CodecError("a CLIP model or flow backend applies to the clip scorer only (--scorer clip)")
        return PackScorer(pack)
    if name == "clip":
        from .models.clip import DEFAULT_CLIP, ClipEmbedder
        from .models.flow import FlowMagnitude

        return ClipScorer(ClipEmbedder(clip_model or DEFAULT_CLIP, options), FlowMagnitude(flow or "auto", options))
    raise CodecError(f"keyframe scorer {name!r} is not one of {', '.join(SCORERS)}")
