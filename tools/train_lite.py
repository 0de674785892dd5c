#!/usr/bin/env python3
"""Train, export and evaluate the ``lite`` pack's keyframe codec (docs/lite-pack.md).

The models (one small fully-convolutional VQ autoencoder per grid variant), the losses and the
export to ONNX live in :mod:`m3cvc_codec.packs.lite.training` (it imports torch; this script
imports it only once the arguments are read, so ``--help`` and the data helpers work without
torch).  This script is the command line: data, the training and fine-tuning loops, the
manifest (weights hashes by the one rule, :func:`m3cvc_codec.packs.config.weights_hash`), the loss log and
the evaluation through the pack.

Data: frames of the training videos (centre-cropped to the 512:320 aspect, resized to 512x320,
sampled at 8 fps, as the codec does) and the Kodak images (both resized to 512x320 and at their
own size); random crops with flips, a share of them recoloured (``--colour-aug``,
:func:`recolour`).  The clips in HELD_OUT are never read for training: they are the
benchmark.  Deterministic for a given seed on a given machine (torch CPU, 2 threads).

Training needs the ``train`` extra (torch, onnx, opencv, matplotlib).  The pack itself uses
only onnxruntime and numpy.  Usage (the command behind the shipped weights)::

    python tools/train_lite.py --media /work/shared/media \\
        --out m3cvc_codec/packs/lite/weights --steps 1500 --batch 8 --crop 128 \\
        --colour-aug 1/16=0.25,1/8=0.5 \\
        --log docs/lite-pack-loss.csv --plot docs/lite-pack-loss.png \\
        --results docs/lite-pack-results.json

Smoke test (what tests/test_lite_pack.py runs)::

    python tools/train_lite.py --images a.png b.png --no-videos --steps 2 --crop 64 \\
        --batch 2 --out /tmp/w --no-eval
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: Clips never used for training: the held-out benchmark (docs/lite-pack.md).
HELD_OUT = ("sam2_05_default_juggle.mp4", "mmaction2_test_pool.mp4")
VIDEO_EXTS = (".mp4", ".mkv", ".avi")
FRAME_W, FRAME_H = 512, 320
SAMPLE_FPS = 8.0

#: The variants (grids) of the lite pack, by name: the keys of
#: m3cvc_codec.packs.lite.training.VARIANTS (which needs torch; a test checks they agree).
VARIANT_NAMES = ("1/16", "1/8")


# ---------------------------------------------------------------------------
# Data


def preprocess(rgb: np.ndarray, width: int = FRAME_W, height: int = FRAME_H) -> np.ndarray:
    """Centre-crop to the width:height aspect, then resize: the codec's own preprocessing,
    so the model trains on frames exactly like those it will code."""
    from m3cvc_codec.video_io import fit_frame

    return fit_frame(rgb, width, height, "crop")


def video_frames(path: Path, fps: float = SAMPLE_FPS) -> list[np.ndarray]:
    """Frames of a video sampled at ``fps`` (the first frame at or after each k/fps s), preprocessed."""
    import av

    out: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 30)
        next_t = 0.0
        for n, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else n / rate
            if t + 1e-6 >= next_t:
                out.append(preprocess(frame.to_ndarray(format="rgb24")))
                next_t += 1.0 / fps
    return out


def read_image(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read image {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def training_videos(media: Path) -> list[Path]:
    vids = sorted(p for p in (media / "videos").iterdir() if p.suffix.lower() in VIDEO_EXTS)
    return [p for p in vids if p.name not in HELD_OUT]


def held_out_frames(media: Path) -> dict[str, list[np.ndarray]]:
    return {name: video_frames(media / "videos" / name) for name in HELD_OUT}


#: The six orders of the R, G, B channels (colour augmentation).
CHANNEL_ORDERS = tuple(itertools.permutations(range(3)))


def recolour(patch: np.ndarray, rng: np.random.Generator, saturation=(0.6, 1.6)) -> np.ndarray:
    """A random channel order and saturation change of an RGB uint8 patch (float32 out, 0..255).

    The training set is six clips and the Kodak images; without this the 256 codewords only
    cover their colours, and held-out content in others (the green cloth of the pool clip)
    decodes with a strong cast.  Reordering the channels keeps the luma structure's statistics
    while moving the hue; the saturation factor reaches vivid and washed-out colours."""
    x = patch[..., CHANNEL_ORDERS[int(rng.integers(len(CHANNEL_ORDERS)))]].astype(np.float32)
    grey = x @ np.float32([0.299, 0.587, 0.114])
    s = np.float32(rng.uniform(*saturation))
    return np.clip(grey[..., None] + s * (x - grey[..., None]), 0, 255)


class CropSampler:
    """Random crops from two pools (video frames, images), flips and, when ``colour_share`` > 0,
    that share of the crops recoloured (:func:`recolour`); deterministic given rng."""

    def __init__(
        self,
        videos: list[np.ndarray],
        images: list[np.ndarray],
        crop: int,
        rng: np.random.Generator,
        video_share: float = 0.7,
        colour_share: float = 0.0,
    ):
        self.colour_share = colour_share
        self.pools = [p for p in (videos, images) if p]
        share = [video_share, 1 - video_share] if videos and images else [1.0]
        self.share = np.asarray(share) / sum(share)
        self.crop = crop
        self.rng = rng
        for pool in self.pools:
            for im in pool:
                if min(im.shape[:2]) < crop:
                    raise SystemExit(f"crop {crop} larger than an image of {im.shape[1]}x{im.shape[0]}")

    def batch(self, n: int) -> np.ndarray:
        c = self.crop
        out = np.empty((n, 3, c, c), np.float32)
        for i in range(n):
            pool = self.pools[int(self.rng.choice(len(self.pools), p=self.share))]
            im = pool[int(self.rng.integers(len(pool)))]
            y = int(self.rng.integers(im.shape[0] - c + 1))
            x = int(self.rng.integers(im.shape[1] - c + 1))
            patch = im[y : y + c, x : x + c]
            if self.rng.random() < 0.5:
                patch = patch[:, ::-1]
            if self.colour_share and self.rng.random() < self.colour_share:
                patch = recolour(patch, self.rng)
            out[i] = patch.transpose(2, 0, 1) / 255.0
        return out


# ---------------------------------------------------------------------------
# Export


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(out: Path, meta: dict, merge: bool = False) -> dict:
    """Write OUT/manifest.json for every variant folder in OUT.  ``meta`` holds the training
    settings of the variants trained in this run; a variant trained by an earlier run (one
    ``--variants`` at a time into the same folder) keeps the settings its manifest entry had.
    With ``merge`` (a fine-tuning run), ``meta`` adds to a variant's earlier settings instead of
    replacing them."""
    from m3cvc_codec.packs.config import weights_hash
    from m3cvc_codec.packs.lite.training import CODE_DIM, VARIANTS, VOCAB, WEIGHT_FILES

    try:
        earlier = json.loads((out / "manifest.json").read_text())["variants"]
    except (OSError, ValueError, KeyError):
        earlier = {}
    variants = {}
    for name, cfg in VARIANTS.items():
        d = out / cfg["dir"]
        if not d.is_dir():
            continue
        files = {f"{cfg['dir']}/{f}": sha256_file(d / f) for f in WEIGHT_FILES}
        kept = {k: v for k, v in earlier.get(name, {}).items() if k.startswith(("params_", "train_", "channels"))}
        settings = kept | meta[name] if merge and name in meta else meta.get(name, kept)
        variants[name] = {
            "dir": cfg["dir"],
            "downsample": cfg["downsample"],
            "vocab_size": VOCAB,
            "code_dim": CODE_DIM,
            "files": files,
            "weights_hash": weights_hash(files).hex(),
            **settings,
        }
    manifest = {
        "pack": "lite",
        "format": 1,
        "hash_rule": "weights_hash = sha256 of the sorted lines '<name> <sha256>\\n' of the variant's files",
        "variants": variants,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


# ---------------------------------------------------------------------------
# Training


def cosine_lr(step: int, steps: int, peak: float) -> float:
    """Linear warm-up over the first 10% of the steps (at most 100), then cosine decay to 5% of
    the peak."""
    warm = max(1, min(100, steps // 10))
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, steps - warm)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


class LossLog:
    """Averages the losses of the steps since the last row; a row also gets the codebook's use."""

    KEYS = ("loss", "l1", "ssim", "commit", "mse")

    def __init__(self, name: str, rows: list):
        self.name, self.rows, self.t0 = name, rows, time.time()
        self._reset()

    def _reset(self):
        self.sums, self.n = dict.fromkeys(self.KEYS, 0.0), 0

    def add(self, **losses: float) -> None:
        for k, v in losses.items():
            self.sums[k] += v
        self.n += 1

    def row(self, step: int, lr: float, codes_used: int, perplexity: float, restarts: int) -> None:
        mean = {k: v / self.n for k, v in self.sums.items()}
        row = {
            "variant": self.name,
            "step": step,
            "elapsed_s": round(time.time() - self.t0, 1),
            "lr": round(lr, 6),
            "loss": round(mean["loss"], 5),
            "l1": round(mean["l1"], 5),
            "ssim": round(mean["ssim"], 5),
            "commit": round(mean["commit"], 6),
            "psnr": round(-10 * math.log10(max(mean["mse"], 1e-10)), 3),
            "codes_used": codes_used,
            "perplexity": round(perplexity, 1),
            "restarts": restarts,
        }
        self.rows.append(row)
        print(json.dumps(row), flush=True)
        self._reset()

    def due(self, step: int, steps: int, every: int) -> bool:
        return (step + 1) % every == 0 or step + 1 == steps


