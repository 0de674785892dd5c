"""Distortion metrics for the rate-distortion benchmark: PSNR (RGB or luma) and MS-SSIM (luma).

Conventions (the same for every codec in ``bench_rd.py``):

- Frames are RGB ``uint8`` (H x W x 3) or a single plane (H x W); arithmetic is in float64.
- **Luma** is BT.601 full-range: ``Y = 0.299 R + 0.587 G + 0.114 B`` on the 0..255 scale, kept
  as float (not rounded), so a codec is not charged for a rounding step it did not make.
- **PSNR** = ``10 log10(255^2 / MSE)``; for RGB the MSE is over all three channels together.
  Identical frames give ``inf``.  ``bench_rd.py`` averages PSNR per frame (mean of the
  per-frame dB values), the usual convention in learned-video-codec papers.
- **MS-SSIM** follows Wang, Simoncelli & Bovik, "Multi-scale structural similarity for image
  quality assessment" (Asilomar 2003), as in their reference ``msssim.m``: 5 scales, an 11x11
  Gaussian window with sigma 1.5 applied without padding ("valid"), K1 = 0.01, K2 = 0.03,
  L = 255, exponents (0.0448, 0.2856, 0.3001, 0.2363, 0.1333); contrast-structure at every
  scale, luminance only at the coarsest; between scales a 2x2 average then dropping every other
  pixel (a 2x2 box average for even sizes, which is what 512x320 gives at every scale:
  512x320, 256x160, 128x80, 64x40, 32x20).  One deviation, shared with the common
  implementations (tf.image.ssim_multiscale, pytorch-msssim): a negative mean
  contrast-structure term at some scale (possible only for very poor reconstructions) is
  clamped to 0 before the fractional power, so the result is always a real number in [0, 1].

The paper's own metrics (section III-A), which need the ``full`` extra (torch; transformers for
CLIP-sim) and are imported lazily:

- **LPIPS** (Zhang et al. 2018, v0.1, AlexNet trunk; :class:`Lpips`): frames to [-1, 1]
  (``x / 127.5 - 1``), LPIPS's scaling layer (shift ``(-.030, -.088, -.188)``, scale
  ``(.458, .448, .450)``), AlexNet's five ReLU outputs, each unit-normalised over channels
  (``f / (||f|| + 1e-10)``), squared difference, LPIPS's 1x1 linear head, spatial mean, summed over
  the five layers.  Lower is better; identical frames give 0.  Where the ``lpips`` package and
  torchvision both import, the distance is computed by ``lpips.LPIPS(net="alex")`` itself; elsewhere
  (torchvision does not import on CPU-only machines) by the same AlexNet stack built in plain torch
  (layer names and shapes of torchvision's ``alexnet().features``).  Either way, the weights come from
  local files, never a download (:func:`lpips_weight_files`): torchvision's ImageNet AlexNet
  ``alexnet-owt-7be5be79.pth`` and LPIPS's linear heads ``alex.pth`` (v0.1), which ship inside the
  ``lpips`` wheel (found without importing it).
- **CLIP-sim** (:class:`ClipSimilarity`): the cosine of the CLIP image features
  (:class:`m3cvc_codec.models.clip.ClipEmbedder`, default ViT-B/32, found like every model of the
  codec: id, local folder, ``--models DIR``) of the original and the decoded frame.  Higher is
  better; identical frames give 1.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:
    from .packs.config import RuntimeOptions

log = logging.getLogger("m3cvc_codec")

__all__ = [
    "LPIPS_BACKBONE_FILE",
    "LPIPS_LINEAR_FILE",
    "MS_SSIM_WEIGHTS",
    "ClipSimilarity",
    "Lpips",
    "lpips_weight_files",
    "luma",
    "ms_ssim",
    "mse",
    "psnr",
    "psnr_rgb",
    "psnr_y",
    "ssim_maps",
]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_K1, _K2, _L = 0.01, 0.03, 255.0
_WIN, _SIGMA = 11, 1.5
_G = cv2.getGaussianKernel(_WIN, _SIGMA, cv2.CV_64F)  # normalised 11x1 column


def luma(frame: np.ndarray) -> np.ndarray:
    """BT.601 luma (float64, 0..255) of an RGB frame; a 2-D plane is returned as float64."""
    x = np.asarray(frame)
    if x.ndim == 2:
        return x.astype(np.float64)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"expected H x W x 3 RGB or an H x W plane, got shape {x.shape}")
    x = x.astype(np.float64)
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"frames differ in shape: {a.shape} vs {b.shape}")
    return a.astype(np.float64), b.astype(np.float64)


def mse(a, b) -> float:
    a, b = _pair(a, b)
    return float(np.mean((a - b) ** 2))


def psnr(a, b, peak: float = 255.0) -> float:
    """PSNR in dB over every sample of ``a`` and ``b`` (inf when identical)."""
    e = mse(a, b)
    return math.inf if e == 0 else 10.0 * math.log10(peak * peak / e)


def psnr_rgb(ref: np.ndarray, dist: np.ndarray) -> float:
    """PSNR over the three RGB channels together."""
    return psnr(ref, dist)


def psnr_y(ref: np.ndarray, dist: np.ndarray) -> float:
    """PSNR of BT.601 luma (float, unrounded)."""
    return psnr(luma(ref), luma(dist))


def _filt(x: np.ndarray) -> np.ndarray:
    """Gaussian 11/1.5 filter, 'valid' part only (no padding effects)."""
    h = _WIN // 2
    y = cv2.sepFilter2D(x, cv2.CV_64F, _G, _G, borderType=cv2.BORDER_REFLECT)
    return y[h:-h, h:-h]


def ssim_maps(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(mean luminance term, mean contrast-structure term) of two float64 planes."""
    if min(x.shape) < _WIN:
        raise ValueError(f"plane {x.shape} is smaller than the {_WIN}x{_WIN} window")
    c1, c2 = (_K1 * _L) ** 2, (_K2 * _L) ** 2
    mx, my = _filt(x), _filt(y)
    sxx = _filt(x * x) - mx * mx
    syy = _filt(y * y) - my * my
    sxy = _filt(x * y) - mx * my
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    return float(lum.mean()), float(cs.mean())


