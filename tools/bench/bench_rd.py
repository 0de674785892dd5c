#!/usr/bin/env python3
"""Rate-distortion of the m3cvc codec against x264, x265 and SVT-AV1 on held-back clips.

    python tools/bench/bench_rd.py                                  # everything, ~5-8 min
    python tools/bench/bench_rd.py --codecs x264 --max-frames 16 --no-doc   # a quick look
    python tools/bench/bench_rd.py --codecs m3cvc                   # add the codec later

Clips: ``sam2_05_default_juggle.mp4`` and ``mmaction2_test_pool.mp4`` from the shared media
folder -- never used to train the codec's model -- preprocessed like the codec does it
(centre-crop to 512:320, area resize to 512x320, 8 fps by nearest timestamp, RGB uint8) by the
small loader here (checked against ``m3cvc_codec.video_io.read_frames`` when that imports).

Traditional codecs run through PyAV on yuv420p frames (RGB -> BT.601 limited-range 4:2:0 by
swscale, bicubic chroma filter, done once before encoding; back to RGB the same way):
x264 and x265 at preset veryslow (as in the paper), SVT-AV1 at preset 4 (fast enough here; preset 8
was ~5x faster and 0.4-0.8 dB worse at the same CRF on juggle), CRF sweeps, encoder defaults
otherwise (one keyframe per clip: the clips are shorter than every default GOP). Each encoder
context is used without a container, so the packets are the elementary bitstream (Annex-B
H.264/HEVC, AV1 low-overhead OBUs) and the rate is their total size: container overhead is
not counted. SEI NAL units are removed from the H.264/HEVC streams before counting and
decoding (x264 writes a ~700-byte SEI with its version and settings, x265 one with its
version; neither is needed to decode) -- the stripped stream is what gets decoded, so the
reconstruction and the rate belong together. AV1 temporal-delimiter OBUs (2 bytes a frame) stay.

The m3cvc codec runs through its public API (``m3cvc_codec.encode`` / ``decode``) on a
lossless FFV1 (bgr0) copy of exactly the preprocessed frames, decoding to a folder of PNGs
(lossless); rate = the .m3v file size.

bpp = bits / (512 x 320 x frames). PSNR (RGB, and BT.601 luma) and MS-SSIM (luma) come from
``metrics.py``, per frame, averaged over the frames; so do the paper's metrics where their
weights are local (``--metrics``, default all four): LPIPS (AlexNet, v0.1; ``--lpips-weights DIR``,
``$M3CVC_LPIPS_WEIGHTS`` or ``--models DIR``, see ``m3cvc_codec.metrics.lpips_weight_files``) and
CLIP-sim (``--clip-model``, ``--models DIR``).  A metric whose weights are missing is left out
with one line saying which file and how to get it.

BD-rate (``bd.py``, Bjontegaard with the pchip fit) of every m3cvc series against each
traditional codec's lowest-rate points (its ``--bd-points`` largest CRFs, default 4), per
metric, where the curves overlap in quality; where they do not, the table says so (nothing is
extrapolated).  Results are kept in
``tools/bench/out/rd_results.json`` (one row per codec, setting and clip), so runs of some
codecs add to earlier runs of others; the doc section and ``docs/rd.png`` are drawn from every
stored row made with the same clips and --max-frames.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from m3cvc_codec import metrics as M

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bd  # tools/bench is not a package: bd.py beside this file

ROOT = Path(__file__).resolve().parents[2]

MEDIA = Path(os.environ.get("M3CVC_MEDIA", ROOT.parent / "shared" / "media"))
OUT = ROOT / "tools" / "bench" / "out"
RESULTS = OUT / "rd_results.json"
PLOT = ROOT / "docs" / "rd.png"
DATE = "2026-11-21"

WIDTH, HEIGHT, FPS = 512, 320, 8
CLIPS = {
    "juggle": "sam2_05_default_juggle.mp4",
    "pool": "mmaction2_test_pool.mp4",
}

# name -> (PyAV encoder, fixed options, decoder, rate-control points)
TRADITIONAL = {
    "x264": ("libx264", {"preset": "veryslow"}, "h264", [51, 45, 40, 35]),
    "x265": ("libx265", {"preset": "veryslow", "x265-params": "log-level=error"}, "hevc", [51, 45, 40, 35]),
    "svtav1": ("libsvtav1", {"preset": "4"}, "libdav1d", [63, 59, 55, 50, 45]),
}
CODEC_LABEL = {
    "x264": "x264 (veryslow)",
    "x265": "x265 (veryslow)",
    "svtav1": "SVT-AV1 (preset 4)",
    "m3cvc": "m3cvc",
}
ALL_CODECS = ["x264", "x265", "svtav1", "m3cvc"]

# the yuv420p <-> RGB conversions of the traditional codecs' pipeline
_CONV = {"src_colorspace": "ITU601", "dst_colorspace": "ITU601", "interpolation": "BICUBIC"}


# ------------------------------------------------------------------------------ source frames


def load_clip(path: Path, size=(WIDTH, HEIGHT), fps=FPS, max_frames: int | None = None) -> list[np.ndarray]:
    """Preprocess like the codec: centre-crop to the target aspect, area-resize, resample to
    ``fps`` (output frame n has time n/fps after the first frame; it is the decoded frame
    nearest that time, ties to the earlier; frames run while n/fps < end - 0.5/fps, where end =
    last frame time + one source frame period), RGB uint8."""
    import av
    import cv2

    width, height = size
    times, rgbs = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        step = float(1 / rate) if rate else 1 / 25
        for frame in container.decode(stream):
            t = frame.time if frame.time is not None else len(times) * step
            if times and t <= times[-1]:
                t = times[-1] + step
            times.append(t)
            rgbs.append(frame.to_ndarray(format="rgb24"))
    if not rgbs:
        raise SystemExit(f"{path}: no video frames")
    t = np.asarray(times) - times[0]
    end = t[-1] + (t[-1] - t[-2] if len(t) > 1 else 1 / fps)
    out = []
    n = 0
    while n == 0 or n / fps < end - 0.5 / fps - 1e-9:
        if max_frames is not None and n >= max_frames:
            break
        d = np.abs(t - n / fps)
        i = int(np.flatnonzero(d <= d.min() + 1e-9)[0])  # the nearest; a tie goes to the earlier
        out.append(_fit(rgbs[i], width, height, cv2))
        n += 1
    return out


def _fit(rgb: np.ndarray, width: int, height: int, cv2) -> np.ndarray:
    h, w = rgb.shape[:2]
    if w * height > h * width:  # too wide
        cw = round(h * width / height)
        x0 = (w - cw) // 2
        rgb = rgb[:, x0 : x0 + cw]
    elif w * height < h * width:  # too tall
        ch = round(w * height / width)
        y0 = (h - ch) // 2
        rgb = rgb[y0 : y0 + ch]
    if rgb.shape[:2] == (height, width):
        return np.ascontiguousarray(rgb)
    interp = cv2.INTER_AREA if width <= rgb.shape[1] and height <= rgb.shape[0] else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(rgb), (width, height), interpolation=interp)


def check_against_codec_loader(path: Path, frames: list[np.ndarray], max_frames: int | None) -> str:
    """Whether m3cvc_codec.video_io.read_frames gives the same frames (a line for the doc)."""
    try:
        from m3cvc_codec.video_io import read_frames
    except Exception as err:
        return f"m3cvc_codec.video_io not importable ({type(err).__name__}); not compared"
    theirs = []
    for f in read_frames(path, (WIDTH, HEIGHT), FPS):
        theirs.append(f)
        if max_frames is not None and len(theirs) >= max_frames:
            break
    if len(theirs) != len(frames):
        return f"DISAGREE: {len(theirs)} frames from m3cvc_codec.video_io, {len(frames)} here"
    diff = max(int(np.abs(a.astype(np.int16) - b).max()) for a, b in zip(theirs, frames))
    return "identical" if diff == 0 else f"DISAGREE: max pixel difference {diff}"


# ------------------------------------------------------------------------------ metrics

#: Every metric: the row key and its label (LPIPS: lower is better; the others: higher).
METRICS = {
    "psnr_rgb": "PSNR-RGB (dB)",
    "psnr_y": "PSNR-Y (dB)",
    "ms_ssim": "MS-SSIM",
    "lpips": "LPIPS",
    "clip_sim": "CLIP-sim",
}
#: What --metrics names: psnr is PSNR-RGB and PSNR-Y together.
METRIC_CHOICES = ("psnr", "ms_ssim", "lpips", "clip_sim")
#: The metrics the paper reports, in the order BD-rate tables use them.
BD_METRICS = ("lpips", "clip_sim", "psnr_rgb", "ms_ssim")


def perceptual_metrics(
    names, *, lpips_weights=None, models_dir=None, clip_model=None, device="cpu"
) -> tuple[dict, list[str]]:
    """The model-based metrics of ``names`` that load here ({key: callable(ref, dist) -> per-frame
    values}), and one line for each that does not (missing weights, missing extra)."""
    from m3cvc_codec.models import ModelError
    from m3cvc_codec.packs.config import RuntimeOptions

    options = RuntimeOptions(device=device, models_dir=models_dir)
    out, notes = {}, []
    if "lpips" in names:
        try:
            out["lpips"] = M.Lpips(lpips_weights, options)
        except ModelError as err:
            notes.append(f"LPIPS left out: {err}")
    if "clip_sim" in names:
        try:
            out["clip_sim"] = M.ClipSimilarity(clip_model, options)
        except ModelError as err:
            notes.append(f"CLIP-sim left out: {err}")
    return out, notes


def metric_label(key: str, metrics: dict | None = None) -> str:
    """A metric's label; LPIPS says which implementation ran."""
    label = METRICS[key]
    if key == "lpips" and metrics and "lpips" in metrics:
        label += " (lpips package)" if metrics["lpips"].backend == "lpips" else " (plain-torch AlexNet)"
    return label


