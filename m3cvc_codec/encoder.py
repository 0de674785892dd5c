"""Video -> `.m3v` stream, along the paper's Fig. 1::

    analyse -> select keyframes -> describe -> code keyframes -> choose clip modes -> write

:func:`encode` runs these stages in that order; each is a function of this module:

- :func:`analyse` (first pass over the video) reads it at the coding size and rate, counts the
  frames and measures the keyframe-selection scores through the pack (its embeddings and its
  motion measure).  It keeps the frames when they fit in :data:`FRAME_CACHE_BYTES`, so short
  videos are decoded once.
- :func:`select_keyframes` splits the frames into clips (composite score, a fixed interval, or
  the threshold that meets a target rate, sized by :func:`rate_budget`).
- :func:`read_clips` (second pass) gives each clip's keyframe, and its frames when the
  description provider wants them; for each clip in turn, :func:`describe` asks the provider
  for the keyframe text D^F (knowing the previous keyframe and its text) and the clip text D^C
  (knowing D^F), and :func:`code_keyframe` turns the keyframe into the pack's index map.
- :func:`choose_clip_modes` gives each clip its reconstruction mode.
- :func:`write_stream` writes the header (:func:`stream_header`) and the clips.

The pipeline knows nothing about any model: everything model-specific is behind the pack
(:class:`~m3cvc_codec.packs.Pack`) and the description provider
(:class:`~m3cvc_codec.descriptions.DescriptionProvider`).  The output is a deterministic
function of the input, the pack and the settings: the stream seed is a hash of the settings,
never random.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import packs as _packs
from .descriptions import ClipSpan, DescriptionProvider, provider_for
from .errors import CodecError
from .keyframes import KeyframeParams, MotionScorer, SemanticScorer, select_clips, threshold_for_rate
from .video_io import check_size, frame_count_estimate, probe, read_frames

if TYPE_CHECKING:
    import m3cvc_format as m

    from .packs import GridSpec, Pack
    from .scorers import KeyframeScorer

__all__ = [
    "ENCODER_NAME",
    "FRAME_CACHE_BYTES",
    "Analysis",
    "ClipFrames",
    "CodedClip",
    "DescribedClip",
    "EncodeReport",
    "EncodeSettings",
    "RateBudget",
    "Selection",
    "Texts",
    "analyse",
    "choose_clip_modes",
    "choose_text_codec",
    "code_keyframe",
    "code_keyframes",
    "describe",
    "describe_clips",
    "encode",
    "prepare",
    "rate_budget",
    "read_clips",
    "resolve_grid",
    "select_keyframes",
    "stream_header",
    "write_stream",
]

log = logging.getLogger("m3cvc_codec")

#: Frames up to this many bytes are kept between the two passes instead of decoding twice.
FRAME_CACHE_BYTES = 512 << 20
#: Largest frame rate accepted.
MAX_FPS = 240


def _encoder_name() -> str:
    from . import __version__

    return f"m3cvc_codec {__version__}"


ENCODER_NAME = _encoder_name()


@dataclass
class EncodeReport:
    """What :func:`encode` wrote."""

    output: str
    width: int
    height: int
    fps: Fraction
    frames: int
    clips: list[tuple[int, int]]
    modes: list[str]
    bytes: int
    threshold: float | None
    strategy: str
    #: False when a target rate could not be met (even max_clip-long clips exceed it).
    target_met: bool | None = None
    text_bytes: int = 0
    vq_bytes: int = 0
    #: Clips whose index map is coded against the previous clip's (TEMPORAL).
    dependent_clips: int = 0

    @property
    def duration_s(self) -> float:
        return float(self.frames / self.fps)

    @property
    def kbit_s(self) -> float:
        return self.bytes * 8 / 1000 / self.duration_s if self.frames else 0.0

    @property
    def bpp(self) -> float:
        return self.bytes * 8 / (self.width * self.height * self.frames) if self.frames else 0.0

    def summary(self) -> str:
        return (
            f"{len(self.clips)} clips, {self.frames} frames, {self.bytes} bytes, "
            f"{self.kbit_s:.3f} kbit/s, {self.bpp:.6f} bpp"
        )


# =========================================================================== the pipeline


def encode(
    input,
    output,
    *,
    pack: str = _packs.DEFAULT_PACK,
    pack_config=None,
    options=None,
    grid: str = "1/16",
    mode: str = "interpolation",
    lambda1: float | None = None,
    lambda2: float | None = None,
    threshold: float | None = None,
    interval: int | None = None,
    min_clip: int = 2,
    max_clip: int = 32,
    target_bpp: float | None = None,
    target_kbps: float | None = None,
    scorer: str | KeyframeScorer = "pack",
    clip_model: str | None = None,
    flow: str | None = None,
    texts=None,
    describe: str | None = None,
    vlm: str | None = None,
    prompts=None,
    dialogue_turns: int = 4,
    max_new_tokens: int | None = None,
    record_prompts: bool = True,
    text_codec: str = "auto",
    size=(512, 320),
    fps=8,
    fit: str = "crop",
    refresh: int = 8,
    reuse: float = 0.5,
    progress: bool = False,
) -> EncodeReport:
    """Code the video file ``input`` into the `.m3v` stream ``output`` (a path, written
    atomically, ``"-"`` or a binary stream).

    ``pack`` is the model pack's id, loaded with ``pack_config`` (a PackConfig or None for the
    pack's own) and ``options`` (RuntimeOptions: device, models folder, ...).  ``texts``: None
    (no descriptions), a sidecar JSON path (docs/sidecar.md), its parsed mapping, or a
    DescriptionProvider.  ``target_bpp`` / ``target_kbps`` choose the threshold D_th by
    bisection (composite strategy only; ``threshold`` is then ignored); the rate model behind it
    counts every map as independent, so with ``refresh`` the stream can come out smaller than
    the target.  ``refresh`` N > 1 lets a keyframe's index map be coded against the previous
    keyframe's (TEMPORAL, spec/m3v.md §6.5) where that is smaller, with an independent map at
    least every N clips; 0 or 1 keeps every map independent.  With it, ``reuse`` T > 0 keeps
    the previous keyframe's index at a cell whose codeword is within a factor 1 + T (squared
    latent distance) of the nearest one, where the pack supports it.

    Keyframe selection: ``scorer`` ``"pack"`` (the pack's own embedding and motion) or
    ``"clip"`` (CLIP ``clip_model`` and optical flow ``flow``: auto, raft_large, raft_small,
    dis); ``lambda1``, ``lambda2``, ``threshold`` None take the scorer's defaults.
    Descriptions: ``describe`` ``"none"``, ``"sidecar"`` (``texts``) or ``"vlm"``, the paper's
    dialogue with ``vlm`` (a Qwen-VL id or folder) under ``prompts`` (a prompts file),
    ``dialogue_turns`` 1, 2 or 4 and ``max_new_tokens`` a turn; ``record_prompts`` False
    leaves the dialogue's prompts out of the stream (docs/semantic.md).  ``text_codec``:
    ``"auto"`` (the registered codec that codes this stream's texts in the fewest bytes:
    tokans-1 for English), ``"tokans-1"``, ``"lzw"`` or ``"utf8"``.
    Raises CodecError (bad input or options), PackError (pack missing), M3VError, OSError."""
    pk, s, sc = prepare(
        pack,
        pack_config,
        options,
        grid=grid,
        mode=mode,
        lambda1=lambda1,
        lambda2=lambda2,
        threshold=threshold,
        interval=interval,
        min_clip=min_clip,
        max_clip=max_clip,
        target_bpp=target_bpp,
        target_kbps=target_kbps,
        scorer=scorer,
        clip_model=clip_model,
        flow=flow,
        size=size,
        fps=fps,
        fit=fit,
        refresh=refresh,
        reuse=reuse,
    )
    provider = provider_for(
        texts,
        describe=describe,
        vlm=vlm,
        prompts=prompts,
        dialogue_turns=dialogue_turns,
        max_new_tokens=max_new_tokens,
        options=options,
    )

    video = analyse(input, sc, s, progress=progress)
    prompts_record = provider.prompts_record() if record_prompts else None
    budget = rate_budget(video, pk, s, provider, prompts_record) if s.target is not None else None
    selection = select_keyframes(video, s.params, budget)
    provider.check_clips(len(selection.clips))
    # The second pass goes clip by clip through the next three stages (each is lazy).
    clips = read_clips(video, selection.clips, with_frames=provider.needs_frames)
    described = describe_clips(provider, clips)
    coded: Iterable[CodedClip] = code_keyframes(pk, s.grid, described, tolerance=s.reuse)
    codec = _text_codec(text_codec)
    if codec is None:  # auto: every text first (small: texts and index maps), then the codec
        coded = _collect(coded, len(selection.clips), progress)
        codec = choose_text_codec(t for clip in coded for t in clip.texts)
    modes = choose_clip_modes(len(selection.clips), s.mode)
    header = stream_header(pk, s, video.frame_count, selection.threshold, provider.metadata(), codec)
    writer = write_stream(output, header, coded, modes, refresh=s.refresh, prompts=prompts_record, progress=progress)

    return EncodeReport(
        output=str(output),
        width=s.width,
        height=s.height,
        fps=s.fps,
        frames=video.frame_count,
        clips=list(selection.clips),
        modes=[md.name.lower() for md in modes],
        bytes=writer.bytes_written,
        threshold=selection.threshold,
        strategy=s.params.strategy,
        target_met=selection.target_met,
        text_bytes=writer.text_bytes,
        vq_bytes=writer.vq_bytes,
        dependent_clips=writer.dependent_clips,
    )


# =========================================================================== settings


@dataclass(frozen=True)
class EncodeSettings:
    """The checked settings of one encode: with the input and the pack, all the stream's
    bytes depend on."""

    grid: GridSpec
    mode: m.Mode
    params: KeyframeParams
    width: int
    height: int
    fps: Fraction
    fit: str
    refresh: int
    #: Reuse tolerance; 0.0 when ``refresh`` keeps every map independent.
    reuse: float
    target_bpp: float | None = None
    target_kbps: float | None = None
    #: The keyframe scorer's facts (:meth:`KeyframeScorer.metadata`): empty for the pack's own
    #: scorer, so its streams stay as they were; else recorded and part of the seed.
    scorer: Mapping[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def target(self) -> float | None:
        return self.target_bpp if self.target_bpp is not None else self.target_kbps

    def stream_seed(self, pack_id: str) -> int:
        """The stream seed: a hash of the settings (never random)."""
        settings = {
            "pack": pack_id,
            "grid": self.grid.name,
            "mode": self.mode.name.lower(),
            "size": [self.width, self.height],
            "fps": str(self.fps),
            "fit": self.fit,
            **self.params.metadata(),
            "target_bpp": self.target_bpp,
            "target_kbps": self.target_kbps,
            "encoder": ENCODER_NAME,
            "refresh": self.refresh,
            "reuse": self.reuse,
        }
        if self.scorer:
            settings["scorer"] = dict(self.scorer)
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).digest()
        return int.from_bytes(digest[:8], "little")


def prepare(
    pack_id: str,
    pack_config=None,
    options=None,
    *,
    grid="1/16",
    mode="interpolation",
    lambda1: float | None = None,
    lambda2: float | None = None,
    threshold: float | None = None,
    interval: int | None = None,
    min_clip: int = 2,
    max_clip: int = 32,
    target_bpp=None,
    target_kbps=None,
    scorer: str | KeyframeScorer = "pack",
    clip_model: str | None = None,
    flow: str | None = None,
    size=(512, 320),
    fps=8,
    fit: str = "crop",
    refresh: int = 8,
    reuse: float = 0.5,
) -> tuple[Pack, EncodeSettings, KeyframeScorer]:
    """:func:`encode`'s options checked (CodecError naming the first bad one), then the pack
    loaded (PackError) and the grid and size checked against it, and the keyframe scorer
    ``scorer`` loaded (:func:`m3cvc_codec.scorers.scorer_for`: ``"pack"``, the pack's own, or
    ``"clip"``, CLIP ``clip_model`` + optical flow ``flow``; or a KeyframeScorer already built, used as
    is).  A weight or threshold left None takes the scorer's
    default (each scorer's scores have their own scale)."""
    if fit not in ("crop", "pad"):
        raise CodecError(f"fit {fit!r} is not 'crop' or 'pad'")
    if isinstance(refresh, bool) or not isinstance(refresh, int) or refresh < 0:
        raise CodecError(f"refresh {refresh!r} must be a whole number of clips, 0 or more")
    if isinstance(reuse, bool) or not isinstance(reuse, (int, float)) or not math.isfinite(reuse) or reuse < 0:
        raise CodecError(f"reuse tolerance {reuse!r} must be a number, 0 or more")
    rate = _rate(fps)
    want_mode = _mode(mode)
    # Checked before anything loads, with the default weights; the scorer's come in below.
    KeyframeParams(
        lambda1=_weight(lambda1, KeyframeParams.lambda1),
        lambda2=_weight(lambda2, KeyframeParams.lambda2),
        threshold=_weight(threshold, KeyframeParams.threshold),
        interval=interval,
        min_clip=min_clip,
        max_clip=max_clip,
    )
    if target_bpp is not None and target_kbps is not None:
        raise CodecError("give target_bpp or target_kbps, not both")
    target = target_bpp if target_bpp is not None else target_kbps
    if target is not None:
        if not (isinstance(target, (int, float)) and math.isfinite(target) and target > 0):
            raise CodecError(f"target rate {target!r} must be a positive number")
        if interval is not None:
            raise CodecError("a target rate chooses the threshold; it cannot be combined with interval")
    pack = _packs.load_pack(pack_id, pack_config, options)
    from .scorers import scorer_for

    # A scorer already built (m3v-batch keeps one per worker, so CLIP and the flow load once).
    keyframe_scorer = (
        scorer_for(scorer, pack, options, clip_model=clip_model, flow=flow) if isinstance(scorer, str) else scorer
    )
    defaults = keyframe_scorer.default_params
    params = KeyframeParams(
        lambda1=_weight(lambda1, defaults["lambda1"]),
        lambda2=_weight(lambda2, defaults["lambda2"]),
        threshold=_weight(threshold, defaults["threshold"]),
        interval=interval,
        min_clip=min_clip,
        max_clip=max_clip,
    )
    spec = resolve_grid(pack, grid)
    width, height = check_size(size, max(g.downsample for g in pack.grids))
    return (
        pack,
        EncodeSettings(
            grid=spec,
            mode=want_mode,
            params=params,
            width=width,
            height=height,
            fps=rate,
            fit=fit,
            refresh=refresh,
            reuse=float(reuse) if refresh > 1 else 0.0,
            target_bpp=target_bpp,
            target_kbps=target_kbps,
            scorer=dict(keyframe_scorer.metadata()),
        ),
        keyframe_scorer,
    )


def _weight(value: float | None, default: float) -> float:
    if value is None:
        return float(default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CodecError(f"keyframe-selection weight {value!r} is not a number")
    return float(value)


def resolve_grid(pack: Pack, grid) -> GridSpec:
    """The pack's GridSpec named ``grid`` ("1/16") or with that downsample (16)."""
    for g in pack.grids:
        if grid == g.name or grid == g or (isinstance(grid, int) and grid == g.downsample) or str(grid) == g.name:
            return g
    names = ", ".join(g.name for g in pack.grids)
    raise CodecError(f"pack {pack.pack_id!r} has no grid {grid!r} (it has {names})")


def _rate(fps) -> Fraction:
    try:
        rate = Fraction(str(fps)) if isinstance(fps, (str, float)) else Fraction(fps)
    except (ValueError, ZeroDivisionError, TypeError):
        raise CodecError(f"frame rate {fps!r} is not a number") from None
    rate = rate.limit_denominator(1001)
    if not 0 < rate <= MAX_FPS:
        raise CodecError(f"frame rate {fps} is outside (0, {MAX_FPS}]")
    return rate


def _mode(mode) -> m.Mode:
    import m3cvc_format as m

    if isinstance(mode, str):
        try:
            return m.Mode[mode.upper()]
        except KeyError:
            raise CodecError(f"mode {mode!r} is not 'interpolation' or 'prediction'") from None
    return m.Mode(mode)


class _Progress:
    def __init__(self, enabled: bool, total: int | None, desc: str, unit: str = "frame"):
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# =========================================================================== 1. analyse


def _no_score(n: int, l: int) -> float:
    return 0.0


@dataclass
class Analysis:
    """What the first pass learnt about the video: its frame count and the keyframe-selection
    scores (``semantic(n, l)``, ``motion(n, l)``; constant 0 where a weight is 0 or the strategy
    is a fixed interval), and the frames themselves when they fit in memory."""

    input: Any
    settings: EncodeSettings
    frame_count: int
    semantic: Callable[[int, int], float] = _no_score
    motion: Callable[[int, int], float] = _no_score
    #: The frames at the coding size, or None when they did not fit (read again then).
    cached: list[np.ndarray] | None = None

    def frames(self) -> Iterable[np.ndarray]:
        """The video's frames at the coding size and rate, from memory or read again."""
        if self.cached is not None:
            return self.cached
        s = self.settings
        return read_frames(self.input, s.size, s.fps, s.fit)

    def first_frame(self) -> np.ndarray:
        return next(iter(self.frames()))


def analyse(input, scorer: KeyframeScorer, settings: EncodeSettings, *, progress: bool = False) -> Analysis:
    """First pass: count the frames, measure the selection scores with ``scorer`` (a pack is
    one: its own embedding and motion measure), keep the frames if they fit in
    :data:`FRAME_CACHE_BYTES`."""
    s = settings
    source = probe(input)  # fails early and clearly on a missing or unreadable file
    composite = s.params.interval is None
    semantic = SemanticScorer(scorer) if composite and s.params.lambda1 else None
    motion = MotionScorer(scorer) if composite and s.params.lambda2 else None
    cached: list[np.ndarray] | None = []
    n_frames = 0
    bar = _Progress(progress, frame_count_estimate(source, s.fps) or None, "analysing")
    for frame in read_frames(input, s.size, s.fps, s.fit):
        n_frames += 1
        if semantic is not None:
            semantic.add(frame)
        if motion is not None:
            motion.add(frame)
        if cached is not None:
            cached.append(frame)
            if len(cached) * frame.nbytes > FRAME_CACHE_BYTES:
                cached = None
        bar.update()
    bar.close()
    return Analysis(
        input=input,
        settings=s,
        frame_count=n_frames,
        semantic=semantic if semantic is not None else _no_score,
        motion=motion if motion is not None else _no_score,
        cached=cached,
    )


# =========================================================================== 2. select keyframes


@dataclass(frozen=True)
class RateBudget:
    """A target rate as bytes, with the stream-size model it is checked against: ``fixed`` bytes
    plus ``per_clip`` bytes a clip."""

    bytes: float
    fixed: int
    per_clip: float


@dataclass(frozen=True)
class Selection:
    """The clips as (first frame, frame count), the threshold D_th used (None for a fixed
    interval) and, under a target rate, whether it was met."""

    clips: list[tuple[int, int]]
    threshold: float | None
    target_met: bool | None = None


def rate_budget(
    video: Analysis,
    pack: Pack,
    settings: EncodeSettings,
    provider: DescriptionProvider,
    prompts: Mapping[str, Any] | None = None,
) -> RateBudget:
    """The target rate of ``settings`` in bytes, and the size model it is met with: one- and
    two-clip streams like this one measured with the real writer (keyframe 0's map; its texts
    when the provider gives them without frames, else none; the ``prompts`` record the stream
    will carry)."""
    import m3cvc_format as m

    s = settings
    first = video.first_frame()
    first_map = code_keyframe(pack, s.grid, first)
    texts = ("", "")
    if not provider.needs_frames:
        span = ClipSpan(0, 0, 1, s.fps)
        keyframe_text = provider.describe_keyframe(span, first, None, None)
        texts = (keyframe_text, provider.describe_clip(span, None, keyframe_text))
    header = stream_header(pack, s, 0, s.params.threshold, provider.metadata())
    sizes = []
    for count in (1, 2):
        buf = io.BytesIO()
        with m.Writer(buf, header, prompts=prompts) as w:
            for k in range(count):
                w.write_clip(
                    m.Clip(
                        index=k,
                        first_frame=k,
                        frame_count=1,
                        mode=m.Mode.PREDICTION,
                        keyframe_text=texts[0],
                        clip_text=texts[1],
                        index_map=first_map,
                    )
                )
        sizes.append(len(buf.getvalue()))
    per_clip = sizes[1] - sizes[0]
    n = video.frame_count
    if s.target_bpp is not None:
        budget = s.target_bpp * s.width * s.height * n / 8
    else:
        assert s.target_kbps is not None
        budget = s.target_kbps * 1000 / 8 * float(n / s.fps)
    return RateBudget(budget, sizes[0] - per_clip, float(per_clip))


def select_keyframes(video: Analysis, params: KeyframeParams, budget: RateBudget | None = None) -> Selection:
    """Split the frames into clips: by the composite score against ``params.threshold``, by
    a fixed interval, or (with a ``budget``) by the threshold whose stream fits it."""
    n = video.frame_count
    if budget is not None:
        threshold, clips, met = threshold_for_rate(
            n, video.semantic, video.motion, params, budget.bytes, budget.fixed, budget.per_clip
        )
        if not met:
            log.warning("target rate cannot be met: even %d-frame clips exceed it", params.max_clip)
        return Selection(clips, threshold, met)
    clips = select_clips(n, video.semantic, video.motion, params)
    return Selection(clips, params.threshold if params.interval is None else None)


# =========================================================================== 3. describe (second pass)


@dataclass(frozen=True)
class ClipFrames:
    """One clip of the second pass: where it lies, its keyframe, and all its frames
    (N x H x W x 3) when they were asked for."""

    span: ClipSpan
    keyframe: np.ndarray
    frames: np.ndarray | None


def read_clips(video: Analysis, clips: Sequence[tuple[int, int]], with_frames: bool) -> Iterator[ClipFrames]:
    """Second pass: the clips in order (CodecError when the video gives fewer frames than the
    first pass counted)."""
    n_frames = video.frame_count
    fps = video.settings.fps
    starts = {first: k for k, (first, _) in enumerate(clips)}
    k = -1
    held: list[np.ndarray] = []
    seen = 0

    def clip(k: int) -> ClipFrames:
        first, count = clips[k]
        return ClipFrames(ClipSpan(k, first, count, fps), held[0], np.stack(held) if with_frames else None)

    for n, frame in enumerate(video.frames()):
        seen = n + 1
        if n >= n_frames:
            break
        if n in starts:
            if k >= 0:
                yield clip(k)
            k = starts[n]
            held = []
        if with_frames or not held:
            held.append(frame)
    if seen < n_frames:
        raise CodecError(f"{video.input}: gave {seen} frames on the second read, {n_frames} on the first")
    yield clip(k)


class Texts(NamedTuple):
    """The two texts of one clip."""

    keyframe: str  # D^F
    clip: str  # D^C


@dataclass(frozen=True)
class DescribedClip:
    """A clip of the second pass with its texts."""

    clip: ClipFrames
    texts: Texts


def describe(
    provider: DescriptionProvider,
    clip: ClipFrames,
    previous_keyframe: np.ndarray | None = None,
    previous_text: str | None = None,
) -> Texts:
    """D^F of the clip's keyframe (given the previous keyframe and its D^F), then D^C of the
    clip (given D^F)."""
    keyframe_text = provider.describe_keyframe(clip.span, clip.keyframe, previous_keyframe, previous_text)
    return Texts(keyframe_text, provider.describe_clip(clip.span, clip.frames, keyframe_text))


def describe_clips(provider: DescriptionProvider, clips: Iterable[ClipFrames]) -> Iterator[DescribedClip]:
    """:func:`describe` for each clip in order, each keyframe against the one before."""
    previous_keyframe: np.ndarray | None = None
    previous_text: str | None = None
    for clip in clips:
        texts = describe(provider, clip, previous_keyframe, previous_text)
        yield DescribedClip(clip, texts)
        previous_keyframe, previous_text = clip.keyframe, texts.keyframe


# =========================================================================== 4. code keyframes


def code_keyframe(
    pack: Pack, grid: GridSpec, frame: np.ndarray, reference: np.ndarray | None = None, tolerance: float = 0.0
) -> np.ndarray:
    """The keyframe's index map; with a ``reference`` map (the previous keyframe's) and a
    ``tolerance`` > 0, the pack may keep reference indices that are nearly as good
    (:meth:`Pack.encode_keyframe_near`).  CodecError when the pack's answer does not fit the grid."""
    if reference is not None and tolerance > 0:
        indices = np.asarray(pack.encode_keyframe_near(frame, grid, reference, tolerance))
    else:
        indices = np.asarray(pack.encode_keyframe(frame, grid))
    want = grid.grid(frame.shape[1], frame.shape[0])
    if indices.shape != want:
        raise CodecError(f"pack {pack.pack_id!r} returned a {indices.shape} index map, the grid is {want}")
    if indices.size and (indices.min() < 0 or indices.max() >= grid.vocab_size):
        raise CodecError(f"pack {pack.pack_id!r} returned indices outside 0..{grid.vocab_size - 1}")
    return indices.astype(np.int64)


@dataclass(frozen=True)
class CodedClip:
    """What is written of a clip, its mode aside: where it lies, its texts, its keyframe's
    index map."""

    span: ClipSpan
    texts: Texts
    indices: np.ndarray


def code_keyframes(
    pack: Pack, grid: GridSpec, clips: Iterable[DescribedClip], *, tolerance: float = 0.0
) -> Iterator[CodedClip]:
    """:func:`code_keyframe` for each clip in order, each keyframe against the previous one's
    map (used when ``tolerance`` > 0)."""
    reference: np.ndarray | None = None
    for item in clips:
        reference = code_keyframe(pack, grid, item.clip.keyframe, reference, tolerance)
        yield CodedClip(item.clip.span, item.texts, reference)


# =========================================================================== 5. choose clip modes


def choose_clip_modes(clip_count: int, mode: m.Mode) -> list[m.Mode]:
    """``mode`` for every clip but the last, which has no next keyframe to interpolate towards
    and is always prediction (spec/m3v.md §6.2)."""
    import m3cvc_format as m

    modes = [mode] * clip_count
    if modes:
        modes[-1] = m.Mode.PREDICTION
    return modes


# =========================================================================== 6. write


def stream_header(
    pack: Pack,
    settings: EncodeSettings,
    frame_count: int,
    threshold: float | None,
    metadata: Mapping[str, Any] | None = None,
    text_codec: m.TextCodec | None = None,
) -> m.Header:
    """The stream header: geometry, pack, seed, the text codec (default tokans-1), and the
    metadata (``metadata`` from the description provider, the encoder's name and the
    keyframe-selection settings)."""
    import m3cvc_format as m

    s = settings
    selection = dict(s.params.metadata(), threshold=float(threshold) if threshold is not None else None)
    selection = {k: v for k, v in selection.items() if v is not None}
    if s.target_bpp is not None:
        selection["target_bpp"] = float(s.target_bpp)
    if s.target_kbps is not None:
        selection["target_kbps"] = float(s.target_kbps)
    if s.scorer:
        selection["scorer"] = dict(s.scorer)
    gh, gw = s.grid.grid(s.width, s.height)
    return m.Header(
        width=s.width,
        height=s.height,
        fps=s.fps,
        grid_h=gh,
        grid_w=gw,
        vocab_size=s.grid.vocab_size,
        frame_count=frame_count,
        pack_id=pack.pack_id,
        pack_hash=bytes(pack.weights_hash(s.grid)),
        text_codec=m.TextCodec.TOKANS1 if text_codec is None else text_codec,
        default_mode=s.mode,
        stream_seed=s.stream_seed(pack.pack_id),
        # No prior: on the default pack's real maps the context coder gains nothing from
        # it (7.68 vs 7.75 bits an index on the juggling clip) and it costs ~510 header
        # bytes, a fifth of a 10-second stream.
        prior=(),
        metadata={**(metadata or {}), "encoder": ENCODER_NAME, "keyframe_selection": selection},
    )


#: ``text_codec`` names (m3v-encode --text-codec) and their codecs; "auto" chooses per stream.
TEXT_CODECS = {"tokans-1": "TOKANS1", "lzw": "LZW", "utf8": "UTF8"}


def _text_codec(name: str) -> m.TextCodec | None:
    import m3cvc_format as m

    if name == "auto":
        return None
    if name not in TEXT_CODECS:
        raise CodecError(f"text codec {name!r} is not one of auto, {', '.join(TEXT_CODECS)}")
    return m.TextCodec[TEXT_CODECS[name]]


def choose_text_codec(texts: Iterable[str]) -> m.TextCodec:
    """The text codec that codes ``texts`` (each on its own, as a stream does) in the fewest
    bytes; ties go to tokans-1, then LZW.  tokans-1's model was trained on English captions:
    on other text (another language, or a model's stray bytes) it can spend three times the
    UTF-8 bytes, where LZW spends about as many (docs/benchmarks.md, description bytes)."""
    import m3cvc_format as m

    order = (m.TextCodec.TOKANS1, m.TextCodec.LZW, m.TextCodec.UTF8)
    totals = dict.fromkeys(order, 0)
    for text in texts:
        if text:
            for codec in order:
                totals[codec] += len(m.encode_text(text, codec))
    return min(order, key=lambda codec: (totals[codec], order.index(codec)))


def _collect(clips: Iterable[CodedClip], total: int, progress: bool) -> list[CodedClip]:
    bar = _Progress(progress, total, "describing", unit="clip")
    out = []
    try:
        for clip in clips:
            out.append(clip)
            bar.update()
    finally:
        bar.close()
    return out


def write_stream(
    output,
    header: m.Header,
    clips: Iterable[CodedClip],
    modes: Sequence[m.Mode],
    *,
    refresh: int,
    prompts: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> m.Writer:
    """Write the header, the description prompts (``prompts``: the PRMT record of the
    dialogue that wrote the texts, spec/m3v.md; None: none) and the clips, each with its mode
    (atomically when ``output`` is a path: nothing is left behind when ``clips`` raises).
    Returns the closed writer, for its byte counts."""
    import m3cvc_format as m

    bar = _Progress(progress, len(modes), "coding", unit="clip")
    try:
        with m.Writer(output, header, refresh=refresh, prompts=prompts) as writer:
            for clip in clips:
                span = clip.span
                writer.write_clip(
                    m.Clip(
                        index=span.index,
                        first_frame=span.first_frame,
                        frame_count=span.frame_count,
                        mode=modes[span.index],
                        keyframe_text=clip.texts.keyframe,
                        clip_text=clip.texts.clip,
                        index_map=clip.indices,
                    )
                )
                bar.update()
    finally:
        bar.close()
    return writer
