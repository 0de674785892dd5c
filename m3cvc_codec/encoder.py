"""Video -> `.m3v` stream: preprocessing, keyframe selection, descriptions, keyframe coding.

Two passes over the input: the first measures the keyframe-selection scores (the pack's
embeddings, DIS motion on small grey frames) and counts frames; the second codes the chosen
keyframes. Frames are kept from the first pass when they fit in :data:`FRAME_CACHE_BYTES`, so
short videos are decoded once. The output is a deterministic function of the input and the
settings: the stream seed is a hash of the settings, never random.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from . import packs as _packs
from .descriptions import ClipSpan, SidecarDescriptions, provider_for
from .errors import CodecError
from .keyframes import KeyframeParams, MotionScorer, SemanticScorer, select_clips, threshold_for_rate
from .video_io import check_size, frame_count_estimate, probe, read_frames

__all__ = ["ENCODER_NAME", "FRAME_CACHE_BYTES", "EncodeReport", "encode", "resolve_grid"]

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


def resolve_grid(pack, grid) -> Any:
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


def _mode(mode):
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


def _index_map(pack, frame: np.ndarray, grid, reference=None, tolerance: float = 0.0) -> np.ndarray:
    if reference is not None and tolerance > 0 and hasattr(pack, "encode_keyframe_near"):
        indices = np.asarray(pack.encode_keyframe_near(frame, grid, reference, tolerance))
    else:
        indices = np.asarray(pack.encode_keyframe(frame, grid))
    want = grid.grid(frame.shape[1], frame.shape[0])
    if indices.shape != want:
        raise CodecError(f"pack {pack.pack_id!r} returned a {indices.shape} index map, the grid is {want}")
    if indices.size and (indices.min() < 0 or indices.max() >= pack.vocab_size):
        raise CodecError(f"pack {pack.pack_id!r} returned indices outside 0..{pack.vocab_size - 1}")
    return indices.astype(np.int64)


def _size_model(header, index_map, texts: tuple[str, str]) -> tuple[int, float]:
    """(fixed bytes, bytes per clip) of a stream like this one, measured by writing one- and
    two-clip streams with the real writer."""
    import dataclasses

    import m3cvc_format as m

    sizes = []
    h = dataclasses.replace(header, frame_count=0)
    for count in (1, 2):
        buf = io.BytesIO()
        with m.Writer(buf, h) as w:
            for k in range(count):
                w.write_clip(
                    m.Clip(
                        index=k,
                        first_frame=k,
                        frame_count=1,
                        mode=m.Mode.PREDICTION,
                        keyframe_text=texts[0],
                        clip_text=texts[1],
                        index_map=index_map,
                    )
                )
        sizes.append(len(buf.getvalue()))
    per_clip = sizes[1] - sizes[0]
    return sizes[0] - per_clip, float(per_clip)


def encode(
    input,
    output,
    *,
    pack: str = "lite",
    grid: str = "1/16",
    mode: str = "interpolation",
    lambda1: float = KeyframeParams.lambda1,
    lambda2: float = KeyframeParams.lambda2,
    threshold: float = KeyframeParams.threshold,
    interval: int | None = None,
    min_clip: int = 2,
    max_clip: int = 32,
    target_bpp: float | None = None,
    target_kbps: float | None = None,
    texts=None,
    size=(512, 320),
    fps=8,
    fit: str = "crop",
    refresh: int = 8,
    reuse: float = 0.5,
    progress: bool = False,
) -> EncodeReport:
    """Code the video file ``input`` into the `.m3v` stream ``output`` (a path, written
    atomically, ``"-"`` or a binary stream).

    ``texts``: None (no descriptions), a sidecar JSON path (docs/sidecar.md), its parsed
    mapping, or a DescriptionProvider.  ``target_bpp`` / ``target_kbps`` choose the
    threshold D_th by bisection (composite strategy only; ``threshold`` is then ignored); the
    rate model behind it counts every map as independent, so with ``refresh`` the stream can
    come out smaller than the target.  ``refresh`` N > 1 lets a keyframe's index map be coded
    against the previous keyframe's (TEMPORAL, spec/m3v.md §6.5) where that is smaller, with
    an independent map at least every N clips; 0 or 1 keeps every map independent.  With it,
    ``reuse`` T > 0 keeps the previous keyframe's index at a cell whose codeword is within a
    factor 1 + T (squared latent distance) of the nearest one, where the pack supports it.
    Raises CodecError (bad input or options), PackError (pack missing), M3VError, OSError."""
    import m3cvc_format as m

    if fit not in ("crop", "pad"):
        raise CodecError(f"fit {fit!r} is not 'crop' or 'pad'")
    if isinstance(refresh, bool) or not isinstance(refresh, int) or refresh < 0:
        raise CodecError(f"refresh {refresh!r} must be a whole number of clips, 0 or more")
    if isinstance(reuse, bool) or not isinstance(reuse, (int, float)) or not math.isfinite(reuse) or reuse < 0:
        raise CodecError(f"reuse tolerance {reuse!r} must be a number, 0 or more")
    reuse = float(reuse) if refresh > 1 else 0.0
    rate = _rate(fps)
    want_mode = _mode(mode)
    params = KeyframeParams(
        lambda1=float(lambda1),
        lambda2=float(lambda2),
        threshold=float(threshold),
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
        if params.interval is not None:
            raise CodecError("a target rate chooses the threshold; it cannot be combined with interval")
    pk = _packs.load_pack(pack)
    spec = resolve_grid(pk, grid)
    multiple = max(g.downsample for g in pk.grids)
    width, height = check_size(size, multiple)
    provider = provider_for(texts)

    info = probe(input)  # fails early and clearly on a missing or unreadable file

    # ---- pass 1: count frames, measure scores, keep frames if small enough
    composite = params.interval is None
    semantic = SemanticScorer(pk.embed) if composite and params.lambda1 else None
    motion = MotionScorer() if composite and params.lambda2 else None
    cached: list[np.ndarray] | None = []
    n_frames = 0
    bar = _Progress(progress, frame_count_estimate(info, rate) or None, "analysing")
    for frame in read_frames(input, (width, height), rate, fit):
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
    sem_fn = semantic if semantic is not None else (lambda n, l: 0.0)
    mot_fn = motion if motion is not None else (lambda n, l: 0.0)

    first_frame = cached[0] if cached else next(iter(read_frames(input, (width, height), rate, fit)))
    first_map = _index_map(pk, first_frame, spec)

    settings = {
        "pack": pk.pack_id,
        "grid": spec.name,
        "mode": want_mode.name.lower(),
        "size": [width, height],
        "fps": str(rate),
        "fit": fit,
        **params.metadata(),
        "target_bpp": target_bpp,
        "target_kbps": target_kbps,
        "encoder": ENCODER_NAME,
        "refresh": refresh,
        "reuse": reuse,
    }
    stream_seed = int.from_bytes(hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).digest()[:8], "little")

    selection = params.metadata()

    def make_header(threshold_used):
        sel = dict(selection, threshold=float(threshold_used) if threshold_used is not None else None)
        sel = {k: v for k, v in sel.items() if v is not None}
        if target_bpp is not None:
            sel["target_bpp"] = float(target_bpp)
        if target_kbps is not None:
            sel["target_kbps"] = float(target_kbps)
        gh, gw = spec.grid(width, height)
        return m.Header(
            width=width,
            height=height,
            fps=rate,
            grid_h=gh,
            grid_w=gw,
            vocab_size=pk.vocab_size,
            frame_count=n_frames,
            pack_id=pk.pack_id,
            pack_hash=bytes(pk.weights_hash(spec)),
            text_codec=m.TextCodec.TOKANS1,
            default_mode=want_mode,
            stream_seed=stream_seed,
            # No prior: on the lite pack's real maps the context coder gains nothing from
            # it (7.68 vs 7.75 bits an index on the juggling clip) and it costs ~510 header
            # bytes, a fifth of a 10-second stream.
            prior=(),
            metadata={"encoder": ENCODER_NAME, "keyframe_selection": sel},
        )

    # ---- keyframe selection
    threshold_used: float | None = params.threshold if composite else None
    target_met = None
    if target is not None:
        span0 = ClipSpan(0, 0, 1, rate)
        texts0 = (
            provider.describe(span0, first_frame, None) if not getattr(provider, "needs_frames", True) else ("", "")
        )
        fixed, per_clip = _size_model(make_header(params.threshold), first_map, texts0)
        if target_bpp is not None:
            budget = target_bpp * width * height * n_frames / 8
        else:
            budget = target_kbps * 1000 / 8 * float(n_frames / rate)
        threshold_used, clips, target_met = threshold_for_rate(
            n_frames, sem_fn, mot_fn, params, budget, fixed, per_clip
        )
        if not target_met:
            log.warning("target rate cannot be met: even %d-frame clips exceed it", params.max_clip)
    else:
        clips = select_clips(n_frames, sem_fn, mot_fn, params)
    if isinstance(provider, SidecarDescriptions):
        provider.check_clips(len(clips))

    header = make_header(threshold_used)
    modes = [want_mode] * len(clips)
    modes[-1] = m.Mode.PREDICTION  # spec/m3v.md §6.2: the last clip has no successor

    # ---- pass 2: code keyframes
    needs_frames = getattr(provider, "needs_frames", True)
    frames_iter: Iterable[np.ndarray] = cached if cached is not None else read_frames(input, (width, height), rate, fit)
    starts = {first: k for k, (first, _) in enumerate(clips)}
    bar = _Progress(progress, len(clips), "coding", unit="clip")
    with m.Writer(output, header, refresh=refresh) as writer:
        k = -1
        clip_frames: list[np.ndarray] = []
        seen = 0

        previous = first_map  # the last keyframe's map, for reuse

        def flush(k):
            nonlocal previous
            first, count = clips[k]
            key = clip_frames[0]
            indices = first_map if k == 0 else _index_map(pk, key, spec, previous, reuse)
            previous = indices
            span = ClipSpan(k, first, count, rate)
            kf_text, clip_text = provider.describe(span, key, np.stack(clip_frames) if needs_frames else None)
            writer.write_clip(
                m.Clip(
                    index=k,
                    first_frame=first,
                    frame_count=count,
                    mode=modes[k],
                    keyframe_text=kf_text,
                    clip_text=clip_text,
                    index_map=indices,
                )
            )
            bar.update()

        for n, frame in enumerate(frames_iter):
            seen = n + 1
            if n >= n_frames:
                break
            if n in starts:
                if k >= 0:
                    flush(k)
                k = starts[n]
                clip_frames = []
            if needs_frames or not clip_frames:
                clip_frames.append(frame)
        if seen < n_frames:
            raise CodecError(f"{input}: gave {seen} frames on the second read, {n_frames} on the first")
        flush(k)
    bar.close()
    total = writer.bytes_written
    return EncodeReport(
        output=str(output),
        width=width,
        height=height,
        fps=rate,
        frames=n_frames,
        clips=list(clips),
        modes=[md.name.lower() for md in modes],
        bytes=total,
        threshold=threshold_used,
        strategy=params.strategy,
        target_met=target_met,
        text_bytes=writer.text_bytes,
        vq_bytes=writer.vq_bytes,
        dependent_clips=writer.dependent_clips,
    )
