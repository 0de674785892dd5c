"""m3v-edit and m3cvc_format.edit_texts: texts change, index maps stay byte for byte, the stream
stays valid and decodes to the same maps (and frames), m3v-info --json round-trips, edits in
place are atomic, and bad input is one line with exit status 1."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from conftest import make_clips, make_header

import m3cvc_format as m
from m3cvc_format import cli_edit, cli_info
from m3cvc_format.chunks import frame_chunk
from m3cvc_format.constants import ChunkType
from m3cvc_format.edit import INFO_CLIP_KEYS, INFO_KEYS, parse_texts
from m3cvc_format.summary import summarize, to_json
from m3cvc_format.syntax import read_leb128


def temporal_stream(path, count=6):
    """Clips with texts whose maps differ little from clip to clip: the writer codes most of
    them TEMPORAL (dependent on the previous clip's map)."""
    header = make_header(grid_h=8, grid_w=8, vocab_size=64)
    rng = np.random.default_rng(5)
    clips = make_clips(header, count)
    for prev, clip in zip(clips, clips[1:]):
        cells = rng.random(prev.index_map.shape) < 0.05
        clip.index_map = np.where(cells, rng.integers(0, header.vocab_size, cells.shape), prev.index_map)
    m.write(path, header, clips, refresh=8)
    return clips


def sub_chunks(chunk_payload: bytes) -> list[tuple[int, bytes]]:
    """(kind, raw sub-chunk bytes: tag and body) of a CLIP payload."""
    pos = 0
    for _ in range(3):  # clip_index, first_frame, frame_count
        _, pos = read_leb128(chunk_payload, pos)
    flags = chunk_payload[pos]
    pos += 1
    if flags & 2:
        _, pos = read_leb128(chunk_payload, pos, 10)
    out = []
    while pos < len(chunk_payload):
        tag, body = read_leb128(chunk_payload, pos)
        end = body + (tag >> 4)
        out.append((tag & 15, chunk_payload[pos:end]))
        pos = end
    return out


def raw_maps(path) -> list[bytes]:
    with m.Reader(path) as r:
        return [raw for c in r.chunks() if c.chunk_type == ChunkType.CLIP for k, raw in sub_chunks(c.payload) if k == 2]


def raw_texts(path) -> list[dict[int, bytes]]:
    with m.Reader(path) as r:
        return [
            {k: raw for k, raw in sub_chunks(c.payload) if k < 2} for c in r.chunks() if c.chunk_type == ChunkType.CLIP
        ]


def decoded(path) -> list[m.Clip]:
    with m.Reader(path) as r:
        return list(r.decoded_clips())


@pytest.fixture
def stream(tmp_path):
    path = tmp_path / "in.m3v"
    temporal_stream(path)
    with m.Reader(path) as r:
        assert sum(rec.dependent for rec in r) >= 3  # the test covers dependent maps
    return path


def run(main, argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_edit_one_keyframe_text(stream, tmp_path, capsys):
    out = tmp_path / "out.m3v"
    code, _, err = run(
        cli_edit.main, [str(stream), "--clip", "1", "--keyframe-text", "a cat on a wall", "-o", str(out)], capsys
    )
    assert code == 0, err
    assert "texts of 1 clip changed" in err
    code, shown, _ = run(cli_info.main, [str(out), "--texts"], capsys)
    assert code == 0 and "  keyframe: a cat on a wall" in shown
    assert run(cli_info.main, [str(out), "--verify"], capsys)[0] == 0
    before, after = decoded(stream), decoded(out)
    assert after[1].keyframe_text == "a cat on a wall"
    for k, (a, b) in enumerate(zip(before, after, strict=True)):
        assert np.array_equal(a.index_map, b.index_map)
        assert (a.first_frame, a.frame_count, a.mode, a.seed) == (b.first_frame, b.frame_count, b.mode, b.seed)
        assert b.clip_text == a.clip_text
        if k != 1:
            assert b.keyframe_text == a.keyframe_text
    assert raw_maps(out) == raw_maps(stream)  # every index-map sub-chunk byte for byte
    old, new = raw_texts(stream), raw_texts(out)
    assert [t for k, t in enumerate(new) if k != 1] == [t for k, t in enumerate(old) if k != 1]
    assert new[1][1] == old[1].get(1, new[1].get(1)) and new[1][0] != old[1][0]
    with m.Reader(out) as r:  # INDX and TAIL rebuilt: random access lands on every clip
        assert r.index_source == "trailer"
        assert [r.clip(k).index for k in range(r.clip_count)] == list(range(len(before)))
    # the header is kept byte for byte
    assert out.read_bytes()[:40] == stream.read_bytes()[:40]


def test_info_json_round_trips_byte_for_byte(stream, tmp_path, capsys):
    code, shown, _ = run(cli_info.main, [str(stream), "--texts", "--json"], capsys)
    assert code == 0
    texts = tmp_path / "t.json"
    texts.write_text(shown, encoding="utf-8")
    out = tmp_path / "same.m3v"
    assert run(cli_edit.main, [str(stream), "--texts", str(texts), "-o", str(out), "-q"], capsys)[0] == 0
    assert out.read_bytes() == stream.read_bytes()
    # an edit of that JSON changes just that text
    data = json.loads(shown)
    data["clips"][2]["clip_text"] = "it rains"
    data["clips"][0]["keyframe_text"] = ""
    texts.write_text(json.dumps(data), encoding="utf-8")
    assert run(cli_edit.main, [str(stream), "--texts", str(texts), "-o", str(out), "-q"], capsys)[0] == 0
    after = decoded(out)
    assert after[2].clip_text == "it rains" and after[0].keyframe_text == ""
    assert raw_maps(out) == raw_maps(stream)
    # and the edited stream's JSON fed back reproduces it
    code, shown, _ = run(cli_info.main, [str(out), "--texts", "--json"], capsys)
    texts.write_text(shown, encoding="utf-8")
    again = tmp_path / "again.m3v"
    assert run(cli_edit.main, [str(out), "--texts", str(texts), "-o", str(again), "-q"], capsys)[0] == 0
    assert again.read_bytes() == out.read_bytes()


def test_sidecar_form_and_stdin(stream, tmp_path, capsys, monkeypatch):
    sidecar = {
        "version": 1,
        "clips": [{"index": 3, "keyframe": "a red ball", "clip": "it bounces"}, {"index": 4, "clip": ""}],
    }
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(sidecar)))
    out = tmp_path / "out.m3v"
    assert run(cli_edit.main, [str(stream), "--texts", "-", "-o", str(out)], capsys)[0] == 0
    before, after = decoded(stream), decoded(out)
    assert (after[3].keyframe_text, after[3].clip_text) == ("a red ball", "it bounces")
    assert after[4].keyframe_text == before[4].keyframe_text and after[4].clip_text == ""
    assert raw_maps(out) == raw_maps(stream)


