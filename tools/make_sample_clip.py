#!/usr/bin/env python3
"""Render the repository's sample clip, docs/sample/sample.webm, from nothing but code.

    python3 tools/make_sample_clip.py                  # (re)write docs/sample/sample.webm
    python3 tools/make_sample_clip.py -o /tmp/x.webm   # somewhere else
    python3 tools/make_sample_clip.py --check          # exit 1 if the file would change

The scene is procedural (our own work, licensed like the project: Apache-2.0), made to look
like real video to a codec rather than to a person:

- 0 - 2.5 s, "field": a sky gradient with drifting cloud noise over a textured field, the
  camera panning slowly right; a shaded red ball bouncing once across;
- 2.5 - 5 s, "wall": a hard cut to a noisy brick wall, the camera panning down and slowly
  zooming in; a blue tile sliding left and turning.

The motion is slow enough that the default keyframe selection makes clips of several frames,
and the cut gives it something to find (m3v-encode's defaults put a keyframe on it, frame 20
at 8 fps). Frames are 640x360 at 24 fps (120 frames),
encoded as VP9 (libvpx, one thread, bit-exact muxing), so the same PyAV/FFmpeg build writes the
same bytes every run. Only numpy and PyAV are used.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "sample" / "sample.webm"

WIDTH, HEIGHT = 640, 360
FPS = 24
SECONDS = 5
FRAMES = FPS * SECONDS
CUT = FRAMES // 2
SEED = 20260302


def _upsample(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of a small 2-D grid to height x width (corners aligned)."""
    gh, gw = grid.shape
    ys = np.linspace(0.0, gh - 1.0, height)
    xs = np.linspace(0.0, gw - 1.0, width)
    y0 = np.minimum(ys.astype(np.int64), gh - 2)
    x0 = np.minimum(xs.astype(np.int64), gw - 2)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    # smoothstep weights: no visible grid lines in the noise
    fy = fy * fy * (3 - 2 * fy)
    fx = fx * fx * (3 - 2 * fx)
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def fractal_noise(rng: np.random.Generator, height: int, width: int, base: int, octaves: int) -> np.ndarray:
    """Value noise summed over octaves, in [0, 1]."""
    out = np.zeros((height, width))
    amplitude, total = 1.0, 0.0
    for octave in range(octaves):
        cells = base * 2**octave
        grid = rng.random((max(2, height * cells // width + 2), cells + 2))
        out += amplitude * _upsample(grid, height, width)
        total += amplitude
        amplitude *= 0.55
    out /= total
    return (out - out.min()) / (out.max() - out.min())


def field_panorama(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Sky over a textured field, float RGB in [0, 1], wider than a frame."""
    img = np.zeros((height, width, 3))
    horizon = int(height * 0.42)
    t = np.linspace(0.0, 1.0, horizon)[:, None]
    clouds = fractal_noise(rng, horizon, width, 6, 5)
    clouds = np.clip((clouds - 0.45) * 2.2, 0, 1)[..., None]
    sky = np.stack([0.35 + 0.35 * t, 0.55 + 0.30 * t, 0.90 + 0.05 * t], axis=-1) * np.ones((1, width, 1))
    img[:horizon] = sky * (1 - 0.8 * clouds) + 0.95 * 0.8 * clouds
    ground_h = height - horizon
    coarse = fractal_noise(rng, ground_h, width, 4, 3)[..., None]
    fine = fractal_noise(rng, ground_h, width, 48, 3)[..., None]
    grass = np.array([0.22, 0.45, 0.12])
    soil = np.array([0.45, 0.33, 0.18])
    depth = np.linspace(0.75, 1.1, ground_h)[:, None, None]
    img[horizon:] = (grass * (1 - coarse) + soil * coarse) * (0.7 + 0.6 * fine) * depth
    # a row of dark tree crowns standing on the horizon (denser towards the ground)
    trees = fractal_noise(rng, 50, width, 20, 3)
    band = np.arange(50)[:, None] / 50.0
    mask = (trees > 0.95 - 0.75 * band)[..., None]
    top = horizon - 46
    img[top : top + 50] = np.where(mask, np.array([0.08, 0.2, 0.08]) * (0.6 + trees[..., None]), img[top : top + 50])
    return np.clip(img, 0, 1)


def brick_wall(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A noisy brick wall, float RGB in [0, 1], larger than a frame."""
    bh, bw, mortar = 34, 86, 5
    y, x = np.mgrid[0:height, 0:width]
    row = y // bh
    xs = x + (row % 2) * (bw // 2)
    col = xs // bw
    in_mortar = ((y % bh) < mortar) | ((xs % bw) < mortar)
    tint = rng.random((height // bh + 2, width // bw + 3))[row, col][..., None]
    brick = np.array([0.55, 0.22, 0.14]) * (0.75 + 0.5 * tint) + np.array([0.05, 0.04, 0.0]) * tint
    grain = fractal_noise(rng, height, width, 60, 2)[..., None]
    stains = fractal_noise(rng, height, width, 5, 4)[..., None]
    img = np.where(in_mortar[..., None], np.array([0.72, 0.70, 0.64]), brick)
    img = img * (0.8 + 0.35 * grain) * (0.75 + 0.35 * stains)
    return np.clip(img, 0, 1)


def _disc(frame: np.ndarray, cx: float, cy: float, r: float) -> None:
    """Draw a shaded red ball with a soft shadow into frame (float RGB) in place."""
    h, w, _ = frame.shape
    y, x = np.mgrid[0:h, 0:w]
    shadow = ((x - cx - 0.3 * r) / (1.2 * r)) ** 2 + ((y - (HEIGHT * 0.93)) / (0.25 * r)) ** 2
    frame *= np.where(shadow < 1, 0.6 + 0.4 * shadow, 1.0)[..., None]
    d2 = (x - cx) ** 2 + (y - cy) ** 2
    inside = d2 < r * r
    light = np.clip(1.15 - np.sqrt((x - cx + 0.4 * r) ** 2 + (y - cy + 0.4 * r) ** 2) / (1.6 * r), 0.15, 1.0)
    ball = np.array([0.85, 0.1, 0.08]) * light[..., None] + 0.25 * (light[..., None] ** 8)
    frame[inside] = ball[inside]


def _tile(frame: np.ndarray, cx: float, cy: float, half: float, angle: float) -> None:
    """Draw a turning blue tile with a light border into frame (float RGB) in place."""
    h, w, _ = frame.shape
    y, x = np.mgrid[0:h, 0:w]
    c, s = math.cos(angle), math.sin(angle)
    u = (x - cx) * c + (y - cy) * s
    v = -(x - cx) * s + (y - cy) * c
    m = np.maximum(np.abs(u), np.abs(v))
    frame[m < half] = np.array([0.85, 0.88, 0.95])
    inner = m < half * 0.82
    shade = (0.6 + 0.4 * (u - v + 2 * half) / (4 * half))[..., None]
    frame[inner] = (np.array([0.1, 0.25, 0.8]) * shade)[inner]


def render(seed: int = SEED) -> list[np.ndarray]:
    """Every frame of the clip as H x W x 3 uint8 RGB."""
    rng = np.random.default_rng(seed)
    pano = field_panorama(rng, HEIGHT, WIDTH + 240)
    wall = brick_wall(rng, HEIGHT + 200, WIDTH + 80)
    frames = []
    for n in range(FRAMES):
        if n < CUT:
            t = n / (CUT - 1)
            x0 = round(40 * t)  # pan right, 40 px over the scene
            frame = pano[:, x0 : x0 + WIDTH].copy()
            # cloud drift: the sky moves a little faster than the ground (parallax)
            horizon = int(HEIGHT * 0.42)
            frame[:horizon] = np.roll(pano[:horizon, x0 : x0 + WIDTH + 40], -round(40 * t), axis=1)[:, :WIDTH]
            cx = 80 + 160 * t
            bounce = abs(math.sin(math.pi * t))
            _disc(frame, cx, HEIGHT * 0.88 - 42 - 150 * bounce, 42)
        else:
            t = (n - CUT) / (FRAMES - CUT - 1)
            zoom = 1.0 + 0.02 * t
            y0 = 20 + 24 * t
            # sample the wall with a slow zoom (nearest neighbour on a fine grid keeps it sharp)
            ys = (y0 + np.arange(HEIGHT) / zoom).astype(np.int64)
            xs = (40 + (np.arange(WIDTH) - WIDTH / 2) / zoom + WIDTH / 2 - 40).astype(np.int64)
            frame = wall[ys][:, np.clip(xs, 0, wall.shape[1] - 1)].copy()
            _tile(frame, 540 - 160 * t, 180 + 40 * math.sin(2 * math.pi * t), 48, 0.4 * math.pi * t)
        frames.append((np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8))
    return frames


def encode(frames: list[np.ndarray], out: Path, crf: int) -> None:
    """Write frames as a VP9 .webm, bit-exact (no timestamps or random UIDs in the file)."""
    with av.open(str(out), "w", format="webm", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libvpx-vp9", rate=FPS)
        stream.width, stream.height = WIDTH, HEIGHT
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.thread_count = 1
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        stream.options = {
            "crf": str(crf),
            "b": "0",
            "deadline": "good",
            "cpu-used": "2",
            "row-mt": "0",
            "g": "240",
        }
        for n, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = n
            frame.time_base = Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT, help="the .webm to write")
    parser.add_argument("--crf", type=int, default=32, help="VP9 constant quality (default 32)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the output would change")
    args = parser.parse_args(argv)
    frames = render()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "sample.webm"
            encode(frames, fresh, args.crf)
            same = args.output.exists() and fresh.read_bytes() == args.output.read_bytes()
        print(f"{args.output}: {'unchanged' if same else 'WOULD CHANGE'}")
        return 0 if same else 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    encode(frames, args.output, args.crf)
    print(f"{args.output}: {args.output.stat().st_size} bytes, {FRAMES} frames, {WIDTH}x{HEIGHT} at {FPS} fps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
