"""m3v-decode on a pipe and on cut-off streams (issue 13): sequential decoding from standard
input, every intact clip decoded, and one line saying where the stream was cut."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from conftest import Pipe
from fake_pack import FakePack, install, moving_square, write_video

import m3cvc_format as m
from m3cvc_codec import cli_decode, decode, encode


@pytest.fixture
def fake_pack(monkeypatch) -> FakePack:
    return install(monkeypatch)


@pytest.fixture
def synthetic(tmp_path):
    frames = np.concatenate([moving_square(24, 128, 80, step=1), moving_square(24, 128, 80, step=2, cut_at=0)])
    return write_video(tmp_path / "synthetic.mp4", frames, fps=24)


@pytest.fixture
def stream(fake_pack, synthetic, tmp_path):
    out = tmp_path / "a.m3v"
    encode(synthetic, out, pack="test.fake", size=(128, 80), interval=4)
    return out


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = Pipe(data, step=13)


def run(argv, capsys, monkeypatch, stdin: bytes | None = None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", _Stdin(stdin))
    code = cli_decode.main(argv)
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, err


def test_decode_from_a_pipe_equals_decode_from_the_file(stream, tmp_path, capsys, monkeypatch):
    decode(stream, tmp_path / "file.y4m")
    code, err = run(["-", "-o", str(tmp_path / "pipe.y4m")], capsys, monkeypatch, stream.read_bytes())
    assert code == 0, err
    assert (tmp_path / "pipe.y4m").read_bytes() == (tmp_path / "file.y4m").read_bytes()
    code, err = run(
        ["-", "-o", str(tmp_path / "part.y4m"), "--frames", "5:11"], capsys, monkeypatch, stream.read_bytes()
    )
    assert code == 0, err
    assert decode(io.BytesIO(stream.read_bytes()), tmp_path / "p2.y4m", frames="5:11").frames == 6
    assert (tmp_path / "part.y4m").read_bytes() == (tmp_path / "p2.y4m").read_bytes()


def test_encode_to_a_pipe_decodes_from_a_pipe(synthetic, tmp_path):
    """``m3v-encode -o - | m3v-decode - -o out.y4m`` with the shipped lite pack."""
    python = sys.executable
    command = (
        f"{python} -m m3cvc_codec.cli_encode {synthetic} -o - --size 128x80 --interval 4 -q"
        f" | {python} -m m3cvc_codec.cli_decode - -o {tmp_path / 'out.y4m'} -q"
    )
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    data = (tmp_path / "out.y4m").read_bytes()
    assert data.startswith(b"YUV4MPEG2 W128 H80") and data.count(b"FRAME\n") == 16


def _cut_inside_clip(path, k: int) -> tuple[bytes, m.IndexEntry]:
    with m.Reader(path) as reader:
        entry = reader.index[k]
    return path.read_bytes()[: entry.offset + 10], entry


@pytest.mark.parametrize("pipe", [False, True])
def test_cut_stream_decodes_every_intact_clip_and_says_where_it_was_cut(stream, tmp_path, capsys, monkeypatch, pipe):
    data, entry = _cut_inside_clip(stream, 2)
    cut = tmp_path / "cut.m3v"
    cut.write_bytes(data)
    with m.Reader(stream) as reader:
        declared = reader.header.frame_count
    decode(stream, tmp_path / "all.y4m")
    argv = ["-" if pipe else str(cut), "-o", str(tmp_path / "cut.y4m")]
    code, err = run(argv, capsys, monkeypatch, data if pipe else None)
    assert code == 1
    line = err.strip().splitlines()[-1]
    name = "<stdin>" if pipe else str(cut)
    assert line.startswith(f"m3v-decode: {name}: stream cut at byte {len(data)}")
    assert f"chunk at byte {entry.offset}" in line
    assert f"promises {declared} frames, {entry.first_frame} decoded" in line
    out = (tmp_path / "cut.y4m").read_bytes()
    assert out.count(b"FRAME\n") == entry.first_frame
    # the clips before the last intact one come out as a full decode gives them (the last
    # intact one is predicted: its successor was cut, spec/m3v.md §6.2)
    with m.Reader(stream) as reader:
        before_last = reader.index[1].first_frame
    frame_bytes = len(out.split(b"FRAME\n")[1]) + len(b"FRAME\n")
    header_bytes = out.index(b"\n") + 1
    assert (tmp_path / "all.y4m").read_bytes()[: header_bytes + before_last * frame_bytes] == out[
        : header_bytes + before_last * frame_bytes
    ]
    code, err = run([*argv, "--partial"], capsys, monkeypatch, data if pipe else None)
    assert code == 0 and "stream cut at byte" in err


def test_cut_before_the_first_clip_says_where(stream, tmp_path, capsys, monkeypatch):
    data, _ = _cut_inside_clip(stream, 0)
    cut = tmp_path / "cut.m3v"
    cut.write_bytes(data)
    for flags in ([], ["--partial"]):
        code, err = run([str(cut), "-o", str(tmp_path / "x.y4m"), *flags], capsys, monkeypatch)
        assert code == 1
        assert err.count("\n") == 1 and f"stream cut at byte {len(data)}" in err and ", 0 decoded" in err
        assert "no clips" not in err
    assert not (tmp_path / "x.y4m").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".x.y4m")]


def test_complete_stream_and_ranges_before_a_cut_are_not_reported(stream, tmp_path, capsys, monkeypatch):
    code, err = run([str(stream), "-o", str(tmp_path / "a.y4m")], capsys, monkeypatch)
    assert code == 0 and "cut" not in err
    data, entry = _cut_inside_clip(stream, 2)
    cut = tmp_path / "cut.m3v"
    cut.write_bytes(data)
    code, err = run(
        [str(cut), "-o", str(tmp_path / "b.y4m"), "--frames", f"0:{entry.first_frame}"], capsys, monkeypatch
    )
    assert code == 0 and "cut" not in err, err
