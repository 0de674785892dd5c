#!/usr/bin/env python3
"""Requests and bytes that reading a stream by URL costs (m3cvc_format.remote).

    python tools/bench/bench_remote.py [--clips 1000]

The long stream of bench_mkv.py (512x320, 8 fps, 16-frame clips, ActivityNet descriptions
coded with tokans-1) is served by a local HTTP server that honours Range (threaded, on
127.0.0.1) and counts every request and the bytes of every response body.  Measured:
``m3v-info URL`` (header and index), ``Reader.clip(k)`` for random clips, ``m3cvc_format.open``
with a seek to a clip and the decode of its first frame, the same through the ``.mkv`` that
``m3v-mux --no-preview`` makes, and ``m3v-info --full URL`` (every clip) for comparison.
Prints a Markdown section (it does not edit docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import io
import re
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mkv import long_stream

import m3cvc_format as m
from m3cvc_format import cli_info, mkv
from m3cvc_format.remote import MIN_REQUEST


class Counter:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests = 0
        self.bytes = 0
        self.lock = threading.Lock()

    def take(self) -> tuple[int, int]:
        with self.lock:
            out = (self.requests, self.bytes)
            self.requests = self.bytes = 0
        return out


def serve(counter: Counter) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, head_only: bool) -> None:
            data = counter.files.get(self.path.lstrip("/"))
            if data is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start, end = 0, len(data)
            wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if wanted and not head_only:
                start = int(wanted[1])
                end = min(int(wanted[2]) + 1 if wanted[2] else len(data), len(data))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(end - start))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            with counter.lock:
                counter.requests += 1
                counter.bytes += 0 if head_only else end - start
            if not head_only:
                self.wfile.write(data[start:end])

        def do_HEAD(self) -> None:
            self._send(True)

        def do_GET(self) -> None:
            self._send(False)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class KeyOnly:
    """A frame decoder that paints the clip number: the measurement is of reading, not decoding."""

    def __init__(self, header: m.Header) -> None:
        self.header = header

    def decode_keyframe(self, clip):  # type: ignore[no-untyped-def]
        return np.full((self.header.height, self.header.width, 3), clip.index % 256, np.uint8)

    def reconstruct(self, clip, keyframe, next_keyframe):  # type: ignore[no-untyped-def]
        for _ in range(clip.frame_count):
            yield keyframe


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=1000)
    args = p.parse_args(argv)
    data, source = long_stream(args.clips)
    counter = Counter()
    httpd = serve(counter)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    rows: list[tuple[str, str, int, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        mkv_path = Path(tmp) / "long.mkv"
        mkv.mux(data, mkv_path)
        counter.files = {"long.m3v": data, "long.mkv": mkv_path.read_bytes()}
        with m.Reader(data) as local:
            header = local.header
            picks = sorted(np.random.default_rng(1).choice(np.arange(args.clips), 10, replace=False).tolist())
            clip_bytes = [local.clip(k).size for k in picks]
        for name in ("long.m3v", "long.mkv"):
            url = f"{base}/{name}"
            with contextlib.redirect_stdout(io.StringIO()):
                assert cli_info.main([url]) == 0
            rows.append((f"`m3v-info URL` ({name})", "header + index", *counter.take()))
            with m.Reader(url) as reader:
                _ = reader.index
                counter.take()
                for k in picks:
                    assert reader.clip(k).index == k
                rows.append((f"`Reader.clip(k)`, 10 random clips ({name})", "all 10", *counter.take()))
            with m.open(url, frame_decoder=KeyOnly(header)) as container:
                opened = counter.take()
                k = picks[len(picks) // 2]
                container.seek(k * 16 * 1_000_000 // 8)  # microseconds: clip k's first frame
                frame = next(container.decode(video=0))
                assert frame.to_ndarray()[0, 0, 0] == k % 256
                seeked = counter.take()
            rows.append((f"`m3cvc_format.open(URL)` ({name})", "open", *opened))
            rows.append((f"... `seek` to clip {k}, decode a frame ({name})", "seek + decode", *seeked))
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli_info.main([f"{base}/long.m3v", "--full"]) == 0
        rows.append(("`m3v-info --full URL` (long.m3v)", "every clip", *counter.take()))
    httpd.shutdown()
    lines = [
        "## Reading by URL (range requests)",
        "",
        f"Command: `python tools/bench/bench_remote.py --clips {args.clips}`. The long stream of bench_mkv.py "
        f"({args.clips} clips, {source}): {len(data)} bytes as .m3v, {len(counter.files['long.mkv'])} as the "
        f".mkv of `m3v-mux` (no preview), served over HTTP on 127.0.0.1 by a server that honours Range; "
        f"requests counted at the server (HEAD included), bytes are response bodies. A clip is "
        f"{min(clip_bytes)}-{max(clip_bytes)} bytes; a request asks for at least "
        f"{MIN_REQUEST} bytes.",
        "",
        "| what | counted | requests | bytes |",
        "|---|---|---|---|",
        *(f"| {what} | {counted} | {requests} | {fetched} |" for what, counted, requests, fetched in rows),
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
