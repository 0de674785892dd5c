"""Reading streams from URLs (m3cvc_format.remote through open_source): a local HTTP server
that honours Range counts the requests and bytes that m3v-info, random access to a clip, the
PyAV-style facade and the player make, and serves the errors (404, a refused connection, a
protocol whose package is missing) that must come out as one line."""

from __future__ import annotations

import http.server
import importlib
import io
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from conftest import ROOT, make_stream

import m3cvc_format as m
from m3cvc_format import cli_demux, cli_info
from m3cvc_format.remote import MIN_REQUEST, MissingProtocolError, RemoteConnectionError, RemoteNotFoundError, is_url

pytest.importorskip("aiohttp")  # fsspec's HTTP filesystem; the remote extra installs it

CLIPS = 1000


class Served:
    """What the server holds (path -> bytes) and what it was asked: one (method, start, end)
    per request, end exclusive (None for HEAD)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.log: list[tuple[str, int | None, int | None]] = []
        self.lock = threading.Lock()
        self.port = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def reset(self) -> None:
        with self.lock:
            self.log.clear()

    @property
    def requests(self) -> int:
        return len(self.log)

    @property
    def bytes_sent(self) -> int:
        return sum(end - start for _, start, end in self.log if start is not None and end is not None)


def _handler(served: Served) -> type[http.server.BaseHTTPRequestHandler]:
    class RangeHandler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _body(self) -> bytes | None:
            data = served.files.get(self.path.lstrip("/"))
            if data is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
            return data

        def do_HEAD(self) -> None:
            with served.lock:
                served.log.append(("HEAD", None, None))
            data = self._body()
            if data is not None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()

        def do_GET(self) -> None:
            data = self._body()
            if data is None:
                with served.lock:
                    served.log.append(("GET", 0, 0))
                return
            start, end = 0, len(data)
            wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
            if wanted:
                first, last = wanted.groups()
                if first:
                    start, end = int(first), min(int(last) + 1 if last else len(data), len(data))
                else:  # a suffix: the last N bytes
                    start = max(0, len(data) - int(last))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            else:
                self.send_response(200)
            with served.lock:
                served.log.append(("GET", start, end))
            self.send_header("Content-Length", str(end - start))
            self.end_headers()
            self.wfile.write(data[start:end])

    return RangeHandler


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    served = Served()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    httpd.daemon_threads = True
    served.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served
    httpd.shutdown()
    httpd.server_close()


def long_stream(count: int = CLIPS) -> bytes:
    """``count`` clips of 16 frames with two sentences each and a 20x32 map (stored raw: quick
    to write, and about the size of an entropy-coded map with its texts)."""
    rng = np.random.default_rng(13)
    header = m.Header(width=512, height=320, fps=8, grid_h=20, grid_w=32, text_codec=m.TextCodec.UTF8, pack_id="lite")
    base = rng.integers(0, 256, (5, 8))
    clips = [
        m.Clip(
            index=k,
            first_frame=16 * k,
            frame_count=16,
            mode=m.Mode.PREDICTION if k == count - 1 else m.Mode.INTERPOLATION,
            keyframe_text=f"Scene {k}: a person walks a dog along a park path under trees.",
            clip_text=f"The person turns left at the bench while the dog sniffs the grass ({k}).",
            index_map=np.kron(base, np.ones((4, 4), int)) ^ rng.integers(0, 2, (20, 32)),
        )
        for k in range(count)
    ]
    buf = io.BytesIO()
    m.write(buf, header, clips, index_map_coder=m.IndexMapCoder.RAW)
    return buf.getvalue()


@pytest.fixture(scope="module")
def stream(server: Served) -> bytes:
    data = long_stream()
    server.files["long.m3v"] = data
    return data


def test_is_url():
    assert is_url("https://example.org/a.m3v") and is_url("s3://bucket/key.m3v")
    assert is_url("simplecache::s3://bucket/key.m3v")
    assert not is_url("a.m3v") and not is_url("C://x.m3v") and not is_url("/tmp/x.m3v") and not is_url(b"http://x")


def test_index_and_one_clip_in_few_requests(server, stream):
    """The goal of issue 13: header + index in at most 3 requests, one clip in 1."""
    server.reset()
    with m.Reader(server.url("long.m3v")) as reader:
        assert reader.clip_count == CLIPS and reader.index_source == "trailer"
        opened = server.requests
        assert opened <= 3, server.log
        assert server.bytes_sent <= 2 * 65536
        server.reset()
        with m.Reader(stream) as local:
            for k in (300, 517, 700):  # outside the first and last 64 KiB
                assert reader.clip(k) == local.clip(k)
            assert reader.clip(0) == local.clip(0)  # in the first 64 KiB, held: no request
            assert server.requests == 3, server.log  # one request per clip
            entry = reader.entry(517)
            assert entry is not None  # its bytes, rounded up to MIN_REQUEST:
            assert server.log[1][1] == entry.offset and server.log[1][2] - entry.offset == MIN_REQUEST
            server.reset()
            assert reader.clip(701) == local.clip(701)  # fetched with clip 700, the last one read
            assert server.requests == 0


def test_m3v_info_url_reads_header_and_index_only(server, stream, capsys):
    server.reset()
    assert cli_info.main([server.url("long.m3v")]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^clips +{CLIPS} \(modes not read", out, re.M), out
    assert re.search(r"^frames +16000 \(2000\.000 s\)", out, re.M) and f"size     {len(stream)} bytes" in out
    assert server.requests <= 3 and server.bytes_sent < len(stream) / 2, server.log
    server.reset()
    assert cli_info.main([server.url("long.m3v"), "--json"]) == 0
    info = __import__("json").loads(capsys.readouterr().out)
    assert info["frame_count"] == 16 * CLIPS and len(info["clips"]) == CLIPS and info["text_bytes"] is None
    assert server.requests <= 3


def test_m3v_info_url_with_clips_reads_them_and_agrees_with_local(server, tmp_path, capsys):
    local = tmp_path / "short.m3v"
    local.write_bytes(make_stream(count=40))
    server.files["short.m3v"] = local.read_bytes()
    for flags in (["--clips", "--verify"], ["--full", "--json"], ["--prompts"]):
        assert cli_info.main([str(local), *flags]) == 0
        expected = capsys.readouterr().out
        assert cli_info.main([server.url("short.m3v"), *flags, "--full"]) == 0
        assert capsys.readouterr().out == expected.replace(str(local), server.url("short.m3v"))


def test_facade_decodes_a_seeked_clip_from_a_url(server, stream):
    class KeyOnly:
        def __init__(self, header):
            self.header = header

        def decode_keyframe(self, clip):
            return np.full((self.header.height, self.header.width, 3), clip.index % 256, np.uint8)

        def reconstruct(self, clip, keyframe, next_keyframe):
            for _ in range(clip.frame_count):
                yield keyframe

    with m.Reader(stream) as r:
        decoder = KeyOnly(r.header)
        clip_700, clip_702 = r.entry(700), r.entry(702)
    assert clip_700 is not None and clip_702 is not None
    server.reset()
    with m.open(server.url("long.m3v"), frame_decoder=decoder) as container:
        opened = server.requests
        video = container.streams.video[0]
        container.seek(700 * 16, stream=video)  # 16-frame clips, time base 1/8 s per frame...
        frame = next(container.decode(video=0))
        assert frame.to_ndarray()[0, 0, 0] == 700 % 256
    # size, first block, last block (the index), then clip 700 and 701 (it interpolates towards
    # 701's keyframe) in one request
    assert opened <= 3 and server.requests <= 4, server.log
    assert server.log[-1][1] == clip_700.offset and server.log[-1][2] >= clip_702.offset


def test_mkv_url_reads_the_attachment_in_ranges(server, stream, tmp_path):
    from m3cvc_format import mkv

    out = tmp_path / "long.mkv"
    mkv.mux(stream, out)
    server.files["long.mkv"] = out.read_bytes()
    server.reset()
    with m.Reader(server.url("long.mkv")) as reader, m.Reader(stream) as local:
        assert reader.clip_count == CLIPS and reader.clip(3) == local.clip(3)
    # size, the first 64 KiB (EBML header to the attachment's start), the stream's first and
    # last 64 KiB (the attachment's FileUID after its bytes is not read), one for the clip
    assert server.requests <= 5 and server.bytes_sent < len(stream), server.log
    out = tmp_path / "back.m3v"  # m3v-demux takes a URL too
    assert cli_demux.main([server.url("long.mkv"), "-o", str(out)]) == 0
    assert out.read_bytes() == stream


def test_missing_object_is_one_line(server, capsys):
    with pytest.raises(RemoteNotFoundError) as caught:
        m.Reader(server.url("missing.m3v"))
    assert isinstance(caught.value, FileNotFoundError)
    assert cli_info.main([server.url("missing.m3v")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and server.url("missing.m3v") in err and "not found" in err


def test_refused_connection_is_one_line(capsys):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.m3v"
    with pytest.raises(RemoteConnectionError):
        m.Reader(url)
    assert cli_info.main([url]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and url in err and "cannot reach" in err


def test_silent_server_times_out_in_one_line(monkeypatch, capsys):
    from m3cvc_format import remote

    monkeypatch.setattr(remote, "HTTP_TIMEOUT", 0.5)
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/x.m3v"
        assert cli_info.main([url]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and url in err and "did not answer" in err


def test_missing_protocol_package_names_it(monkeypatch, capsys):
    registry = importlib.import_module("fsspec.registry")  # fsspec.registry is also a mapping

    # a protocol whose package cannot be imported, as s3:// is without s3fs
    monkeypatch.setitem(
        registry.known_implementations,
        "m3vtest",
        {"class": "m3vtest_missing_pkg.FileSystem", "err": "Install m3vtest_missing_pkg"},
    )
    with pytest.raises(MissingProtocolError) as caught:
        m.Reader("m3vtest://bucket/x.m3v")
    assert caught.value.package == "m3vtest_missing_pkg"
    assert cli_info.main(["m3vtest://bucket/x.m3v"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install m3vtest_missing_pkg" in err


def test_import_does_not_load_fsspec():
    code = "import sys, m3cvc_format, m3cvc_format.opener, m3cvc_format.reader; print('fsspec' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_player_plays_a_url_headless(server, tmp_path, monkeypatch, capsys):
    """m3v-play opens its input through the same opener: a URL plays, its clips fetched in ranges."""
    from fake_pack import install, moving_square, write_video

    from m3cvc_codec import cli_play, encode

    install(monkeypatch)
    video = write_video(tmp_path / "square.mp4", moving_square(32, 128, 80, cut_at=16), fps=8)
    out = tmp_path / "square.m3v"
    encode(video, out, pack="test.fake", size=(128, 80), interval=8)
    server.files["square.m3v"] = out.read_bytes()
    server.reset()
    code = cli_play.main([server.url("square.m3v"), "--headless", "--frames", "16", "--start", "1", "--speed", "8"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    found = re.search(r"^m3v-play: (\d+) frames shown, (\d+) dropped", printed.out)
    assert found and int(found[1]) + int(found[2]) == 16, printed.out
    assert 2 <= server.requests <= 4, server.log  # size and first block (the whole small file)
    assert cli_play.main([server.url("missing.m3v"), "--headless"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not found" in err