def _down2(x: np.ndarray) -> np.ndarray:
    """2x2 average, then every other pixel (msssim.m's lowpass + downsample)."""
    h, w = x.shape
    # pad odd sizes by repeating the last row/column (msssim.m's 'symmetric' border)
    if h % 2:
        x = np.vstack([x, x[-1:]])
    if w % 2:
        x = np.hstack([x, x[:, -1:]])
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def ms_ssim(ref: np.ndarray, dist: np.ndarray, weights=MS_SSIM_WEIGHTS) -> float:
    """MS-SSIM of the BT.601 luma of two RGB frames (or of two planes); 1.0 when identical.

    The coarsest scale must still hold an 11x11 window: at 5 scales the frames need at least
    176 pixels on each side (512x320 is fine)."""
    x, y = _pair(luma(ref), luma(dist))
    n = len(weights)
    need = _WIN * 2 ** (n - 1)
    if min(x.shape) < need:
        raise ValueError(f"MS-SSIM with {n} scales needs at least {need} pixels a side, got {x.shape}")
    value = 1.0
    for j, w in enumerate(weights):
        lum, cs = ssim_maps(x, y)
        if j == n - 1:
            value *= max(lum * cs, 0.0) ** w  # lum in (0, 1]; clamp only matters via cs
        else:
            value *= max(cs, 0.0) ** w
            x, y = _down2(x), _down2(y)
    return float(value)


# ============================================================================ LPIPS

#: torchvision's ImageNet AlexNet (``AlexNet_Weights.IMAGENET1K_V1``): LPIPS's trunk.
LPIPS_BACKBONE_FILE = "alexnet-owt-7be5be79.pth"
LPIPS_BACKBONE_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
#: LPIPS v0.1's linear heads for the AlexNet trunk (``lpips/weights/v0.1/alex.pth`` in its wheel).
LPIPS_LINEAR_FILE = "alex.pth"
#: The environment variable naming a folder that holds either file.
LPIPS_WEIGHTS_ENV = "M3CVC_LPIPS_WEIGHTS"
#: Channels of the five AlexNet layers LPIPS compares.
LPIPS_CHANNELS = (64, 192, 384, 256, 256)
#: torchvision's ``alexnet().features``: (index, in, out, kernel, stride, padding) of its convs;
#: a ReLU follows each, max-pooling (3, stride 2) follows the first two.  LPIPS taps the ReLUs.
_ALEX_CONVS = (
    (0, 3, 64, 11, 4, 2),
    (3, 64, 192, 5, 1, 2),
    (6, 192, 384, 3, 1, 1),
    (8, 384, 256, 3, 1, 1),
    (10, 256, 256, 3, 1, 1),
)
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)
LPIPS_BACKENDS = ("auto", "lpips", "torch")


