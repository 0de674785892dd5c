#!/usr/bin/env python3
"""m3v-play's pacing, headless: frames dropped at 8 fps and at 30 fps on real decoded streams.

    python tools/bench/bench_player.py [--video PATH] [--seconds S] [--no-report]

A test video (default ../shared/media/videos/sam2_01_dog.mp4) is coded twice with the ``lite``
pack at the default 512x320, once at 8 fps and once at 30 fps; if ``load_pack("lite")`` fails,
the fake pack of tests/fake_pack.py stands in (the report says so: its frames cost almost
nothing to decode, so its figures say little about a real pack).  For each stream:

- the decode cost flat out (every frame in order through ``m3cvc_format.FrameSource``, as the player
  reads them): frames per second, and the per-frame time (mean, 95th percentile, maximum: a
  clip's first frame decodes its keyframes);
- ``m3v-play FILE --headless`` at speed 1, with its decode thread (the default) and with
  ``--no-prefetch``: frames shown and dropped, wall time, effective fps, and how late the
  shown frames were.

The figures go to docs/benchmarks.md, section ``player``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DATE = "2026-11-21"
DEFAULT_VIDEO = ROOT.parent / "shared" / "media" / "videos" / "sam2_01_dog.mp4"


def choose_pack() -> tuple[str, str]:
    """The pack the benchmark streams use: the lite pack of the base install."""
    from m3cvc_codec import packs

    packs.load_pack("lite")  # fails with its own one-line reason where the pack does not load
    return "lite", "the `lite` pack (ONNX on the CPU)"


def decode_cost(path: Path) -> dict:
    from m3cvc_codec.player import open_player_source

    source = open_player_source(path)
    try:
        times = []
        began = time.perf_counter()
        for n in range(source.frame_count):
            t = time.perf_counter()
            source.frame(n)
            times.append(time.perf_counter() - t)
        total = time.perf_counter() - began
        return {
            "frames": source.frame_count,
            "clips": len(source.clip_starts),
            "fps_dec": source.frame_count / total,
            "mean": statistics.fmean(times),
            "p95": sorted(times)[int(0.95 * (len(times) - 1))],
            "max": max(times),
        }
    finally:
        source.close()


def play(path: Path, *options: str):
    """``m3v-play PATH --headless OPTIONS`` in this process (so that a stand-in pack works): the
    command's own parser and play loop; returns its Stats."""
    from m3cvc_codec import cli_play

    parser = cli_play.build_parser()
    args = parser.parse_args([str(path), "--headless", *options])
    cli_play.check_arguments(parser, args)
    stats, _output = cli_play.play(args)
    return stats


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    p.add_argument("--seconds", type=float, default=None, help="code only the first S seconds of the video")
    p.add_argument("--no-report", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args(argv)
    if not args.video.exists():
        print(f"bench_player: {args.video} not found (the shared media folder)", file=sys.stderr)
        return 1

    from m3cvc_codec import encode

    pack, pack_note = choose_pack()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        source_video = args.video
        if args.seconds:
            import av

            cut = Path(tmp) / "cut.mp4"
            with av.open(str(args.video)) as inp, av.open(str(cut), "w") as out:
                s_in = inp.streams.video[0]
                s_out = out.add_stream("libx264", rate=s_in.average_rate)
                s_out.width, s_out.height, s_out.pix_fmt = s_in.width, s_in.height, "yuv420p"
                s_out.options = {"crf": "12", "preset": "ultrafast"}
                for frame in inp.decode(s_in):
                    if frame.time is not None and frame.time >= args.seconds:
                        break
                    frame.pts = None
                    for packet in s_out.encode(frame.reformat(format="yuv420p")):
                        out.mux(packet)
                for packet in s_out.encode():
                    out.mux(packet)
            source_video = cut
        for fps in (8, 30):
            path = Path(tmp) / f"bench_{fps}.m3v"
            t = time.perf_counter()
            report = encode(str(source_video), path, pack=pack, fps=fps)
            encode_s = time.perf_counter() - t
            cost = decode_cost(path)
            print(
                f"{fps:>2} fps: {cost['frames']} frames, {cost['clips']} clips, coded in {encode_s:.1f} s; "
                f"decode flat out {cost['fps_dec']:.1f} fps (per frame mean {cost['mean'] * 1e3:.1f} ms, "
                f"p95 {cost['p95'] * 1e3:.1f}, max {cost['max'] * 1e3:.1f})",
                flush=True,
            )
            for mode, options in (("decode thread (default)", ()), ("`--no-prefetch`", ("--no-prefetch",))):
                stats = play(path, *options)
                rows.append(
                    {
                        "fps": fps,
                        "mode": mode,
                        "kbps": report.kbit_s,
                        **cost,
                        "shown": stats.shown,
                        "dropped": stats.dropped,
                        "wall": stats.wall,
                        "startup": stats.startup,
                        "eff": stats.fps,
                        "late_mean": stats.late_mean,
                        "late_max": stats.late_max,
                    }
                )
                print(f"   {mode}: {stats.summary()}", flush=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    command = (
        "python tools/bench/bench_player.py"
        + (f" --video {args.video}" if args.video != DEFAULT_VIDEO else "")
        + (f" --seconds {args.seconds:g}" if args.seconds else "")
    )
    lines = [
        "## m3v-play: frames dropped by the pacing (headless)",
        "",
        f"`{command}`, {DATE}, on the 2-core development machine (busy: 1-minute load {load:.1f}; "
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}). Video: "
        f"`{args.video.name}`{f' (first {args.seconds:g} s)' if args.seconds else ''}, coded at the default "
        f"512x320 with {pack_note}, once at 8 fps and once at 30 fps. Decoding goes through "
        "`m3cvc_format.FrameSource` with the codec's clip decoder (each frame decoded forward from its clip's start), as `m3v-play` does; the play is "
        "`m3v-play FILE --headless` at speed 1 (the same loop, no output).",
        "",
        "| stream | frames | clips | decode flat out | per frame: mean / p95 / max | player | shown | dropped | wall (first frame after) | effective fps | lateness: mean / max |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        drop_pct = 100 * r["dropped"] / max(r["frames"], 1)
        lines.append(
            f"| {r['fps']} fps, {r['kbps']:.2f} kbit/s | {r['frames']} | {r['clips']} | {r['fps_dec']:.1f} fps | "
            f"{r['mean'] * 1e3:.1f} / {r['p95'] * 1e3:.1f} / {r['max'] * 1e3:.1f} ms | {r['mode']} | {r['shown']} | "
            f"**{r['dropped']}** ({drop_pct:.1f}%) | {r['wall']:.2f} s ({r['startup']:.2f} s) | {r['eff']:.2f} | "
            f"{r['late_mean'] * 1e3:.1f} / {r['late_max'] * 1e3:.1f} ms |"
        )
    lines += [
        "",
        "By default a thread decodes up to one second ahead of the frame on screen, which absorbs the cost "
        "of a clip's first frame (it decodes the next clip's keyframe, and the flow between the two); with "
        "`--no-prefetch` each frame is decoded when it is due. Dropped frames are skipped before decoding: "
        "the player aims at the frame whose slot will hold the end of its decoding (the median of the last "
        "five decode times), so a stream that decodes slower than its rate still shows frames on the "
        "stream's clock. Lateness: how long after its due time a shown frame appeared. Effective fps: "
        "frames shown a second after the first frame; the first frame's wait (opening the stream, loading "
        "the pack, decoding the first clip's keyframes) is in brackets.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_report:
        from report import update_section

        update_section("player", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
