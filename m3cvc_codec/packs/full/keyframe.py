"""The full pack's keyframe codec: Stable Diffusion with a learned tokenizer (paper II-C, Fig. 3).

Encoder: the SD VAE encoder gives the latent z (4 channels at 1/8 of the frame, times the VAE's
scaling factor); :class:`KeyframeTokenizer`'s ELIC-inspired post-encoder maps z to h at the
grid (stride 2 for the "1/16" grid, 1 for "1/8"), and each position of h becomes the index of
its nearest codeword (Euclidean, 256 codewords): the index map K* the stream carries.

Decoder: codebook lookup gives h-hat, the tokenizer's upsampler gives z-hat (4 channels at 1/8),
and SD's UNet denoises from seeded Gaussian noise conditioned on z-hat (concatenated to its input
channels: ``conv_in`` widened by :func:`widen_conv_in`, the new weights zero-initialised before
training) and on the keyframe description D^F through the text encoder, with classifier-free
guidance; the VAE decoder makes the frame.

Components of the pack config (:class:`~m3cvc_codec.packs.config.PackConfig`), by name:

- ``vae``, ``text_encoder``, ``tokenizer``, ``scheduler``: SD 1.5's parts (``source`` the SD
  repository or a folder, ``subfolder`` the part's folder); ``unet``: SD's own UNet (the base the
  trained one starts from; in the grids' lists for the weights hash, not loaded to decode);
- ``keyframe_tokenizer_<grid>`` (``keyframe_tokenizer_1/16``, ``keyframe_tokenizer_1/8``): a
  folder written by :meth:`KeyframeTokenizer.save_pretrained`;
- ``keyframe_unet_<grid>``, else ``keyframe_unet``: a folder written by
  ``UNet2DConditionModel.save_pretrained``, the UNet with ``conv_in`` widened by the latent's
  channels (the paper trains one per grid; ``tools/train_full.py`` writes one per grid).

A trained component's ``sha256`` (when given) is checked against :func:`folder_digest` of its
folder on loading.  Settings, under ``settings["keyframe"]``: ``steps`` (25), ``guidance`` (3.0;
1 or less: no classifier-free guidance), ``scheduler`` (``ddim``; also ``ddpm``, ``pndm``,
``euler``, ``euler_a``, ``dpm``, ``unipc``: built from the ``scheduler`` component's
configuration).  There is no size setting: the codec works at the frame's size, which is the
stream's coding size (``m3v-encode --size``, 512x320 by default for every pack, the paper's
training size; ``tools/train_full.py --size`` trains at it and records it in each trained
folder's ``train_state.json``).

Same frame/indices + config + seed on the same device and dtype give the same output.  torch,
diffusers and transformers are imported inside the functions and classes that need them, so
importing :mod:`m3cvc_codec.packs.full` stays light; this module itself defines
:class:`KeyframeTokenizer` on diffusers' mixins, so importing it imports torch and diffusers.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from diffusers import ModelMixin
from diffusers.configuration_utils import ConfigMixin, register_to_config
from torch import nn

from ...models.hub import ModelNotFoundError, load_model, torch_device, torch_dtype
from ..base import PackError
from ..config import weights_hash

if TYPE_CHECKING:
    from ..config import PackConfig, RuntimeOptions

__all__ = [
    "BASE_COMPONENTS",
    "DEFAULTS",
    "GRID_DOWNSAMPLE",
    "SCHEDULERS",
    "AttentionBlock",
    "KeyframeCodec",
    "KeyframeTokenizer",
    "ResBottleneck",
    "folder_digest",
    "frame_to_tensor",
    "tensor_to_frame",
    "tokenizer_component",
    "unet_component",
    "widen_conv_in",
]

#: Downsampling of each grid variant relative to the frame.
GRID_DOWNSAMPLE = {"1/16": 16, "1/8": 8}
#: SD's parts, by component name.
BASE_COMPONENTS = ("vae", "unet", "text_encoder", "tokenizer", "scheduler")
#: Default keyframe settings (``settings["keyframe"]``).
DEFAULTS: dict[str, Any] = {"steps": 25, "guidance": 3.0, "scheduler": "ddim"}
#: Scheduler names of the settings -> diffusers class names.
SCHEDULERS = {
    "ddim": "DDIMScheduler",
    "ddpm": "DDPMScheduler",
    "pndm": "PNDMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "dpm": "DPMSolverMultistepScheduler",
    "unipc": "UniPCMultistepScheduler",
}


def tokenizer_component(grid: str) -> str:
    """The pack-config component name of grid ``grid``'s trained tokenizer."""
    return f"keyframe_tokenizer_{grid}"


