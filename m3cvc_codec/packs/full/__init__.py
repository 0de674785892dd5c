"""The ``full`` pack: the paper's generative codec (M3-CVC, sections II-A, II-C, II-D).

- **Keyframes** (:mod:`.keyframe`, :class:`~.keyframe.KeyframeCodec`): the Stable Diffusion 1.5
  VAE encoder gives the latent z (4 channels at 1/8 of the frame), an ELIC-inspired post-encoder
  maps it to the grid (1/16 or 1/8 of the frame) and the nearest of 256 codewords gives the
  index map.  Decoding looks the codewords up, upsamples them to z-hat at 1/8, and runs the UNet
  denoising loop conditioned on z-hat (concatenated to the UNet's input channels) and on the
  keyframe description D^F (through the SD text encoder, classifier-free guidance), seeded from
  the stream, then the VAE decoder.
- **Clips** (:mod:`.clips`): a video-diffusion model makes each clip from its decoded keyframe
  (and the next clip's, for interpolation) and the clip description D^C: LTX-Video 0.9.5
  (``settings.clips.backend = "ltx"``, the default) or AnimateDiff SparseCtrl on the SD 1.5 family
  (``"sparsectrl"``).
- **Keyframe selection**: CLIP image features (:class:`~m3cvc_codec.models.clip.ClipEmbedder`)
  and optical-flow magnitude (:class:`~m3cvc_codec.models.flow.FlowMagnitude`), the paper's
  f_Clip and f_Raft, with the calibrated :attr:`FullPack.selection_defaults`.

Every model is loaded lazily, on first use, through :mod:`m3cvc_codec.models.hub` (model ids,
local folders, ``--models DIR``, ``HF_HUB_OFFLINE``; one-line errors).  Importing this module
imports neither torch nor diffusers.  The configuration (``default.json`` beside this module,
or a file given with ``--pack-config``, e.g. the one ``tools/train_full.py`` writes) names every
base model and our trained weights; the header's weights hash covers, per grid, the components
the grid's list names (docs/full-pack.md).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..base import GridSpec, Pack, PackError
from ..config import PackConfig, RuntimeOptions

__all__ = [
    "CLIP_BACKENDS",
    "DEFAULT_CONFIG",
    "TRAINED_COMPONENTS",
    "FullPack",
    "require_full_pack",
]

#: The file :meth:`FullPack.default_config` reads (beside this module).
DEFAULT_CONFIG = "default.json"

#: Components that are our trained weights, not base models anyone can download (a config may
#: also name one UNet per grid, ``keyframe_unet_1/16`` and ``keyframe_unet_1/8``: every component
#: whose name starts with ``keyframe_`` is trained weights).
TRAINED_COMPONENTS = ("keyframe_tokenizer_1/16", "keyframe_tokenizer_1/8", "keyframe_unet")
TRAINED_PREFIX = "keyframe_"

#: Clip backends (``settings.clips.backend``) and the components each needs besides the SD parts.
CLIP_BACKENDS: Mapping[str, tuple[str, ...]] = {
    "ltx": ("video",),
    "sparsectrl": ("motion_adapter", "sparse_controlnet"),
}

_MODULES = ("torch", "transformers", "diffusers")
_DTYPES = (None, "float32", "float16", "bfloat16")
TRAIN_HINT = "train them with tools/train_full.py, or point --pack-config at the pack config it writes"
EXTRA_HINT = "pip install 'm3cvc[full]' (or pip install -e '.[full]' in a checkout)"


def require_full_pack() -> None:
    """MissingExtraError (one line) unless torch, transformers and diffusers are installed.
    Looks for them without importing them."""
    missing = [m for m in _MODULES if importlib.util.find_spec(m) is None]
    if missing:
        from ...models.hub import MissingExtraError

        raise MissingExtraError(f"the full pack needs {', '.join(missing)} (the full extra): {EXTRA_HINT}")


def _looks_like_model_id(source: str) -> bool:
    """``org/name`` (a Hugging Face id), as opposed to a local path."""
    return (
        source.count("/") == 1
        and "\\" not in source
        and not source.startswith((".", "/", "~"))
        and not Path(source).suffix  # a file name, not an id
    )


class FullPack(Pack):
    """The paper's pack (see the module documentation).  ``config``: a :class:`PackConfig`, a
    config file, or None for ``default.json``; ``options``: device, dtype (float16 / bfloat16
    on CUDA), models folder, CPU offload (nothing to do on the CPU device), attention slicing
    (the keyframe UNet and the SparseCtrl backend's models; refused with the LTX backend, see
    :mod:`.slicing`).  Construction loads no model: it checks the config, the options and that
    the full extra is installed (MissingExtraError otherwise)."""

    pack_id = "full"
    grids: Sequence[GridSpec] = (GridSpec("1/16", 16, 256), GridSpec("1/8", 8, 256))
    #: Keyframe-selection defaults of the pack's scorers (CLIP + flow, the paper's; the
    #: calibration is :class:`m3cvc_codec.scorers.ClipScorer`'s), taken by ``--scorer pack``.
    selection_defaults: ClassVar[Mapping[str, float]] = {"lambda1": 3.0, "lambda2": 0.015, "threshold": 0.35}

    def __init__(self, config: PackConfig | str | Path | None = None, options: RuntimeOptions | None = None) -> None:
        if isinstance(config, (str, Path)):
            config = PackConfig.from_file(config)
        super().__init__(config, options)
        require_full_pack()
        known = {g.name for g in self.grids}
        odd = [g for g in self.config.grids if g not in known]
        if odd:
            raise PackError(
                f"full pack config names grid {odd[0]!r}; the full pack's grids are {', '.join(sorted(known))}"
            )
        dtype = self.options.dtype
        if dtype not in _DTYPES:
            raise PackError(f"full pack: dtype {dtype!r} is not one of float32, float16, bfloat16")
        if dtype == "float16" and str(self.options.device).startswith("cpu"):
            raise PackError("full pack: dtype float16 needs a GPU device (use bfloat16 or float32 on the CPU)")
        backend = self.clip_settings.get("backend", "ltx")
        if backend not in CLIP_BACKENDS:
            raise PackError(f"full pack: clip backend {backend!r} is not one of {', '.join(CLIP_BACKENDS)}")
        from .slicing import unsupported_by

        unsupported_by(backend, self.options.attention_slicing)  # refused now, not at the first clip
        for g, names in self.config.grids.items():
            lacking = [n for n in CLIP_BACKENDS[backend] if n not in names]
            if lacking:
                raise PackError(
                    f"full pack config: grid {g!r} does not list {lacking[0]!r}, the {backend} clip backend's "
                    "model (a grid's list is what the stream's weights hash covers)"
                )
        self._lock = threading.RLock()
        self._keyframe: Any = None
        self._clips: Any = None
        self._embedder: Any = None
        self._flow: Any = None

    @classmethod
    def default_config(cls) -> PackConfig:
        """``default.json`` beside this module: SD 1.5, LTX-Video 0.9.5, CLIP ViT-B/32, and our
        trained keyframe weights under ``./weights/`` (not shipped: train them with
        tools/train_full.py and use the config it writes)."""
        return PackConfig.from_file(Path(str(resources.files(__name__).joinpath(DEFAULT_CONFIG))))

    # -- settings and components ----------------------------------------------------------

    def _settings(self, key: str) -> Mapping[str, Any]:
        value = self.config.settings.get(key, {})
        if not isinstance(value, Mapping):
            raise PackError(f"full pack config: settings.{key} must be an object")
        return value

    @property
    def keyframe_settings(self) -> Mapping[str, Any]:
        """``settings.keyframe``: steps, guidance, scheduler."""
        return self._settings("keyframe")

    @property
    def clip_settings(self) -> Mapping[str, Any]:
        """``settings.clips``: backend, steps, guidance, max_frames."""
        return self._settings("clips")

    def _need(self, names: Iterable[str], what: str) -> None:
        """PackError (one line) for the first of ``names`` the config lacks, and for trained
        weights that are not where the config says."""
        for name in names:
            if name not in self.config.components:
                raise PackError(f"full pack config has no component {name!r} ({what}); see docs/full-pack.md")
            if not name.startswith(TRAINED_PREFIX):
                continue
            where = self.config.resolve(name, self.options.models_dir)
            if isinstance(where, Path) and where.exists():
                continue
            source = self.config.components[name].source
            if not isinstance(where, Path) and _looks_like_model_id(source):
                continue  # a model id: the hub finds it or says why not
            raise PackError(f"full pack: trained weights {name!r} not found at {source!r}: {TRAIN_HINT}")

    def _check_grid(self, grid: GridSpec) -> GridSpec:
        spec = self.grid(grid.name)
        if spec != grid:
            raise PackError(f"full pack: grid {grid} is not the pack's {spec}")
        if grid.name not in self.config.grids:
            raise PackError(f"full pack config has no components for grid {grid.name!r}")
        return spec

    # -- lazily built parts ---------------------------------------------------------------

    def keyframe_codec(self) -> Any:
        """The :class:`~.keyframe.KeyframeCodec` (built on first use)."""
        if self._keyframe is None:
            with self._lock:
                if self._keyframe is None:
                    # the grid's trained weights are checked by encode/decode (its list)
                    self._need(["vae", "text_encoder", "tokenizer", "scheduler"], "the keyframe codec")
                    from .keyframe import KeyframeCodec

                    self._keyframe = KeyframeCodec.from_config(self.config, self.options)
        return self._keyframe

    def clip_backend(self) -> Any:
        """The clip backend of ``settings.clips.backend`` (:func:`~.clips.load_clip_backend`).
        SparseCtrl runs on SD 1.5's parts: its VAE, text encoder and tokenizer are the keyframe
        codec's (loaded from the same components: one copy in memory) where both run in the
        same dtype and without CPU offload, whose hooks would move them under the other's feet."""
        if self._clips is None:
            with self._lock:
                if self._clips is None:
                    backend = self.clip_settings.get("backend", "ltx")
                    self._need(CLIP_BACKENDS[backend], f"the {backend} clip backend")
                    from .clips import load_clip_backend

                    shared = self._shared_sd_parts() if backend == "sparsectrl" else None
                    self._clips = load_clip_backend(self.config, self.options, shared)
        return self._clips

    def _shared_sd_parts(self) -> dict[str, Any]:
        """The keyframe codec's VAE, text encoder and tokenizer for the SparseCtrl pipeline, or
        nothing where they cannot be shared (CPU offload, another dtype)."""
        if self.options.cpu_offload:
            return {}
        from ...models.hub import torch_device, torch_dtype

        on_gpu = torch_device(self.options).type == "cuda"
        clip_dtype = torch_dtype(self.options, default="float16" if on_gpu else "float32")
        codec = self.keyframe_codec()
        if codec.dtype != clip_dtype:
            return {}
        return {"vae": codec.vae, "text_encoder": codec.text_encoder, "tokenizer": codec.text_tokenizer}

    def _embedder_(self) -> Any:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    from ...models.clip import DEFAULT_CLIP, ClipEmbedder

                    source = DEFAULT_CLIP
                    if "clip" in self.config.components:
                        source = str(self.config.resolve("clip", self.options.models_dir))
                    self._embedder = ClipEmbedder(source, self.options)
        return self._embedder

    def _flow_(self) -> Any:
        if self._flow is None:
            with self._lock:
                if self._flow is None:
                    from ...models.flow import FlowMagnitude

                    backend = str(self._settings("selection").get("flow", "auto"))
                    self._flow = FlowMagnitude(backend, self.options)
        return self._flow

    # -- keyframe codec -------------------------------------------------------------------

    @staticmethod
    def _check_frame(frame: np.ndarray, ds: int) -> np.ndarray:
        x = np.asarray(frame)
        if x.ndim != 3 or x.shape[2] != 3 or x.dtype != np.uint8:
            raise ValueError(f"full pack: a keyframe must be a uint8 H x W x 3 RGB array, got {x.dtype} {x.shape}")
        h, w = x.shape[:2]
        if h == 0 or w == 0 or h % ds or w % ds:
            raise ValueError(
                f"full pack: frame size {w}x{h} is not a multiple of the grid's downsample factor {ds} "
                "in both dimensions (resize or crop it first, e.g. to 512x320)"
            )
        return x

    def encode_keyframe(self, frame: np.ndarray, grid: GridSpec) -> np.ndarray:
        """RGB uint8 frame -> int64 index map (H/ds x W/ds): VAE encoder, post-encoder, nearest codeword."""
        grid = self._check_grid(grid)
        x = self._check_frame(frame, grid.downsample)
        self._need(self.config.grids[grid.name], f"grid {grid.name}")
        indices = np.asarray(self.keyframe_codec().encode(x, grid.name), dtype=np.int64)
        return indices

    def encode_keyframe_near(
        self, frame: np.ndarray, grid: GridSpec, reference: np.ndarray, tolerance: float
    ) -> np.ndarray:
        """Like :meth:`encode_keyframe`, but a cell keeps ``reference``'s index (the previous
        keyframe's map) where that codeword's squared distance to h is within a factor
        ``1 + tolerance`` of the nearest one's (``m3v-encode --refresh N --reuse T``, as the lite
        pack does: static background then repeats the previous map, which costs almost nothing)."""
        import torch

        grid = self._check_grid(grid)
        x = self._check_frame(frame, grid.downsample)
        self._need(self.config.grids[grid.name], f"grid {grid.name}")
        codec = self.keyframe_codec()
        gh, gw = codec.grid_size(x.shape, grid.name)
        ref = np.asarray(reference, dtype=np.int64).reshape(-1)
        if ref.size != gh * gw or ref.min(initial=0) < 0 or ref.max(initial=0) >= grid.vocab_size:
            raise ValueError(
                f"full pack: reference map of {ref.size} cells for a {gh}x{gw} grid, indices below {grid.vocab_size}"
            )
        tok = codec.tokenizer(grid.name)
        with torch.inference_mode():
            z = codec.latent(x)
            where = tok.codebook.device
            h = tok.encode_h(z.to(where))
            flat = h.permute(0, 2, 3, 1).reshape(-1, h.shape[1]).float()
            code = tok.codebook.float()
            # the formula (and so the argmin's ties) of KeyframeTokenizer.nearest
            dist = (flat * flat).sum(1, keepdim=True) - 2 * flat @ code.t() + (code * code).sum(1)[None]
            best = dist.argmin(1).cpu().numpy()
            dist_np = np.maximum(dist.cpu().numpy(), 0.0)
        if best.size != gh * gw:
            raise PackError(f"keyframe tokenizer {grid.name} made {best.size} cells for a {gh}x{gw} grid")
        rows = np.arange(best.size)
        keep = dist_np[rows, ref] <= dist_np[rows, best] * np.float32(1 + tolerance)
        return np.where(keep, ref, best).astype(np.int64).reshape(gh, gw)

    def decode_keyframe(self, indices: np.ndarray, grid: GridSpec, text: str = "", seed: int = 0) -> np.ndarray:
        """Index map + D^F + decode seed -> RGB uint8 frame of (grid_h*ds) x (grid_w*ds): the
        diffusion decoder (same inputs, config and device: the same frame).  Each denoising
        step is reported to :func:`m3cvc_codec.progress.step` as ``"keyframe"``."""
        grid = self._check_grid(grid)
        idx = np.asarray(indices)
        if idx.ndim != 2 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"full pack: an index map is a non-empty 2-D integer array, got {idx.dtype} {idx.shape}")
        if idx.min() < 0 or idx.max() >= grid.vocab_size:
            raise ValueError(f"full pack: index outside the vocabulary 0..{grid.vocab_size - 1}")
        self._need(self.config.grids[grid.name], f"grid {grid.name}")
        from ... import progress

        steps = (lambda done, total: progress.step("keyframe", done, total)) if progress.active() else None
        frame = self.keyframe_codec().decode(idx.astype(np.int64), grid.name, text or "", int(seed), progress=steps)
        return np.ascontiguousarray(frame, dtype=np.uint8)

    # -- clips ----------------------------------------------------------------------------

    def reconstruct_clip(
        self, first: np.ndarray, last: np.ndarray | None, clip_text: str, frame_count: int, seed: int
    ) -> Iterable[np.ndarray]:
        """The clip's ``frame_count`` frames from the video model (``first``'s size).

        Interpolation: ``last`` is the *next* clip's keyframe, which is not part of this clip,
        so the model makes ``frame_count + 1`` frames conditioned on ``first`` at frame 0 and
        ``last`` at frame ``frame_count``, and the last one (the next keyframe again) is
        dropped.  Prediction (``last`` None): ``frame_count`` frames from ``first`` alone.
        Frame 0 is the model's rendering of ``first``, not ``first`` itself.  Each denoising
        step is reported to :func:`m3cvc_codec.progress.step` as ``"clip"``."""
        if isinstance(frame_count, bool) or not isinstance(frame_count, (int, np.integer)) or frame_count < 1:
            raise ValueError(f"full pack: a clip has at least one frame, not {frame_count!r}")
        n = int(frame_count)
        backend = self.clip_backend()
        if last is None:
            frames = backend.reconstruct(first, None, clip_text or "", n, int(seed))
            return list(np.asarray(frames, dtype=np.uint8)[:n])
        frames = backend.reconstruct(first, last, clip_text or "", n + 1, int(seed))
        return list(np.asarray(frames, dtype=np.uint8)[:n])

    # -- keyframe selection ---------------------------------------------------------------

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """CLIP image features (N x D float32; the config's ``clip`` component, default
        openai/clip-vit-base-patch32)."""
        return self._embedder_().embed(frames)

    def motion_features(self, frames: np.ndarray) -> list[np.ndarray]:
        """Frames at the flow's working size (:class:`~m3cvc_codec.models.flow.FlowMagnitude`)."""
        return self._flow_().motion_features(frames)

    def motion(self, before: Sequence[np.ndarray], after: Sequence[np.ndarray]) -> np.ndarray:
        """Mean optical-flow end-point length in coding-size pixels (RAFT where torchvision
        imports, else DIS; ``settings.selection.flow``)."""
        return self._flow_().motion(before, after)
