"""Motion magnitude for keyframe selection: RAFT where torchvision imports, else OpenCV DIS.

**The magnitude, exactly** (the same definition as the lite pack's scorer,
:mod:`m3cvc_codec.packs.lite.motion`, so ``lambda2`` means the same with either): for frames
``F_l`` (before) and ``F_n`` (after) at the coding size W x H, the mean over pixels of the
end-point length ``sqrt(u^2 + v^2)`` of the optical flow from ``F_l`` to ``F_n``, in pixels of
the coding size.  The flow is computed at a smaller *working size* w x h (longer side at most
``side``) and its components are scaled back by the size ratio per axis (u by W/w, v by H/h)
before the length is taken: a 3-pixel pan of the coding-size frames measures 3.0 whatever the
working size.

Backends (``backend=``):

- ``"raft_large"`` / ``"raft_small"``: torchvision's RAFT (``torchvision.models.optical_flow``),
  12 flow updates, the last prediction, float32.  Weights are the torchvision release ones
  (``Raft_Large_Weights.DEFAULT`` / ``Raft_Small_Weights.DEFAULT``) read from a local file,
  never downloaded here: the models folder (``--models DIR``: ``DIR/torchvision/<file>`` or
  ``DIR/<file>``) or torch's hub cache (``$TORCH_HOME/hub/checkpoints/<file>``, where
  torchvision itself keeps them).  Working sizes are multiples of 8 with the shorter side at
  least 128 (RAFT's minimum).
- ``"dis"``: OpenCV's DIS flow, preset medium, on grey frames.  Frames with a side under 16
  (too small for DIS's pyramid) get the mean absolute grey difference / 255, as in the lite pack.
- ``"auto"`` (default): ``raft_large`` when torchvision imports and its weights are local, else
  ``dis``, with ONE logged line (logger ``m3cvc_codec``) saying why RAFT is not used.

Everything here is deterministic for a given backend and device.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .hub import ModelError, ModelNotFoundError

if TYPE_CHECKING:
    from ..packs.config import RuntimeOptions

__all__ = ["BACKENDS", "FLOW_SIDE", "FlowFeature", "FlowMagnitude", "RaftUnavailable", "working_size"]

log = logging.getLogger("m3cvc_codec")

#: Longer side of the working size flow is measured at (default).
FLOW_SIDE = 256
#: RAFT's smallest input side (torchvision's ``min_size`` meta) and its size multiple.
RAFT_MIN_SIDE = 128
BACKENDS = ("auto", "raft_large", "raft_small", "dis")


class RaftUnavailable(ModelError):
    """torchvision does not import here (``auto`` falls back to DIS on this, and on missing
    weights; a bad device or a damaged weights file stays an error)."""


class FlowFeature(np.ndarray):
    """A frame at the working size (grey uint8 h x w for DIS, RGB uint8 h x w x 3 for RAFT)
    that knows the coding size it stands for: :attr:`frame_size` = (W, H)."""

    frame_size: tuple[int, int] = (0, 0)

    def __array_finalize__(self, obj: Any) -> None:
        self.frame_size = getattr(obj, "frame_size", (0, 0))


def working_size(width: int, height: int, side: int, multiple: int = 1, min_side: int = 16) -> tuple[int, int]:
    """(w, h) for a W x H frame: the longer side at most ``side`` (never upscaled unless the
    shorter side would fall under ``min_side``), each a multiple of ``multiple``."""
    scale = min(1.0, side / max(width, height))
    if min(width, height) * scale < min_side:
        scale = min_side / min(width, height)
    w = max(multiple, round(width * scale / multiple) * multiple)
    h = max(multiple, round(height * scale / multiple) * multiple)
    return w, h


def _dis_medium():
    import cv2

    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def _raft_weights(builder: str) -> Any:
    from torchvision.models import optical_flow as of

    enum = of.Raft_Large_Weights if builder == "raft_large" else of.Raft_Small_Weights
    return enum.DEFAULT


def _weights_file(filename: str, models_dir: str | None) -> tuple[Path | None, list[Path]]:
    """The local RAFT weights file, and the places looked in."""
    places: list[Path] = []
    if models_dir is not None:
        root = Path(models_dir).expanduser()
        places += [root / "torchvision" / filename, root / filename]
    import torch

    places.append(Path(torch.hub.get_dir()) / "checkpoints" / filename)
    for p in places:
        if p.is_file():
            return p, places
    return None, places


class FlowMagnitude:
    """Mean optical-flow end-point length between frames, in coding-size pixels (module docs).

    ``motion_features(frames)`` keeps each frame at the working size; ``motion(before, after)``
    measures the flow from ``before[i]`` to ``after[i]`` in batches of :attr:`batch` pairs.
    :attr:`backend` is the backend in use (``raft_large``, ``raft_small`` or ``dis``)."""

    def __init__(
        self,
        backend: str = "auto",
        options: RuntimeOptions | None = None,
        *,
        side: int = FLOW_SIDE,
        batch: int | None = None,
        flow_updates: int = 12,
    ) -> None:
        if backend not in BACKENDS:
            raise ModelError(f"flow backend {backend!r} is not one of {', '.join(BACKENDS)}")
        if not isinstance(side, int) or side < 16:
            raise ModelError(f"flow working side {side!r} must be an integer of at least 16")
        self.options = options
        self.side = side
        self.flow_updates = flow_updates
        self._model: Any = None
        self._device: Any = None
        self._dis: Any = None
        self.backend = self._resolve(backend)
        # RAFT gains from batching pairs (most on a GPU); DIS runs pair by pair anyway.
        self.batch = batch if batch is not None else (8 if self.backend != "dis" else 1)

    # -- backend --------------------------------------------------------------------------

    def _resolve(self, backend: str) -> str:
        if backend == "dis":
            return "dis"
        builder = "raft_large" if backend == "auto" else backend
        try:
            self._load_raft(builder)
        except (RaftUnavailable, ModelNotFoundError) as err:
            if backend != "auto":
                raise
            log.warning("RAFT is unavailable (%s); measuring motion with OpenCV DIS (preset medium)", err)
            return "dis"
        return builder

    def _load_raft(self, builder: str) -> None:
        try:
            import torch
            from torchvision.models import optical_flow as of
        except Exception as err:  # torchvision's compiled part can fail with OSError/RuntimeError too
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise RaftUnavailable(f"torchvision does not import: {first}") from None
        from .hub import torch_device

        self._device = torch_device(self.options)  # a bad device is an error, never a fallback
        weights = _raft_weights(builder)
        filename = os.path.basename(str(weights.url))
        models_dir = self.options.models_dir if self.options is not None else None
        path, places = _weights_file(filename, models_dir)
        if path is None:
            raise ModelNotFoundError(
                f"{builder} weights {filename} are not in {' or '.join(str(p.parent) for p in places)}: "
                f"download {weights.url} into one of them"
            )
        model = getattr(of, builder)(weights=None, progress=False)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except (OSError, RuntimeError, ValueError, KeyError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ModelError(f"{builder} weights {str(path)!r} could not be loaded: {first}") from None
        self._model = model.eval().to(self._device)

    def metadata(self) -> dict[str, Any]:
        """What a stream records about the flow: backend and working side."""
        name = "dis-medium" if self.backend == "dis" else self.backend
        return {"flow": name, "flow_side": self.side}

    # -- features -------------------------------------------------------------------------

    def motion_features(self, frames: np.ndarray) -> list[np.ndarray]:
        """One :class:`FlowFeature` per frame of ``frames`` (N x H x W x 3 uint8, or one frame)."""
        import cv2

        x = np.asarray(frames)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ModelError(f"flow: motion_features takes N x H x W x 3 uint8 frames, got {x.shape}")
        out: list[np.ndarray] = []
        for rgb in x:
            height, width = rgb.shape[:2]
            rgb = np.ascontiguousarray(rgb)
            if self.backend == "dis":
                small = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
                w, h = working_size(width, height, self.side, 1, min(16, width, height))
            else:
                small = rgb
                w, h = working_size(width, height, self.side, 8, RAFT_MIN_SIDE)
            if (w, h) != (width, height):
                shrink = w < width and h < height
                small = cv2.resize(small, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
            feature = np.ascontiguousarray(small).view(FlowFeature)
            feature.frame_size = (width, height)
            out.append(feature)
        return out

    # -- magnitudes -----------------------------------------------------------------------

    def motion(self, before: Sequence[np.ndarray], after: Sequence[np.ndarray]) -> np.ndarray:
        """N magnitudes (float64): mean end-point length of the flow from ``before[i]`` to
        ``after[i]`` (features of :meth:`motion_features`), in coding-size pixels."""
        if len(before) != len(after):
            raise ModelError(f"flow: {len(before)} features before, {len(after)} after")
        for a, b in zip(before, after):
            if np.shape(a) != np.shape(b):
                raise ModelError(f"flow: features of different sizes {np.shape(a)} and {np.shape(b)}")
        if self.backend == "dis":
            return self._motion_dis(before, after)
        out = np.empty(len(before), np.float64)
        for s in range(0, len(before), self.batch):
            out[s : s + self.batch] = self._motion_raft(before[s : s + self.batch], after[s : s + self.batch])
        return out

    @staticmethod
    def _ratios(feature: np.ndarray) -> tuple[float, float]:
        width, height = getattr(feature, "frame_size", (0, 0))
        h, w = feature.shape[:2]
        return (width / w if width else 1.0), (height / h if height else 1.0)

    def _motion_dis(self, before: Sequence[np.ndarray], after: Sequence[np.ndarray]) -> np.ndarray:

        out = np.empty(len(before), np.float64)
        for i, (a, b) in enumerate(zip(before, after)):
            sx, sy = self._ratios(b)
            ga, gb = np.asarray(a), np.asarray(b)
            if min(ga.shape[:2]) < 16:  # too small for DIS's pyramid (as the lite pack)
                out[i] = float(np.abs(ga.astype(np.float32) - gb.astype(np.float32)).mean()) / 255.0
                continue
            if self._dis is None:
                self._dis = _dis_medium()
            flow = self._dis.calc(ga, gb, None).astype(np.float64)
            out[i] = float(np.hypot(flow[..., 0] * sx, flow[..., 1] * sy).mean())
        return out

    def _motion_raft(self, before: Sequence[np.ndarray], after: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        def tensor(frames: Sequence[np.ndarray]) -> Any:
            x = torch.from_numpy(np.stack([np.asarray(f) for f in frames])).permute(0, 3, 1, 2)
            return (x.float() / 127.5 - 1.0).to(self._device)  # what the weights' transforms do: [-1, 1]

        ratios = torch.tensor([self._ratios(b) for b in after], dtype=torch.float64)
        with torch.inference_mode():
            flow = self._model(tensor(before), tensor(after), num_flow_updates=self.flow_updates)[-1]
            flow = flow.double().cpu() * ratios[:, :, None, None]  # (u, v) scaled to coding pixels
            return torch.hypot(flow[:, 0], flow[:, 1]).mean(dim=(1, 2)).numpy()