def _lpips_package_weights() -> Path | None:
    """LPIPS's linear heads inside the installed ``lpips`` package, found without importing it
    (its ``__init__`` imports torchvision)."""
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / "weights" / "v0.1" / LPIPS_LINEAR_FILE
        if path.is_file():
            return path
    return None


def lpips_weight_files(
    weights_dir: str | os.PathLike[str] | None = None, models_dir: str | os.PathLike[str] | None = None
) -> tuple[Path, Path]:
    """(AlexNet trunk file, linear-heads file) for LPIPS, from local files only.

    The trunk ``alexnet-owt-7be5be79.pth`` is looked for in ``weights_dir`` (else the folder
    ``$M3CVC_LPIPS_WEIGHTS`` names), then the models folder (``DIR/torchvision/``, ``DIR/``, as
    for RAFT), then torch's hub cache (``$TORCH_HOME/hub/checkpoints/``, where torchvision keeps it).
    The heads ``alex.pth`` in ``weights_dir``, ``DIR/lpips/``, then the installed ``lpips``
    package.  A missing file is one ModelNotFoundError line naming it and how to get it."""
    from .models.hub import ModelNotFoundError

    given = weights_dir if weights_dir is not None else os.environ.get(LPIPS_WEIGHTS_ENV) or None
    folders = [Path(given).expanduser()] if given is not None else []
    models = Path(models_dir).expanduser() if models_dir is not None else None
    trunk_places = [f / LPIPS_BACKBONE_FILE for f in folders]
    head_places = [f / LPIPS_LINEAR_FILE for f in folders]
    if models is not None:
        trunk_places += [models / "torchvision" / LPIPS_BACKBONE_FILE, models / LPIPS_BACKBONE_FILE]
        head_places.append(models / "lpips" / LPIPS_LINEAR_FILE)
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch"
    )
    trunk_places.append(Path(torch_home) / "hub" / "checkpoints" / LPIPS_BACKBONE_FILE)
    trunk = next((p for p in trunk_places if p.is_file()), None)
    if trunk is None:
        where = given or (f"{models}/torchvision" if models is not None else f"${LPIPS_WEIGHTS_ENV}")
        raise ModelNotFoundError(
            f"LPIPS needs torchvision's AlexNet weights {LPIPS_BACKBONE_FILE}, not found "
            f"(looked in {', '.join(str(p.parent) for p in trunk_places)}): download {LPIPS_BACKBONE_URL} "
            f"on a machine with network and put it in {where}"
        )
    head = next((p for p in head_places if p.is_file()), None) or _lpips_package_weights()
    if head is None:
        raise ModelNotFoundError(
            f"LPIPS needs its linear heads {LPIPS_LINEAR_FILE} (v0.1), not found: `pip install --no-deps lpips` "
            f"(the file ships in its wheel as lpips/weights/v0.1/{LPIPS_LINEAR_FILE}) or put it in "
            f"{given or (str(models / 'lpips') if models is not None else '$' + LPIPS_WEIGHTS_ENV)}"
        )
    return trunk, head


def _load_state(path: Path, what: str) -> dict[str, Any]:
    import torch

    from .models.hub import ModelError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come as many types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"{what} {path} does not load: {first}") from None
    if not isinstance(state, dict):
        raise ModelError(f"{what} {path} is not a state dict")
    return state


