"""STAND-IN VQ index maps for benchmarking the index-map coders.

These are NOT the M3-CVC codec's learned VQ indices (that tokenizer arrives
later).  They imitate the shape of the problem: a grid of indices into a
256-entry codebook, with the spatial redundancy of natural images.  Each grid
cell gets a small descriptor (mean RGB, the mean luma of its four quadrants
relative to the cell mean, luma standard deviation); a k-means codebook of 256
centroids (fixed seed, Lloyd iterations, numpy only) per grid configuration is
fitted on descriptors of all source images, and every cell is assigned its
nearest centroid.

Sources: the 24 Kodak images and frames 0, 30, 60, 90 of each video under
/work/shared/media/videos (PyAV decode), centre-cropped to the target aspect
ratio and resized (area filter) to 512x320 (grids 32x20 and 64x40) and 512x512
(grids 32x32 and 64x64).

    python tools/bench/standin_maps.py      # builds and prints a summary

The maps are cached in tools/bench/out/ (git-ignored).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np

MEDIA = Path(os.environ.get("M3CVC_MEDIA", "/work/shared/media"))
KODAK_DIR = MEDIA / "images" / "kodak24"
VIDEO_DIR = MEDIA / "videos"
CACHE_DIR = Path(__file__).resolve().parent / "out"

VOCAB = 256
SEED = 20261121
FRAME_NUMBERS = (0, 30, 60, 90)
KMEANS_ITERS = 25
KMEANS_SAMPLE = 60000

#: name -> (frame width, frame height, grid_w, grid_h)
GRIDS = {
    "32x20": (512, 320, 32, 20),
    "64x40": (512, 320, 64, 40),
    "32x32": (512, 512, 32, 32),
    "64x64": (512, 512, 64, 64),
}

STANDIN_NOTE = (
    "STAND-IN index maps: k-means (256 centroids) over per-cell colour/texture "
    "descriptors of Kodak images and video frames, not the codec's learned VQ."
)


def _fit(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Centre-crop an RGB uint8 image to width:height and resize it with PyAV's area filter."""
    import av

    h, w = arr.shape[:2]
    if w * height > h * width:  # too wide
        cw, ch = (h * width) // height, h
    else:
        cw, ch = w, (w * height) // width
    cw -= cw % 2
    ch -= ch % 2
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    crop = np.ascontiguousarray(arr[y0 : y0 + ch, x0 : x0 + cw])
    frame = av.VideoFrame.from_ndarray(crop, format="rgb24")
    out = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
    return out.to_ndarray()


def _load_sources() -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
    import av

    kodak = []
    for path in sorted(KODAK_DIR.glob("kodim*.png")):
        with av.open(str(path)) as c:
            frame = next(c.decode(video=0))
            kodak.append((path.stem, frame.to_ndarray(format="rgb24")))
    video = []
    for path in sorted(VIDEO_DIR.iterdir()):
        if path.suffix.lower() not in (".mp4", ".mkv", ".avi"):
            continue
        with av.open(str(path)) as c:
            for n, frame in enumerate(c.decode(video=0)):
                if n in FRAME_NUMBERS:
                    video.append((f"{path.stem}#{n}", frame.to_ndarray(format="rgb24")))
                if n >= max(FRAME_NUMBERS):
                    break
    return kodak, video


def _descriptors(img: np.ndarray, grid_w: int, grid_h: int) -> np.ndarray:
    """Per-cell descriptors, shape (grid_h * grid_w, 8)."""
    x = img.astype(np.float64) / 255.0
    h, w = x.shape[:2]
    cy, cx = h // grid_h, w // grid_w
    cells = x.reshape(grid_h, cy, grid_w, cx, 3).transpose(0, 2, 1, 3, 4)
    rgb = cells.mean(axis=(2, 3))
    y = cells @ np.array([0.299, 0.587, 0.114])
    ym = y.mean(axis=(2, 3))
    q = y.reshape(grid_h, grid_w, 2, cy // 2, 2, cx // 2).mean(axis=(3, 5))
    quad = q.reshape(grid_h, grid_w, 4) - ym[..., None]
    std = y.std(axis=(2, 3))
    d = np.concatenate([rgb, 2.0 * quad, 2.0 * std[..., None]], axis=-1)
    return d.reshape(-1, 8)


def _sqdist(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    return (x * x).sum(1)[:, None] - 2.0 * x @ c.T + (c * c).sum(1)[None, :]


def _kmeans(data: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    cent = data[rng.choice(len(data), size=k, replace=False)].copy()
    for _ in range(KMEANS_ITERS):
        lab = np.argmin(_sqdist(data, cent), axis=1)
        sums = np.zeros_like(cent)
        np.add.at(sums, lab, data)
        cnt = np.bincount(lab, minlength=k)
        empty = cnt == 0
        cent[~empty] = sums[~empty] / cnt[~empty, None]
        if empty.any():  # re-seed empty clusters on random points
            cent[empty] = data[rng.choice(len(data), size=int(empty.sum()), replace=False)]
    return cent


def _build() -> dict[str, np.ndarray]:
    kodak, video = _load_sources()
    out: dict[str, np.ndarray] = {
        "kodak_names": np.array([n for n, _ in kodak]),
        "video_names": np.array([n for n, _ in video]),
    }
    resized: dict[tuple[int, int], list[np.ndarray]] = {}
    for name, (fw, fh, gw, gh) in GRIDS.items():
        if (fw, fh) not in resized:
            resized[(fw, fh)] = [_fit(a, fw, fh) for _, a in kodak + video]
        imgs = resized[(fw, fh)]
        desc = [_descriptors(im, gw, gh) for im in imgs]
        allx = np.concatenate(desc)
        rng = np.random.default_rng(SEED)
        sample = allx[rng.choice(len(allx), size=min(KMEANS_SAMPLE, len(allx)), replace=False)]
        cent = _kmeans(sample, VOCAB, rng)
        maps = np.stack([np.argmin(_sqdist(d, cent), axis=1).reshape(gh, gw) for d in desc])
        maps = maps.astype(np.uint16)
        out[f"{name}/kodak"] = maps[: len(kodak)]
        out[f"{name}/video"] = maps[len(kodak) :]
    return out


def _cache_key() -> str:
    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    for p in sorted(KODAK_DIR.glob("*.png")) + sorted(VIDEO_DIR.iterdir()):
        h.update(f"{p.name}:{p.stat().st_size}".encode())
    return h.hexdigest()[:16]


def load_maps(use_cache: bool = True) -> dict[str, np.ndarray]:
    """Return {"<grid>/kodak": (24, gh, gw) uint16, "<grid>/video": (28, gh, gw) uint16, names}."""
    path = CACHE_DIR / f"standin-maps-{_cache_key()}.npz"
    if use_cache and path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    maps = _build()
    if use_cache:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **maps)
        tmp.replace(path)
    return maps


def main() -> int:
    maps = load_maps()
    print(STANDIN_NOTE)
    for name in GRIDS:
        k, v = maps[f"{name}/kodak"], maps[f"{name}/video"]
        allm = np.concatenate([k.reshape(len(k), -1), v.reshape(len(v), -1)])
        same_w = np.mean(np.concatenate([k, v])[:, :, 1:] == np.concatenate([k, v])[:, :, :-1])
        used = len(np.unique(allm))
        print(f"{name}: {len(k)} kodak + {len(v)} video maps, {used} codes used, P(index == left) = {same_w:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