def score(src: list[np.ndarray], dec: list[np.ndarray], perceptual: dict | None = None) -> dict:
    """Per-frame PSNR-RGB, PSNR-Y and MS-SSIM, plus each metric of ``perceptual`` (from
    :func:`perceptual_metrics`) over the frames in batches."""
    if len(src) != len(dec):
        raise RuntimeError(f"decoded {len(dec)} frames for {len(src)} source frames")
    p, py, s = [], [], []
    for a, b in zip(src, dec):
        ya, yb = M.luma(a), M.luma(b)  # once for both luma metrics
        p.append(M.psnr_rgb(a, b))
        py.append(M.psnr(ya, yb))
        s.append(M.ms_ssim(ya, yb))
    out: dict[str, list[float]] = {"psnr_rgb": p, "psnr_y": py, "ms_ssim": s}
    for key, metric in (perceptual or {}).items():
        values: list[float] = []
        for start in range(0, len(src), 16):
            values += metric(np.stack(src[start : start + 16]), np.stack(dec[start : start + 16])).tolist()
        out[key] = values
    return out


# ------------------------------------------------------------------------------ traditional


def _nal_units(data: bytes):
    """(start, end, header offset) of each Annex-B NAL unit, start including its start code."""
    starts = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        s = i - 1 if i > 0 and data[i - 1] == 0 else i
        starts.append((s, i + 3))
        i = data.find(b"\x00\x00\x01", i + 3)
    for k, (s, h) in enumerate(starts):
        e = starts[k + 1][0] if k + 1 < len(starts) else len(data)
        yield s, e, h


