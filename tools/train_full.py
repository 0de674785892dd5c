#!/usr/bin/env python3
"""Train the full pack's keyframe codec (paper III-A) and write a pack config that uses it.

Three steps, each skipped when its result is already in OUT and ``--resume`` is given:

0. **Pairs** (``--videos``): frames of each video centre-cropped and resized to ``--size``
   (512x320) at ``--fps`` (8), keyframes chosen by the semantic criterion alone (the paper's
   lambda2 = 0: CLIP image features, ``D = lambda1 * (1 - cos) - D_th > 0``), each described by
   the description provider (``--texts-dir``: a sidecar ``<video stem>.json`` per video in the
   format of docs/sidecar.md; ``--describe vlm``: the paper's dialogue with Qwen-VL).  Written to
   ``OUT/pairs/`` (PNG files + ``pairs.jsonl``, one ``{"image": ..., "text": ...}`` a line).
   Or give such a folder with ``--pairs DIR``.
1. **Stage 1** per grid: the tokenizer (post-encoder, codebook, upsampler) on the pairs' SD
   latents: latent MSE + 0.25 x commit loss, EMA codebook (m3cvc_codec.packs.full.training).
   Result: ``OUT/keyframe_tokenizer_1-16/`` (and ``_1-8``).
2. **Stage 2** per grid: the UNet (``conv_in`` widened by z-hat's channels) fine-tuned with the
   epsilon loss on the pairs, its linear layers (``--unet-train linear``, the paper's) or LoRA
   adapters (``--unet-train lora``, fused when saved).  Result: ``OUT/keyframe_unet_1-16/``.

Then ``OUT/pack-config.json``: ``--base-config`` (default: the pack's own default.json) with the
SD components pointed at ``--base`` and the trained folders (relative to OUT, with their
SHA-256) in place of the default's, so ``m3v-encode --pack full --pack-config OUT/pack-config.json``
uses them.  Checkpoints (safetensors; trainable weights, optimizer state, random states) go to
``OUT/checkpoints/stage<k>_<grid>/`` every ``--checkpoint-every`` steps; ``--resume`` continues
from the latest one and ends with the weights an uninterrupted run would have.  Loss rows go to
``OUT/loss.csv`` (and stdout as JSON); a progress bar to stderr.

Needs the full extra (torch, diffusers, transformers; peft for LoRA).  Usage on a GPU::

    python tools/train_full.py --videos /data/msrvtt/videos --texts-dir /data/msrvtt/texts \\
        --out runs/full --device cuda --dtype bf16 --steps1 20000 --steps2 20000

Smoke test (what tests/test_train_full.py runs, on tiny models)::

    python tools/train_full.py --pairs PAIRS --models TINY --out /tmp/o --grids 1/16 \\
        --steps1 1 --steps2 1 --batch 2 --size 64x64 --tokenizer-channels 16 --code-dim 8 --blocks 1
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SD15_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SD_PARTS = ("vae", "unet", "text_encoder", "tokenizer", "scheduler")
GRIDS = ("1/16", "1/8")
VIDEO_EXTS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".y4m")
LOG_FIELDS = (
    "stage",
    "grid",
    "step",
    "lr",
    "loss",
    "recon",
    "commit",
    "codes_used",
    "perplexity",
    "restarts",
    "elapsed_s",
)


def slug(grid: str) -> str:
    return grid.replace("/", "-")


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--size {text!r} is not WIDTHxHEIGHT") from None
    if w % 16 or h % 16 or w <= 0 or h <= 0:
        raise SystemExit(f"--size {text}: width and height must be positive multiples of 16")
    return w, h


# ---------------------------------------------------------------------------------------------
# Pairs


def read_pairs(folder: Path) -> list[tuple[Path, str]]:
    """(image path, text) of ``folder/pairs.jsonl``."""
    index = folder / "pairs.jsonl"
    if not index.is_file():
        raise SystemExit(f"{folder}: no pairs.jsonl (one {{'image': ..., 'text': ...}} a line)")
    out = []
    for n, line in enumerate(index.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            out.append((folder / item["image"], str(item.get("text", ""))))
        except (ValueError, KeyError, TypeError):
            raise SystemExit(f"{index}:{n}: not a JSON object with an 'image'") from None
    if not out:
        raise SystemExit(f"{index}: no pairs")
    return out


def load_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    import cv2

    from m3cvc_codec.video_io import fit_frame

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read image {path}")
    return fit_frame(np.ascontiguousarray(bgr[:, :, ::-1]), size[0], size[1], "crop")


def make_pairs(args, options, out: Path) -> Path:
    """Step 0: keyframes of every video (semantic criterion) and their descriptions -> out."""
    import cv2

    from m3cvc_codec.descriptions import ClipSpan, load_sidecar, provider_for
    from m3cvc_codec.keyframes import KeyframeParams, SemanticScorer, select_composite
    from m3cvc_codec.models.clip import DEFAULT_CLIP, ClipEmbedder
    from m3cvc_codec.video_io import read_frames

    videos: list[Path] = []
    for p in args.videos:
        p = Path(p)
        videos += sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_EXTS) if p.is_dir() else [p]
    if not videos:
        raise SystemExit("--videos: no videos found")
    if args.describe == "sidecar" and args.texts_dir is None:
        raise SystemExit("--videos needs --texts-dir DIR (a sidecar per video) or --describe vlm")
    embedder = ClipEmbedder(args.clip_model or DEFAULT_CLIP, options)
    params = KeyframeParams(
        lambda1=args.lambda1, lambda2=0.0, threshold=args.threshold, min_clip=args.min_clip, max_clip=args.max_clip
    )
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for video in videos:
        frames = list(read_frames(video, args.size, args.fps))
        scorer = SemanticScorer(embedder)
        for f in frames:
            scorer.add(f)
        clips = select_composite(len(frames), scorer, lambda n, l: 0.0, params)
        if args.describe == "vlm":
            provider = provider_for(describe="vlm", vlm=args.vlm, options=options)
        else:
            sidecar = Path(args.texts_dir) / f"{video.stem}.json"
            if not sidecar.is_file():
                raise SystemExit(f"{video.name}: no descriptions {sidecar}")
            provider = load_sidecar(sidecar)
        provider.check_clips(len(clips))
        prev, prev_text = None, None
        for k, (first, count) in enumerate(clips):
            span = ClipSpan(k, first, count, Fraction(args.fps))
            text = provider.describe_keyframe(span, frames[first], prev, prev_text)
            name = f"{video.stem}_{first:05d}.png"
            cv2.imwrite(str(out / name), np.ascontiguousarray(frames[first][:, :, ::-1]))
            lines.append(json.dumps({"image": name, "text": text, "video": video.name, "frame": first}))
            prev, prev_text = frames[first], text
        print(json.dumps({"pairs": video.name, "frames": len(frames), "keyframes": len(clips)}), flush=True)
    (out / "pairs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


# ---------------------------------------------------------------------------------------------
# Logging


class Log:
    """Loss rows: appended to OUT/loss.csv and printed as JSON lines."""

    def __init__(self, path: Path, quiet: bool = False) -> None:
        self.path, self.quiet, self.t0 = path, quiet, time.time()

    def __call__(self, row: dict[str, Any]) -> None:
        row = {**row, "elapsed_s": round(time.time() - self.t0, 1)}
        new = not self.path.exists()
        with self.path.open("a", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=LOG_FIELDS, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
        if not self.quiet:
            print(json.dumps(row), flush=True)


class Bar:
    """A tqdm bar per stage (stderr), or nothing with --no-progress."""

    def __init__(self, enabled: bool, desc: str) -> None:
        self.bar = None
        self.enabled, self.desc = enabled, desc

    def __call__(self, done: int, total: int, losses: dict[str, float]) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done - 1, desc=self.desc, unit="step", dynamic_ncols=True)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{losses['loss']:.4f}")
        if done >= total:
            self.bar.close()


# ---------------------------------------------------------------------------------------------
# Stages


def base_config(args):
    from m3cvc_codec.packs.config import PackConfig

    comps = {n: {"source": args.base, "subfolder": n} for n in SD_PARTS}
    return PackConfig("full", comps, {}, {"keyframe": {"steps": 25, "guidance": 3.0, "scheduler": "ddim"}})


def latents_for(codec, pairs, args, out: Path):
    """SD latents (N, 4, H/8, W/8) of the pairs' images, cached in OUT/cache/ by the pairs'
    files, the size and the base model."""
    import torch
    from safetensors.torch import load_file, save_file

    key = hashlib.sha256()
    key.update(json.dumps([args.base, list(args.size), args.dtype]).encode())
    for path, _ in pairs:
        key.update(path.name.encode())
        key.update(hashlib.sha256(path.read_bytes()).digest())
    cache = out / "cache" / f"latents_{key.hexdigest()[:16]}.safetensors"
    if cache.is_file():
        return load_file(str(cache))["latents"]
    zs = [codec.latent(load_image(p, args.size)).cpu() for p, _ in pairs]
    latents = torch.cat(zs).clone()  # a normal tensor (codec.latent gives inference-mode ones)
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_file({"latents": latents.contiguous()}, str(cache))
    return latents


def done_marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "train_state.json").read_text())
    except (OSError, ValueError):
        return None


def _same_size(state: dict, args) -> bool:
    """Whether a finished stage was trained at ``--size`` (folders from before the size was
    recorded count as yes)."""
    return state.get("size", list(args.size)) == list(args.size)


def check_fresh(ckpt: Path, resume: bool) -> None:
    if not resume and ckpt.is_dir() and any(ckpt.glob("step_*.safetensors")):
        raise SystemExit(f"{ckpt} holds checkpoints: pass --resume to continue them, or use another --out")


def stage1(args, codec, latents, grid: str, out: Path, log: Log) -> None:
    from m3cvc_codec.packs.full.training import Stage1Config, run_stage1

    target = out / f"keyframe_tokenizer_{slug(grid)}"
    state = done_marker(target)
    if args.resume and state and state.get("steps") == args.steps1 and _same_size(state, args):
        print(json.dumps({"stage": 1, "grid": grid, "skipped": "already trained"}), flush=True)
        return
    ckpt = out / "checkpoints" / f"stage1_{slug(grid)}"
    check_fresh(ckpt, args.resume)
    cfg = Stage1Config(
        grid=grid,
        steps=args.steps1,
        batch=args.batch,
        lr=args.lr1,
        channels=args.tokenizer_channels,
        code_dim=args.code_dim,
        blocks=args.blocks,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
    )
    tok = run_stage1(
        latents,
        cfg,
        ckpt,
        device=codec.device,
        resume=args.resume,
        log=log,
        progress=Bar(not args.no_progress, f"stage 1 {grid}"),
    )
    tok.save_pretrained(target)
    state = {"stage": 1, "grid": grid, "steps": args.steps1, "size": list(args.size)}
    (target / "train_state.json").write_text(json.dumps(state) + "\n")


def stage2(args, codec, latents, texts, grid: str, out: Path, log: Log) -> None:
    import torch
    from diffusers import UNet2DConditionModel

    from m3cvc_codec.packs.full.keyframe import KeyframeTokenizer
    from m3cvc_codec.packs.full.training import Stage2Config, run_stage2

    target = out / f"keyframe_unet_{slug(grid)}"
    state = done_marker(target)
    if (
        args.resume
        and state
        and state.get("steps") == args.steps2
        and state.get("mode") == args.unet_train
        and _same_size(state, args)
    ):
        print(json.dumps({"stage": 2, "grid": grid, "skipped": "already trained"}), flush=True)
        return
    tok_dir = out / f"keyframe_tokenizer_{slug(grid)}"
    if not tok_dir.is_dir():
        raise SystemExit(f"stage 2 for grid {grid} needs stage 1's {tok_dir} (run --stages 1 first)")
    ckpt = out / "checkpoints" / f"stage2_{slug(grid)}"
    check_fresh(ckpt, args.resume)
    tokenizer = KeyframeTokenizer.from_pretrained(tok_dir)
    unet = codec.load_component("unet", UNet2DConditionModel.from_pretrained, "Stable Diffusion UNet")
    if unet.dtype != torch.float32:
        unet = unet.to(torch.float32)  # trained in float32 (autocast is the place for mixed precision)
    tok = codec.text_tokenizer
    enc = codec.text_encoder

    def encode_text(prompts: list[str]):
        ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
        return enc(ids.input_ids.to(codec.device))[0].float()

    sched = codec.scheduler()
    cfg = Stage2Config(
        grid=grid,
        steps=args.steps2,
        batch=args.batch,
        lr=args.lr2,
        mode=args.unet_train,
        lora_rank=args.lora_rank,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
    )
    autocast = (
        torch.autocast(codec.device.type, dtype=codec.dtype)
        if codec.dtype != torch.float32
        else torch.autocast(codec.device.type, enabled=False)
    )
    with autocast:
        unet = run_stage2(
            unet,
            tokenizer,
            latents,
            texts,
            encode_text,
            sched.alphas_cumprod.float(),
            cfg,
            ckpt,
            device=codec.device,
            resume=args.resume,
            log=log,
            progress=Bar(not args.no_progress, f"stage 2 {grid}"),
        )
    unet.save_pretrained(target)
    (target / "train_state.json").write_text(
        json.dumps({"stage": 2, "grid": grid, "steps": args.steps2, "mode": args.unet_train, "size": list(args.size)})
        + "\n"
    )


def write_pack_config(args, out: Path) -> Path:
    """OUT/pack-config.json: the base config with the SD parts at --base and the trained
    folders of OUT (relative, with their SHA-256) in place of the base's."""
    from m3cvc_codec.packs.config import PackConfig
    from m3cvc_codec.packs.full.keyframe import folder_digest

    if args.base_config:
        data = json.loads(Path(args.base_config).read_text(encoding="utf-8"))
        base_root = Path(args.base_config).resolve().parent
    else:
        default = ROOT / "m3cvc_codec" / "packs" / "full" / "default.json"
        data = json.loads(default.read_text(encoding="utf-8")) if default.is_file() else {"pack": "full"}
        base_root = default.parent
    comps = dict(data.get("components", {}))
    # relative sources of the base config keep pointing where they did
    for name, c in comps.items():
        src = c.get("source", "")
        if src.startswith(("./", "../")) and (base_root / src).exists():
            comps[name] = {**c, "source": str((base_root / src).resolve())}
    for part in SD_PARTS:
        comps[part] = {"source": args.base, "subfolder": part}
    grids = {g: list(v) for g, v in dict(data.get("grids", {})).items()}
    for grid in GRIDS:
        tok = out / f"keyframe_tokenizer_{slug(grid)}"
        unet = out / f"keyframe_unet_{slug(grid)}"
        if not (tok.is_dir() and unet.is_dir()):
            continue
        tname, uname = f"keyframe_tokenizer_{grid}", f"keyframe_unet_{grid}"
        comps[tname] = {"source": f"./{tok.name}", "sha256": folder_digest(tok)}
        comps[uname] = {"source": f"./{unet.name}", "sha256": folder_digest(unet)}
        names = [n for n in grids.get(grid, list(SD_PARTS)) if n not in (tname, "keyframe_unet", uname)]
        grids[grid] = [*[p for p in SD_PARTS if p not in names], *names, tname, uname]
    used = {n for names in grids.values() for n in names}
    if "keyframe_unet" in comps and "keyframe_unet" not in used:
        del comps["keyframe_unet"]
    settings = dict(data.get("settings", {}))
    settings.setdefault("keyframe", {"steps": 25, "guidance": 3.0, "scheduler": "ddim"})
    # the coding size is the stream's (m3v-encode --size), not the config's; the training size
    # is in each trained folder's train_state.json
    settings["keyframe"] = {k: v for k, v in settings["keyframe"].items() if k != "size"}
    config = PackConfig("full", comps, grids, settings, root=out)
    path = out / "pack-config.json"
    config.save(path)
    return path


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    data = ap.add_argument_group("data")
    src = data.add_mutually_exclusive_group(required=True)
    src.add_argument("--pairs", type=Path, help="folder with pairs.jsonl and its images (skips step 0)")
    src.add_argument("--videos", nargs="+", help="training videos, or folders of them")
    data.add_argument("--texts-dir", type=Path, help="a description sidecar <video stem>.json per video")
    data.add_argument("--describe", choices=("sidecar", "vlm"), default="sidecar")
    data.add_argument("--vlm", help="vision-language model for --describe vlm (default Qwen2-VL-7B-Instruct)")
    data.add_argument(
        "--clip-model", help="CLIP model of the semantic criterion (default openai/clip-vit-base-patch32)"
    )
    data.add_argument("--lambda1", type=float, default=3.0)
    data.add_argument("--threshold", type=float, default=0.35)
    data.add_argument("--min-clip", type=int, default=2)
    data.add_argument("--max-clip", type=int, default=32)
    data.add_argument("--size", type=parse_size, default=(512, 320), help="WIDTHxHEIGHT (512x320)")
    data.add_argument("--fps", type=float, default=8.0)
    model = ap.add_argument_group("models")
    model.add_argument("--base", default=SD15_ID, help=f"SD 1.5 repository id or folder ({SD15_ID})")
    model.add_argument("--base-config", help="pack config to extend (default: the full pack's default.json)")
    model.add_argument("--models", help="folder of model ids (offline)")
    model.add_argument("--device", default="cpu")
    model.add_argument("--dtype", help="float32 (default), bfloat16 or float16 (frozen parts; autocast in stage 2)")
    train = ap.add_argument_group("training")
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--grids", default="1/16,1/8")
    train.add_argument("--stages", default="1,2")
    train.add_argument("--steps1", type=int, default=2000)
    train.add_argument("--steps2", type=int, default=2000)
    train.add_argument("--batch", type=int, default=8)
    train.add_argument("--lr1", type=float, default=2e-4)
    train.add_argument("--lr2", type=float, default=1e-5)
    train.add_argument("--unet-train", choices=("linear", "lora"), default="linear")
    train.add_argument("--lora-rank", type=int, default=16)
    train.add_argument("--tokenizer-channels", type=int, default=192)
    train.add_argument("--code-dim", type=int, default=16)
    train.add_argument("--blocks", type=int, default=2)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--checkpoint-every", type=int, default=500)
    train.add_argument("--log-every", type=int, default=50)
    train.add_argument("--resume", action="store_true", help="continue from OUT's checkpoints; skip finished stages")
    train.add_argument("--no-progress", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    grids = [g.strip() for g in args.grids.split(",") if g.strip()]
    bad = [g for g in grids if g not in GRIDS]
    if bad or not grids:
        raise SystemExit(f"--grids: {', '.join(bad) or 'none'} not among {', '.join(GRIDS)}")
    stages = {s.strip() for s in args.stages.split(",") if s.strip()}
    if not stages <= {"1", "2"} or not stages:
        raise SystemExit("--stages: 1, 2 or 1,2")
    for name in ("steps1", "steps2", "batch", "checkpoint_every", "log_every"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be at least 1")

    from m3cvc_codec.errors import CodecError
    from m3cvc_codec.models.hub import quiet_model_loading, require_full
    from m3cvc_codec.packs.base import PackError
    from m3cvc_codec.packs.config import RuntimeOptions

    try:
        require_full("tools/train_full.py")
        import diffusers  # noqa: F401
    except (CodecError, ImportError) as err:
        raise SystemExit(str(err)) from None
    quiet_model_loading()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    options = RuntimeOptions(device=args.device, dtype=args.dtype, models_dir=args.models)
    log = Log(out / "loss.csv")
    try:
        from m3cvc_codec.packs.full.keyframe import KeyframeCodec

        if args.pairs is not None:
            pairs_dir = args.pairs
        else:
            pairs_dir = out / "pairs"
            if not (args.resume and (pairs_dir / "pairs.jsonl").is_file()):
                make_pairs(args, options, pairs_dir)
        pairs = read_pairs(pairs_dir)
        codec = KeyframeCodec.from_config(base_config(args), options)
        latents = latents_for(codec, pairs, args, out)
        texts = [t for _, t in pairs]
        for grid in grids:
            if "1" in stages:
                stage1(args, codec, latents, grid, out, log)
            if "2" in stages:
                stage2(args, codec, latents, texts, grid, out, log)
        path = write_pack_config(args, out)
    except (CodecError, PackError) as err:
        raise SystemExit(f"train_full: {err}") from None
    print(json.dumps({"pack_config": str(path)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