def unet_component(config: PackConfig, grid: str) -> str:
    """The component holding grid ``grid``'s trained UNet: ``keyframe_unet_<grid>`` where the
    config has it, else ``keyframe_unet``."""
    own = f"keyframe_unet_{grid}"
    return own if own in config.components else "keyframe_unet"


def folder_digest(path: str | Path) -> str:
    """SHA-256 hex naming a trained folder's weights: a single ``*.safetensors`` file's own
    SHA-256, else :func:`~m3cvc_codec.packs.config.weights_hash` over every ``*.safetensors`` in
    it (relative name -> SHA-256).  A file stands for itself."""
    p = Path(path)
    files = [p] if p.is_file() else sorted(p.rglob("*.safetensors"))
    if not files:
        raise PackError(f"{p}: no .safetensors weights in it")
    digests = {}
    for f in files:
        h = hashlib.sha256()
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
        digests[f.name if p.is_file() else f.relative_to(p).as_posix()] = h.hexdigest()
    if len(digests) == 1:
        return next(iter(digests.values()))
    return weights_hash(digests).hex()


# ---------------------------------------------------------------------------------------------
# The tokenizer: post-encoder, codebook, upsampler


class ResBottleneck(nn.Module):
    """ELIC's residual bottleneck block: 1x1 (C -> C/2), 3x3, 1x1 (C/2 -> C), plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = max(1, channels // 2)
        self.body = nn.Sequential(
            nn.Conv2d(channels, mid, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class AttentionBlock(nn.Module):
    """ELIC's (Cheng et al.'s simplified) attention module: a trunk of residual units times the
    sigmoid of a mask branch, plus the input."""

    def __init__(self, channels: int, units: int = 2) -> None:
        super().__init__()
        self.trunk = nn.Sequential(*[ResBottleneck(channels) for _ in range(units)])
        self.mask = nn.Sequential(*[ResBottleneck(channels) for _ in range(units)], nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.trunk(x) * torch.sigmoid(self.mask(x))


class KeyframeTokenizer(ModelMixin, ConfigMixin):
    """Post-encoder, codebook and upsampler of one grid variant (paper II-C).

    ``stride``: 2 for the "1/16" grid (h at half the latent's size), 1 for "1/8";
    ``channels``: the convolutions' width; ``code_dim``: ch_p, the codewords' length;
    ``vocab_size``: l_v (256 in the paper); ``blocks``: residual blocks per stage.

    Works on *scaled* SD latents (the VAE's latent times its scaling factor, about unit variance).
    The codebook is the ``codebook`` buffer (vocab_size x code_dim), trained by exponential moving
    averages (``ema_count``, ``ema_sum``, kept in the saved state so training resumes exactly);
    see :mod:`m3cvc_codec.packs.full.training`."""

    @register_to_config
    def __init__(
        self,
        latent_channels: int = 4,
        stride: int = 2,
        channels: int = 192,
        code_dim: int = 16,
        vocab_size: int = 256,
        blocks: int = 2,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"KeyframeTokenizer: stride {stride} is not 1 or 2")
        c = channels
        down: list[nn.Module] = [nn.Conv2d(latent_channels, c, 3, padding=1)]
        down += [ResBottleneck(c) for _ in range(blocks)]
        if stride == 2:
            down.append(nn.Conv2d(c, c, 5, stride=2, padding=2))
            down += [ResBottleneck(c) for _ in range(blocks)]
        down += [AttentionBlock(c), nn.Conv2d(c, code_dim, 3, padding=1)]
        self.post_encoder = nn.Sequential(*down)
        up: list[nn.Module] = [nn.Conv2d(code_dim, c, 3, padding=1), AttentionBlock(c)]
        up += [ResBottleneck(c) for _ in range(blocks)]
        if stride == 2:
            up += [nn.Conv2d(c, 4 * c, 3, padding=1), nn.PixelShuffle(2)]
            up += [ResBottleneck(c) for _ in range(blocks)]
        up.append(nn.Conv2d(c, latent_channels, 3, padding=1))
        self.upsampler = nn.Sequential(*up)
        self.register_buffer("codebook", torch.randn(vocab_size, code_dim))
        self.register_buffer("ema_count", torch.ones(vocab_size))
        self.register_buffer("ema_sum", self.codebook.clone())

    # -- the codec's operations ------------------------------------------------------------

    def encode_h(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled latent (B, 4, h_l, w_l) -> h (B, code_dim, h_l / stride, w_l / stride)."""
        return self.post_encoder(z)

    def nearest(self, h: torch.Tensor) -> torch.Tensor:
        """Index of the nearest codeword (Euclidean) of each position of h -> (B, gh, gw) int64;
        ties go to the lowest index."""
        flat = h.permute(0, 2, 3, 1).reshape(-1, h.shape[1]).float()
        code = self.codebook.float()
        dist = (flat * flat).sum(1, keepdim=True) - 2 * flat @ code.t() + (code * code).sum(1)[None]
        return dist.argmin(1).reshape(h.shape[0], h.shape[2], h.shape[3])

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Indices (B, gh, gw) -> h-hat (B, code_dim, gh, gw): the codewords."""
        return self.codebook[indices].permute(0, 3, 1, 2).contiguous()

    def tokenize(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled latent -> index map (B, gh, gw) int64 (K* of the paper)."""
        return self.nearest(self.encode_h(z))

    def dequantize(self, indices: torch.Tensor) -> torch.Tensor:
        """Index map (B, gh, gw) -> z-hat (B, 4, h_l, w_l), a scaled latent."""
        return self.upsampler(self.lookup(indices))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass: (h, indices, z-hat), z-hat made from the codewords with the
        straight-through estimator (gradients reach the post-encoder through h)."""
        h = self.encode_h(z)
        indices = self.nearest(h.detach())
        q = self.lookup(indices)
        q_st = h + (q - h).detach()
        return h, indices, self.upsampler(q_st)


# ---------------------------------------------------------------------------------------------
# UNet


def widen_conv_in(unet: Any, extra_channels: int, *, std: float = 0.0) -> Any:
    """``unet`` (a UNet2DConditionModel) with ``conv_in`` taking ``extra_channels`` more input
    channels, after its own: the old weights copied, the new ones zero (or normal with standard
    deviation ``std``, for tests that want the condition to matter untrained).  With zeros the
    widened UNet computes exactly what it did before, whatever the extra channels hold.  Updates
    ``unet.config.in_channels``; returns ``unet``."""
    old = unet.conv_in
    new = nn.Conv2d(
        old.in_channels + extra_channels,
        old.out_channels,
        old.kernel_size,
        stride=old.stride,
        padding=old.padding,
        dtype=old.weight.dtype,
        device=old.weight.device,
    )
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels] = old.weight
        if std:
            new.weight[:, old.in_channels :].normal_(0.0, std)
        if old.bias is not None and new.bias is not None:
            new.bias.copy_(old.bias)
    unet.conv_in = new
    unet.register_to_config(in_channels=old.in_channels + extra_channels)
    return unet


# ---------------------------------------------------------------------------------------------
# Frames


def frame_to_tensor(frame: np.ndarray, device: Any = "cpu", dtype: Any = None) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> (1, 3, H, W) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frame)).to(device).permute(2, 0, 1)[None].float()
    x = x / 127.5 - 1.0
    return x.to(dtype) if dtype is not None else x


def tensor_to_frame(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [-1, 1] -> RGB uint8 (H, W, 3)."""
    y = ((x[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return y.permute(1, 2, 0).cpu().numpy()


def _resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    import cv2

    shrink = width < frame.shape[1] or height < frame.shape[0]
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


# ---------------------------------------------------------------------------------------------
# The codec


class KeyframeCodec:
    """Encode keyframes to index maps and decode them with Stable Diffusion (module docs).

    Build it with :meth:`from_config`; parts load on first use (encoding needs only the VAE and
    the grid's tokenizer).  Models run on ``options.device`` in ``options.dtype`` (the tokenizer
    always in float32, so index maps do not depend on the dtype); with ``options.cpu_offload``
    they stay on the CPU and move to the device while they run (on the CPU device: nothing to
    do); with ``options.attention_slicing`` the UNet's attention is sliced
    (:func:`~.slicing.slice_attention`; the VAE's one-head attention on one frame has nothing
    to slice, nor its batch of one)."""

    def __init__(self, config: PackConfig, options: RuntimeOptions | None = None) -> None:
        from ..config import RuntimeOptions

        self.config = config
        self.options = options if options is not None else RuntimeOptions()
        self.device = torch_device(self.options)
        self.dtype = torch_dtype(self.options)
        settings = dict(DEFAULTS)
        settings.update(dict(config.settings.get("keyframe", {}) or {}))
        self.steps = int(settings["steps"])
        self.guidance = float(settings["guidance"])
        self.scheduler_name = str(settings["scheduler"]).lower()
        if self.scheduler_name not in SCHEDULERS:
            raise PackError(f"keyframe scheduler {self.scheduler_name!r} is not one of {', '.join(sorted(SCHEDULERS))}")
        if self.steps < 1:
            raise PackError(f"keyframe steps {self.steps} must be at least 1")
        self._parts: dict[str, Any] = {}

    @classmethod
    def from_config(cls, config: PackConfig, options: RuntimeOptions | None = None) -> KeyframeCodec:
        """The codec of ``config`` (see the module documentation for its components and
        settings); checks that the SD components are named, loads nothing yet."""
        missing = [n for n in ("vae", "text_encoder", "tokenizer", "scheduler") if n not in config.components]
        if missing:
            raise PackError(f"pack config for {config.pack_id!r} lacks the components {', '.join(missing)}")
        return cls(config, options)

    # -- loading -------------------------------------------------------------------------

    def load_component(self, name: str, loader: Any, what: str, *, trained: bool = False, **extra: Any) -> Any:
        if name not in self.config.components:
            if trained:
                raise PackError(
                    f"the pack config names no {name!r} (trained weights of the keyframe codec): "
                    "train them with tools/train_full.py or point --pack-config at a config that names them"
                )
            raise PackError(f"the pack config names no component {name!r}")
        comp = self.config.components[name]
        source = str(self.config.resolve(name, self.options.models_dir))
        kwargs: dict[str, Any] = dict(extra)
        if comp.subfolder:
            kwargs["subfolder"] = comp.subfolder
        if comp.revision:
            kwargs["revision"] = comp.revision
        try:
            model = load_model(loader, source, what=what, models_dir=self.options.models_dir, **kwargs)
        except ModelNotFoundError as err:
            if not trained:
                raise
            raise ModelNotFoundError(
                f"{err} (trained weights: train them with tools/train_full.py or point --pack-config "
                "at a config that names them)"
            ) from None
        if comp.sha256 and Path(source).exists():
            have = folder_digest(Path(source) / comp.subfolder if comp.subfolder else source)
            if have != comp.sha256:
                raise PackError(
                    f"{what} in {source}: weights digest {have[:16]}... is not the config's {comp.sha256[:16]}..."
                )
        return model

    def _model(
        self,
        name: str,
        loader: Any,
        what: str,
        *,
        trained: bool = False,
        float32: bool = False,
        dtype_kw: str = "torch_dtype",
        sliced: bool = False,
    ) -> Any:
        """Component ``name`` loaded (in the codec's dtype, or float32) and placed, once.
        ``dtype_kw``: the loader's dtype argument (diffusers ``torch_dtype``, transformers ``dtype``);
        ``sliced``: its attention sliced as ``options.attention_slicing`` says."""
        if name not in self._parts:
            dtype = torch.float32 if float32 else self.dtype
            model = self.load_component(name, loader, what, trained=trained, **{dtype_kw: dtype})
            model.requires_grad_(False)
            model.eval()
            if sliced and self.options.attention_slicing is not None:
                from .slicing import slice_attention

                slice_attention(model, self.options.attention_slicing)
            home = torch.device("cpu") if self.options.cpu_offload else self.device
            self._parts[name] = model.to(home)
        return self._parts[name]

    @contextlib.contextmanager
    def _running(self, model: Any) -> Iterator[Any]:
        """``model`` on the device while the block runs (moved back after with CPU offload)."""
        if not self.options.cpu_offload:
            yield model
            return
        model.to(self.device)
        try:
            yield model
        finally:
            model.to("cpu")

    def _check_grid(self, grid: str) -> int:
        if grid not in GRID_DOWNSAMPLE:
            raise PackError(f"keyframe codec: no grid {grid!r} (it has {', '.join(GRID_DOWNSAMPLE)})")
        return GRID_DOWNSAMPLE[grid]

    @property
    def vae(self) -> Any:
        from diffusers import AutoencoderKL

        return self._model("vae", AutoencoderKL.from_pretrained, "Stable Diffusion VAE")

    @property
    def text_encoder(self) -> Any:
        from transformers import CLIPTextModel

        return self._model(
            "text_encoder", CLIPTextModel.from_pretrained, "Stable Diffusion text encoder", dtype_kw="dtype"
        )

    @property
    def text_tokenizer(self) -> Any:
        if "tokenizer" not in self._parts:
            from transformers import CLIPTokenizer

            self._parts["tokenizer"] = self.load_component(
                "tokenizer", CLIPTokenizer.from_pretrained, "Stable Diffusion tokenizer"
            )
        return self._parts["tokenizer"]

    def scheduler(self) -> Any:
        """A fresh scheduler (its state is per decode) of the settings' kind, from the
        ``scheduler`` component's configuration."""
        import diffusers

        if "scheduler" not in self._parts:
            from diffusers import DDIMScheduler

            self._parts["scheduler"] = self.load_component(
                "scheduler", DDIMScheduler.load_config, "Stable Diffusion scheduler"
            )
        cls = getattr(diffusers, SCHEDULERS[self.scheduler_name])
        return cls.from_config(self._parts["scheduler"])

    def tokenizer(self, grid: str) -> KeyframeTokenizer:
        """Grid ``grid``'s trained KeyframeTokenizer (float32)."""
        self._check_grid(grid)
        name = tokenizer_component(grid)
        return self._model(
            name, KeyframeTokenizer.from_pretrained, f"keyframe tokenizer {grid}", trained=True, float32=True
        )

    def unet(self, grid: str) -> Any:
        """Grid ``grid``'s trained UNet (``conv_in`` widened)."""
        from diffusers import UNet2DConditionModel

        self._check_grid(grid)
        name = unet_component(self.config, grid)
        unet = self._model(
            name, UNet2DConditionModel.from_pretrained, f"keyframe UNet ({name})", trained=True, sliced=True
        )
        if unet.config.in_channels != 2 * unet.config.out_channels:
            raise PackError(
                f"keyframe UNet ({name}) takes {unet.config.in_channels} input channels, not "
                f"{2 * unet.config.out_channels}: it is not a UNet trained for the keyframe codec "
                "(train one with tools/train_full.py)"
            )
        return unet

    def load_all(self, grids: tuple[str, ...] = ("1/16", "1/8")) -> None:
        """Load every part now (for benchmarks and for failing early)."""
        _ = self.vae, self.text_encoder, self.text_tokenizer, self.scheduler()
        for g in grids:
            self.tokenizer(g)
            self.unet(g)

    # -- encode --------------------------------------------------------------------------

    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @torch.inference_mode()
    def latent(self, frame: np.ndarray) -> torch.Tensor:
        """RGB uint8 frame -> scaled SD latent (1, 4, H/8, W/8), float32 (the mean of the VAE's
        posterior: deterministic)."""
        vae = self.vae
        with self._running(vae):
            x = frame_to_tensor(frame, self.device, self.dtype)
            z = vae.encode(x).latent_dist.mode()
        return z.float() * self.scaling_factor()

    def grid_size(self, frame_shape: tuple[int, ...], grid: str) -> tuple[int, int]:
        ds = self._check_grid(grid)
        gh, gw = frame_shape[0] // ds, frame_shape[1] // ds
        if gh < 1 or gw < 1:
            raise PackError(f"frame {frame_shape[1]}x{frame_shape[0]} is smaller than one cell of grid {grid}")
        return gh, gw

    @torch.inference_mode()
    def encode(self, frame: np.ndarray, grid_name: str) -> np.ndarray:
        """RGB uint8 frame (H, W, 3) -> int64 index map (H // ds, W // ds) for grid ``grid_name``
        (ds = 16 or 8; the frame is resized to a whole number of cells first if it is not one)."""
        gh, gw = self.grid_size(frame.shape, grid_name)
        ds = GRID_DOWNSAMPLE[grid_name]
        frame = _resize(np.asarray(frame, dtype=np.uint8), gw * ds, gh * ds)
        z = self.latent(frame)
        tok = self.tokenizer(grid_name)
        with self._running(tok):
            idx = tok.tokenize(z.to(self.device))
        out = idx[0].cpu().numpy().astype(np.int64)
        if out.shape != (gh, gw):
            raise PackError(f"keyframe tokenizer {grid_name} made a {out.shape} map for a {gh}x{gw} grid")
        return out

    # -- decode --------------------------------------------------------------------------

    @torch.inference_mode()
    def text_embeddings(self, text: str) -> torch.Tensor:
        """(2, L, D) with classifier-free guidance (the empty prompt's states first), else (1, L, D)."""
        tok = self.text_tokenizer
        prompts = ["", text] if self.guidance > 1.0 else [text]
        ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
        enc = self.text_encoder
        with self._running(enc):
            states = enc(ids.input_ids.to(self.device))[0]
        return states.to(self.dtype)

    @torch.inference_mode()
    def z_hat(self, indices: np.ndarray, grid_name: str) -> torch.Tensor:
        """Index map -> z-hat (1, 4, h_l, w_l), float32."""
        tok = self.tokenizer(grid_name)
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 2:
            raise PackError(f"keyframe index map must be 2-D, not {idx.shape}")
        vocab = int(tok.codebook.shape[0])
        if idx.size and (idx.min() < 0 or idx.max() >= vocab):
            raise PackError(f"keyframe index map has values outside 0..{vocab - 1}")
        with self._running(tok):
            return tok.dequantize(torch.from_numpy(idx)[None].to(self.device))

    @torch.inference_mode()
    def decode(self, indices: np.ndarray, grid_name: str, text: str, seed: int, *, progress: Any = None) -> np.ndarray:
        """Index map + keyframe description + seed -> RGB uint8 frame (gh * ds, gw * ds, 3).

        ``progress``: optional callable ``(step, steps)`` called after each denoising step."""
        self._check_grid(grid_name)
        cond = self.z_hat(indices, grid_name).to(self.dtype)
        states = self.text_embeddings(text)
        unet = self.unet(grid_name)
        sched = self.scheduler()
        sched.set_timesteps(self.steps, device=self.device)
        gen = torch.Generator(device=self.device).manual_seed(int(seed) & 0xFFFFFFFFFFFFFFFF)
        latents = torch.randn(cond.shape, generator=gen, device=self.device, dtype=torch.float32)
        latents = (latents * sched.init_noise_sigma).to(self.dtype)
        cfg = self.guidance > 1.0
        cond_in = torch.cat([cond, cond]) if cfg else cond
        step_kwargs: dict[str, Any] = {}
        import inspect

        if "generator" in inspect.signature(sched.step).parameters:
            step_kwargs["generator"] = gen
        with self._running(unet):
            for i, t in enumerate(sched.timesteps):
                x = torch.cat([latents, latents]) if cfg else latents
                x = sched.scale_model_input(x, t)
                eps = unet(torch.cat([x, cond_in], dim=1), t, encoder_hidden_states=states).sample
                if cfg:
                    uncond, textual = eps.chunk(2)
                    eps = uncond + self.guidance * (textual - uncond)
                latents = sched.step(eps, t, latents, **step_kwargs).prev_sample
                if progress is not None:
                    progress(i + 1, len(sched.timesteps))
        vae = self.vae
        with self._running(vae):
            image = vae.decode(latents.to(self.dtype) / self.scaling_factor()).sample
        return tensor_to_frame(image)
