#!/usr/bin/env python3
"""Latency of the paper's models, stage by stage, in the form of the paper's Table II: keyframe
selection (CLIP features, optical flow) and the description dialogue (per keyframe, per clip) on
the encoder side; the full pack's keyframe encode, keyframe decode and clip reconstruction; each
with its peak memory.

    python tools/bench/latency.py --tiny                       # tiny random models (any machine)
    python tools/bench/latency.py --models DIR                 # the models in DIR (real weights)
    python tools/bench/latency.py --real-size --device cuda    # real sizes, random weights
    python tools/bench/latency.py --real-size --stages keyframe --vlm none   # the CPU-sized part

``--stages`` picks among ``select``, ``describe`` (the dialogue; ``--vlm none`` also drops it),
``keyframe`` (SD 1.5 keyframe codec: encode and decode one keyframe) and ``clips`` (one clip of
``--clip-frames`` frames from LTX-Video 0.9.5, or ``--clip-backend sparsectrl``, interpolated
between two keyframes).  Peak memory is the GPU's ``max_memory_allocated`` during the stage on
CUDA, else the process's resident set size sampled every 5 ms during the stage (so it includes
the models loaded for earlier stages).  With ``--models DIR`` the full pack runs from
``--pack-config`` (a config written by tools/train_full.py), else from the tiny or real-size
config this script writes.

Latency does not depend on weight values, so ``--real-size`` builds every model at its real
size from its real configuration (tools/bench/model_configs/*.json) with random weights, saves
it and loads it back through the codec's own loading code (m3cvc_codec.models).  A random model
stops at no particular token, so every answer is forced to exactly ``--max-new-tokens`` tokens
(generation_config.min_new_tokens): the dialogue figures are for answers of that length.
The real-size Qwen-VL (8.3 B parameters) needs a GPU: in float32 it does not fit in 24 GiB.
The full pack's real sizes (model_configs/sd15-*.json: VAE 83.7 M, UNet 859.5 M, text encoder
123.1 M parameters, plus the keyframe tokenizer at its default size; ltx-video-0.9.5-*.json:
transformer 1.92 B, video VAE 1.25 B, T5-XXL encoder 4.76 B; animatediff-*.json: motion adapter
v1-5-3 417.1 M, SparseCtrl RGB 496.7 M, on SD 1.5's UNet) are built the same way; the keyframe
codec and SparseCtrl run on a CPU with 16 GiB, LTX-Video wants a GPU (T5-XXL alone is 19 GB in
float32).

Frames: ``--video`` (default: a clip of ../shared/media, else docs/sample/sample.webm) at the
coding size.  Figures go to docs/benchmarks.md (section "latency-<label>") unless --no-doc.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = Path(__file__).resolve().parent / "model_configs"
MEDIA_CLIP = ROOT.parent / "shared" / "media" / "videos" / "sam2_05_default_juggle.mp4"
SAMPLE = ROOT / "docs" / "sample" / "sample.webm"

CLIP_ID = "openai/clip-vit-base-patch32"
VLM_IDS = {"qwen2-vl": "Qwen/Qwen2-VL-7B-Instruct", "qwen2.5-vl": "Qwen/Qwen2.5-VL-7B-Instruct"}
VLM_CONFIGS = {"qwen2-vl": "qwen2-vl-7b-instruct.json", "qwen2.5-vl": "qwen2.5-vl-7b-instruct.json"}


def _load_tool(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config(name: str) -> dict:
    data = json.loads((CONFIGS / name).read_text())
    data.pop("_source", None)
    return data


def build_real_size(root: Path, families: list[str], device: str, clip: bool = True) -> None:
    """Real-size random-weight CLIP (when ``clip``) and Qwen-VL models under ``root``, by id.  The
    tokenizer and processor files come from the tiny models (built offline), and the real config
    takes the tiny tokenizer's special-token ids: which ids mark an image does not change the cost."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText, CLIPConfig, CLIPImageProcessor, CLIPModel

    if not clip and not families:
        return
    tiny = root / "_tiny"
    _load_tool("make_tiny_models").make_tiny_models(tiny, ["clip", *families])
    if clip:
        torch.manual_seed(0)
        with torch.device(device):
            model = CLIPModel(CLIPConfig.from_dict(_config("clip-vit-base-patch32.json")))
        model.to("cpu").save_pretrained(root / CLIP_ID)
        CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(
            root / CLIP_ID
        )
        del model
    for family in families:
        src, dst = tiny / VLM_IDS[family], root / VLM_IDS[family]
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.safetensors", "config.json"))
        tiny_config = json.loads((src / "config.json").read_text())
        real = _config(VLM_CONFIGS[family])
        for key, value in tiny_config.items():
            if key.endswith("_token_id"):
                real[key] = value
        config = AutoConfig.for_model(**real)
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        with torch.device(device):
            model = AutoModelForImageTextToText.from_config(config, dtype=dtype)
        model.save_pretrained(dst)
        del model
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    shutil.rmtree(tiny)