def strip_sei(packet: bytes, decoder: str) -> bytes:
    """Drop SEI NAL units (H.264 type 6; HEVC prefix/suffix SEI 39/40) from an Annex-B packet."""
    if decoder not in ("h264", "hevc"):
        return packet
    keep = []
    for s, e, h in _nal_units(packet):
        if h >= len(packet):
            keep.append(packet[s:e])
            continue
        t = packet[h] & 0x1F if decoder == "h264" else (packet[h] >> 1) & 0x3F
        if (decoder == "h264" and t == 6) or (decoder == "hevc" and t in (39, 40)):
            continue
        keep.append(packet[s:e])
    return b"".join(keep)


def to_yuv(frames: list[np.ndarray], scale: float = 1.0):
    """yuv420p frames for the traditional codecs; ``scale`` < 1 first area-resizes the RGB frames
    (to even sizes), the usual way to take a traditional codec below its lowest rate at full size."""
    import av
    import cv2

    if scale != 1.0:
        size = (2 * round(WIDTH * scale / 2), 2 * round(HEIGHT * scale / 2))
        frames = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    return [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p", **_CONV) for f in frames]


def run_traditional(name: str, crf: int, yuv, src: list[np.ndarray], perceptual: dict | None = None) -> dict:
    import av

    encoder, fixed, decoder, _ = TRADITIONAL[name]
    cc = av.CodecContext.create(encoder, "w")
    cc.width, cc.height, cc.pix_fmt = yuv[0].width, yuv[0].height, "yuv420p"
    cc.time_base = Fraction(1, FPS)
    cc.framerate = Fraction(FPS)
    cc.options = {**fixed, "crf": str(crf)}
    packets = []
    t0 = time.perf_counter()
    for i, f in enumerate(yuv):
        f.pts = i
        packets += [bytes(p) for p in cc.encode(f)]
    packets += [bytes(p) for p in cc.encode(None)]
    enc_s = time.perf_counter() - t0
    raw = sum(len(p) for p in packets)
    packets = [strip_sei(p, decoder) for p in packets]
    payload = sum(len(p) for p in packets)

    dc = av.CodecContext.create(decoder, "r")
    dc.thread_type = "AUTO"
    out = []
    t0 = time.perf_counter()
    for p in packets:
        out += dc.decode(av.Packet(p))
    out += dc.decode(None)
    dec_s = time.perf_counter() - t0
    dec = [f.reformat(format="rgb24", **_CONV).to_ndarray() for f in out]
    if dec and dec[0].shape[:2] != (HEIGHT, WIDTH):  # a scaled anchor: back to full size, bicubic
        import cv2

        dec = [cv2.resize(f, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC) for f in dec]
    n = len(src)
    return {
        "bytes": payload,
        "sei_bytes": raw - payload,
        "frames": n,
        "enc_s": enc_s,
        "dec_s": dec_s,
        **score(src, dec, perceptual),
    }


def run_yuv_ceiling(yuv, src) -> dict:
    """The yuv420p round trip alone: the best any of the traditional codecs can score here."""
    dec = [f.reformat(format="rgb24", **_CONV).to_ndarray() for f in yuv]
    return score(src, dec)


# ------------------------------------------------------------------------------ m3cvc


def m3cvc_unavailable(pack: str) -> str | None:
    """None when m3cvc_codec has encode/decode and its pack loads; else why not."""
    try:
        import m3cvc_codec as c

        c.encode, c.decode  # noqa: B018 - resolve the lazy names
    except Exception as err:
        return f"m3cvc_codec has no encode/decode yet ({type(err).__name__}: {err})"
    try:
        c.load_pack(pack)
    except Exception as err:
        return f"pack {pack!r} does not load ({type(err).__name__}: {err})"
    return None


def write_lossless(frames: list[np.ndarray], path: Path) -> None:
    """FFV1 (bgr0: lossless 8-bit RGB) in Matroska at FPS; checked to read back through the
    codec's own reader as exactly ``frames``."""
    import av

    from m3cvc_codec.video_io import read_frames

    with av.open(str(path), "w", format="matroska") as c:
        s = c.add_stream("ffv1", rate=FPS)
        s.width, s.height, s.pix_fmt = WIDTH, HEIGHT, "bgr0"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    back = list(read_frames(path, (WIDTH, HEIGHT), FPS))
    if len(back) != len(frames) or any(not np.array_equal(a, b) for a, b in zip(back, frames)):
        raise RuntimeError(f"{path}: the lossless copy does not read back as the source frames")


def m3cvc_settings(args) -> list[tuple[str, dict]]:
    """(setting name, encode kwargs) for the sweep: grid x mode x (thresholds, intervals, targets)."""
    out = []
    extra = dict(kv.split("=", 1) for kv in args.m3cvc_extra) if args.m3cvc_extra else {}
    for kv in list(extra):
        try:
            extra[kv] = json.loads(extra[kv])
        except json.JSONDecodeError:
            pass
    for grid in args.m3cvc_grids:
        for mode in args.m3cvc_modes:
            base = dict(pack=args.m3cvc_pack, grid=grid, mode=mode, size=(WIDTH, HEIGHT), fps=FPS, **extra)
            tag = f"{grid} {mode}"
            for th in args.m3cvc_thresholds:
                out.append((f"{tag} D_th={th:g}", dict(base, threshold=th)))
            for iv in args.m3cvc_intervals:
                out.append((f"{tag} interval={iv}", dict(base, interval=iv)))
            for tb in args.m3cvc_targets:
                out.append((f"{tag} target={tb:g}bpp", dict(base, target_bpp=tb)))
    return out


def run_m3cvc(kwargs: dict, src_file: Path, src: list[np.ndarray], work: Path, perceptual: dict | None = None) -> dict:
    import cv2

    import m3cvc_codec as c

    m3v = work / "out.m3v"
    png = work / "dec"
    for p in png.glob("*.png") if png.exists() else []:
        p.unlink()
    t0 = time.perf_counter()
    report = c.encode(str(src_file), str(m3v), **kwargs)
    enc_s = time.perf_counter() - t0
    size = m3v.stat().st_size
    t0 = time.perf_counter()
    c.decode(str(m3v), str(png) + os.sep)
    dec_s = time.perf_counter() - t0
    dec = [cv2.imread(str(p), cv2.IMREAD_COLOR)[..., ::-1] for p in sorted(png.glob("frame_*.png"))]
    return {
        "bytes": size,
        "frames": len(src),
        "enc_s": enc_s,
        "dec_s": dec_s,
        "clips": len(getattr(report, "clips", []) or []),
        "text_bytes": getattr(report, "text_bytes", None),
        "vq_bytes": getattr(report, "vq_bytes", None),
        **score(src, dec, perceptual),
    }


# ------------------------------------------------------------------------------ results


def _mean(v):
    v = [x for x in v if math.isfinite(x)]
    return float(np.mean(v)) if v else math.inf


def summarise(rows: list[dict]) -> dict:
    """Rows of one codec+setting over several clips -> one point (bits and frames pooled)."""
    frames = sum(r["frames"] for r in rows)
    out = {
        "bytes": sum(r["bytes"] for r in rows),
        "frames": frames,
        "bpp": sum(r["bytes"] for r in rows) * 8 / (WIDTH * HEIGHT * frames),
        "enc_fps": frames / sum(r["enc_s"] for r in rows),
        "dec_fps": frames / sum(r["dec_s"] for r in rows),
    }
    for k in METRICS:
        if all(k in r for r in rows):  # LPIPS and CLIP-sim only where every row has them
            out[k] = _mean([x for r in rows for x in r[k]])
    return out


def load_results() -> list[dict]:
    if RESULTS.exists():
        return json.loads(RESULTS.read_text())
    return []


def save_results(rows: list[dict]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows))
    os.replace(tmp, RESULTS)