def _check_shapes(state: dict[str, Any], expected: dict[str, tuple[int, ...]], path: Path, what: str) -> None:
    from .models.hub import ModelError

    for key, shape in expected.items():
        if key not in state:
            raise ModelError(f"{what} {path} has no {key!r}: it is not {what}")
        if tuple(state[key].shape) != shape:
            raise ModelError(f"{what} {path}: {key} has shape {tuple(state[key].shape)}, expected {shape}")


def _trunk_shapes() -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for index, cin, cout, k, _, _ in _ALEX_CONVS:
        out[f"features.{index}.weight"] = (cout, cin, k, k)
        out[f"features.{index}.bias"] = (cout,)
    return out


def _head_shapes() -> dict[str, tuple[int, ...]]:
    return {f"lin{k}.model.1.weight": (1, c, 1, 1) for k, c in enumerate(LPIPS_CHANNELS)}


def alexnet_features() -> Any:
    """torchvision's ``alexnet().features`` up to its last ReLU (index 11), in plain torch: the
    same module indices, so its state dict (``features.N.*``) loads as is."""
    from torch import nn

    layers: list[nn.Module] = []
    for index, cin, cout, k, stride, pad in _ALEX_CONVS:
        while len(layers) < index:  # the max-pool between blocks (indices 2 and 5)
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
        layers += [nn.Conv2d(cin, cout, kernel_size=k, stride=stride, padding=pad), nn.ReLU(inplace=False)]
    return nn.Sequential(*layers)


#: Indices of the ReLUs whose outputs LPIPS compares (lpips' slice1..slice5 ends).
_TAPS = (1, 4, 7, 9, 11)


class Lpips:
    """LPIPS v0.1 (AlexNet) distance per frame pair: ``lpips(ref, dist) -> float64 (N,)``.

    ``ref`` and ``dist`` are RGB uint8 frames (N x H x W x 3, or one H x W x 3).  ``backend``:
    ``"lpips"`` (the ``lpips`` package; needs torchvision), ``"torch"`` (the same network in plain
    torch), ``"auto"`` (``lpips`` where it and torchvision import, else ``torch``); :attr:`backend`
    says which is in use.  Weights: :func:`lpips_weight_files`.  ``batch`` pairs at a time."""

    def __init__(
        self,
        weights_dir: str | os.PathLike[str] | None = None,
        options: RuntimeOptions | None = None,
        *,
        backend: str = "auto",
        batch: int = 8,
    ) -> None:
        from .models.hub import ModelError, require_full, torch_device

        if backend not in LPIPS_BACKENDS:
            raise ModelError(f"LPIPS backend {backend!r} is not one of {', '.join(LPIPS_BACKENDS)}")
        require_full("LPIPS")
        import torch

        self.device = torch_device(options)
        self.batch = batch
        self.trunk_file, self.head_file = lpips_weight_files(weights_dir, options.models_dir if options else None)
        trunk = _load_state(self.trunk_file, "torchvision's AlexNet weights")
        _check_shapes(trunk, _trunk_shapes(), self.trunk_file, "torchvision's AlexNet weights")
        heads = _load_state(self.head_file, "LPIPS's linear heads")
        _check_shapes(heads, _head_shapes(), self.head_file, "LPIPS's linear heads")
        self.backend = backend
        if backend == "auto":
            self.backend = "torch"
            if _lpips_package_imports():
                try:
                    self._net = self._build_package_model(trunk)
                    self.backend = "lpips"
                except Exception as err:  # an lpips/torchvision pair that does not fit: same numbers in torch
                    log.info("LPIPS: the lpips package does not build here (%s); using the plain-torch AlexNet", err)
        elif backend == "lpips":
            if not _lpips_package_imports():
                raise ModelError("LPIPS backend 'lpips' needs the lpips package and torchvision to import")
            self._net = self._build_package_model(trunk)
        if self.backend == "torch":
            self._features = alexnet_features()
            self._features.load_state_dict({k.removeprefix("features."): trunk[k] for k in _trunk_shapes()})
            self._features.eval().to(self.device)
            self._heads = [heads[f"lin{k}.model.1.weight"].float().to(self.device) for k in range(len(LPIPS_CHANNELS))]
            self._shift = torch.tensor(_LPIPS_SHIFT, device=self.device).view(1, 3, 1, 1)
            self._scale = torch.tensor(_LPIPS_SCALE, device=self.device).view(1, 3, 1, 1)

    def _build_package_model(self, trunk: dict[str, Any]) -> Any:
        """``lpips.LPIPS(net="alex")`` with a randomly initialised trunk (so torchvision downloads
        nothing), then the local AlexNet weights put into its five slices."""
        import lpips

        net = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, model_path=str(self.head_file), verbose=False)
        mapped = {}
        for name, _ in net.net.named_parameters():  # "slice2.3.weight" is features.3.weight
            _, index, kind = name.split(".")
            mapped[name] = trunk[f"features.{index}.{kind}"]
        net.net.load_state_dict(mapped)
        return net.eval().to(self.device)

    def _to_tensor(self, frames: np.ndarray) -> Any:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).permute(0, 3, 1, 2).float()
        return x / 127.5 - 1.0  # lpips.im2tensor: image / (255 / 2) - 1

    def _distance(self, x0: Any, x1: Any) -> Any:
        """LPIPS of two [-1, 1] batches, N values (the reference formulation, module docs)."""
        import torch

        if self.backend == "lpips":
            return self._net(x0, x1).flatten()
        feats = []
        for x in (x0, x1):
            h = (x - self._shift) / self._scale
            taps = []
            for index, layer in enumerate(self._features):
                h = layer(h)
                if index in _TAPS:
                    taps.append(h / (torch.sqrt(torch.sum(h * h, dim=1, keepdim=True)) + 1e-10))
            feats.append(taps)
        total = torch.zeros(x0.shape[0], device=x0.device)
        for f0, f1, w in zip(feats[0], feats[1], self._heads):
            total = total + torch.nn.functional.conv2d((f0 - f1) ** 2, w).mean(dim=(1, 2, 3))
        return total

    def __call__(self, ref: np.ndarray, dist: np.ndarray) -> np.ndarray:
        import torch

        a, b = np.asarray(ref), np.asarray(dist)
        a, b = (a[None] if a.ndim == 3 else a), (b[None] if b.ndim == 3 else b)
        if a.shape != b.shape or a.ndim != 4 or a.shape[-1] != 3:
            raise ValueError(f"LPIPS takes two N x H x W x 3 RGB batches of one shape, got {a.shape} and {b.shape}")
        out = np.empty(len(a), np.float64)
        with torch.inference_mode():
            for s in range(0, len(a), self.batch):
                d = self._distance(self._to_tensor(a[s : s + self.batch]), self._to_tensor(b[s : s + self.batch]))
                out[s : s + len(d)] = d.double().cpu().numpy()
        return out