SD15_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
LTX_ID = "Lightricks/LTX-Video-0.9.5"
MOTION_ADAPTER_ID = "guoyww/animatediff-motion-adapter-v1-5-3"  # tools/tiny_models/video.py
SPARSECTRL_RGB_ID = "guoyww/animatediff-sparsectrl-rgb"
KEYFRAME_TINY = "m3cvc/keyframe-tiny"  # tools/tiny_models/sd.py
KEYFRAME_REAL = "m3cvc/keyframe-real-size"
STAGES = ("select", "describe", "keyframe", "clips")


def build_full_real_size(root: Path, stages: list[str], backend: str, device: str) -> None:
    """The full pack's models at their real size with random weights under ``root`` by id: SD
    1.5's VAE and text encoder, the keyframe tokenizers (default size) and the keyframe UNet (SD
    1.5's UNet taking z-hat too: 8 input channels) for ``keyframe``; LTX-Video 0.9.5's
    transformer, video VAE and T5-XXL encoder for ``clips``.  Tokenizers, scheduler configs and
    model_index.json come from the tiny models (built offline: which ids the tokenizer gives
    does not change the cost)."""
    import torch

    want = []
    if "keyframe" in stages or ("clips" in stages and backend == "sparsectrl"):
        want += ["sd15", "sd15-keyframe"]
    if "clips" in stages:
        want += ["ltx-video"] if backend == "ltx" else ["animatediff-sparsectrl"]
    if not want:
        return
    tiny = root / "_tiny_full"
    _load_tool("make_tiny_models").make_tiny_models(tiny, want)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32

    def made(build, folder: Path, **save) -> None:
        torch.manual_seed(0)
        with torch.device(device):
            model = build()
        model.to(dtype).save_pretrained(folder, **save)
        del model
        if device.startswith("cuda"):
            torch.cuda.empty_cache()

    if "sd15" in want:
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextConfig, CLIPTextModel

        from m3cvc_codec.packs.full.keyframe import KeyframeTokenizer

        sd, kf = root / SD15_ID, root / KEYFRAME_REAL
        for part in ("tokenizer", "scheduler"):
            shutil.copytree(tiny / SD15_ID / part, sd / part)
        made(lambda: AutoencoderKL.from_config(_config("sd15-vae.json")), sd / "vae")
        made(lambda: CLIPTextModel(CLIPTextConfig(**_config("sd15-text-encoder.json"))), sd / "text_encoder")
        unet = _config("sd15-unet.json")
        if backend == "sparsectrl" and "clips" in stages:
            made(lambda: UNet2DConditionModel.from_config(unet), sd / "unet")
        made(lambda: UNet2DConditionModel.from_config({**unet, "in_channels": 8}), kf / "unet")
        for grid, stride in (("1-16", 2), ("1-8", 1)):
            torch.manual_seed(0)
            KeyframeTokenizer(stride=stride).save_pretrained(kf / f"tokenizer_{grid}")  # float32 always
    if "ltx-video" in want:
        from diffusers import AutoencoderKLLTXVideo, LTXVideoTransformer3DModel
        from transformers import T5Config, T5EncoderModel

        src, dst = tiny / LTX_ID, root / LTX_ID
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.safetensors", "config.json"))
        shutil.copy(src / "scheduler" / "scheduler_config.json", dst / "scheduler")
        made(
            lambda: LTXVideoTransformer3DModel.from_config(_config("ltx-video-0.9.5-transformer.json")),
            dst / "transformer",
        )
        made(lambda: AutoencoderKLLTXVideo.from_config(_config("ltx-video-0.9.5-vae.json")), dst / "vae")
        made(lambda: T5EncoderModel(T5Config(**_config("ltx-video-0.9.5-text-encoder.json"))), dst / "text_encoder")
    if "animatediff-sparsectrl" in want:
        from diffusers import MotionAdapter, SparseControlNetModel

        made(
            lambda: MotionAdapter.from_config(_config("animatediff-motion-adapter-v1-5-3.json")),
            root / MOTION_ADAPTER_ID,
        )
        made(
            lambda: SparseControlNetModel.from_config(_config("animatediff-sparsectrl-rgb.json")),
            root / SPARSECTRL_RGB_ID,
        )
    shutil.rmtree(tiny)


