"""The PRMT chunk (spec/m3v.md §4.3, format 1.2): the prompts of the description dialogue,
written by ``Writer(prompts=...)``, read as ``Reader.prompts``, shown by ``m3v-info --prompts``,
kept byte for byte by m3v-edit, and skipped by a reader that does not know type 0x80."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys

import msgpack
import pytest
from conftest import ROOT, Pipe, make_clips, make_header, make_stream
from reference import m3v_reference as R

import m3cvc_format as m
from m3cvc_format import cli_edit, cli_info
from m3cvc_format.chunks import build_head, frame_chunk
from m3cvc_format.crc import crc32c
from m3cvc_format.edit import parse_texts
from m3cvc_format.prompts import check_prompts, pack_prompts, parse_prompts
from m3cvc_format.summary import summarize, to_json

PROMPTS = {
    "name": "default",
    "version": 1,
    "turns": 4,
    "model": "Qwen/Qwen2-VL-7B-Instruct",
    "settings": {"max_new_tokens": 64, "greedy": True, "clip_input": "video", "frames": 8},
    "keyframe": [
        "Describe the objects and the background.",
        "The previous keyframe: {previous_text}\nWhat differs?",
        "Small details?",
        "Summarise.",
    ],
    "clip": ["Given {keyframe_text}, what is the primary motion?"],
}


def write(prompts=PROMPTS, count=3, header=None, **kw) -> bytes:
    header = header or make_header()
    buf = io.BytesIO()
    with m.Writer(buf, header, prompts=prompts, **kw) as w:
        for clip in make_clips(header, count):
            w.write_clip(clip)
    return buf.getvalue()


def chunks_of(data: bytes) -> list[m.ChunkType | int]:
    with m.Reader(data) as r:
        return [c.chunk_type for c in r.chunks()]


def prmt_chunk(data: bytes) -> tuple[int, bytes]:
    """(offset, whole chunk bytes) of the PRMT chunk of ``data``."""
    with m.Reader(data) as r:
        (chunk,) = [c for c in r.chunks() if c.chunk_type == m.ChunkType.PRMT]
        return chunk.offset, data[chunk.offset : chunk.offset + chunk.size]


def with_prmt_payload(payload: bytes, count: int = 2) -> bytes:
    """A version 1.2 stream whose PRMT chunk holds ``payload`` as it is (not checked)."""
    header = make_header()
    plain = make_stream(header, count)
    with m.Reader(plain) as r:
        head_end = r.header_end
    buf = io.BytesIO()
    with m.Writer(buf, header, head=build_head(header, 2)) as w:
        w._emit(frame_chunk(m.ChunkType.PRMT, payload))  # bypasses the writer's check
        for clip in make_clips(header, count):
            w.write_clip(clip)
    data = buf.getvalue()
    assert data[head_end + 1 :].startswith(frame_chunk(m.ChunkType.PRMT, payload)[1:])
    return data


# ---------------------------------------------------------------- writing


def test_without_prompts_the_stream_is_version_1_1_as_before():
    header = make_header()
    data = write(prompts=None, header=header)
    assert data == make_stream(header, 3, coder=m.IndexMapCoder.CONTEXT)
    with m.Reader(data) as r:
        assert r.header.version == (1, 1) and r.header.version_minor == 1
        assert r.prompts is None
    assert m.ChunkType.PRMT not in chunks_of(data)


def test_prompts_go_right_after_head_and_make_version_1_2():
    data = write()
    with m.Reader(data) as r:
        assert r.header.version == (1, 2) and r.header.version_minor == 2 and r.header.version_major == 1
        first = next(r.chunks())
        assert first.offset == r.header_end and first.chunk_type == m.ChunkType.PRMT == 0x80
        assert r.prompts == check_prompts(PROMPTS) == PROMPTS
        assert len(list(r.clips())) == 3
    assert chunks_of(data) == [0x80, 2, 2, 2, 3, 4]


def test_equal_prompts_give_equal_bytes():
    shuffled = dict(reversed(list(PROMPTS.items())))
    shuffled["settings"] = dict(reversed(list(PROMPTS["settings"].items())))
    shuffled["keyframe"] = tuple(PROMPTS["keyframe"])
    assert write(shuffled) == write(PROMPTS)
    payload = pack_prompts(PROMPTS)
    assert payload == msgpack.packb(
        dict(sorted(PROMPTS.items(), key=lambda kv: kv[0])) | {"settings": dict(sorted(PROMPTS["settings"].items()))}
    )
    assert list(msgpack.unpackb(payload)) == sorted(PROMPTS)  # keys sorted


def test_only_keyframe_and_clip_are_required_and_unknown_keys_are_kept():
    minimal = {"keyframe": [], "clip": ["What moves?"]}
    with m.Reader(write(minimal)) as r:
        assert r.prompts == minimal
    extra = {**PROMPTS, "org.example.note": {"a": [1, 2.5, None, b"\x00"]}, "system": "Be brief."}
    with m.Reader(write(extra)) as r:
        assert r.prompts == extra


@pytest.mark.parametrize(
    ("prompts", "match"),
    [
        ("keyframe", "must be a map"),
        ({"clip": []}, "no 'keyframe' turns"),
        ({"keyframe": []}, "no 'clip' turns"),
        ({"keyframe": "Describe.", "clip": []}, "'keyframe' must be a list of strings, not str"),
        ({"keyframe": ["a", 2], "clip": []}, "'keyframe' turn 2 is int"),
        ({"keyframe": [], "clip": [b"x"]}, "'clip' turn 1 is bytes"),
        ({**PROMPTS, "version": True}, "'version' must be an integer >= 0"),
        ({**PROMPTS, "version": -1}, "'version' must be an integer >= 0"),
        ({**PROMPTS, "turns": 0}, "'turns' must be an integer >= 1"),
        ({**PROMPTS, "name": 3}, "'name' must be a string"),
        ({**PROMPTS, "model": None}, "'model' must be a string"),
        ({**PROMPTS, "system": ["x"]}, "'system' must be a string"),
        ({**PROMPTS, "settings": [1]}, "'settings' must be a map"),
        ({**PROMPTS, "settings": {"greedy": "yes"}}, "'settings.greedy' must be true or false"),
        ({**PROMPTS, "settings": {"clip_input": "audio"}}, "'settings.clip_input' must be"),
        ({**PROMPTS, "settings": {"max_new_tokens": 1.5}}, "'settings.max_new_tokens' must be an integer"),
        ({**PROMPTS, "settings": {"frames": -2}}, "'settings.frames' must be an integer"),
        ({**PROMPTS, 7: "x"}, "key that is not a string: 7"),
        ({**PROMPTS, "settings": {1: 2}}, "key that is not a string"),
        ({**PROMPTS, "x": {1, 2}}, "cannot be stored as MessagePack"),
    ],
)
def test_bad_prompts_are_one_line_value_errors_before_anything_is_written(tmp_path, prompts, match):
    path = tmp_path / "out.m3v"
    with pytest.raises(m.MalformedError, match=match) as info:
        m.Writer(path, make_header(), prompts=prompts)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_prompts_beyond_the_limit():
    big = {"keyframe": ["x" * (1 << 20)], "clip": []}
    with pytest.raises(m.LimitError, match="exceed"):
        m.Writer(io.BytesIO(), make_header(), prompts=big)


def test_a_second_prompts_chunk_or_one_after_a_clip_is_refused():
    header = make_header()
    w = m.Writer(io.BytesIO(), header, prompts=PROMPTS)
    with pytest.raises(m.MalformedError, match="at most one PRMT"):
        w.write_ancillary(0x80, pack_prompts(PROMPTS))
    w = m.Writer(io.BytesIO(), header, head=build_head(header, 2))
    w.write_clip(make_clips(header, 1)[0])
    with pytest.raises(m.MalformedError, match="before its first clip"):
        w.write_ancillary(0x80, pack_prompts(PROMPTS))
    w = m.Writer(io.BytesIO(), header, head=build_head(header, 2))
    with pytest.raises(m.MalformedError, match="PRMT payload is not one MessagePack map"):
        w.write_ancillary(0x80, b"\xc1")
    # In a 1.1 stream type 0x80 is not PRMT: copied as it is, anywhere.
    w = m.Writer(io.BytesIO(), header)
    w.write_clip(make_clips(header, 1)[0])
    w.write_ancillary(0x80, b"\xc1 anything")


def test_prompts_need_a_1_2_head():
    header = make_header()
    with pytest.raises(m.MalformedError, match=r"need a version 1\.2 HEAD"):
        m.Writer(io.BytesIO(), header, head=build_head(header), prompts=PROMPTS)
    with pytest.raises(ValueError, match=r"cannot write version 1\.4"):
        build_head(header, 4)


# ---------------------------------------------------------------- reading


@pytest.mark.parametrize("order", ["prompts first", "clips first"])
def test_prompts_from_a_pipe(order):
    data = write()
    with m.Reader(Pipe(data)) as r:
        if order == "prompts first":
            assert r.prompts == PROMPTS
            assert len(list(r.clips())) == 3
        else:
            assert len(list(r.clips())) == 3
            assert r.prompts == PROMPTS  # the walk over the clips kept the chunk
    with m.Reader(Pipe(write(prompts=None))) as r:
        assert r.prompts is None and len(list(r.clips())) == 3


def test_prompts_of_a_stream_being_followed(tmp_path):
    path = tmp_path / "live.m3v"
    data = write()
    with m.Reader(data) as r:
        first_clip = r.index[0].offset
    path.write_bytes(data[: first_clip + 3])  # HEAD, PRMT and the start of clip 0
    with m.Reader(str(path), follow=True, timeout=0.05) as r:
        assert r.prompts == PROMPTS


def test_a_damaged_prompts_chunk_follows_the_damage_policy():
    data = bytearray(write())
    offset, chunk = prmt_chunk(bytes(data))
    data[offset + len(chunk) // 2] ^= 0x01
    with m.Reader(bytes(data)) as r, pytest.raises(m.ChecksumError) as info:
        _ = r.prompts
    assert info.value.offset == offset
    with m.Reader(bytes(data), on_damage="skip") as r:
        assert [c.index for c in r.clips()] == [0, 1, 2]
        assert r.prompts is None
        assert [(d.offset, type(d.error)) for d in r.damage] == [(offset, m.ChecksumError)]
    with m.Reader(bytes(data), on_damage="skip") as r:  # asked first: the damage is recorded once
        assert r.prompts is None
        assert [c.index for c in r.clips()] == [0, 1, 2]
        assert [(d.offset, type(d.error)) for d in r.damage] == [(offset, m.ChecksumError)]


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"", "not one MessagePack map"),
        (msgpack.packb({"keyframe": [], "clip": []}) + b"\x00", "not one MessagePack map"),
        (msgpack.packb(["keyframe"]), "a MessagePack list, not a map"),
        (msgpack.packb({"keyframe": [], "clip": [1]}), "'clip' turn 1 is int"),
        (msgpack.packb({b"keyframe": [], "clip": []}), "not a string"),
        (msgpack.packb({"keyframe": [], "clip": ["\xff"]}).replace(b"\xc3\xbf", b"\xff\xff"), "not one MessagePack"),
        (b"\x81\xa8keyframe\x90", "no 'clip' turns"),
    ],
)
def test_a_malformed_payload_loses_only_the_prompts(payload, match):
    data = with_prmt_payload(payload)
    offset, _ = prmt_chunk(data)
    with m.Reader(data) as r:
        assert len(list(r.clips())) == 2  # the clips do not depend on it
        with pytest.raises(m.MalformedError, match=match) as info:
            _ = r.prompts
    assert info.value.offset == offset and "\n" not in str(info.value)
    with m.Reader(data, on_damage="skip") as r:
        assert r.prompts is None and len(list(r.clips())) == 2
        assert [d.offset for d in r.damage] == [offset]
    with pytest.raises(m.MalformedError, match=match):
        parse_prompts(payload)


def test_type_0x80_in_a_1_1_stream_is_not_prmt():
    header = make_header()
    buf = io.BytesIO()
    with m.Writer(buf, header) as w:
        w.write_ancillary(0x80, b"\x00 private")
        for clip in make_clips(header, 2):
            w.write_clip(clip)
    data = buf.getvalue()
    with m.Reader(data) as r:
        assert r.header.version == (1, 1) and r.prompts is None and len(list(r.clips())) == 2
    assert "prompts" not in json.dumps(m.describe(data)["chunks"])


def test_later_prompts_chunks_are_ignored():
    header = make_header()
    other = {"keyframe": ["other"], "clip": []}
    buf = io.BytesIO()
    with m.Writer(buf, header, prompts=PROMPTS) as w:
        for clip in make_clips(header, 2):
            w.write_clip(clip)
            w._emit(frame_chunk(m.ChunkType.PRMT, pack_prompts(other)))  # against §4.3: ignored
    data = buf.getvalue()
    with m.Reader(data) as r:
        assert r.prompts == PROMPTS
    with m.Reader(data) as r:
        assert len(list(r.clips())) == 2 and r.prompts == PROMPTS
    with m.Reader(Pipe(data)) as r:
        assert len(list(r.clips())) == 2 and r.prompts == PROMPTS


def test_a_reader_that_does_not_know_prmt_reads_the_stream():
    """The reference decoder implements 1.1 (tests/reference, written from the 1.1 spec): it
    skips the PRMT chunk as an unknown ancillary chunk and reads every clip as ours does."""
    assert R.READER_MINOR == 1
    data = write(count=4)
    got = R.read_stream(data)
    assert got["errors"] == [] and got["header"]["version"] == [1, 2]
    with m.Reader(data) as r:
        ours = list(r.decoded_clips())
    assert [(c["index"], c["keyframe_text"], c["clip_text"]) for c in got["clips"]] == [
        (c.index, c.keyframe_text, c.clip_text) for c in ours
    ]
    assert [c["index_map"] for c in got["clips"]] == [c.index_map.tolist() for c in ours]
    assert got["terminated"] and got["index"] == "trailer"


def test_describe_shows_the_prompts():
    data = write()
    chunks = m.describe(data)["chunks"]
    assert chunks[1]["type"] == 0x80 and chunks[1]["ancillary"] and chunks[1]["prompts"] == PROMPTS


# ---------------------------------------------------------------- m3v-info


def run(main, argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_info_prompts_text(tmp_path, capsys):
    path = tmp_path / "p.m3v"
    path.write_bytes(write())
    code, out, _ = run(cli_info.main, [path], capsys)
    assert code == 0 and "version  1.2" in out
    assert "prompts  'default': 4 keyframe turns, 1 clip turn (--prompts shows them)" in out
    code, out, _ = run(cli_info.main, ["--prompts", path], capsys)
    assert code == 0
    section = out.split("prompts (PRMT chunk)\n", 1)[1]
    assert section.splitlines() == [
        "  name:     default",
        "  version:  1  (of the prompts file)",
        "  model:    Qwen/Qwen2-VL-7B-Instruct",
        "  turns:    4",
        "  settings: clip_input=video, frames=8, greedy=true, max_new_tokens=64",
        "  keyframe dialogue, 4 turns:",
        "    1. Describe the objects and the background.",
        "    2. The previous keyframe: {previous_text}",
        "       What differs?",
        "    3. Small details?",
        "    4. Summarise.",
        "  clip dialogue, 1 turn:",
        "    1. Given {keyframe_text}, what is the primary motion?",
    ]


def test_info_prompts_from_standard_input():
    data = (ROOT / "spec" / "vectors" / "prompts.m3v").read_bytes()
    cmd = [sys.executable, "-m", "m3cvc_format.cli_info", "-", "--prompts"]
    done = subprocess.run(cmd, input=data, capture_output=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode("utf-8")
    assert "  x-comment: café — 试验  (a key this version does not define)" in out
    assert "    1. The first frame is described as: {keyframe_text}\n       Describe the primary" in out


def test_info_without_prompts(tmp_path, capsys):
    path = tmp_path / "s.m3v"
    path.write_bytes(make_stream())
    code, out, _ = run(cli_info.main, ["--prompts", path], capsys)
    assert code == 0 and out.rstrip().endswith("\n\nno prompts recorded") and "prompts  " not in out
    code, out, _ = run(cli_info.main, ["--prompts", "--json", path], capsys)
    assert code == 0 and json.loads(out)["prompts"] is None


def test_info_prompts_json(tmp_path, capsys):
    path = tmp_path / "p.m3v"
    path.write_bytes(write({**PROMPTS, "org.example.raw": b"\x01\x02"}))
    code, out, _ = run(cli_info.main, ["--prompts", "--json", "--verify", path], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["version"] == "1.2"
    assert data["prompts"] == {**PROMPTS, "org.example.raw": "0102"}  # byte strings as hex
    assert summarize(str(path)).prompts == {**PROMPTS, "org.example.raw": b"\x01\x02"}


def test_info_reports_malformed_prompts_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.m3v"
    path.write_bytes(with_prmt_payload(msgpack.packb({"keyframe": "x", "clip": []})))
    code, out, err = run(cli_info.main, [path], capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "PRMT: prompts 'keyframe' must be a list of strings" in err


# ---------------------------------------------------------------- m3v-edit


def test_edit_keeps_the_prompts_chunk_byte_for_byte(tmp_path, capsys):
    src, out = tmp_path / "in.m3v", tmp_path / "out.m3v"
    src.write_bytes(write(count=4))
    code, _, _ = run(cli_edit.main, [src, "--clip", 1, "--keyframe-text", "a new text", "-o", out], capsys)
    assert code == 0
    before, after = src.read_bytes(), out.read_bytes()
    assert prmt_chunk(after) == prmt_chunk(before)
    with m.Reader(before) as r:
        head_end = r.header_end
    assert after[:head_end] == before[:head_end]  # HEAD too (version 1.2)
    with m.Reader(after) as r:
        assert r.prompts == PROMPTS and r.decode_clip(1).keyframe_text == "a new text"


def test_info_json_round_trips_through_edit_with_prompts(tmp_path, capsys):
    src, out, texts = tmp_path / "in.m3v", tmp_path / "out.m3v", tmp_path / "t.json"
    src.write_bytes(write(count=3))
    code, printed, _ = run(cli_info.main, ["--texts", "--json", src], capsys)
    data = json.loads(printed)
    data["clips"][2]["clip_text"] = "the dog sits"
    texts.write_text(json.dumps(data), encoding="utf-8")
    assert parse_texts(data)[2] == (data["clips"][2]["keyframe_text"], "the dog sits")
    code, _, err = run(cli_edit.main, [src, "--texts", texts, "-o", out], capsys)
    assert code == 0, err
    with m.Reader(str(out)) as r:
        assert r.prompts == PROMPTS and r.decode_clip(2).clip_text == "the dog sits"
    assert prmt_chunk(out.read_bytes()) == prmt_chunk(src.read_bytes())


def test_to_json_has_prompts_for_every_stream():
    assert to_json(summarize(make_stream()))["prompts"] is None


def test_crc_of_the_prmt_chunk_covers_type_length_and_payload():
    _, chunk = prmt_chunk(write())
    assert chunk[0] == 0x80
    assert struct.unpack("<I", chunk[-4:])[0] == crc32c(chunk[:-4])
