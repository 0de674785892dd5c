"""A tiny deterministic pack for the pipeline's tests, standing in for ``lite``.

Keyframe codec: block averages on the grid, each quantised to the nearest colour of a fixed
256-colour palette (8 x 8 x 4 levels of R, G, B); decoding paints the palette colours back and
smooths them up to full size.  ``embed`` is a normalised 4x4x4 colour histogram.  Clips
and motion are the lite pack's (DIS flow: m3cvc_codec.packs.lite.reconstruct and .motion),
which need no weights.

Use the ``fake_pack`` fixture (import it in a test module) to register it: it monkeypatches
``m3cvc_codec.packs.load_pack`` so the ids ``test.fake`` and ``lite`` resolve to it.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from m3cvc_codec.packs import GridSpec, Pack, PackConfig, PackError
from m3cvc_codec.packs.lite import motion as lite_motion
from m3cvc_codec.packs.lite.reconstruct import interpolate_clip, predict_clip

_LEVELS = (np.arange(8) * 255 // 7, np.arange(8) * 255 // 7, np.arange(4) * 255 // 3)
PALETTE = np.array([(r, g, b) for r in _LEVELS[0] for g in _LEVELS[1] for b in _LEVELS[2]], np.float32)


class FakePack(Pack):
    pack_id = "test.fake"
    grids = (GridSpec("1/16", 16, 256), GridSpec("1/8", 8, 256))

    def __init__(self, pack_id: str = "test.fake", salt: bytes = b""):
        self.pack_id = pack_id  # the instance answers to "lite" too (see install)
        super().__init__(PackConfig(pack_id))
        self.salt = salt

    def weights_hash(self, grid: GridSpec) -> bytes:
        return hashlib.sha256(b"fake-pack/" + grid.name.encode() + self.salt).digest()

    def prior(self, grid: GridSpec):
        return ()

    def encode_keyframe(self, frame: np.ndarray, grid: GridSpec) -> np.ndarray:
        h, w = frame.shape[:2]
        gh, gw = grid.grid(w, h)
        d = grid.downsample
        blocks = frame[: gh * d, : gw * d].astype(np.float32).reshape(gh, d, gw, d, 3).mean(axis=(1, 3))
        dist = ((blocks[:, :, None, :] - PALETTE[None, None]) ** 2).sum(-1)
        return dist.argmin(-1).astype(np.uint16)

    def decode_keyframe(self, indices, grid: GridSpec, text: str, seed: int) -> np.ndarray:
        import cv2

        small = PALETTE[np.asarray(indices, dtype=np.int64)].astype(np.uint8)
        gh, gw = small.shape[:2]
        return cv2.resize(small, (gw * grid.downsample, gh * grid.downsample), interpolation=cv2.INTER_LINEAR)

    def embed(self, frames: np.ndarray) -> np.ndarray:
        q = (np.asarray(frames) // 64).astype(np.int64)  # 4 levels per channel
        codes = (q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).reshape(len(frames), -1)
        return np.stack([np.bincount(c, minlength=64) for c in codes]).astype(np.float64)

    def reconstruct_clip(self, first, last, clip_text: str, frame_count: int, seed: int):
        if last is None:
            return predict_clip(first, frame_count)
        return interpolate_clip(first, last, frame_count)

    def motion_features(self, frames: np.ndarray) -> list[np.ndarray]:
        return lite_motion.motion_features(frames)

    def motion(self, before, after) -> np.ndarray:
        return lite_motion.motion(before, after)


def install(monkeypatch, packs: dict | None = None) -> FakePack:
    """Make ``load_pack`` resolve ``test.fake`` and ``lite`` to a FakePack (or ``packs``)."""
    import m3cvc_codec.packs as registry

    pack = FakePack()
    table = {"test.fake": pack, "lite": FakePack("lite")}
    if packs:
        table.update(packs)

    def load_pack(pack_id: str, config=None, options=None, *, cache=None):
        if pack_id not in table:
            raise PackError(f"pack {pack_id!r} is not installed (installed packs: {', '.join(sorted(table))})")
        return table[pack_id]

    monkeypatch.setattr(registry, "load_pack", load_pack)
    return pack


@pytest.fixture
def fake_pack(monkeypatch) -> FakePack:
    return install(monkeypatch)


# --------------------------------------------------------------------------- synthetic media


def write_video(path, frames, fps=8, codec="libx264", pix_fmt="yuv420p", audio=False) -> str:
    """Write RGB frames (N x H x W x 3) to ``path`` with PyAV; returns the path as str."""
    from fractions import Fraction

    import av

    frames = np.asarray(frames, dtype=np.uint8)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=Fraction(fps))
        s.width, s.height = frames.shape[2], frames.shape[1]
        s.pix_fmt = pix_fmt
        if codec == "libx264":
            s.options = {"crf": "10", "preset": "ultrafast"}
        a = c.add_stream("aac", rate=8000) if audio else None
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
        if a is not None:
            for p in a.encode():
                c.mux(p)
    return str(path)


def moving_square(n=24, width=128, height=80, step=2, background=(40, 90, 160), cut_at=None):
    """Frames of a white square moving right by ``step`` pixels a frame over a plain background;
    from ``cut_at`` on, the background turns red-orange (a scene cut)."""
    out = np.zeros((n, height, width, 3), np.uint8)
    for i in range(n):
        out[i] = background if cut_at is None or i < cut_at else (220, 80, 20)
        x = 8 + i * step
        out[i, height // 2 - 8 : height // 2 + 8, x : x + 16] = 255
    return out


def textured_pan(n=8, width=128, height=80, step=2, seed=0):
    """A smooth random texture panning left by ``step`` pixels a frame (global motion)."""
    import cv2

    rng = np.random.default_rng(seed)
    big = rng.integers(0, 256, (height + 8, width + n * step + 8, 3)).astype(np.uint8)
    big = cv2.GaussianBlur(big, (0, 0), 2.0)
    return np.stack([big[4 : 4 + height, 4 + i * step : 4 + i * step + width] for i in range(n)])