def test_library_function_in_place(stream):
    original = stream.read_bytes()
    assert m.edit_texts(stream, stream, {0: (None, "new clip text")}) == 1
    assert decoded(stream)[0].clip_text == "new clip text"
    assert raw_maps(stream) == [raw for raw in raw_maps(io.BytesIO(original))]
    assert m.edit_texts(stream, stream, {0: (None, "new clip text")}) == 0  # nothing changes


def test_failed_edit_in_place_leaves_the_file_alone(stream, capsys):
    original = stream.read_bytes()
    big = "x" * ((1 << 20) + 1)
    code, _, err = run(cli_edit.main, [str(stream), "--clip", "2", "--clip-text", big, "-o", str(stream)], capsys)
    assert code == 1 and err.count("\n") == 1 and "limit" in err and "clip 2" in err
    assert stream.read_bytes() == original
    assert [p.name for p in stream.parent.iterdir()] == [stream.name]  # no temporary file left


@pytest.mark.parametrize(
    "args, match",
    [
        (["--clip", "6", "--keyframe-text", "x"], "clip 6 is out of range"),
        (["--texts", "{bad}"], "unknown key 'keyfrme'"),
        (["--texts", "{ranges}"], "per time range"),
        (["--texts", "{dup}"], "listed twice"),
        (["--texts", "{notjson}"], "not JSON"),
    ],
)
def test_errors_are_one_line_exit_1(stream, tmp_path, capsys, args, match):
    files = {
        "{bad}": {"clips": [{"index": 0, "keyfrme": "x"}]},
        "{ranges}": {"ranges": []},
        "{dup}": {"clips": [{"index": 0}, {"index": 0}]},
    }
    args = list(args)
    for i, a in enumerate(args):
        if a in files or a == "{notjson}":
            f = tmp_path / "t.json"
            f.write_text("{" if a == "{notjson}" else json.dumps(files[a]), encoding="utf-8")
            args[i] = str(f)
    out = tmp_path / "out.m3v"
    code, _, err = run(cli_edit.main, [str(stream), *args, "-o", str(out)], capsys)
    assert code == 1 and err.count("\n") == 1 and match in err, err
    assert not out.exists()


