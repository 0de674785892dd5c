"""Clip reconstruction with a video-diffusion model (paper section II-D).

A clip backend makes a clip's frames from its decoded keyframe and the clip description D^C:

* **interpolation**: ``reconstruct(first, last, text, n, seed)`` with the next clip's decoded
  keyframe ``last``: ``n`` frames, ``first`` conditioning frame 0 and ``last`` frame ``n - 1``
  (the pack asks for one frame more than the clip has and drops that last one);
* **prediction**: ``last`` None: ``n`` frames continuing from ``first`` alone.

Every frame is the model's rendering (frame 0 too), RGB uint8 at ``first``'s size; ``last`` is
resized to ``first``'s size when it differs.  ``n == 1`` gives ``first`` itself, no model run.

Backends (``settings["clips"]["backend"]``, :func:`load_clip_backend`):

``"ltx"`` -- :class:`LtxBackend`: diffusers' ``LTXConditionPipeline`` on the config's ``video``
component (default ``Lightricks/LTX-Video-0.9.5``) with ``LTXVideoCondition(image, frame_index=0)``
and, for interpolation, ``LTXVideoCondition(last, frame_index=n' - 1)``.

``"sparsectrl"`` -- :class:`SparseCtrlBackend`: diffusers' ``AnimateDiffSparseControlNetPipeline``
on the SD 1.5 parts (components ``vae``, ``unet``, ``text_encoder``, ``tokenizer``, ``scheduler``)
with components ``motion_adapter`` (e.g. ``guoyww/animatediff-motion-adapter-v1-5-3``) and
``sparse_controlnet`` (an RGB SparseCtrl, e.g. ``guoyww/animatediff-sparsectrl-rgb``), the
keyframes as conditioning frames at ``controlnet_frame_indices`` ``[0, n' - 1]`` or ``[0]``.

**Frame counts.**  A model makes ``n'`` frames, which may differ from the ``n`` asked for: LTX
only makes ``8k + 1`` frames (its VAE's temporal compression: ``k * r + 1`` for ratio ``r``), and
each backend has a longest run, ``settings["clips"]["max_frames"]`` (LTX: 121 by default;
SparseCtrl: 16, AnimateDiff's training length, at most the motion adapter's 32 positions).

* A clip that fits one run: :func:`frame_schedule` picks ``n'``, the smallest count the model
  makes that is at least ``n``, and which generated frame each output frame is.  Interpolation:
  the ``n'`` frames span first -> last, so output frame ``t`` is generated frame
  ``round(t * (n' - 1) / (n - 1))`` (nearest in time; exact when ``n' == n``: always for
  SparseCtrl, and for LTX when ``n - 1`` is a multiple of 8).  Prediction: the first ``n``
  generated frames (the motion keeps its speed).  Generating the next length the model makes
  and keeping the nearest frames, rather than asking for an ``n`` it cannot make, is the only
  way to get exactly ``n`` frames from LTX; the frames dropped are at most 7 of the ``n'``.
* A clip longer than one run (``n > L``, the longest run): runs are **chained**, not stretched.
  Each run of ``L`` frames is predicted from the last frame of the run before (the first from
  ``first``), that frame not repeated, until at most ``L`` frames remain; the last run makes
  them, towards ``last`` when interpolating, as above.  So motion keeps its speed and no frame
  repeats; run ``k`` is seeded ``seed + k``, and the text is encoded once for all of them.
  (Each run sees only the frame before it, so a long clip may drift more than a short one.)

**Sizes.**  The model runs at ``settings["clips"]["size"]`` (``[width, height]``) when given, else
at ``first``'s size rounded to the nearest multiple the model needs (LTX: 32; SD 1.5: 8), and
its frames are resized back to ``first``'s size (OpenCV, area when shrinking, bilinear when
growing).  The coding size 512x320 needs no resizing with either backend.

**Text.**  The clip description is encoded once per clip, the negative prompt
(``settings["clips"]["negative_prompt"]``, default empty) once per backend; both go to the
pipeline as embeddings.

**Progress.**  Each denoising step is reported to :func:`m3cvc_codec.progress.step` as
``"clip"`` through the pipelines' ``callback_on_step_end`` (only when a caller listens).

**Determinism.**  The pipelines' noise comes from ``torch.Generator("cpu").manual_seed(seed)``
(the same starting noise on every device), and torch's global generators are seeded from
``seed`` for the call and restored after it (SparseCtrl samples its conditioning latents from
them): the same frames, text, settings and seed give the same frames on the same device and
software, whatever random state the caller has, which is left untouched.

**Runtime options.**  ``cpu_offload`` moves each of a pipeline's models to the GPU only while
it runs (diffusers' ``enable_model_cpu_offload``; on the CPU device nothing moves).
``attention_slicing``: SparseCtrl slices its motion UNet's and SparseCtrl model's attention and
decodes a clip's frames one at a time; LTX-Video refuses it (PackError), having no sliced
attention (:mod:`m3cvc_codec.packs.full.slicing`).

Settings (``settings["clips"]``; all optional except where a pack needs a backend): ``backend``,
``steps`` (30), ``guidance`` (3.0), ``max_frames``, ``size``, ``negative_prompt``; LTX only:
``frame_rate`` (25), ``max_sequence_length`` (128), ``image_cond_noise_scale`` (0.15),
``decode_timestep`` (0.05), ``decode_noise_scale`` (0.025); SparseCtrl only:
``conditioning_scale`` (1.0) and ``scheduler`` (``"ddim"``: DDIM with AnimateDiff's linear betas,
built from the ``scheduler`` component's config; ``"config"``: that scheduler as it is).

torch, diffusers and transformers are imported when a backend is built, not with this module.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ..base import PackError

if TYPE_CHECKING:
    from ..config import PackConfig, RuntimeOptions

__all__ = [
    "BACKENDS",
    "ClipBackend",
    "ClipSettings",
    "LtxBackend",
    "SparseCtrlBackend",
    "frame_schedule",
    "load_clip_backend",
]


@runtime_checkable
class ClipBackend(Protocol):
    """What the full pack needs from a clip model (see the module documentation)."""

    def reconstruct(
        self, first: np.ndarray, last: np.ndarray | None, text: str, frame_count: int, seed: int
    ) -> np.ndarray:
        """``frame_count`` frames, uint8 (N, H, W, 3) at ``first``'s size: ``first`` -> ``last``
        (frames 0 and N - 1) when ``last`` is given, else predicted from ``first``."""
        ...


# -- settings ---------------------------------------------------------------------------

#: backend name -> (default max_frames, hard limit or None, size multiple).
_BACKEND_LIMITS = {"ltx": (121, None, 32), "sparsectrl": (16, 32, 8)}


@dataclass(frozen=True)
class ClipSettings:
    """``settings["clips"]`` of a pack config, checked (see the module documentation)."""

    backend: str = "ltx"
    steps: int = 30
    guidance: float = 3.0
    max_frames: int = 121
    size: tuple[int, int] | None = None
    negative_prompt: str = ""
    frame_rate: int = 25
    max_sequence_length: int = 128
    image_cond_noise_scale: float = 0.15
    decode_timestep: float = 0.05
    decode_noise_scale: float = 0.025
    conditioning_scale: float = 1.0
    scheduler: str = "ddim"

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None, backend: str | None = None) -> ClipSettings:
        """From a config's ``settings`` (the ``clips`` entry is read); ``backend`` overrides
        the one named there.  PackError (one line) for a bad value; unknown keys are ignored."""
        clips = settings.get("clips", {}) if isinstance(settings, Mapping) else {}
        if not isinstance(clips, Mapping):
            raise PackError('pack config: settings "clips" must be an object')
        name = backend if backend is not None else clips.get("backend", "ltx")
        if name not in _BACKEND_LIMITS:
            raise PackError(f"pack config: unknown clip backend {name!r} (known: {', '.join(BACKENDS)})")
        default_max, hard_max, _ = _BACKEND_LIMITS[name]

        def num(key: str, default: Any, kind: type, low: float) -> Any:
            value = clips.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
                raise PackError(f"pack config: settings.clips.{key} must be a number, not {value!r}")
            if value < low:
                raise PackError(f"pack config: settings.clips.{key} must be at least {low}, not {value!r}")
            return kind(value)

        size = clips.get("size")
        if size is not None:
            ok = isinstance(size, (list, tuple)) and len(size) == 2
            ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v >= 8 for v in size)
            if not ok:
                raise PackError(f"pack config: settings.clips.size must be [width, height], not {size!r}")
            size = (int(size[0]), int(size[1]))
        max_frames = num("max_frames", default_max, int, 2)
        if hard_max is not None and max_frames > hard_max:
            raise PackError(f"pack config: settings.clips.max_frames is at most {hard_max} for backend {name!r}")
        negative = clips.get("negative_prompt", "")
        if not isinstance(negative, str):
            raise PackError("pack config: settings.clips.negative_prompt must be a string")
        scheduler = clips.get("scheduler", "ddim")
        if scheduler not in ("ddim", "config"):
            raise PackError(f'pack config: settings.clips.scheduler is "ddim" or "config", not {scheduler!r}')
        return cls(
            backend=name,
            steps=num("steps", 30, int, 1),
            guidance=num("guidance", 3.0, float, 0.0),
            max_frames=max_frames,
            size=size,
            negative_prompt=negative,
            frame_rate=num("frame_rate", 25, int, 1),
            max_sequence_length=num("max_sequence_length", 128, int, 1),
            image_cond_noise_scale=num("image_cond_noise_scale", 0.15, float, 0.0),
            decode_timestep=num("decode_timestep", 0.05, float, 0.0),
            decode_noise_scale=num("decode_noise_scale", 0.025, float, 0.0),
            conditioning_scale=num("conditioning_scale", 1.0, float, 0.0),
            scheduler=scheduler,
        )


# -- frame counts and sizes --------------------------------------------------------------


def frame_schedule(frame_count: int, interpolate: bool, *, step: int = 1, max_frames: int) -> tuple[int, list[int]]:
    """``(n', picks)``: how many frames the model makes (``n' = k * step + 1``, the smallest
    such count at least ``frame_count``, or the largest at most ``max_frames``) and, for each
    of the ``frame_count`` output frames, the generated frame it is (module documentation)."""
    n = int(frame_count)
    if n < 1:
        raise ValueError(f"a clip has at least one frame, not {frame_count!r}")
    step = max(1, int(step))
    longest = (int(max_frames) - 1) // step * step + 1
    if longest < 2:
        raise ValueError(f"max_frames {max_frames} leaves no run of two frames or more (step {step})")
    want = max(n, 2)
    made = min(-(-(want - 1) // step) * step + 1, longest)
    if n == 1:
        return made, [0]
    if (not interpolate and made >= n) or made == n:
        return made, list(range(n))
    # nearest generated frame in time: round(t * (made - 1) / (n - 1)), halves up
    return made, [(2 * t * (made - 1) + (n - 1)) // (2 * (n - 1)) for t in range(n)]


def _longest_run(step: int, max_frames: int) -> int:
    """The most frames one run of the model makes: ``k * step + 1`` at most ``max_frames``."""
    step = max(1, int(step))
    return (int(max_frames) - 1) // step * step + 1


def _run_seed(seed: int, run: int) -> int:
    """The seed of run ``run`` of a clip longer than one run (run 0: the clip's own seed)."""
    return (int(seed) + run) & 0xFFFF_FFFF_FFFF_FFFF


def _model_size(width: int, height: int, multiple: int, size: tuple[int, int] | None) -> tuple[int, int]:
    """(width, height) the model runs at: ``size`` when set (rounded to ``multiple``), else the
    frame's size rounded to the nearest multiple (at least one multiple)."""
    w, h = size if size is not None else (width, height)
    return max(multiple, (w + multiple // 2) // multiple * multiple), max(
        multiple, (h + multiple // 2) // multiple * multiple
    )


def _resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    import cv2

    shrink = width * height < frame.shape[1] * frame.shape[0]
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _check_frame(frame: np.ndarray, what: str) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"{what} must be an RGB uint8 frame (H x W x 3), not {frame.dtype} {frame.shape}")
    return np.ascontiguousarray(frame)


def _progress_kwargs(steps: int) -> dict[str, Any]:
    """``callback_on_step_end`` reporting each denoising step as ``"clip"``
    (:mod:`m3cvc_codec.progress`), when someone listens; else nothing."""
    from ...progress import pipeline_callback

    callback = pipeline_callback("clip", steps)
    return {} if callback is None else {"callback_on_step_end": callback}


def _to_uint8(video: Any) -> np.ndarray:
    """A pipeline's ``output_type="np"`` frames (float in [0, 1], (F, H, W, 3)) as uint8."""
    arr = np.asarray(video, dtype=np.float32)
    return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)


# -- loading -----------------------------------------------------------------------------


def _component(config: PackConfig, name: str, what: str, models_dir: str | None = None) -> tuple[str, dict[str, Any]]:
    """(location for ``load_model``, extra ``from_pretrained`` kwargs) of component ``name``.
    A relative folder source is found as the keyframe codec finds it
    (:meth:`PackConfig.resolve`): beside the config file, else under ``models_dir``
    (``--models DIR``), never in whatever the current directory happens to hold."""
    comp = config.components.get(name)
    if comp is None:
        raise PackError(f"pack config {config.pack_id!r} has no component {name!r} ({what})")
    where = config.resolve(name, models_dir)
    kwargs: dict[str, Any] = {}
    if comp.subfolder:
        kwargs["subfolder"] = comp.subfolder
    if isinstance(where, Path):
        return str(where), kwargs
    if comp.revision:
        kwargs["revision"] = comp.revision
    return where, kwargs


def _load(loader: Any, config: PackConfig, options: RuntimeOptions, name: str, what: str, **kwargs: Any) -> Any:
    from ...models.hub import load_model

    source, extra = _component(config, name, what, options.models_dir)
    return load_model(loader, source, what=what, models_dir=options.models_dir, **extra, **kwargs)


def _runtime(options: RuntimeOptions | None, gpu_dtype: str) -> tuple[Any, Any, Any]:
    """(device, dtype, options): the options' device checked; dtype: the options' or, when
    None, ``gpu_dtype`` on a GPU and float32 on the CPU."""
    from ...models.hub import require_full, torch_device, torch_dtype
    from ..config import RuntimeOptions

    require_full("clip reconstruction (the full pack)")
    options = options if options is not None else RuntimeOptions()
    device = torch_device(options)
    dtype = torch_dtype(options, default=gpu_dtype if device.type == "cuda" else "float32")
    return device, dtype, options


def _place(pipe: Any, device: Any, options: RuntimeOptions) -> Any:
    """Move a pipeline to ``device``, or offload it to the CPU model by model when asked (on
    the CPU device there is nothing to offload: it stays there)."""
    pipe.set_progress_bar_config(disable=True)
    if options.cpu_offload and device.type != "cpu":
        try:
            pipe.enable_model_cpu_offload(device=device)
        except (ImportError, RuntimeError, ValueError) as err:
            from ...models.hub import ModelError

            raise ModelError(f"CPU offload of the clip model failed: {str(err).splitlines()[0]}") from None
    else:
        pipe.to(device)
    return pipe


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Only errors from the named loggers meanwhile (diffusers' advisory warnings that a codec
    user can do nothing about, e.g. once per clip)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


class _Base:
    """Shared by the backends: inputs checked, sizes and frame counts planned, output shaped."""

    multiple = 8
    temporal_step = 1

    def __init__(self, pipe: Any, settings: ClipSettings) -> None:
        self.pipe = pipe
        self.settings = settings
        self._negative: Any = None
        #: (text, its embeddings): a clip's text is encoded once however many runs it takes
        self._last_text: tuple[str, Any] | None = None

    def reconstruct(
        self, first: np.ndarray, last: np.ndarray | None, text: str, frame_count: int, seed: int
    ) -> np.ndarray:
        """See :class:`ClipBackend` and the module documentation."""
        first = _check_frame(first, "the first keyframe")
        if isinstance(frame_count, bool) or not isinstance(frame_count, (int, np.integer)) or frame_count < 1:
            raise ValueError(f"a clip has at least one frame, not {frame_count!r}")
        height, width = first.shape[:2]
        if frame_count == 1:
            return first[None].copy()
        if last is not None:
            last = _resize(_check_frame(last, "the last keyframe"), width, height)
        mw, mh = _model_size(width, height, self.multiple, self.settings.size)
        start = _resize(first, mw, mh)
        goal = _resize(last, mw, mh) if last is not None else None
        longest = _longest_run(self.temporal_step, self.settings.max_frames)
        frames: list[np.ndarray] = []
        remaining, run = int(frame_count), 0
        with self._seeded(int(seed)):
            # longer than one run: runs predicted one after the other, each from the last frame
            # of the one before (which is not repeated), the last run towards ``last``
            while remaining > longest:
                video = self._run([start], text, longest, mw, mh, _run_seed(seed, run))
                frames.extend(video[:-1])
                start, remaining, run = video[-1], remaining - (longest - 1), run + 1
            made, picks = frame_schedule(
                remaining, goal is not None, step=self.temporal_step, max_frames=self.settings.max_frames
            )
            images = [start] + ([goal] if goal is not None else [])
            video = self._run(images, text, made, mw, mh, _run_seed(seed, run))
            frames.extend(video[i] for i in picks)
        return np.stack([_resize(f, width, height) for f in frames])

    def _run(self, images: list[np.ndarray], text: str, made: int, width: int, height: int, seed: int) -> np.ndarray:
        video = self._generate(images, text or "", made, width, height, seed)
        if video.shape[0] != made:
            raise RuntimeError(f"the clip model made {video.shape[0]} frames, not {made}")
        return video

    @contextmanager
    def _seeded(self, seed: int) -> Iterator[None]:
        """torch's global generators (the CPU's and the pipeline's GPU's) seeded from ``seed``
        meanwhile and restored afterwards: a pipeline step that draws from them instead of the
        generator it is given (SparseCtrl samples the conditioning frames' VAE latents so)
        stays deterministic, and the caller's random state is left as it was."""
        import torch

        device = getattr(self.pipe, "_execution_device", None)
        cuda = getattr(device, "type", None) == "cuda"
        index = (device.index or 0) if cuda and device is not None else None
        with torch.random.fork_rng(devices=[index] if index is not None else []):
            torch.default_generator.manual_seed(seed & 0xFFFF_FFFF_FFFF_FFFF)
            if index is not None:
                torch.cuda.default_generators[index].manual_seed(seed & 0xFFFF_FFFF_FFFF_FFFF)
            yield

    def _generator(self, seed: int) -> Any:
        import torch

        return torch.Generator("cpu").manual_seed(seed & 0xFFFF_FFFF_FFFF_FFFF)

    def _generate(
        self, images: list[np.ndarray], text: str, frames: int, width: int, height: int, seed: int
    ) -> np.ndarray:
        raise NotImplementedError


# -- LTX-Video ---------------------------------------------------------------------------


class LtxBackend(_Base):
    """Clips from LTX-Video (``LTXConditionPipeline``); see the module documentation."""

    multiple = 32

    def __init__(self, pipe: Any, settings: ClipSettings | None = None) -> None:
        super().__init__(pipe, settings if settings is not None else ClipSettings(backend="ltx"))
        self.temporal_step = int(pipe.vae_temporal_compression_ratio)

    @classmethod
    def from_config(
        cls, config: PackConfig, options: RuntimeOptions | None = None, shared: Mapping[str, Any] | None = None
    ) -> LtxBackend:
        """Load the config's ``video`` component (an LTX-Video diffusers repository or folder)
        through :func:`m3cvc_codec.models.hub.load_model`, on ``options.device``; dtype
        bfloat16 on a GPU unless ``options.dtype`` says otherwise, float32 on the CPU.
        ``options.attention_slicing`` is refused (PackError): LTX-Video's attention cannot be
        sliced (:mod:`.slicing`).  ``shared``: unused (LTX-Video has no part in common with the
        keyframe codec)."""
        settings = ClipSettings.from_settings(config.settings, "ltx")
        device, dtype, options = _runtime(options, "bfloat16")
        from .slicing import unsupported_by

        unsupported_by("ltx", options.attention_slicing)
        from diffusers import LTXConditionPipeline

        pipe = _load(
            LTXConditionPipeline.from_pretrained, config, options, "video", "video model (LTX-Video)", dtype=dtype
        )
        return cls(_place(pipe, device, options), settings)

    def _embed(self, text: str, *, remember: bool = True) -> tuple[Any, Any]:
        import torch

        if remember and self._last_text is not None and self._last_text[0] == text:
            return self._last_text[1]  # type: ignore[no-any-return]
        with torch.no_grad():
            embeds, mask, _, _ = self.pipe.encode_prompt(
                prompt=text,
                do_classifier_free_guidance=False,
                max_sequence_length=self.settings.max_sequence_length,
                device=self.pipe._execution_device,
            )
        if remember:
            self._last_text = (text, (embeds, mask))
        return embeds, mask

    def _generate(
        self, images: list[np.ndarray], text: str, frames: int, width: int, height: int, seed: int
    ) -> np.ndarray:
        import torch
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
        from PIL import Image

        s = self.settings
        conditions = [LTXVideoCondition(image=Image.fromarray(images[0]), frame_index=0)]
        if len(images) > 1:
            conditions.append(LTXVideoCondition(image=Image.fromarray(images[1]), frame_index=frames - 1))
        embeds, mask = self._embed(text)
        extra: dict[str, Any] = {}
        if s.guidance > 1.0:
            if self._negative is None:
                self._negative = self._embed(s.negative_prompt, remember=False)
            extra = {"negative_prompt_embeds": self._negative[0], "negative_prompt_attention_mask": self._negative[1]}
        # the pipeline hands the scheduler LTX's own timesteps, which it warns about every call
        with torch.no_grad(), _quiet("diffusers.schedulers.scheduling_flow_match_euler_discrete"):
            out = self.pipe(
                conditions=conditions,
                prompt_embeds=embeds,
                prompt_attention_mask=mask,
                height=height,
                width=width,
                num_frames=frames,
                frame_rate=s.frame_rate,
                num_inference_steps=s.steps,
                guidance_scale=s.guidance,
                image_cond_noise_scale=s.image_cond_noise_scale,
                decode_timestep=s.decode_timestep,
                decode_noise_scale=s.decode_noise_scale,
                generator=self._generator(seed),
                max_sequence_length=s.max_sequence_length,
                output_type="np",
                **extra,
                **_progress_kwargs(s.steps),
            )
        return _to_uint8(out.frames[0])


# -- AnimateDiff SparseCtrl --------------------------------------------------------------


class SparseCtrlBackend(_Base):
    """Clips from AnimateDiff with an RGB SparseCtrl (``AnimateDiffSparseControlNetPipeline``,
    SD 1.5 family); see the module documentation."""

    multiple = 8

    def __init__(self, pipe: Any, settings: ClipSettings | None = None) -> None:
        super().__init__(pipe, settings if settings is not None else ClipSettings(backend="sparsectrl", max_frames=16))

    @classmethod
    def from_config(
        cls, config: PackConfig, options: RuntimeOptions | None = None, shared: Mapping[str, Any] | None = None
    ) -> SparseCtrlBackend:
        """Load the SD 1.5 components (``vae``, ``unet``, ``text_encoder``, ``tokenizer``,
        ``scheduler``), ``motion_adapter`` and ``sparse_controlnet`` through
        :func:`m3cvc_codec.models.hub.load_model`, on ``options.device``; dtype float16 on a
        GPU unless ``options.dtype`` says otherwise, float32 on the CPU.  With
        ``options.attention_slicing`` the motion UNet's and the SparseCtrl model's attention is
        sliced and the VAE decodes a clip's frames one at a time (:mod:`.slicing`).

        ``shared``: SD parts already loaded from the same components, by name (``vae``,
        ``text_encoder``, ``tokenizer``: the keyframe codec's, see ``FullPack.clip_backend``),
        used instead of a second copy.  They must be in the dtype chosen here; the pipeline only
        reads them.  (The UNet is never shared: the keyframe codec's is the trained one.)"""
        settings = ClipSettings.from_settings(config.settings, "sparsectrl")
        device, dtype, options = _runtime(options, "float16")
        shared = dict(shared or {})
        for name, part in shared.items():
            part_dtype = getattr(part, "dtype", dtype)
            if name not in ("vae", "text_encoder", "tokenizer") or part_dtype != dtype:
                raise ValueError(f"SparseCtrl backend: cannot share {name!r} ({part_dtype}; the clips run in {dtype})")
        from diffusers import (
            AnimateDiffSparseControlNetPipeline,
            AutoencoderKL,
            DDIMScheduler,
            MotionAdapter,
            SparseControlNetModel,
            UNet2DConditionModel,
        )
        from transformers import CLIPTextModel, CLIPTokenizer

        def load(loader: Any, name: str, what: str, **kw: Any) -> Any:
            if name in shared:
                return shared[name]
            return _load(loader, config, options, name, what, **kw)

        scheduler_config = load(DDIMScheduler.load_config, "scheduler", "SD 1.5 scheduler")
        if settings.scheduler == "ddim":
            # AnimateDiff's motion modules were trained with linear betas (diffusers' recipe)
            scheduler = DDIMScheduler.from_config(
                scheduler_config, beta_schedule="linear", clip_sample=False, timestep_spacing="linspace", steps_offset=1
            )
        else:
            import diffusers

            kind = getattr(diffusers, str(scheduler_config.get("_class_name")), None)
            if kind is None or not hasattr(kind, "from_config"):
                raise PackError(
                    f"the scheduler component names an unknown scheduler {scheduler_config.get('_class_name')!r}"
                )
            scheduler = kind.from_config(scheduler_config)
        adapter = load(MotionAdapter.from_pretrained, "motion_adapter", "AnimateDiff motion adapter", dtype=dtype)
        limit = int(adapter.config.motion_max_seq_length)
        if settings.max_frames > limit:
            raise PackError(f"pack config: settings.clips.max_frames is at most {limit} for this motion adapter")
        with _quiet("diffusers.models.modeling_utils"):  # from_unet2d's own cast warns
            pipe: Any = AnimateDiffSparseControlNetPipeline(
                vae=load(AutoencoderKL.from_pretrained, "vae", "SD 1.5 VAE", dtype=dtype),
                text_encoder=load(CLIPTextModel.from_pretrained, "text_encoder", "SD 1.5 text encoder", dtype=dtype),
                tokenizer=load(CLIPTokenizer.from_pretrained, "tokenizer", "SD 1.5 tokenizer"),
                unet=load(UNet2DConditionModel.from_pretrained, "unet", "SD 1.5 UNet", dtype=dtype),
                motion_adapter=adapter,
                controlnet=load(
                    SparseControlNetModel.from_pretrained, "sparse_controlnet", "SparseCtrl model", dtype=dtype
                ),
                scheduler=scheduler,
                feature_extractor=None,
                image_encoder=None,
            )
        if options.attention_slicing is not None:
            from .slicing import slice_attention, slice_vae

            # the pipeline's enable_attention_slicing would miss the motion UNet (no
            # set_attention_slice of its own); the VAE decodes a clip's frames as one batch
            slice_attention(pipe.unet, options.attention_slicing)
            slice_attention(pipe.controlnet, options.attention_slicing)
            slice_vae(pipe.vae)
        return cls(_place(pipe, device, options), settings)

    def _embed(self, text: str, *, remember: bool = True) -> Any:
        import torch

        if remember and self._last_text is not None and self._last_text[0] == text:
            return self._last_text[1]
        with torch.no_grad():
            embeds, _ = self.pipe.encode_prompt(text, self.pipe._execution_device, 1, False)
        if remember:
            self._last_text = (text, embeds)
        return embeds

    def _generate(
        self, images: list[np.ndarray], text: str, frames: int, width: int, height: int, seed: int
    ) -> np.ndarray:
        import torch
        from PIL import Image

        s = self.settings
        indices = [0, frames - 1] if len(images) > 1 else [0]
        extra: dict[str, Any] = {}
        if s.guidance > 1.0:
            if self._negative is None:
                self._negative = self._embed(s.negative_prompt, remember=False)
            extra = {"negative_prompt_embeds": self._negative}
        with torch.no_grad():
            out = self.pipe(
                prompt_embeds=self._embed(text),
                height=height,
                width=width,
                num_frames=frames,
                num_inference_steps=s.steps,
                guidance_scale=s.guidance,
                conditioning_frames=[Image.fromarray(im) for im in images],
                controlnet_frame_indices=indices,
                controlnet_conditioning_scale=s.conditioning_scale,
                generator=self._generator(seed),
                output_type="np",
                **extra,
                **_progress_kwargs(s.steps),
            )
        return _to_uint8(out.frames[0])


# -- choosing ----------------------------------------------------------------------------

#: settings.clips.backend -> backend class.
BACKENDS: Mapping[str, Any] = {"ltx": LtxBackend, "sparsectrl": SparseCtrlBackend}


def load_clip_backend(
    config: PackConfig, options: RuntimeOptions | None = None, shared: Mapping[str, Any] | None = None
) -> ClipBackend:
    """The backend ``config.settings["clips"]["backend"]`` names (default ``"ltx"``), loaded
    with :meth:`LtxBackend.from_config` or :meth:`SparseCtrlBackend.from_config` (``shared``:
    parts already loaded, see there)."""
    settings = ClipSettings.from_settings(config.settings)
    backend: ClipBackend = BACKENDS[settings.backend].from_config(config, options, shared)
    return backend