def train_variant(name: str, args, sampler: CropSampler, log_rows: list):
    """Train variant ``name`` from scratch (seeded by ``args.seed``); returns (model, seconds)."""
    import torch

    from m3cvc_codec.packs.lite.training import RESTART_EVERY, VARIANTS, VQAE, training_loss

    cfg = VARIANTS[name]
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    model = VQAE(cfg["channels"])
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=1e-4)
    model.train()
    log = LossLog(name, log_rows)
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, args.steps, args.lr)
        x = torch.from_numpy(sampler.batch(args.batch))
        y, _idx, commit = model(x, gen, restart=(step % RESTART_EVERY == RESTART_EVERY - 1 and step < 0.9 * args.steps))
        loss, l1, s = training_loss(y, x, commit, args.ssim_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            mse = float(((y.clamp(0, 1) - x) ** 2).mean())
        log.add(loss=loss.item(), l1=l1.item(), ssim=s.item(), commit=commit.item(), mse=mse)
        if log.due(step, args.steps, args.log_every):
            cs = model.quant.cluster_size
            p = cs / cs.sum()
            log.row(
                step + 1,
                cosine_lr(step, args.steps, args.lr),
                codes_used=int((cs > 0.1 * cs.mean()).sum()),
                perplexity=float(torch.exp(-(p * (p + 1e-12).log()).sum())),
                restarts=model.quant.restarts,
            )
    model.eval()
    return model, time.time() - log.t0


def finetune_decoder(name: str, args, sampler: CropSampler, log_rows: list):
    """Train only the decoder of the variant already in OUT, on the index maps its (frozen)
    exported encoder and codebook give: the maps, and so the rate of every stream, stay the same,
    and any gain in quality is a gain at equal rate.  Rewrites OUT/<dir>/decoder.onnx only."""
    import torch

    from m3cvc_codec.packs.lite import LitePack
    from m3cvc_codec.packs.lite.training import (
        VARIANTS,
        VOCAB,
        VQAE,
        export_decoder,
        load_onnx_weights,
        reconstruction_loss,
    )

    cfg = VARIANTS[name]
    pack = LitePack(weights_dir=args.out)  # verifies the files against the manifest
    grid = next(g for g in pack.grids if g.name == name)
    code = np.load(args.out / cfg["dir"] / "codebook.npy")
    torch.manual_seed(args.seed)
    dec = VQAE(cfg["channels"]).decoder
    try:
        load_onnx_weights(dec, args.out / cfg["dir"] / "decoder.onnx")
    except ValueError as err:
        raise SystemExit(str(err)) from None
    opt = torch.optim.AdamW(dec.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=1e-4)
    dec.train()
    log = LossLog(name, log_rows)
    counts = np.zeros(VOCAB)
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, args.steps, args.lr)
        xb = sampler.batch(args.batch)
        idx = np.stack(
            [
                pack.encode_keyframe(
                    np.ascontiguousarray(np.clip(np.rint(im.transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8)), grid
                )
                for im in xb
            ]
        )
        counts += np.bincount(idx.ravel(), minlength=VOCAB)
        zq = torch.from_numpy(np.ascontiguousarray(code[idx].transpose(0, 3, 1, 2)))
        x = torch.from_numpy(xb)
        y = dec(zq)
        loss, l1, s = reconstruction_loss(y, x, args.ssim_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dec.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            mse = float(((y.clamp(0, 1) - x) ** 2).mean())
        log.add(loss=loss.item(), l1=l1.item(), ssim=s.item(), mse=mse)
        if log.due(step, args.steps, args.log_every):
            p = counts[counts > 0] / counts.sum()
            log.row(
                step + 1,
                cosine_lr(step, args.steps, args.lr),
                codes_used=int((counts > 0).sum()),
                perplexity=float(np.exp(-(p * np.log(p)).sum())),
                restarts=0,
            )
            counts[:] = 0
    dec.eval()
    export_decoder(dec, zq[:1], args.out / cfg["dir"] / "decoder.onnx")
    return time.time() - log.t0


def index_counts(pack, grid, frames: list[np.ndarray]) -> np.ndarray:
    from m3cvc_codec.packs.lite.training import VOCAB as vocab

    counts = np.zeros(vocab, np.int64)
    for f in frames:
        counts += np.bincount(pack.encode_keyframe(f, grid).ravel(), minlength=vocab)
    return counts


def write_log(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def plot_log(csv_path: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), dpi=110)
    for name in VARIANT_NAMES:
        r = [x for x in rows if x["variant"] == name]
        if not r:
            continue
        steps = [int(x["step"]) for x in r]
        axes[0].plot(steps, [float(x["loss"]) for x in r], label=f"{name} total")
        axes[1].plot(steps, [float(x["psnr"]) for x in r], label=f"{name}")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("loss (L1 + 0.2(1-SSIM) + 0.25 commit)")
    axes[0].legend()
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("training-crop PSNR (dB)")
    axes[1].legend()
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)


# ---------------------------------------------------------------------------
# Evaluation (through the pack: onnxruntime + numpy, what ships)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * math.log10(255.0**2 / max(mse, 1e-10))


def evaluate(pack, held: dict[str, list[np.ndarray]], kodak: list[np.ndarray], names=None) -> dict:
    from m3cvc_codec.packs.lite.training import VOCAB as vocab
    from m3cvc_format import IndexMapCoder
    from m3cvc_format.indexmap import encode_index_map, index_map_code_length

    res = {}
    for grid in pack.grids:
        if names is not None and grid.name not in names:
            continue
        prior = list(pack.prior(grid))
        r = {"clips": {}}
        all_idx = []
        for name, frames in list(held.items()) + [("kodak24_512x320", kodak)]:
            ps, bits_ctx, bytes_ctx, bits_static = [], [], [], []
            for f in frames:
                idx = pack.encode_keyframe(f, grid)
                rec = pack.decode_keyframe(idx, grid, "", 0)
                ps.append(psnr(rec, f))
                bits_ctx.append(index_map_code_length(idx, vocab, IndexMapCoder.CONTEXT, prior))
                bytes_ctx.append(len(encode_index_map(idx, vocab, IndexMapCoder.CONTEXT, prior)))
                bits_static.append(index_map_code_length(idx, vocab, IndexMapCoder.STATIC, prior))
                if name in held:
                    all_idx.append(idx.ravel())
            n_idx = idx.size
            r["clips"][name] = {
                "frames": len(frames),
                "psnr_db": round(float(np.mean(ps)), 2),
                "context_bits_per_index": round(float(np.mean(bits_ctx)) / n_idx, 3),
                "context_bytes_per_map": round(float(np.mean(bytes_ctx)), 1),
                "static_bits_per_index": round(float(np.mean(bits_static)) / n_idx, 3),
                "bpp_keyframe": round(8 * float(np.mean(bytes_ctx)) / (FRAME_W * FRAME_H), 5),
            }
        held_idx = np.concatenate(all_idx)
        cnt = np.bincount(held_idx, minlength=vocab)
        p = cnt[cnt > 0] / cnt.sum()
        ps_all = [r["clips"][n]["psnr_db"] * r["clips"][n]["frames"] for n in held]
        r["held_out_psnr_db"] = round(sum(ps_all) / sum(r["clips"][n]["frames"] for n in held), 2)
        r["held_out_codes_used"] = int((cnt > 0).sum())
        r["held_out_index_entropy_bits"] = round(float(-(p * np.log2(p)).sum()), 3)
        pr = np.asarray(prior, np.float64)
        pp = pr[pr > 0] / pr.sum()
        r["train_codes_used"] = int((pr > 0).sum())
        r["train_perplexity"] = round(float(2 ** (-(pp * np.log2(pp)).sum())), 1)
        res[grid.name] = r
        print(grid.name, json.dumps(r), flush=True)
    return res


# ---------------------------------------------------------------------------


def colour_shares(text: str) -> dict[str, float]:
    """``--colour-aug``: "0.5" (every variant) or "1/16=0.25,1/8=0.5" -> {variant: share}."""
    try:
        if "=" not in text:
            shares = dict.fromkeys(VARIANT_NAMES, float(text))
        else:
            pairs = (item.split("=", 1) for item in text.split(","))
            shares = {name.strip(): float(value) for name, value in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a share or VARIANT=SHARE list: {text!r}") from None
    unknown = set(shares) - set(VARIANT_NAMES)
    if unknown or not all(0 <= v <= 1 for v in shares.values()):
        raise argparse.ArgumentTypeError(f"variants are {', '.join(VARIANT_NAMES)} and shares 0..1: {text!r}")
    return shares


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--media", type=Path, default=ROOT.parent / "shared" / "media", help="folder with videos/ and images/kodak24/"
    )
    ap.add_argument(
        "--images", type=Path, nargs="*", default=None, help="training images (default: MEDIA/images/kodak24/*.png)"
    )
    ap.add_argument("--no-videos", action="store_true", help="train on the images alone")
    ap.add_argument("--out", type=Path, required=True, help="weights folder (one subfolder per variant)")
    ap.add_argument("--variants", default="1/16,1/8")
    ap.add_argument("--steps", type=int, default=1000, help="steps per variant")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument(
        "--colour-aug",
        type=colour_shares,
        default={},
        metavar="SHARE|VARIANT=SHARE,..",
        help="share of training crops given a random channel order and saturation "
        "(0 = none, the default), for every variant or per variant: 1/16=0.25,1/8=0.5",
    )
    ap.add_argument("--ssim-weight", type=float, default=None, help="weight of (1 - SSIM) in the loss (default 0.2)")
    ap.add_argument("--log", type=Path, default=None, help="loss-curve CSV (default OUT/train_log.csv)")
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--plot", type=Path, default=None, help="loss-curve PNG")
    ap.add_argument("--results", type=Path, default=None, help="evaluation JSON")
    ap.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--finetune-decoder",
        action="store_true",
        help="train only the decoders of the variants already in OUT, from their weights, on "
        "the maps of their frozen encoders and codebooks (maps and rates unchanged)",
    )
    args = ap.parse_args(argv)

    import torch

    from m3cvc_codec.packs.lite.training import SSIM_WEIGHT, VARIANTS, VOCAB, count_params, export_variant

    if args.ssim_weight is None:
        args.ssim_weight = SSIM_WEIGHT
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    for n in names:
        if n not in VARIANTS:
            raise SystemExit(f"unknown variant {n!r} (have {', '.join(VARIANTS)})")

    t0 = time.time()
    image_paths = args.images if args.images is not None else sorted((args.media / "images" / "kodak24").glob("*.png"))
    images_raw = [read_image(p) for p in image_paths]
    images = [preprocess(im) for im in images_raw] + [im for im in images_raw if im.shape[:2] != (FRAME_H, FRAME_W)]
    videos: list[np.ndarray] = []
    used_videos = []
    if not args.no_videos:
        for p in training_videos(args.media):
            assert p.name not in HELD_OUT
            fr = video_frames(p)
            videos += fr
            used_videos.append(f"{p.name} ({len(fr)} frames)")
    if not images and not videos:
        raise SystemExit("no training data")
    print(
        f"data: {len(videos)} video frames from {used_videos}, {len(image_paths)} images "
        f"({len(images)} pool entries); {time.time() - t0:.1f} s",
        flush=True,
    )
    train_frames = videos + [preprocess(im) for im in images_raw]  # 512x320, for the prior

    log_rows: list[dict] = []
    meta = {}
    times = {}
    for name in names:
        cfg = VARIANTS[name]
        rng = np.random.default_rng(args.seed)
        sampler = CropSampler(videos, images, args.crop, rng, colour_share=args.colour_aug.get(name, 0.0))
        if args.finetune_decoder:
            secs = finetune_decoder(name, args, sampler, log_rows)
            times[name] = secs
            meta[name] = {
                "train_decoder_finetune": {
                    "steps": args.steps,
                    "lr": args.lr,
                    "batch": args.batch,
                    "crop": args.crop,
                    "colour_aug": args.colour_aug.get(name, 0.0),
                    "seconds": round(secs, 1),
                }
            }
            continue
        model, secs = train_variant(name, args, sampler, log_rows)
        times[name] = secs
        # export with a placeholder prior, then count indices through the exported pack
        export_variant(model, args.out / cfg["dir"], np.ones(VOCAB, np.int64))
        meta[name] = {
            "params_encoder": count_params(model.encoder),
            "params_decoder": count_params(model.decoder),
            "channels": list(cfg["channels"]),
            "train_steps": args.steps,
            "train_batch": args.batch,
            "train_crop": args.crop,
            "train_colour_aug": args.colour_aug.get(name, 0.0),
            "train_seconds": round(secs, 1),
        }

    from m3cvc_codec.packs.lite import LitePack

    write_manifest(args.out, meta, merge=args.finetune_decoder)
    pack = LitePack(weights_dir=args.out, verify=False)
    for name in [] if args.finetune_decoder else names:  # a fine-tuned decoder leaves the maps as they were
        cfg = VARIANTS[name]
        grid = next(g for g in pack.grids if g.name == name)
        prior = index_counts(pack, grid, train_frames)
        np.save(args.out / cfg["dir"] / "prior.npy", prior.astype(np.int64))
    manifest = write_manifest(args.out, meta, merge=args.finetune_decoder)
    total = sum((args.out / f).stat().st_size for v in manifest["variants"].values() for f in v["files"])
    print(f"weights: {total / 1e6:.2f} MB in {args.out}", flush=True)

    log = args.log or args.out / "train_log.csv"
    write_log(log, log_rows)
    if args.plot:
        plot_log(log, args.plot)
    if not args.no_eval:
        pack = LitePack(weights_dir=args.out)
        held = held_out_frames(args.media)
        kodak = [preprocess(im) for im in images_raw]
        res = evaluate(pack, held, kodak, names)
        if args.results:
            args.results.parent.mkdir(parents=True, exist_ok=True)
            out = {
                "command": " ".join(["python", "tools/train_lite.py"] + (argv or sys.argv[1:])),
                "train_seconds": {k: round(v, 1) for k, v in times.items()},
                "weights_bytes": total,
                "held_out": list(HELD_OUT),
                "training_videos": used_videos,
                "training_images": len(image_paths),
                "eval": res,
                "variants": {
                    k: {kk: vv for kk, vv in v.items() if kk != "files"} for k, v in manifest["variants"].items()
                },
            }
            args.results.write_text(json.dumps(out, indent=2) + "\n")
    print(f"done in {time.time() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