def test_damaged_input_is_one_line_exit_1(stream, tmp_path, capsys):
    data = bytearray(stream.read_bytes())
    with m.Reader(stream) as r:
        data[r.index[2].offset + 5] ^= 0x40
    bad = tmp_path / "bad.m3v"
    bad.write_bytes(bytes(data))
    out = tmp_path / "out.m3v"
    code, _, err = run(cli_edit.main, [str(bad), "--clip", "0", "--clip-text", "x", "-o", str(out)], capsys)
    assert code == 1 and err.count("\n") == 1 and "CRC" in err
    assert not out.exists()
    bad.write_bytes(stream.read_bytes()[:-30])  # cut off
    code, _, err = run(cli_edit.main, [str(bad), "--clip", "0", "--clip-text", "x", "-o", str(out)], capsys)
    assert code == 1 and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--keyframe-text", "x"],
        ["--clip", "0"],
    ],
)
def test_usage_errors_exit_2(stream, tmp_path, capsys, args):
    assert run(cli_edit.main, [str(stream), *args, "-o", str(tmp_path / "o.m3v")], capsys)[0] == 2


def test_ancillary_chunks_are_kept(tmp_path):
    header = make_header()
    clips = make_clips(header, 3)
    path = tmp_path / "a.m3v"
    with m.Writer(path, header) as w:
        w.write_clip(clips[0])
        w.write_ancillary(0x90, b"note")
        w.write_clip(clips[1])
        w.write_clip(clips[2])
    out = tmp_path / "b.m3v"
    m.edit_texts(path, out, {2: ("changed", None)})
    with m.Reader(out) as r:
        kinds = [c.chunk_type for c in r.chunks()]
    assert kinds == [2, 0x90, 2, 2, 3, 4]
    assert frame_chunk(0x90, b"note") in out.read_bytes()


def test_parse_texts_accepts_exactly_what_m3v_info_prints(stream):
    data = to_json(summarize(str(stream)))
    assert set(data) <= INFO_KEYS
    assert all(set(c) <= INFO_CLIP_KEYS for c in data["clips"])
    parsed = parse_texts(data)
    assert sorted(parsed) == list(range(len(data["clips"])))
    with pytest.raises(ValueError, match=r"clips\[0\]: mixes"):
        parse_texts({"clips": [{"index": 0, "keyframe": "a", "clip_text": "b"}]})
    with pytest.raises(ValueError, match=r"clips\[0\].keyframe: not a string"):
        parse_texts({"clips": [{"index": 0, "keyframe": 3}]})


def test_real_encode_edited_decodes_to_the_same_frames(tmp_path):
    from fake_pack import moving_square, write_video

    import m3cvc_codec

    video = write_video(tmp_path / "v.mp4", moving_square(24, 128, 80, step=1), fps=8)
    src, edited = tmp_path / "src.m3v", tmp_path / "edited.m3v"
    m3cvc_codec.encode(video, src, size=(128, 80), interval=4)
    m.edit_texts(src, edited, {1: ("a white square", "it moves right")})
    assert decoded(edited)[1].keyframe_text == "a white square"
    assert raw_maps(edited) == raw_maps(src)
    a, b = tmp_path / "a.y4m", tmp_path / "b.y4m"
    m3cvc_codec.decode(src, a)
    m3cvc_codec.decode(edited, b)
    assert a.read_bytes() == b.read_bytes()


def test_unterminated_stream_stays_unterminated(tmp_path):
    header = make_header()
    path, out = tmp_path / "live.m3v", tmp_path / "out.m3v"
    m.write(path, header, make_clips(header, 3), index=False)
    m.edit_texts(path, out, {1: (None, "edited")})
    with m.Reader(out) as r:
        assert [c.chunk_type for c in r.chunks()] == [2, 2, 2]
    assert decoded(out)[1].clip_text == "edited"
    with pytest.raises(ValueError, match="'version'"):
        parse_texts({"version": 2, "clips": []})
