"""m3v-info: summary, tables, JSON, verification, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, make_header, make_stream

import m3cvc_format as m
from m3cvc_format import cli_info as info

JSON_KEYS = {"version", "width", "height", "fps", "frame_count", "duration_s", "pack", "bpp", "total_bytes", "clips"}
CLIP_KEYS = {
    "index",
    "first_frame",
    "frame_count",
    "mode",
    "bytes",
    "text_bytes",
    "vq_bytes",
    "keyframe_text",
    "clip_text",
}


@pytest.fixture
def stream_file(tmp_path):
    path = tmp_path / "s.m3v"
    path.write_bytes(make_stream(make_header(width=512, height=320), 5))
    return path


def test_summary(stream_file, capsys):
    assert info.main([str(stream_file)]) == 0
    out = capsys.readouterr().out
    for word in ("512x320", "8 fps", "clips", "kbit/s", "bpp", "framing", "pack"):
        assert word in out


def test_json_has_the_documented_keys_and_consistent_bytes(stream_file, capsys):
    assert info.main([str(stream_file), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc.keys() >= JSON_KEYS
    assert doc["total_bytes"] == stream_file.stat().st_size
    assert doc["text_bytes"] + doc["vq_bytes"] + doc["framing_bytes"] == doc["total_bytes"]
    assert len(doc["clips"]) == 5
    for k, clip in enumerate(doc["clips"]):
        assert clip.keys() >= CLIP_KEYS and clip["index"] == k
    assert doc["clips"][0]["keyframe_text"] == "keyframe 0: a dog on grass"
    assert doc["bpp"] == pytest.approx(8 * doc["total_bytes"] / (512 * 320 * doc["frame_count"]))


def test_clips_texts_and_verify(stream_file, capsys):
    assert info.main([str(stream_file), "--clips", "--texts", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "keyframe 3: a dog on grass" in out and "verify" in out
    assert len([line for line in out.splitlines() if line.strip().startswith(("0 ", "1 ", "2 ", "3 ", "4 "))]) >= 5


def test_damage_gives_one_line_with_offset_and_exit_1(stream_file, capsys):
    data = bytearray(stream_file.read_bytes())
    clip2 = m.Reader(bytes(data)).index[2].offset
    data[clip2 + 6] ^= 0x40
    stream_file.write_bytes(bytes(data))
    assert info.main([str(stream_file)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"at byte {clip2}" in err[0] and "CRC" in err[0]


def test_cut_off_stream_reports_the_cut(stream_file, capsys):
    data = stream_file.read_bytes()
    stream_file.write_bytes(data[: len(data) - 40])
    assert info.main([str(stream_file)]) == 1
    err = capsys.readouterr().err
    assert "complete clips" in err and "at byte" in err


def test_missing_file_and_usage(tmp_path, capsys):
    assert info.main([str(tmp_path / "nope.m3v")]) == 1
    assert "nope.m3v" in capsys.readouterr().err
    assert info.main([]) == 2  # usage


def test_stdin_and_no_traceback(stream_file):
    cmd = [sys.executable, "-m", "m3cvc_format.cli_info", "-", "--json"]
    env: dict[str, str] = {}
    ok = subprocess.run(cmd, input=stream_file.read_bytes(), capture_output=True, env=env)
    assert ok.returncode == 0 and json.loads(ok.stdout)["index"] == "none"
    bad = subprocess.run(cmd, input=b"\x00garbage" * 10, capture_output=True, env=env)
    assert bad.returncode == 1 and b"Traceback" not in bad.stderr
    assert len(bad.stderr.decode().strip().splitlines()) == 1


def test_dependent_clips_are_named_and_verified(capsys):
    vector = ROOT / "spec" / "vectors" / "temporal.m3v"
    assert info.main([str(vector), "--clips", "--verify"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("clip  first") :].splitlines()[1:]
    coders = [line.split()[7] for line in table if line.split()[:1] and line.split()[0].isdigit()]
    assert coders == ["context", "temporal", "temporal", "context", "temporal", "temporal", "context"]
    assert info.main([str(vector), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [c["index_map_coder"] for c in doc["clips"]] == coders
    damaged = ROOT / "spec" / "vectors" / "temporal-damaged.m3v"
    assert info.main([str(damaged), "--verify"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "at byte" in err