def series(rows: list[dict], clips: list[str]) -> dict[str, list[tuple[str, dict]]]:
    """codec (or m3cvc sub-series) -> [(setting, pooled point)] sorted by bpp, only settings
    present for every clip."""
    by: dict[tuple[str, str], dict[str, dict]] = {}
    for r in rows:
        by.setdefault((r["codec"], r["setting"]), {})[r["clip"]] = r
    out: dict[str, list] = {}
    for (codec, setting), per in by.items():
        if not all(c in per for c in clips):
            continue
        key = codec if codec != "m3cvc" else "m3cvc " + setting.rsplit(" ", 1)[0] + _kind(setting)
        out.setdefault(key, []).append((setting, summarise([per[c] for c in clips])))
    for v in out.values():
        v.sort(key=lambda sp: sp[1]["bpp"])
    return out


def _kind(setting: str) -> str:
    last = setting.rsplit(" ", 1)[1]
    return " (" + last.split("=")[0] + ")"


def _order(key: str) -> tuple:
    return (ALL_CODECS.index(key.split()[0]) if key.split()[0] in ALL_CODECS else 9, key)


def _fmt(x: float, nd: int) -> str:
    return "inf" if not math.isfinite(x) else f"{x:.{nd}f}"


def gap_vs(ref: list[tuple[str, dict]], points: list[tuple[str, dict]]) -> list[tuple[str, dict, dict]]:
    """For each point inside ref's bpp range: (setting, point, ref interpolated in log-bpp)."""
    rb = np.log([p["bpp"] for _, p in ref])
    out = []
    for setting, p in points:
        lb = math.log(p["bpp"])
        if rb.min() - 1e-12 <= lb <= rb.max() + 1e-12:
            interp = {k: float(np.interp(lb, rb, [q[k] for _, q in ref])) for k in ("psnr_rgb", "psnr_y", "ms_ssim")}
            out.append((setting, p, interp))
    return out


def bd_against(
    anchor: list[tuple[str, dict]], test: list[tuple[str, dict]], metric: str, method: str = "pchip"
) -> dict:
    """BD-rate (percent) of the ``test`` points against the ``anchor`` points on ``metric`` and
    the quality range it is averaged over, or None and why not (``{"bd_rate": float | None,
    "range": [lo, hi] | None, "why": str | None}``)."""
    try:
        value = bd.bd_rate(
            [p["bpp"] for _, p in anchor],
            [p[metric] for _, p in anchor],
            [p["bpp"] for _, p in test],
            [p[metric] for _, p in test],
            method,
        )
    except bd.BDError as err:
        return {"bd_rate": None, "range": None, "why": str(err)}
    shared = bd.overlap([p[metric] for _, p in anchor], [p[metric] for _, p in test])
    return {"bd_rate": value, "range": list(shared) if shared else None, "why": None}


