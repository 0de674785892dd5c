#!/usr/bin/env python3
"""Latency of the paper's encoder-side models: keyframe selection (CLIP features, optical flow)
and the description dialogue (per keyframe, per clip), in the form of the paper's Table II.

    python tools/bench/latency.py --tiny                       # tiny random models (any machine)
    python tools/bench/latency.py --models DIR                 # the models in DIR (real weights)
    python tools/bench/latency.py --real-size --device cuda    # real sizes, random weights

Latency does not depend on weight values, so ``--real-size`` builds every model at its real
size from its real configuration (tools/bench/model_configs/*.json) with random weights, saves
it and loads it back through the codec's own loading code (m3cvc_codec.models).  A random model
stops at no particular token, so every answer is forced to exactly ``--max-new-tokens`` tokens
(generation_config.min_new_tokens): the dialogue figures are for answers of that length.
The real-size Qwen-VL (8.3 B parameters) needs a GPU: in float32 it does not fit in 24 GiB.

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


def build_real_size(root: Path, families: list[str], device: str) -> None:
    """Real-size random-weight CLIP and Qwen-VL models under ``root``, by id.  The tokenizer and
    processor files come from the tiny models (built offline), and the real config takes the tiny
    tokenizer's special-token ids: which ids mark an image does not change the cost."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText, CLIPConfig, CLIPImageProcessor, CLIPModel

    tiny = root / "_tiny"
    _load_tool("make_tiny_models").make_tiny_models(tiny, ["clip", *families])
    torch.manual_seed(0)
    with torch.device(device):
        clip = CLIPModel(CLIPConfig.from_dict(_config("clip-vit-base-patch32.json")))
    clip.to("cpu").save_pretrained(root / CLIP_ID)
    CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(
        root / CLIP_ID
    )
    del clip
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
    _, times = timed(embedder.embed, frames, repeat=3)
    rows.append(
        {
            "stage": "select: CLIP features",
            "model": CLIP_ID,
            "unit": "frame",
            "ms": 1000 * statistics.median(times) / len(frames),
            "load_s": load_s,
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
            "clip_input": dialogue.model.clip_input,
        },
        {
            "stage": "describe: clip",
            "model": model,
            "unit": "clip",
            "ms": 1000 * statistics.median(clip_s),
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
    p.add_argument("--json", type=Path, help="also write the rows as JSON")
    p.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args(argv)

    from m3cvc_codec.packs.config import RuntimeOptions
    from m3cvc_codec.video_io import parse_size

    size = parse_size(args.size)
    families = [] if args.vlm == "none" else args.vlm.split(",")
    video = args.video or (MEDIA_CLIP if MEDIA_CLIP.exists() else SAMPLE)
    frames = frames_of(video, args.frames, size)
    label = "tiny" if args.tiny else "real-size" if args.real_size else "weights"
    with tempfile.TemporaryDirectory() as tmp:
        models = args.models
        if models is None:
            models = Path(tmp)
            start = time.perf_counter()
            if args.tiny:
                _load_tool("make_tiny_models").make_tiny_models(models, ["clip", *families])
            else:
                build_real_size(models, families, args.device)
            print(f"built {label} models in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        options = RuntimeOptions(device=args.device, dtype=args.dtype, models_dir=str(models))
        rows = bench_selection(models, frames, options, args.flow)
        for family in families:
            rows += bench_dialogue(models, family, frames, options, args.turns, args.max_new_tokens, args.clips)

    where = machine(args.device)
    command = "python tools/bench/latency.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"`{command}`, {datetime.date.today().isoformat()}, {where}; {len(frames)} frames of "
        f"{video.name} at {size[0]}x{size[1]}"
        + (
            f"; {args.turns}-turn dialogue, answers forced to {args.max_new_tokens} tokens a turn." if families else "."
        ),
        "",
        "| stage | model | per | ms | load s |",
        "|---|---|---|---:|---:|",
    ]
    for row in rows:
        load = f"{row['load_s']:.1f}" if "load_s" in row else ""
        lines.append(f"| {row['stage']} | {row['model']} | {row['unit']} | {row['ms']:.1f} | {load} |")
    text = "\n".join(lines)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"machine": where, "command": command, "rows": rows}, indent=2))
    if not args.no_doc:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from report import update_section

        update_section(
            f"latency-{label}-{'gpu' if args.device.startswith('cuda') else 'cpu'}",
            f"### Latency ({label} models)\n\n{text}",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
