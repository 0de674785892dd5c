"""Keyframe selection: which frames start clips.

**Composite strategy** (the paper's section II-B). With ``F_l`` the last keyframe and ``F_n``
the frame under test,

    D(F_n, F_l) = lambda1 * (1 - cos(sem(F_n), sem(F_l))) + lambda2 * motion(F_n, F_l) - D_th

and ``F_n`` becomes a keyframe when D > 0. Frame 0 is always a keyframe. ``sem`` is a
scorer's embedding (``embed``); ``motion`` its motion magnitude from ``F_l`` to ``F_n``
(``motion`` on the features ``motion_features`` kept of each frame): the mean end-point length
of the optical flow from ``F_l`` to ``F_n``, in pixels of the coding size (it may be measured
at a smaller working size and scaled back), so lambda2 means the same with every scorer.  A
scorer is a pack (:class:`~m3cvc_codec.packs.Pack`: its own embedding and flow) or a
:class:`~m3cvc_codec.scorers.KeyframeScorer` (CLIP + RAFT/DIS, the paper's section II-A).
:class:`SemanticScorer` and :class:`MotionScorer` turn them into the memoised
``sem_dist(n, l)`` and ``motion(n, l)`` the strategies call; nothing here knows which model
measures them.

Clip lengths are bounded: a frame closer than ``min_clip`` frames to the last keyframe is never
a keyframe, and a frame ``max_clip`` frames after it always is (``max_clip`` is the longest clip
reconstruction generates). A last clip shorter than ``min_clip`` is merged into the one before
when that stays within ``max_clip``, else the last boundary moves back to give it ``min_clip``
frames. A video shorter than ``min_clip`` is one clip.

**Interval strategy**: a keyframe every ``interval`` frames (the same rule for a short tail).

**Target rate**: :func:`threshold_for_rate` picks D_th by bisection so that the estimated
stream size (header + clips x bytes per clip) meets a bit budget.

Everything here is deterministic: the same frames and parameters give the same clips.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import CodecError

if TYPE_CHECKING:
    from .packs import Pack
    from .scorers import KeyframeScorer

__all__ = [
    "KeyframeParams",
    "MotionScorer",
    "SemanticScorer",
    "count_bytes",
    "select_clips",
    "select_composite",
    "select_interval",
    "threshold_for_rate",
]

Clips = list[tuple[int, int]]


@dataclass(frozen=True)
class KeyframeParams:
    """Keyframe-selection settings (spec/m3v.md §5.4 ``keyframe_selection`` keys)."""

    # Calibrated on the lite pack's scores over the test videos: 1 - cos runs 0.005-0.05
    # between frames 4-16 apart (0.1-0.2 at cuts) and motion 1-20 px, so lambda1 = 10 and
    # lambda2 = 0.02 give both terms a comparable say; D_th = 0.35 keeps calm scenes in
    # long clips and cuts busy ones every 4-8 frames.
    lambda1: float = 10.0
    lambda2: float = 0.02
    threshold: float = 0.35
    interval: int | None = None
    min_clip: int = 2
    max_clip: int = 32

    def __post_init__(self) -> None:
        if not (isinstance(self.min_clip, int) and isinstance(self.max_clip, int)):
            raise CodecError("min_clip and max_clip must be integers")
        if self.min_clip < 1:
            raise CodecError(f"min_clip {self.min_clip} must be at least 1")
        if self.max_clip < self.min_clip:
            raise CodecError(f"max_clip {self.max_clip} is below min_clip {self.min_clip}")
        if self.interval is not None:
            if not isinstance(self.interval, int) or self.interval < 1:
                raise CodecError(f"interval {self.interval!r} must be a positive integer")
            if self.interval > self.max_clip:
                raise CodecError(f"interval {self.interval} is longer than max_clip {self.max_clip}")
        for name in ("lambda1", "lambda2", "threshold"):
            value = getattr(self, name)
            if not np.isfinite(value):
                raise CodecError(f"{name} must be a finite number, got {value}")
        if self.lambda1 < 0 or self.lambda2 < 0:
            raise CodecError("lambda1 and lambda2 must not be negative")

    @property
    def strategy(self) -> str:
        return "interval" if self.interval is not None else "composite"

    def metadata(self) -> dict:
        return {
            "strategy": self.strategy,
            "lambda1": float(self.lambda1),
            "lambda2": float(self.lambda2),
            "threshold": float(self.threshold),
            "interval": self.interval,
            "min_clip": self.min_clip,
            "max_clip": self.max_clip,
        }


# --------------------------------------------------------------------------- scorers


class MotionScorer:
    """motion(n, l): the scorer's motion magnitude from frame l to frame n, memoised.  Feed it
    frames with :meth:`add`; only the scorer's small per-frame features are kept.

    ``lookahead`` N > 1 (default: the scorer's ``motion_batch``, else 1) measures, when
    (n, l) is first asked, the pairs (n, l) ... (n + N - 1, l) in one call: the strategies
    ask for (n + 1, l) next unless n became a keyframe, and a batched flow model (RAFT) runs
    them together.  With 1 each pair is one call of one pair."""

    def __init__(self, pack: Pack | KeyframeScorer, lookahead: int | None = None) -> None:
        self.pack = pack
        self.lookahead = int(lookahead if lookahead is not None else getattr(pack, "motion_batch", 1))
        if self.lookahead < 1:
            raise CodecError(f"motion lookahead {self.lookahead} must be at least 1")
        self.features: list[np.ndarray] = []
        self._cache: dict[tuple[int, int], float] = {}

    def add(self, rgb: np.ndarray) -> None:
        features = self.pack.motion_features(np.asarray(rgb)[None])
        if len(features) != 1:
            raise CodecError(f"pack motion_features returned {len(features)} features for 1 frame")
        self.features.extend(features)

    def __call__(self, n: int, l: int) -> float:
        key = (n, l)
        if key not in self._cache:
            todo = [n]
            for m in range(n + 1, min(n + self.lookahead, len(self.features))):
                if (m, l) not in self._cache:
                    todo.append(m)
            before = [self.features[l]] * len(todo)
            value = np.asarray(self.pack.motion(before, [self.features[m] for m in todo]), dtype=np.float64)
            if value.shape != (len(todo),):
                pairs = "1 pair" if len(todo) == 1 else f"{len(todo)} pairs"
                raise CodecError(f"pack motion returned shape {value.shape} for {pairs} of frames")
            for m, v in zip(todo, value):
                self._cache[(m, l)] = float(v)
        return self._cache[key]


class SemanticScorer:
    """sem_dist(n, l) = 1 - cos(e_n, e_l) over the scorer's embeddings (``embed``), computed
    in batches of ``batch`` frames (default: the scorer's ``embed_batch``, else 16)."""

    def __init__(self, pack: Pack | KeyframeScorer, batch: int | None = None) -> None:
        self.pack = pack
        self.batch = int(batch if batch is not None else getattr(pack, "embed_batch", 16))
        if self.batch < 1:
            raise CodecError(f"embedding batch {self.batch} must be at least 1")
        self._pending: list[np.ndarray] = []
        self._done: list[np.ndarray] = []

    def add(self, rgb: np.ndarray) -> None:
        self._pending.append(rgb)
        if len(self._pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            emb = np.asarray(self.pack.embed(np.stack(self._pending)), dtype=np.float64)
            if emb.ndim != 2 or emb.shape[0] != len(self._pending):
                raise CodecError(f"pack embed returned shape {emb.shape} for {len(self._pending)} frames")
            norm = np.linalg.norm(emb, axis=1, keepdims=True)
            self._done.extend(emb / np.where(norm > 0, norm, 1.0))
            self._pending = []

    @property
    def embeddings(self) -> np.ndarray:
        self.flush()
        return np.stack(self._done) if self._done else np.zeros((0, 0))

    def __call__(self, n: int, l: int) -> float:
        self.flush()
        return float(1.0 - np.dot(self._done[n], self._done[l]))


# --------------------------------------------------------------------------- strategies


def _finish(starts: list[int], n_frames: int, min_clip: int, max_clip: int) -> Clips:
    """Keyframe numbers -> (first, count), with the short-tail rule of the module docstring."""
    if len(starts) > 1 and n_frames - starts[-1] < min_clip:
        if n_frames - starts[-2] <= max_clip:
            starts.pop()
        else:
            starts[-1] = n_frames - min_clip
    ends = starts[1:] + [n_frames]
    return [(a, b - a) for a, b in zip(starts, ends)]


def select_composite(
    n_frames: int,
    semantic: Callable[[int, int], float],
    motion: Callable[[int, int], float],
    params: KeyframeParams,
    threshold: float | None = None,
) -> Clips:
    """Clips chosen by D > 0 (``threshold`` overrides ``params.threshold``)."""
    th = params.threshold if threshold is None else threshold
    if n_frames <= 0:
        return []
    starts = [0]
    for n in range(1, n_frames):
        gap = n - starts[-1]
        if gap < params.min_clip:
            continue
        if gap >= params.max_clip:
            starts.append(n)
            continue
        d = 0.0
        if params.lambda1:
            d += params.lambda1 * semantic(n, starts[-1])
        if params.lambda2:
            d += params.lambda2 * motion(n, starts[-1])
        if d - th > 0:
            starts.append(n)
    return _finish(starts, n_frames, params.min_clip, params.max_clip)


def select_interval(n_frames: int, params: KeyframeParams) -> Clips:
    if n_frames <= 0:
        return []
    step = params.interval or params.max_clip
    return _finish(list(range(0, n_frames, step)), n_frames, params.min_clip, params.max_clip)


def select_clips(n_frames, semantic, motion, params: KeyframeParams, threshold=None) -> Clips:
    if params.interval is not None:
        return select_interval(n_frames, params)
    return select_composite(n_frames, semantic, motion, params, threshold)


def count_bytes(clips: Clips, header_bytes: int, clip_bytes: float) -> float:
    """Estimated stream size: header + trailer + clips x bytes per clip."""
    return header_bytes + len(clips) * clip_bytes


def threshold_for_rate(
    n_frames: int,
    semantic,
    motion,
    params: KeyframeParams,
    budget_bytes: float,
    header_bytes: int,
    clip_bytes: float,
    iterations: int = 24,
) -> tuple[float, Clips, bool]:
    """The smallest D_th (most clips) whose estimated size is within ``budget_bytes``.

    Returns (threshold, clips, met); ``met`` is False when even the fewest clips max_clip
    allows exceed the budget (the clips are then those of the largest threshold)."""
    hi = params.lambda1 * 2.0 + params.lambda2 * 1e4  # above any D: only forced keyframes
    lo = 0.0

    def size(th):
        clips = select_composite(n_frames, semantic, motion, params, th)
        return count_bytes(clips, header_bytes, clip_bytes), clips

    s_lo, c_lo = size(lo)
    if s_lo <= budget_bytes:
        return lo, c_lo, True
    s_hi, c_hi = size(hi)
    if s_hi > budget_bytes:
        return hi, c_hi, False
    best = (hi, c_hi)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        s_mid, c_mid = size(mid)
        if s_mid <= budget_bytes:
            hi, best = mid, (mid, c_mid)
        else:
            lo = mid
    return best[0], best[1], True