def _lpips_package_imports() -> bool:
    """True when ``import lpips`` works (it imports torchvision, which fails on CPU-only
    machines with more than ImportError)."""
    if importlib.util.find_spec("lpips") is None:
        return False
    try:
        import lpips  # noqa: F401
    except Exception:
        return False
    return True


# ============================================================================ CLIP-sim


class ClipSimilarity:
    """CLIP-sim per frame pair: ``clip_sim(ref, dist) -> float64 (N,)``, the cosine of the CLIP
    image features of each original and decoded frame.  ``model_id`` and ``options`` (device,
    dtype, ``models_dir``) as for :class:`m3cvc_codec.models.clip.ClipEmbedder`, which it uses."""

    def __init__(self, model_id: str | None = None, options: RuntimeOptions | None = None, *, batch: int = 16) -> None:
        from .models.clip import DEFAULT_CLIP, ClipEmbedder

        self.embedder = ClipEmbedder(model_id or DEFAULT_CLIP, options, batch=batch)
        self.model_id = self.embedder.model_id

    def __call__(self, ref: np.ndarray, dist: np.ndarray) -> np.ndarray:
        a, b = np.asarray(ref), np.asarray(dist)
        if a.shape != b.shape:
            raise ValueError(f"CLIP-sim takes two batches of one shape, got {a.shape} and {b.shape}")
        fa = self.embedder.embed(a).astype(np.float64)
        fb = self.embedder.embed(b).astype(np.float64)
        na, nb = np.linalg.norm(fa, axis=1), np.linalg.norm(fb, axis=1)
        return np.sum(fa * fb, axis=1) / np.maximum(na * nb, 1e-12)
