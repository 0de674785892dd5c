#!/usr/bin/env python3
"""Bytes per description of the VLM dialogue (``m3v-encode --describe vlm``), before and after
the stream's text codec, for each dialogue turn count.

    python tools/bench/bench_descriptions.py                  # tiny random-weight models (any machine)
    python tools/bench/bench_descriptions.py --models DIR     # the models in DIR (real weights)

The texts the dialogue writes (m3cvc_codec.dialogue.DialogueDescriptions: D^F per keyframe,
D^C per clip) are what the text coder sees.  For each turn count (default 1, 2 and 4: the
paper's ablation) every clip is described as m3v-encode describes it (each keyframe against the
previous one and its D^F), and each text is measured as UTF-8 (before) and as coded (after) with
the codec m3v-encode writes, tokans-1 (``TextCodec.TOKANS1``), and with LZW, the paper's choice,
for comparison; every payload is decoded again and must give the text back.  "In stream" adds
the sub-chunk tag (spec/m3v.md §6.3: a LEB128 of ``length << 4 | kind``; an empty text has no
sub-chunk).  Bits per pixel: the texts of one clip of ``--clip-frames`` frames (default 16) at
the coding size 512x320, 8 fps.

Clips: the first ``--clips`` clips of ``--clip-frames`` frames of each of ``--videos`` (names in
../shared/media/videos, or paths; default three of them, else docs/sample/sample.webm).

Without ``--models`` the tiny random-weight models of tools/make_tiny_models.py are built into a
temporary folder: their answers are random bytes, so their figures check the pipeline, not the
compression of real language.  For that, the same figures for human-written descriptions from
../shared/media/captions, lines tokans-1 was not trained on: ActivityNet Captions paragraphs
(odd lines) stand for a 4-turn summary, MSR-VTT captions (lines not a multiple of 4) for a
one-step caption.  Figures go to docs/benchmarks.md (section "descriptions-<label>") unless
--no-doc.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from m3cvc_format.constants import TextCodec  # noqa: E402
from m3cvc_format.textcodec import decode_text, encode_text  # noqa: E402

MEDIA = ROOT.parent / "shared" / "media"
VIDEOS = MEDIA / "videos"
CAPTIONS = MEDIA / "captions"
SAMPLE = ROOT / "docs" / "sample" / "sample.webm"
DEFAULT_VIDEOS = ("sam2_01_dog.mp4", "sam2_05_default_juggle.mp4", "mmaction2_test_pool.mp4")
SIZE = (512, 320)
FPS = 8

#: The text codec m3v-encode writes (m3cvc_codec/encoder.py: ``text_codec=TextCodec.TOKANS1``),
#: then LZW, the paper's choice.
CODECS = {"tokans-1": TextCodec.TOKANS1, "LZW": TextCodec.LZW}
#: tools/make_tiny_models.py builder of each default model id.
TINY_BUILDERS = {
    "Qwen/Qwen2-VL-7B-Instruct": "qwen2-vl",
    "Qwen/Qwen2.5-VL-7B-Instruct": "qwen2.5-vl",
    "Qwen/Qwen3-VL-8B-Instruct": "qwen3-vl",
}


def _load_tool(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def leb128_len(value: int) -> int:
    n = 1
    while value >= 0x80:
        value >>= 7
        n += 1
    return n


class Measure:
    """Sizes of a set of texts: UTF-8 bytes, and per codec the payload and in-stream bytes."""

    def __init__(self) -> None:
        self.raw: list[int] = []
        self.words: list[int] = []
        self.payload: dict[str, list[int]] = {name: [] for name in CODECS}
        self.stream: dict[str, list[int]] = {name: [] for name in CODECS}
        self.mismatches = 0

    def add(self, text: str, kind: int) -> dict[str, int]:
        """Measure ``text`` (sub-chunk ``kind``: 0 keyframe text, 1 clip text); in-stream bytes
        per codec."""
        self.raw.append(len(text.encode("utf-8")))
        self.words.append(len(text.split()))
        out = {}
        for name, codec in CODECS.items():
            payload = encode_text(text, codec)
            self.mismatches += decode_text(payload, codec) != text
            self.payload[name].append(len(payload))
            tagged = len(payload) + leb128_len(len(payload) << 4 | kind) if payload else 0
            self.stream[name].append(tagged)
            out[name] = tagged
        return out

    def __len__(self) -> int:
        return len(self.raw)


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def size_row(label: str, m: Measure, extra: str = "") -> str:
    raw = mean(m.raw)
    tok, lzw = mean(m.payload["tokans-1"]), mean(m.payload["LZW"])
    ratio = f"{tok / raw:.3f}" if raw else "-"
    return (
        f"| {label} | {len(m)} | {mean(m.words):.1f} | {raw:.1f} | {tok:.1f} | {mean(m.stream['tokans-1']):.1f} "
        f"| {lzw:.1f} | {ratio} | {tok / lzw if lzw else 0:.3f} |{extra}"
    )


SIZE_HEAD = [
    "| texts | n | words | UTF-8 bytes (before) | tokans-1 bytes (after) | tokans-1 in stream | LZW bytes "
    "| tokans-1 / UTF-8 | tokans-1 / LZW |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
]


def bpp(byte_count: float, pixels: int) -> float:
    return 8 * byte_count / pixels


# --------------------------------------------------------------------------- inputs


def video_paths(names: list[str] | None, sample: bool) -> list[Path]:
    if sample:
        return [SAMPLE]
    if names is None:
        found = [VIDEOS / n for n in DEFAULT_VIDEOS if (VIDEOS / n).exists()]
        return found or [SAMPLE]
    paths = []
    for name in names:
        path = Path(name)
        if not path.exists() and (VIDEOS / name).exists():
            path = VIDEOS / name
        if not path.exists():
            raise SystemExit(f"bench_descriptions.py: no video {name!r} (nor in {VIDEOS})")
        paths.append(path)
    return paths


def clips_of(path: Path, count: int, length: int):
    """The first ``count`` clips of ``length`` frames of ``path`` at the coding size (a shorter
    last clip only when the video holds no full one)."""
    import numpy as np

    from m3cvc_codec.descriptions import ClipSpan
    from m3cvc_codec.encoder import ClipFrames
    from m3cvc_codec.video_io import read_frames

    frames = []
    for frame in read_frames(path, size=SIZE, fps=FPS):
        frames.append(frame)
        if len(frames) >= count * length:
            break
    full = len(frames) // length
    spans = [(k * length, length) for k in range(min(count, full))] or [(0, len(frames))]
    return [
        ClipFrames(ClipSpan(k, first, n, Fraction(FPS)), frames[first], np.stack(frames[first : first + n]))
        for k, (first, n) in enumerate(spans)
    ]


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def spread(items: list[str], count: int) -> list[str]:
    """``count`` items evenly spread over ``items`` (all when there are no more)."""
    if count <= 0 or len(items) <= count:
        return items
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def one_line(text: str, limit: int = 400) -> str:
    """``text`` on one line, at most ``limit`` characters (for the examples)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def machine(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (CPU)"


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=Path, help="a folder holding the models by id (default: build the tiny ones)")
    p.add_argument("--vlm", default="Qwen/Qwen2-VL-7B-Instruct", help="model id (default Qwen/Qwen2-VL-7B-Instruct)")
    p.add_argument("--prompts", type=Path, help="prompts file (default: the shipped one)")
    p.add_argument("--turns", default="1,2,4", help="comma-separated dialogue turn counts (default 1,2,4)")
    p.add_argument("--max-new-tokens", type=int, help="budget of every turn (default: the dialogue's default)")
    p.add_argument("--videos", nargs="+", help=f"names in {VIDEOS} or paths (default: {', '.join(DEFAULT_VIDEOS)})")
    p.add_argument("--sample", action="store_true", help="use docs/sample/sample.webm only")
    p.add_argument("--clips", type=int, default=3, help="clips described per video (default 3)")
    p.add_argument("--clip-frames", type=int, default=16, help="frames a clip (default 16)")
    p.add_argument("--human", type=int, default=2000, help="human-written texts per caption file (default 2000)")
    p.add_argument("--captions", type=Path, default=CAPTIONS, help=f"caption files (default {CAPTIONS})")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", help="float32, float16, bfloat16 (default: the loader's choice)")
    p.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args(argv)

    from m3cvc_codec.dialogue import DEFAULT_MAX_NEW_TOKENS, DialogueDescriptions
    from m3cvc_codec.encoder import describe_clips
    from m3cvc_codec.packs.config import RuntimeOptions

    caption_files = [args.captions / "activitynet_paragraphs.txt", args.captions / "msrvtt_trainval_captions.txt"]
    for path in caption_files:
        if not path.exists():
            raise SystemExit(f"bench_descriptions.py: {path} is missing (--captions DIR)")
    turn_counts = [int(t) for t in args.turns.split(",")]
    budget = args.max_new_tokens or DEFAULT_MAX_NEW_TOKENS
    videos = video_paths(args.videos, args.sample)
    clips = {path: clips_of(path, args.clips, args.clip_frames) for path in videos}
    n_clips = sum(len(c) for c in clips.values())
    tiny = args.models is None
    label = "tiny" if tiny else "weights"

    keyframe: dict[int, Measure] = {}
    clip: dict[int, Measure] = {}
    per_clip: dict[int, dict[str, list[int]]] = {}
    calls: dict[int, int] = {}
    seconds: dict[int, float] = {}
    tokens: dict[int, list[int]] = {}
    all_tokens: dict[int, list[int]] = {}
    examples: dict[int, tuple[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        models = args.models
        if models is None:
            if args.vlm not in TINY_BUILDERS:
                raise SystemExit(f"bench_descriptions.py: no tiny model for {args.vlm!r}; pass --models DIR")
            models = Path(tmp)
            start = time.perf_counter()
            _load_tool("make_tiny_models").make_tiny_models(models, [TINY_BUILDERS[args.vlm]])
            print(f"built the tiny {args.vlm} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        options = RuntimeOptions(device=args.device, dtype=args.dtype, models_dir=str(models))
        start = time.perf_counter()
        first = DialogueDescriptions.from_options(
            args.vlm, args.prompts, turns=turn_counts[0], max_new_tokens=budget, options=options
        )
        print(f"loaded {args.vlm} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        vlm, prompts = first.model, first.prompts
        generated: list[int] = []  # new tokens of every generate call
        generate = vlm.model.generate

        def counting_generate(*a, **kw):
            output = generate(*a, **kw)
            generated.append(int(output.shape[1] - kw["input_ids"].shape[1]))
            return output

        vlm.model.generate = counting_generate
        for turns in turn_counts:
            dialogue = DialogueDescriptions(vlm, prompts, turns=turns, max_new_tokens=budget)
            keyframe[turns], clip[turns] = Measure(), Measure()
            per_clip[turns] = {name: [] for name in ["raw", *CODECS]}
            start = time.perf_counter()
            for video in videos:
                for described in describe_clips(dialogue, clips[video]):
                    texts = described.texts
                    examples.setdefault(turns, (texts.keyframe, texts.clip))
                    kf = keyframe[turns].add(texts.keyframe, 0)
                    cl = clip[turns].add(texts.clip, 1)
                    per_clip[turns]["raw"].append(len(texts.keyframe.encode()) + len(texts.clip.encode()))
                    for name in CODECS:
                        per_clip[turns][name].append(kf[name] + cl[name])
            seconds[turns] = time.perf_counter() - start
            calls[turns] = len(dialogue.timings)
            # new tokens of every call, in order; the texts are the replies just before and at
            # each clip call (the keyframe dialogue's last turn, then the clip's)
            new = generated[-calls[turns] :]
            kinds = [kind for kind, _, _ in dialogue.timings]
            all_tokens[turns] = new
            tokens[turns] = [new[i + d] for i, k in enumerate(kinds) if k == "clip" for d in (-1, 0)]
            print(f"{turns} turn(s): {n_clips} clips in {seconds[turns]:.1f} s", file=sys.stderr)

    # human-written reference (lines tokans-1 was not trained on)
    human: dict[str, Measure] = {}
    an = [line for i, line in enumerate(read_lines(caption_files[0])) if i % 2 == 1]
    mv = [line for i, line in enumerate(read_lines(caption_files[1])) if i % 4 != 0]
    an60 = [line for line in an if len(line.split()) <= 60]
    sets = {
        "ActivityNet paragraph (~ 4-turn D^F)": spread(an, args.human),
        "ActivityNet paragraph of <= 60 words": spread(an60, args.human),
        "MSR-VTT caption (~ 1-turn caption, D^C)": spread(mv, args.human),
    }
    for name, lines in sets.items():
        human[name] = Measure()
        for line in lines:
            human[name].add(line, 0)

    mismatches = sum(m.mismatches for m in [*keyframe.values(), *clip.values(), *human.values()])
    pixels = args.clip_frames * SIZE[0] * SIZE[1]
    where = machine(args.device)
    command = "python tools/bench/bench_descriptions.py " + " ".join(argv if argv is not None else sys.argv[1:])
    command = command.strip()
    video_names = ", ".join(f"{v.name} ({len(clips[v])})" for v in videos)
    out = [
        f"## Description bytes of the VLM dialogue ({'tiny random-weight models' if tiny else 'models of --models'})",
        "",
        f"Date: {datetime.date.today().isoformat()}. Machine: {where}. Command: `{command}`",
        "",
        f"Model `{args.vlm}` ({'tiny, random weights, built by tools/make_tiny_models.py' if tiny else f'from {args.models}'}), "
        f"prompts `{prompts.name}` v{prompts.version}, greedy, at most {budget} new tokens a turn, clip input "
        f"{getattr(vlm, 'clip_input', '?')}. Clips: the first {args.clips} clips of {args.clip_frames} frames of "
        f"{video_names} at {SIZE[0]}x{SIZE[1]}, {FPS} fps, described in order as m3v-encode does "
        "(each keyframe against the previous one and its D^F). Before: UTF-8 bytes; after: the payload of "
        "tokans-1, the codec m3v-encode writes, and of LZW (the paper's choice); *in stream* adds the "
        "sub-chunk tag. Every payload decoded again: "
        f"{'all round-trip' if mismatches == 0 else f'{mismatches} MISMATCHES'}.",
        "",
    ]
    if tiny:
        out += [
            "**The tiny models' texts are random bytes** (random weights, a byte-level tokenizer; byte",
            "sequences that are not UTF-8 become U+FFFD, 3 bytes each, in the text): these rows check the",
            "pipeline (the dialogue, the stream's codec, the round trip), not the compression of real",
            "language. tokans-1, trained on English, spends more than the UTF-8 bytes on such text; greedy",
            "decoding of a random model falls into loops, which LZW codes in few bytes. For real language",
            "see the human-written reference below.",
            "",
        ]
    out += ["### Per description", "", *SIZE_HEAD]
    for turns in turn_counts:
        out.append(size_row(f"D^F, {turns} turn{'s' if turns > 1 else ''}", keyframe[turns]))
        out.append(size_row(f"D^C, {turns} turn{'s' if turns > 1 else ''}", clip[turns]))
    out += [
        "",
        f"### Per clip of {args.clip_frames} frames ({SIZE[0]}x{SIZE[1]}, {FPS} fps: D^F + D^C in stream)",
        "",
        "| turns | model calls / clip | new tokens / call | new tokens / text | texts at the budget "
        "| s / clip | UTF-8 bytes | tokans-1 bytes | LZW bytes | tokans-1 bpp | LZW bpp "
        f"| tokans-1 vs {turn_counts[0]} turn{'s' if turn_counts[0] > 1 else ''} |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = mean(per_clip[turn_counts[0]]["tokans-1"])
    for turns in turn_counts:
        pc = per_clip[turns]
        tok = mean(pc["tokans-1"])
        vs = f"{tok / base:.2f}x" if base else "-"
        out.append(
            f"| {turns} | {calls[turns] / n_clips:.1f} | {mean(all_tokens[turns]):.1f} | {mean(tokens[turns]):.1f} "
            f"| {sum(t >= budget for t in tokens[turns]) / len(tokens[turns]):.0%} | {seconds[turns] / n_clips:.2f} "
            f"| {mean(pc['raw']):.1f} | {tok:.1f} | {mean(pc['LZW']):.1f} | {bpp(tok, pixels):.6f} "
            f"| {bpp(mean(pc['LZW']), pixels):.6f} | {vs} |"
        )
    out += [
        "",
        "Model calls: clip 0 "
        "skips the keyframe turn that needs a previous keyframe. New tokens: what the model generated "
        "in every call (the earlier turns' answers stay in the dialogue, only the last one of each "
        f"dialogue is coded) and in the calls whose answers are D^F and D^C (budget {budget} a turn).",
        "",
    ]
    if not tiny:
        out += ["Examples (clip 0 of the first video):", ""]
        for turns in turn_counts:
            kf_text, clip_text = examples[turns]
            out += [f"- {turns} turn(s): D^F \u201c{one_line(kf_text)}\u201d D^C \u201c{one_line(clip_text)}\u201d"]
        out.append("")
    out += [
        "### Reference: human-written descriptions",
        "",
        f"From `../shared/media/captions` (SOURCES.md there), {args.human} lines spread evenly over the lines "
        "tokans-1 was not trained on (ActivityNet odd lines, MSR-VTT lines whose index is not a multiple "
        "of 4); each coded on its own, as a stream codes each text (in stream: as a keyframe-text sub-chunk).",
        "",
        *SIZE_HEAD,
    ]
    for name, m in human.items():
        out.append(size_row(name, m))
    an_m, an60_m, mv_m = human.values()
    pairs = [
        ("4-turn stand-in: ActivityNet paragraph + MSR-VTT caption", an_m, mv_m),
        ("<= 60-word paragraph (the prompts' D^F budget) + MSR-VTT caption", an60_m, mv_m),
        ("1-turn stand-in: MSR-VTT caption + MSR-VTT caption", mv_m, mv_m),
    ]
    out += [
        "",
        f"Per clip of {args.clip_frames} frames at {SIZE[0]}x{SIZE[1]} (mean D^F + mean D^C, in stream):",
        "",
        "| D^F + D^C | UTF-8 bytes | tokans-1 bytes | LZW bytes | tokans-1 bpp | LZW bpp |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, a, b in pairs:
        raw = mean(a.raw) + mean(b.raw)
        tok = mean(a.stream["tokans-1"]) + mean(b.stream["tokans-1"])
        lzw = mean(a.stream["LZW"]) + mean(b.stream["LZW"])
        out.append(f"| {name} | {raw:.1f} | {tok:.1f} | {lzw:.1f} | {bpp(tok, pixels):.6f} | {bpp(lzw, pixels):.6f} |")
    out += [
        "",
        "For scale: the rate-distortion target of the whole stream at the 1/16 grid is at most 0.003 bpp "
        "(section Rate-distortion).",
        "",
    ]
    md = "\n".join(out)
    print(md)
    if not args.no_doc:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from report import update_section

        update_section(f"descriptions-{label}", md)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