def full_pack_config(models: Path, label: str, args) -> Path:
    """The pack config the bench runs: the shipped default with our trained weights at the tiny
    or real-size folder, the steps and backend asked for; written into ``models``."""
    from m3cvc_codec.packs.full import FullPack

    data = FullPack.default_config().to_dict()
    folder = KEYFRAME_TINY if label == "tiny" else KEYFRAME_REAL
    comps = data["components"]
    comps["keyframe_tokenizer_1/16"] = {"source": f"{folder}/tokenizer_1-16"}
    comps["keyframe_tokenizer_1/8"] = {"source": f"{folder}/tokenizer_1-8"}
    comps["keyframe_unet"] = {"source": f"{folder}/unet"}
    keyframe, clips = data["settings"]["keyframe"], data["settings"]["clips"]
    if args.keyframe_steps:
        keyframe["steps"] = args.keyframe_steps
    if args.clip_steps:
        clips["steps"] = args.clip_steps
    clips["backend"] = args.clip_backend
    if args.clip_backend == "sparsectrl":
        clips["max_frames"] = min(16, args.clip_frames + 1)
        for names in data["grids"].values():
            names.remove("video")
            names += ["motion_adapter", "sparse_controlnet"]
    path = models / "full-pack-bench.json"
    path.write_text(json.dumps(data, indent=2))
    return path