def bd_table(ser: dict, points: int = 4, metrics=BD_METRICS) -> list[dict]:
    """BD-rate of every series that is not a traditional codec against each traditional codec's
    ``points`` lowest-rate points, for each metric every point of both has."""
    out = []
    for key in sorted(ser, key=_order):
        if key in TRADITIONAL:
            continue
        for anchor in (k for k in TRADITIONAL if k in ser):
            low = ser[anchor][:points]
            for metric in metrics:
                if all(metric in p for _, p in low + ser[key]):
                    row = {"series": key, "anchor": anchor, "anchor_settings": [s for s, _ in low], "metric": metric}
                    out.append({**row, **bd_against(low, ser[key], metric)})
    return out


def bd_cell(result: dict | None) -> str:
    """A BD-rate table cell: the percentage and the quality range it covers, or why there is none."""
    if result is None:
        return "-"
    if result["bd_rate"] is None:
        return "no overlap" if "do not overlap" in result["why"] else f"n/a: {result['why']}"
    lo, hi = result["range"]
    return f"{result['bd_rate']:+.1f} % ({lo:.4g} to {hi:.4g})"


def render_bd(rows: list[dict], points: int) -> list[str]:
    """The BD-rate table's markdown lines (empty without rows)."""
    if not rows:
        return []
    metrics = [m for m in BD_METRICS if any(r["metric"] == m for r in rows)]
    anchors = [a for a in TRADITIONAL if any(r["anchor"] == a for r in rows)]
    lines = [
        f"BD-rate (Bjontegaard, pchip fit; negative = m3cvc needs less rate for the same quality) against "
        f"each traditional codec's {points} lowest-rate points ("
        + "; ".join(
            f"{CODEC_LABEL[a]}: {', '.join(next(r['anchor_settings'] for r in rows if r['anchor'] == a))}"
            for a in anchors
        )
        + "). In brackets the quality range both curves cover, which the delta is averaged over; "
        + '"no overlap": the two curves share no quality range, so there is no equal-quality comparison '
        "(nothing is extrapolated).",
        "",
        "| m3cvc series | " + " | ".join(f"vs {CODEC_LABEL[a]}, {METRICS[m]}" for a in anchors for m in metrics) + " |",
        "|---|" + "---|" * (len(anchors) * len(metrics)),
    ]
    for series_key in dict.fromkeys(r["series"] for r in rows):
        cells = []
        for a in anchors:
            for m in metrics:
                r = next((r for r in rows if r["series"] == series_key and r["anchor"] == a and r["metric"] == m), None)
                cells.append(bd_cell(r))
        lines.append(f"| {series_key.removeprefix('m3cvc ')} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


# ------------------------------------------------------------------------------ report


def plot(ser: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    styles = {"x264": ("tab:blue", "o"), "x265": ("tab:orange", "s"), "svtav1": ("tab:green", "^")}
    palette = ["tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "black", "tab:gray"]
    m3_color: dict[str, str] = {}
    m3_style = {"(D_th)": (":", "D"), "(interval)": ("--", "v"), "(target)": ("-.", "P")}
    for key in sorted(ser, key=_order):
        pts = ser[key]
        x = [p["bpp"] for _, p in pts]
        if key in styles:
            color, marker = styles[key]
            label, ls = CODEC_LABEL[key], "-"
        else:  # "m3cvc GRID MODE (KIND)": colour by grid+mode, line and marker by kind
            variant, kind = key.rsplit(" ", 1)
            color = m3_color.setdefault(variant, palette[len(m3_color) % len(palette)])
            ls, marker = m3_style.get(kind, ("--", "D"))
            label = key
        for ax, k in zip(axes, ("psnr_rgb", "ms_ssim")):
            ax.plot(x, [p[k] for _, p in pts], ls, color=color, marker=marker, label=label, ms=5)
    for ax, k in zip(axes, ("PSNR-RGB (dB)", "MS-SSIM (luma)")):
        ax.set_xscale("log")
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(k)
        ax.axvspan(0.001, 0.01, color="0.92", zorder=0)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=min(4, max(1, len(labels))), frameon=False)
    fig.suptitle(title, fontsize=10)
    rows = (len(labels) + 3) // 4
    fig.tight_layout(rect=(0, 0.045 * rows + 0.02, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(rows: list[dict], clips: list[str], max_frames, meta: dict) -> str:
    ser = series(rows, clips)
    frames = {r["clip"]: r["frames"] for r in rows}
    lines = ["## Rate-distortion against x264, x265 and SVT-AV1", ""]
    cmds = sorted({r["command"] for r in rows})
    lines.append(f"Date: {DATE}. Command(s): " + "; ".join(f"`{c}`" for c in cmds))
    lines.append("")
    loads = {}
    for r in rows:
        loads.setdefault(r["command"], r.get("load") or "not recorded")
    lines.append(
        "Machine: the project's 2-core development machine, no GPU. 1-minute load average at the start "
        "and end of each run: " + "; ".join(f"`{c}` {loads[c]}" for c in cmds) + ". A load well above 2 "
        "means another job (a model training) shared the CPU, so the fps columns are rough and only "
        "roughly comparable between codecs; encoders and decoders used their default thread counts. "
        'm3cvc\'s speed on a quiet machine: section "Encode and decode speed".'
    )
    lines.append("")
    clip_desc = ", ".join(f"`{CLIPS[c]}` ({frames.get(c, '?')} frames)" for c in clips)
    lines.append(
        f"Clips (held back from the codec's training): {clip_desc}, each centre-cropped to 512:320, "
        "area-resized to 512x320, resampled to 8 fps (nearest frame), RGB"
        + (f", first {max_frames} frames only" if max_frames else "")
        + ". Loader check against `m3cvc_codec.video_io.read_frames`: "
        + "; ".join(f"{c}: {meta.get('loader', {}).get(c, 'not run')}" for c in clips)
        + "."
    )
    lines.append("")
    lines.append(
        "Rate: bpp = payload bits / (512 x 320 x frames), pooled over the clips. Traditional codecs: the "
        "elementary stream's packets from PyAV (no container), H.264/HEVC SEI NAL units removed (x264's "
        "version/settings SEI is ~700 bytes, significant at these rates; the stripped stream is what was "
        "decoded), AV1 temporal delimiters kept; CRF rate control, otherwise encoder defaults, one keyframe a clip. "
        "m3cvc: the whole `.m3v` file, run with `encode()`'s defaults apart from the swept grid, mode and "
        f"threshold D_th / keyframe interval ({_encode_defaults()}; no descriptions unless the command passes "
        "`--m3cvc-extra texts=...`); "
        "its fps include loading the pack. Quality: PSNR over RGB and over BT.601 luma, MS-SSIM (Wang et al. 2003, 5 "
        "scales, luma), each per frame and averaged over all frames. enc/dec fps: the encoder alone "
        "(yuv420p frames in memory to packets) and the decoder alone (packets to yuv420p frames); for m3cvc, "
        "the `encode()` call from the lossless source file and `decode()` to PNG files."
    )
    lines.append("")
    if meta.get("ceiling"):
        c = meta["ceiling"]
        lines.append(
            f"Ceiling of the traditional pipeline (RGB -> yuv420p -> RGB with no codec): PSNR-RGB "
            f"{_fmt(c['psnr_rgb'], 2)} dB, PSNR-Y {_fmt(c['psnr_y'], 2)} dB, MS-SSIM {c['ms_ssim']:.5f}."
        )
        lines.append("")
    for note in meta.get("metric_notes", []):
        lines.append(f"{note}")
        lines.append("")
    lines.append("![R-D curves](rd.png)")
    lines.append("")
    extra = [k for k in ("lpips", "clip_sim") if any(k in p for v in ser.values() for _, p in v)]
    labels = {"lpips": meta.get("lpips_label", "LPIPS"), "clip_sim": meta.get("clip_label", "CLIP-sim")}
    lines.append(
        "| codec | setting | bpp | PSNR-RGB (dB) | PSNR-Y (dB) | MS-SSIM | "
        + "".join(f"{labels[k]} | " for k in extra)
        + "enc fps | dec fps |"
    )
    lines.append("|---|---|---|---|---|---|" + "---|" * len(extra) + "---|---|")
    for key in sorted(ser, key=_order):
        for setting, p in ser[key]:
            name = CODEC_LABEL.get(key, key.split()[0])
            lines.append(
                f"| {name} | {setting} | {p['bpp']:.5f} | {_fmt(p['psnr_rgb'], 2)} | {_fmt(p['psnr_y'], 2)} | "
                f"{p['ms_ssim']:.4f} | "
                + "".join(f"{p[k]:.4f} | " if k in p else "- | " for k in extra)
                + f"{p['enc_fps']:.1f} | {p['dec_fps']:.1f} |"
            )
    lines.append("")
    lines += render_bd(bd_table(ser, meta.get("bd_points", 4)), meta.get("bd_points", 4))
    # lowest rate of each traditional codec
    low = []
    for key in ("x264", "x265", "svtav1"):
        if key in ser:
            s, p = ser[key][0]
            low.append(
                f"{CODEC_LABEL[key]} {p['bpp']:.4f} bpp at {s} (PSNR-RGB {p['psnr_rgb']:.2f} dB, "
                f"MS-SSIM {p['ms_ssim']:.4f})"
            )
    if low:
        inside = [CODEC_LABEL[k] for k in ("x264", "x265", "svtav1") if k in ser and ser[k][0][1]["bpp"] <= 0.01]
        lines.append(
            "Lowest rate each traditional codec reaches (its largest CRF): "
            + "; ".join(low)
            + ". "
            + (
                "Inside the 0.001-0.01 bpp band (shaded in the plot) with CRF alone: "
                + (", ".join(inside) if inside else "none")
                + "."
            )
        )
        lines.append("")
    # m3cvc vs x265 at equal bpp
    m3 = [k for k in ser if k.startswith("m3cvc")]
    if not m3:
        why = meta.get("m3cvc_skipped") or "not run (`--codecs` left it out)"
        lines.append(
            f"**m3cvc: not measured yet** -- {why}. When the codec and its pack are ready, run "
            "`python tools/bench/bench_rd.py --codecs m3cvc`: it adds the m3cvc rows to the stored "
            "traditional ones (tools/bench/out/rd_results.json) and fills in the equal-rate comparison "
            "with x265."
        )
        lines.append("")
    if m3 and "x265" in ser:
        gaps = [(k, g) for k in sorted(m3) for g in gap_vs(ser["x265"], ser[k])]
        lo, hi = ser["x265"][0][1]["bpp"], ser["x265"][-1][1]["bpp"]
        if gaps:
            lines.append(
                f"m3cvc against x265 at equal bpp (x265 interpolated linearly in log-bpp over its "
                f"{lo:.4f}-{hi:.4f} bpp range; positive = m3cvc better):"
            )
            lines.append("")
            lines.append(
                "| m3cvc setting | bpp | PSNR-RGB | x265 PSNR-RGB | dPSNR-RGB | PSNR-Y | x265 PSNR-Y | dPSNR-Y "
                "| MS-SSIM | x265 MS-SSIM | dMS-SSIM |"
            )
            lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
            for _k, (s, p, q) in gaps:
                lines.append(
                    f"| {s} | {p['bpp']:.5f} | {p['psnr_rgb']:.2f} | {q['psnr_rgb']:.2f} | "
                    f"{p['psnr_rgb'] - q['psnr_rgb']:+.2f} | {p['psnr_y']:.2f} | {q['psnr_y']:.2f} | "
                    f"{p['psnr_y'] - q['psnr_y']:+.2f} | {p['ms_ssim']:.4f} | {q['ms_ssim']:.4f} | "
                    f"{p['ms_ssim'] - q['ms_ssim']:+.4f} |"
                )
            lines.append("")
        else:
            lines.append(
                f"No m3cvc point falls inside x265's measured range ({lo:.4f}-{hi:.4f} bpp), so there "
                "is no equal-rate comparison (x265 is not extrapolated)."
            )
            lines.append("")
    # per-clip detail
    lines.append("<details><summary>Per clip</summary>")
    lines.append("")
    lines.append("| clip | codec | setting | bytes | bpp | PSNR-RGB | PSNR-Y | MS-SSIM | SEI bytes removed |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for r in sorted(
        rows, key=lambda r: (clips.index(r["clip"]) if r["clip"] in clips else 9, _order(r["codec"]), r["bytes"])
    ):
        if r["clip"] not in clips:
            continue
        p = summarise([r])
        lines.append(
            f"| {r['clip']} | {CODEC_LABEL.get(r['codec'], r['codec'])} | {r['setting']} | {r['bytes']} | "
            f"{p['bpp']:.5f} | {_fmt(p['psnr_rgb'], 2)} | {_fmt(p['psnr_y'], 2)} | {p['ms_ssim']:.4f} | "
            f"{r.get('sei_bytes', '-')} |"
        )
    lines.append("")
    lines.append("</details>")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ main


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _encode_defaults() -> str:
    """The index-map defaults of m3cvc's encode(), as they shape the rate (TEMPORAL maps)."""
    import inspect

    from m3cvc_codec import encode

    params = inspect.signature(encode).parameters
    return (
        f"index maps against the previous keyframe's: `refresh={params['refresh'].default}`, "
        f"`reuse={params['reuse'].default}`"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--codecs", default=",".join(ALL_CODECS), help="comma list of x264,x265,svtav1,m3cvc")
    ap.add_argument("--clips", default=",".join(CLIPS), help=f"comma list of {','.join(CLIPS)}")
    ap.add_argument("--max-frames", type=int, default=None, help="only the first N frames of each clip")
    ap.add_argument(
        "--crf",
        action="append",
        default=[],
        metavar="CODEC=A,B,..",
        help="override a traditional codec's CRF list, e.g. x265=51,45",
    )
    ap.add_argument("--no-doc", action="store_true", help="print the section instead of writing docs/")
    ap.add_argument(
        "--render-only", action="store_true", help="run nothing: rewrite the section and plot from the stored results"
    )
    ap.add_argument(
        "--metrics",
        type=lambda s: [m.strip() for m in s.split(",") if m.strip()],
        default=list(METRIC_CHOICES),
        help=f"comma list of {','.join(METRIC_CHOICES)} (default all; a model-based one whose weights are "
        "missing is left out with a notice)",
    )
    ap.add_argument(
        "--lpips-weights",
        metavar="DIR",
        default=None,
        help=f"folder holding {M.LPIPS_BACKBONE_FILE} (and {M.LPIPS_LINEAR_FILE} unless the lpips package is "
        f"installed); default ${M.LPIPS_WEIGHTS_ENV}, then --models DIR/torchvision, then torch's hub cache",
    )
    ap.add_argument("--models", metavar="DIR", default=None, help="local models folder (CLIP, LPIPS weights)")
    ap.add_argument("--clip-model", default=None, help="CLIP for CLIP-sim (default openai/clip-vit-base-patch32)")
    ap.add_argument("--device", default="cpu", help="where LPIPS and CLIP run")
    ap.add_argument("--bd-points", type=int, default=4, help="anchor points (lowest rates) for BD-rate")
    ap.add_argument("--m3cvc-pack", default="lite")
    ap.add_argument("--m3cvc-grids", type=lambda s: s.split(","), default=["1/16", "1/8"])
    ap.add_argument("--m3cvc-modes", type=lambda s: s.split(","), default=["interpolation", "prediction"])
    ap.add_argument("--m3cvc-thresholds", type=_floats, default=[0.2, 0.35, 0.6], help="D_th values")
    ap.add_argument("--m3cvc-intervals", type=_ints, default=[32, 16, 8, 4, 2], help="fixed keyframe intervals")
    ap.add_argument("--m3cvc-targets", type=_floats, default=[], help="target_bpp values")
    ap.add_argument(
        "--m3cvc-extra",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another encode() keyword (VALUE parsed as JSON when it can be)",
    )
    args = ap.parse_args(argv)

    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    clips = [c.strip() for c in args.clips.split(",") if c.strip()]
    for c in codecs:
        if c not in ALL_CODECS:
            ap.error(f"unknown codec {c!r}")
    for c in clips:
        if c not in CLIPS:
            ap.error(f"unknown clip {c!r}")
    for m in args.metrics:
        if m not in METRIC_CHOICES:
            ap.error(f"unknown metric {m!r} (choose from {', '.join(METRIC_CHOICES)})")
    if args.bd_points < 2:
        ap.error("--bd-points must be at least 2")
    crfs = {k: v[3] for k, v in TRADITIONAL.items()}
    for item in args.crf:
        k, _, v = item.partition("=")
        crfs[k] = _ints(v)
    from m3cvc_codec.models.hub import quiet_model_loading

    quiet_model_loading()  # no progress bars from transformers while CLIP or the VLM load
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only

    given = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--no-doc"]
    command = " ".join(["python tools/bench/bench_rd.py", *(shlex.quote(a) for a in given)])
    meta = {
        "load": f"{os.getloadavg()[0]:.1f}",
        "codecs_requested": codecs,
        "loader": {},
        "bd_points": args.bd_points,
    }
    perceptual: dict = {}
    if not args.render_only:
        perceptual, notes = perceptual_metrics(
            args.metrics,
            lpips_weights=args.lpips_weights,
            models_dir=args.models,
            clip_model=args.clip_model,
            device=args.device,
        )
        for note in notes:
            print(note, file=sys.stderr)
        meta["metric_notes"] = notes
        meta["lpips_label"] = metric_label("lpips", perceptual)
        if "clip_sim" in perceptual:
            meta["clip_label"] = f"CLIP-sim ({perceptual['clip_sim'].model_id})"

    skip_m3 = m3cvc_unavailable(args.m3cvc_pack) if "m3cvc" in codecs else None
    if skip_m3:
        print(f"m3cvc skipped: {skip_m3}", file=sys.stderr)
        meta["m3cvc_skipped"] = skip_m3

    stored = load_results()
    if args.render_only:
        codecs = []
    new: list[dict] = []
    ceilings = []
    t_start = time.perf_counter()
    for clip in [] if args.render_only else clips:
        path = MEDIA / "videos" / CLIPS[clip]
        if not path.exists():
            raise SystemExit(f"{path} is missing (set M3CVC_MEDIA)")
        src = load_clip(path, max_frames=args.max_frames)
        meta["loader"][clip] = check_against_codec_loader(path, src, args.max_frames)
        print(f"{clip}: {len(src)} frames; codec loader: {meta['loader'][clip]}", file=sys.stderr)
        base = {"clip": clip, "max_frames": args.max_frames, "command": command}
        trad = [c for c in codecs if c in TRADITIONAL]
        if trad:
            yuv = to_yuv(src)
            ceilings.append((len(src), run_yuv_ceiling(yuv, src)))
            for name in trad:
                for crf in crfs[name]:
                    r = run_traditional(name, crf, yuv, src, perceptual)
                    new.append({**base, "codec": name, "setting": f"crf {crf}", **r})
                    p = summarise([r])
                    print(
                        f"  {name} crf {crf}: {p['bpp']:.5f} bpp, {p['psnr_rgb']:.2f} dB, MS-SSIM "
                        f"{p['ms_ssim']:.4f}, enc {p['enc_fps']:.1f} fps, dec {p['dec_fps']:.1f} fps "
                        f"[{time.perf_counter() - t_start:.0f} s]",
                        file=sys.stderr,
                    )
        if "m3cvc" in codecs and not skip_m3:
            with tempfile.TemporaryDirectory(prefix="bench_rd_") as tmp:
                work = Path(tmp)
                src_file = work / "source.mkv"
                write_lossless(src, src_file)
                for setting, kwargs in m3cvc_settings(args):
                    try:
                        r = run_m3cvc(kwargs, src_file, src, work, perceptual)
                    except Exception as err:
                        print(f"  m3cvc {setting}: FAILED {type(err).__name__}: {err}", file=sys.stderr)
                        continue
                    new.append({**base, "codec": "m3cvc", "setting": setting, **r})
                    p = summarise([r])
                    print(
                        f"  m3cvc {setting}: {p['bpp']:.5f} bpp, {p['psnr_rgb']:.2f} dB, MS-SSIM "
                        f"{p['ms_ssim']:.4f} [{time.perf_counter() - t_start:.0f} s]",
                        file=sys.stderr,
                    )

    meta["load"] += f" / {os.getloadavg()[0]:.1f}"
    for r in new:
        r["load"] = meta["load"]
    # merge: new rows replace stored rows of the same codec/clip/max_frames
    ran = {(r["codec"], r["clip"], r["max_frames"]) for r in new}
    if "m3cvc" in codecs and not skip_m3:
        ran |= {("m3cvc", c, args.max_frames) for c in clips}
    rows = [r for r in stored if (r["codec"], r["clip"], r["max_frames"]) not in ran] + new
    save_results(rows)

    if ceilings:
        n = sum(k for k, _ in ceilings)
        meta["ceiling"] = {k: sum(_mean(c[k]) * f for f, c in ceilings) / n for k in ("psnr_rgb", "psnr_y", "ms_ssim")}
    elif RESULTS.with_name("rd_meta.json").exists():
        old = json.loads(RESULTS.with_name("rd_meta.json").read_text())
        if old.get("key") == [clips, args.max_frames]:
            meta["ceiling"] = old.get("ceiling")
            meta["loader"] = old.get("loader", meta["loader"])
    if meta.get("ceiling"):
        RESULTS.with_name("rd_meta.json").write_text(json.dumps({"key": [clips, args.max_frames], **meta}))

    use = [r for r in rows if r["max_frames"] == args.max_frames and r["clip"] in clips]
    text = render(use, clips, args.max_frames, meta)
    if args.no_doc:
        print(text)
        plot(series(use, clips), OUT / "rd.png", f"{', '.join(clips)}, 512x320 @ 8 fps")
        print(f"\n(plot: {OUT / 'rd.png'})")
    else:
        from report import update_section

        plot(series(use, clips), PLOT, f"Held-back clips ({', '.join(CLIPS[c] for c in clips)}), 512x320 @ 8 fps")
        update_section("rd", text)
        print(f"wrote the 'rd' section of docs/benchmarks.md and {PLOT.relative_to(ROOT)}", file=sys.stderr)
    print(f"done in {time.perf_counter() - t_start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