class PeakMemory:
    """Peak memory during a ``with`` block, in MiB: the GPU's ``max_memory_allocated`` on CUDA,
    else the process's resident set size sampled every 5 ms (/proc/self/statm)."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.peak = 0.0
        self._stop = False

    @staticmethod
    def _rss() -> float:
        import os

        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except OSError:  # not Linux: the process's high-water mark
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def _sample(self) -> None:
        while not self._stop:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.005)

    def __enter__(self) -> PeakMemory:
        import threading

        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
        else:
            self.peak = self._rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            import torch

            self.peak = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._stop = True
            self._thread.join()
            self.peak = max(self.peak, self._rss())


def bench_full(config: Path, frames, options, args) -> list[dict]:
    """Keyframe encode, keyframe decode and clip reconstruction through the full pack (the
    ``keyframe`` and ``clips`` stages), one keyframe / one clip at a time, as the codec runs them."""
    from m3cvc_codec.packs import PackConfig
    from m3cvc_codec.packs.full import FullPack

    stages = args.stages
    pack = FullPack(PackConfig.from_file(config), options)
    grid = pack.grid(args.grid)
    steps = pack.keyframe_settings.get("steps")
    text = "a person juggling in a park, trees and a path behind them"
    repeat = args.repeat
    rows: list[dict] = []
    first = frames[0]
    n = args.clip_frames
    last = frames[min(n, len(frames) - 1)]
    if "keyframe" in stages:
        start = time.perf_counter()
        codec = pack.keyframe_codec()
        codec.load_all((grid.name,))
        load_s = time.perf_counter() - start
        if repeat > 1:
            pack.encode_keyframe(first, grid)  # warm-up
        with PeakMemory(args.device) as mem:
            indices, times = timed(pack.encode_keyframe, first, grid, repeat=repeat)
        rows.append(
            {
                "stage": f"keyframe encode ({grid.name} grid)",
                "model": "SD 1.5 VAE encoder + keyframe tokenizer",
                "unit": "keyframe",
                "ms": 1000 * statistics.median(times),
                "load_s": load_s,
                "peak_mib": mem.peak,
            }
        )
        if repeat > 1:
            pack.decode_keyframe(indices, grid, text, 1)
        with PeakMemory(args.device) as mem:
            decoded, times = timed(pack.decode_keyframe, indices, grid, text, 1, repeat=repeat)
        assert decoded.shape == first.shape, (decoded.shape, first.shape)
        rows.append(
            {
                "stage": f"keyframe decode ({steps} steps)",
                "model": "SD 1.5 UNet (z-hat input) + VAE decoder",
                "unit": "keyframe",
                "ms": 1000 * statistics.median(times),
                "peak_mib": mem.peak,
            }
        )
    if "clips" in stages:
        backend = pack.clip_settings.get("backend")
        start = time.perf_counter()
        pack.clip_backend()
        load_s = time.perf_counter() - start

        def clip():
            return list(pack.reconstruct_clip(first, last, text, n, 2))

        if repeat > 1:
            clip()
        with PeakMemory(args.device) as mem:
            out, times = timed(clip, repeat=repeat)
        assert len(out) == n and out[0].shape == first.shape
        model = "LTX-Video 0.9.5" if backend == "ltx" else "AnimateDiff SparseCtrl (SD 1.5)"
        rows.append(
            {
                "stage": f"clip reconstruction ({n} frames, {pack.clip_settings.get('steps')} steps, interpolation)",
                "model": model,
                "unit": "clip",
                "ms": 1000 * statistics.median(times),
                "load_s": load_s,
                "peak_mib": mem.peak,
            }
        )
    return rows


def frames_of(video: Path, count: int, size: tuple[int, int]):
    import numpy as np

    from m3cvc_codec.video_io import read_frames

    out = []
    for frame in read_frames(video, size=size, fps=8):
        out.append(frame)
        if len(out) == count:
            break
    return np.stack(out)


def timed(fn, *args, repeat: int = 1):
    """(result of the last call, seconds of each call); the GPU is synchronised around calls."""
    import torch

    times = []
    result = None
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = fn(*args)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return result, times


def bench_selection(models: Path, frames, options, flow_backend: str) -> list[dict]:
    from m3cvc_codec.models.clip import ClipEmbedder
    from m3cvc_codec.models.flow import FlowMagnitude

    rows = []
    start = time.perf_counter()
    embedder = ClipEmbedder(CLIP_ID, options)
    load_s = time.perf_counter() - start
    embedder.embed(frames[:2])  # warm-up (kernels, allocator)
    with PeakMemory(options.device) as mem:
        _, times = timed(embedder.embed, frames, repeat=3)
    rows.append(
        {
            "stage": "select: CLIP features",
            "model": CLIP_ID,
            "unit": "frame",
            "ms": 1000 * statistics.median(times) / len(frames),
            "load_s": load_s,
            "peak_mib": mem.peak,
        }
    )
    flow = FlowMagnitude(flow_backend, options)
    features, feature_times = timed(flow.motion_features, frames)
    pairs = (features[:-1], features[1:])
    flow.motion(features[:2], features[1:3])  # warm-up
    _, times = timed(flow.motion, *pairs, repeat=3)
    per_pair = 1000 * (statistics.median(times) / (len(frames) - 1) + feature_times[0] / len(frames))
    rows.append(
        {"stage": f"select: flow ({flow.backend})", "model": flow.backend, "unit": "frame pair", "ms": per_pair}
    )
    return rows


def bench_dialogue(models: Path, family: str, frames, options, turns: int, tokens: int, clips: int) -> list[dict]:
    from m3cvc_codec.descriptions import ClipSpan
    from m3cvc_codec.dialogue import DialogueDescriptions

    start = time.perf_counter()
    dialogue = DialogueDescriptions.from_options(VLM_IDS[family], turns=turns, max_new_tokens=tokens, options=options)
    load_s = time.perf_counter() - start
    generation = dialogue.model.model.generation_config
    generation.min_new_tokens = tokens  # a random model stops anywhere: force the answer length
    length = len(frames) // clips
    keyframe_s, clip_s = [], []
    previous, previous_text = None, None
    with PeakMemory(options.device) as mem:
        for k in range(clips):
            span = ClipSpan(index=k, first_frame=k * length, frame_count=length, fps=8)
            clip = frames[k * length : (k + 1) * length]
            text, times = timed(dialogue.describe_keyframe, span, clip[0], previous, previous_text)
            if k:  # clip 0's keyframe dialogue skips the turn about the previous keyframe
                keyframe_s += times
            _, times = timed(dialogue.describe_clip, span, clip, text)
            clip_s += times
            previous, previous_text = clip[0], text
    model = VLM_IDS[family]
    return [
        {
            "stage": f"describe: keyframe, {turns} turns",
            "model": model,
            "unit": "keyframe",
            "ms": 1000 * statistics.median(keyframe_s),
            "load_s": load_s,
            "peak_mib": mem.peak,
            "clip_input": dialogue.model.clip_input,
        },
        {
            "stage": "describe: clip",
            "model": model,
            "unit": "clip",
            "ms": 1000 * statistics.median(clip_s),
            "peak_mib": mem.peak,
            "clip_input": dialogue.model.clip_input,
        },
    ]


def machine(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    import os

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (CPU)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--tiny", action="store_true", help="tiny random-weight models (tools/make_tiny_models.py)")
    src.add_argument("--real-size", action="store_true", help="real-size models with random weights")
    src.add_argument("--models", type=Path, help="a folder holding the models by id (real weights)")
    p.add_argument("--vlm", default="qwen2-vl", help="comma-separated: qwen2-vl, qwen2.5-vl, or none")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", help="float32, float16, bfloat16 (default: float32 on the CPU, bfloat16 on a GPU)")
    p.add_argument("--flow", default="auto", help="auto (RAFT where torchvision imports, else DIS), raft_large, dis")
    p.add_argument("--video", type=Path, help="input video (default: a shared media clip or the sample)")
    p.add_argument("--size", default="512x320", help="coding size (default 512x320)")
    p.add_argument("--frames", type=int, default=32, help="frames scored (default 32)")
    p.add_argument("--clips", type=int, default=3, help="clips described (default 3; clip 0 is not timed for D^F)")
    p.add_argument("--turns", type=int, default=4, choices=[1, 2, 4])
    p.add_argument("--max-new-tokens", type=int, default=64, help="answer length per turn, forced (default 64)")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {', '.join(STAGES)} (default: all)")
    p.add_argument("--grid", default="1/16", help="keyframe grid of the full pack (default 1/16)")
    p.add_argument("--keyframe-steps", type=int, help="keyframe decoder steps (default: the pack config's, 25)")
    p.add_argument("--clip-backend", default="ltx", choices=["ltx", "sparsectrl"], help="clip model (default ltx)")
    p.add_argument("--clip-steps", type=int, help="clip model steps (default: the pack config's, 30)")
    p.add_argument("--clip-frames", type=int, default=16, help="frames of the clip reconstructed (default 16)")
    p.add_argument("--pack-config", type=Path, help="with --models: the full pack's config (tools/train_full.py's)")
    p.add_argument(
        "--repeat", type=int, help="timed runs per stage, after a warm-up when > 1 (default 3 tiny, 1 otherwise)"
    )
    p.add_argument("--json", type=Path, help="also write the rows as JSON")
    p.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args(argv)

    from m3cvc_codec.packs.config import RuntimeOptions
    from m3cvc_codec.video_io import parse_size

    size = parse_size(args.size)
    args.stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(args.stages) - set(STAGES))
    if unknown:
        p.error(f"unknown stage {unknown[0]!r} (stages: {', '.join(STAGES)})")
    families = [] if args.vlm == "none" or "describe" not in args.stages else args.vlm.split(",")
    full = [s for s in args.stages if s in ("keyframe", "clips")]
    video = args.video or (MEDIA_CLIP if MEDIA_CLIP.exists() else SAMPLE)
    frames = frames_of(video, max(args.frames, args.clip_frames + 1), size)
    label = "tiny" if args.tiny else "real-size" if args.real_size else "weights"
    if args.repeat is None:
        args.repeat = 3 if args.tiny else 1
    with tempfile.TemporaryDirectory() as tmp:
        models = args.models
        if models is None:
            models = Path(tmp)
            start = time.perf_counter()
            if args.tiny:
                tiny = (["clip"] if "select" in args.stages else []) + families
                if full:
                    tiny += ["sd15", "sd15-keyframe"]
                    tiny += ["ltx-video"] if args.clip_backend == "ltx" else ["animatediff-sparsectrl"]
                _load_tool("make_tiny_models").make_tiny_models(models, tiny)
            else:
                build_real_size(models, families, args.device, clip="select" in args.stages)
                build_full_real_size(models, full, args.clip_backend, args.device)
            print(f"built {label} models in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        options = RuntimeOptions(device=args.device, dtype=args.dtype, models_dir=str(models))
        rows = []
        if "select" in args.stages:
            rows += bench_selection(models, frames, options, args.flow)
        for family in families:
            rows += bench_dialogue(models, family, frames, options, args.turns, args.max_new_tokens, args.clips)
        if full:
            if args.models is not None and args.pack_config is None:
                p.error("--models with the keyframe or clips stage needs --pack-config (the full pack's config)")
            config = args.pack_config or full_pack_config(models, label, args)
            rows += bench_full(config, frames, options, args)

    where = machine(args.device)
    command = "python tools/bench/latency.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"`{command}`, {datetime.date.today().isoformat()}, {where}; {len(frames)} frames of "
        f"{video.name} at {size[0]}x{size[1]}"
        + (f"; {args.turns}-turn dialogue, answers forced to {args.max_new_tokens} tokens a turn" if families else "")
        + (f"; full pack: grid {args.grid}, clip backend {args.clip_backend}" if full else "")
        + f"; {args.repeat} timed run{'s' if args.repeat > 1 else ''} a stage (median).",
        "",
        "| stage | model | per | ms | load s | peak MiB |",
        "|---|---|---|---:|---:|---:|",
    ]
    for row in rows:
        load = f"{row['load_s']:.1f}" if "load_s" in row else ""
        peak = f"{row['peak_mib']:.0f}" if "peak_mib" in row else ""
        lines.append(f"| {row['stage']} | {row['model']} | {row['unit']} | {row['ms']:.1f} | {load} | {peak} |")
    text = "\n".join(lines)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"machine": where, "command": command, "rows": rows}, indent=2))
    if not args.no_doc:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from report import update_section

        part = "" if set(args.stages) == set(STAGES) else "-" + "-".join(args.stages)
        update_section(
            f"latency-{label}-{'gpu' if args.device.startswith('cuda') else 'cpu'}{part}",
            f"### Latency ({label} models{', ' + ', '.join(args.stages) if part else ''})\n\n{text}",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
