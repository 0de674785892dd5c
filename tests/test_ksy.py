"""spec/m3v.ksy: the parser Kaitai Struct generates from it reads every stream exactly as
the construct syntax does (``m3cvc_format.describe``).

The .ksy is compiled to Python once a session with tools/ksy/compile.js (the npm package
kaitai-struct-compiler, installed by ``npm install --prefix tools/ksy``) and the generated
module runs on the PyPI runtime ``kaitaistruct`` (0.11 or later). Without node, the
compiler or the runtime the tests skip, except under CI (environment variable CI set),
where they fail. M3V_VECTORS_DIR points the vector tests at another folder (for example
one written by ``tools/make_vectors.py --out DIR``).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import m3cvc_format as m
from m3cvc_format.chunks import build_head, frame_chunk
from m3cvc_format.crc import crc32c
from m3cvc_format.syntax import encode_leb128, read_leb128

ROOT = Path(__file__).resolve().parents[1]
KSY = ROOT / "spec" / "m3v.ksy"
KSY_TOOLS = ROOT / "tools" / "ksy"
COMPILE_JS = KSY_TOOLS / "compile.js"
VECTORS = Path(os.environ.get("M3V_VECTORS_DIR", ROOT / "spec" / "vectors"))
INSTALL_HINT = "npm install --prefix tools/ksy && python3 -m pip install 'kaitaistruct>=0.11'"


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must install it: {INSTALL_HINT})")
    pytest.skip(f"{reason}; install with: {INSTALL_HINT}")


@pytest.fixture(scope="session")
def ksy(tmp_path_factory):
    """The Python module generated from spec/m3v.ksy, and the kaitaistruct runtime."""
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not on PATH: it runs the Kaitai Struct compiler")
    if (
        not (KSY_TOOLS / "node_modules" / "kaitai-struct-compiler").is_dir()
        or not (KSY_TOOLS / "node_modules" / "js-yaml").is_dir()
    ):
        _unavailable("npm packages kaitai-struct-compiler / js-yaml are not installed in tools/ksy")
    try:
        import kaitaistruct
    except ImportError:
        _unavailable("the Python runtime kaitaistruct is not installed")
    if getattr(kaitaistruct, "API_VERSION", (0, 9)) < (0, 11):
        _unavailable(f"kaitaistruct {kaitaistruct.__version__} is too old: code from compiler 0.11 needs 0.11")
    out = tmp_path_factory.mktemp("ksy")
    proc = subprocess.run(
        [node, str(COMPILE_JS), "--target", "python", str(KSY), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # The tools are present: a compile error is a fault of the .ksy (or of compile.js).
    assert proc.returncode == 0, f"compiling {KSY.name} failed:\n{proc.stderr}{proc.stdout}"
    path = out / "m3v.py"
    assert path.is_file(), f"the compiler wrote {sorted(p.name for p in out.iterdir())}, not m3v.py"
    spec = importlib.util.spec_from_file_location("m3v_ksy_generated", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, kaitaistruct


# ---------------------------------------------------------------- the generated parser, as describe() reports


def _head(p) -> dict:
    assert p.metadata_length.value == len(p.metadata)
    assert p.pack_id_length.value == len(p.pack_id.encode("ascii"))
    assert p.prior_count.value == len(p.prior)
    return {
        "version_major": p.version_major,
        "version_minor": p.version_minor,
        "width": p.width.value,
        "height": p.height.value,
        "fps_num": p.fps_num.value,
        "fps_den": p.fps_den.value,
        "time_base_num": p.time_base_num.value,
        "time_base_den": p.time_base_den.value,
        "frame_count": p.frame_count.value,
        "pack_id": p.pack_id,
        "pack_hash": p.pack_hash.hex(),
        "grid_h": p.grid_h.value,
        "grid_w": p.grid_w.value,
        "vocab_size": p.vocab_size.value,
        "text_codec": int(p.text_codec),
        "default_mode": int(p.default_mode),
        "stream_seed": p.stream_seed,
        "prior": [v.value for v in p.prior],
        "metadata_length": len(p.metadata),
        "extension_length": len(p.extension),
    }


def _clip(p) -> dict:
    assert p.has_seed == (getattr(p, "seed", None) is not None)
    assert int(p.mode) == p.flags & 1
    subs = []
    for s in p.sub_chunks:
        assert s.kind_code == s.tag.value & 15 and int(s.kind) == s.kind_code
        assert s.body_length == s.tag.value >> 4
        assert s.is_ancillary == bool(s.kind_code & 8)
        length = len(s._raw_body) if s.kind_code == 2 else len(s.body)
        assert length == s.body_length
        subs.append({"kind": s.kind_code, "length": length})
    return {
        "clip_index": p.clip_index.value,
        "first_frame": p.first_frame.value,
        "frame_count": p.frame_count.value,
        "flags": p.flags,
        "seed": p.seed.value if p.has_seed else None,
        "sub_chunks": subs,
    }


def _index(p) -> dict:
    assert len(p.entries) == p.clip_count.value
    return {
        "clip_count": p.clip_count.value,
        "frame_end": p.frame_end.value,
        "entries": [{"offset_delta": e.offset_delta.value, "frame_delta": e.frame_delta.value} for e in p.entries],
    }


def _tail(p) -> dict:
    return {"index_offset": p.index_offset, "index_size": p.index_size}


def msgpack_value(v):
    """A value of the generated ``msgpack`` type as Python, as the msgpack package decodes it."""
    import msgpack

    if v.is_nil:
        return None
    if v.is_bool:
        return v.bool_value
    if v.is_int:
        return v.int_value
    if v.is_float:
        return v.float_value
    if v.is_str:
        return v.str_value
    if v.is_bin:
        return v.bytes_value
    if v.is_ext:
        return msgpack.ExtType(v.ext_type, v.bytes_value)
    if v.is_array:
        assert len(v.array_elements) == v.num_items
        return [msgpack_value(e) for e in v.array_elements]
    assert v.is_map, f"format byte 0x{v.b1:02x}"
    assert len(v.map_entries) == v.num_items
    return {msgpack_value(e.key): msgpack_value(e.value) for e in v.map_entries}


def _entry(gen, offset: int, ch) -> dict:
    ct = gen.M3v.ChunkType
    assert ch.type_code == int(ch.chunk_type)
    entry = {
        "offset": offset,
        "type": ch.type_code,
        "ancillary": ch.is_ancillary,
        "length": ch.chunk_length.value,
        "crc": ch.crc,
    }
    detail = {ct.head: ("head", _head), ct.clip: ("clip", _clip), ct.indx: ("index", _index), ct.tail: ("tail", _tail)}
    if ch.chunk_type in detail:
        key, fn = detail[ch.chunk_type]
        entry[key] = fn(ch.payload)
    elif isinstance(ch.payload, gen.M3v.Prmt):  # type 0x80 in a stream of version 1.2 or later
        assert ch.chunk_type == ct.prmt
        entry["prompts"] = msgpack_value(ch.payload.prompts)
    else:  # ancillary (or reserved) types: payload stays bytes
        assert isinstance(ch.payload, bytes) and len(ch.payload) == ch.chunk_length.value
    return entry


def ksy_describe(ksy, data: bytes) -> tuple[dict, list]:
    """describe()'s dict for ``data`` built from the generated parser, and the parsed chunks.

    A complete (or unterminated) stream is parsed in one go by the top-level type; when
    that runs out of data inside a chunk, the stream is read chunk by chunk to find the
    complete chunks and the offset of the cut one.
    """
    gen, ks = ksy
    truncated_at = None
    try:
        top = gen.M3v.from_bytes(data)
        chunks = list(top.chunks)
    except ks.EndOfStreamError:
        top = gen.M3v.from_bytes(data[:8])  # the signature (and no chunks)
        stream = ks.KaitaiStream(io.BytesIO(data))
        stream.seek(len(top.signature))
        chunks = top.chunks  # as the top-level parse fills it: a PRMT chunk looks at HEAD's version
        while not stream.is_eof():
            start = stream.pos()
            try:
                chunks.append(gen.M3v.Chunk(stream, top, top))
            except ks.EndOfStreamError:
                truncated_at = start
                break
        assert truncated_at is not None, "the top-level parse ran out of data, chunk by chunk did not"
    out = {"signature": top.signature.hex(), "chunks": [], "truncated_at": truncated_at}
    offset = len(top.signature)
    for ch in chunks:
        out["chunks"].append(_entry(gen, offset, ch))
        offset += ch.size
    assert offset == (truncated_at if truncated_at is not None else len(data)), "chunk sizes do not add up"
    return out, chunks


def check_stream(ksy, data: bytes) -> dict:
    """The generated parser and describe() report the same structure; also checks the bodies
    of sub-chunks against the reader's records and TAIL against the INDX chunk found."""
    gen, _ = ksy
    want = m.describe(data)
    got, chunks = ksy_describe(ksy, data)
    assert got["signature"] == want["signature"] == m.SIGNATURE.hex()
    assert got["truncated_at"] == want["truncated_at"]
    assert len(got["chunks"]) == len(want["chunks"]), (
        [(c["offset"], c["type"]) for c in got["chunks"]],
        [(c["offset"], c["type"]) for c in want["chunks"]],
    )
    for g, w in zip(got["chunks"], want["chunks"]):
        assert g == w, f"chunk at offset {w['offset']} (type 0x{w['type']:02x})"
    assert got == want

    # Every byte of each chunk's framing: CRC over type, length as encoded and payload.
    offset = 8
    for ch in chunks:
        size = ch.size
        raw = data[offset : offset + size]
        assert raw[0] == ch.type_code
        assert raw[1 : 1 + ch.chunk_length.len] == encode_leb128(ch.chunk_length.value)
        assert crc32c(raw[:-4]) == ch.crc == struct.unpack("<I", raw[-4:])[0]
        offset += size

    # Sub-chunk bodies and the index-map fields against the reader's parse of the clips.
    ct = gen.M3v.ChunkType
    kinds = gen.M3v.SubChunkKind
    offsets, offset = {}, 8
    for ch in chunks:
        offsets[offset] = ch
        offset += ch.size
    records = list(m.Reader(data, on_damage="skip").clips())
    assert [r.offset for r in records] == [o for o, ch in offsets.items() if ch.chunk_type == ct.clip]
    for record in records:
        clip = offsets[record.offset].payload
        assert record.size == offsets[record.offset].size
        texts = {int(s.kind_code): s.body for s in clip.sub_chunks if s.kind_code in (0, 1)}
        assert texts.get(0, b"") == record.keyframe_text_coded
        assert texts.get(1, b"") == record.clip_text_coded
        assert [(s.kind_code, s.body) for s in clip.sub_chunks if s.is_ancillary] == [
            (k, b) for k, b in record.ancillary
        ]
        maps = [s.body for s in clip.sub_chunks if s.kind == kinds.index_map]
        assert len(maps) == 1
        im = maps[0]
        assert isinstance(im, gen.M3v.IndexMap)
        assert (int(im.coder), im.map_h.value, im.map_w.value, im.coded) == (
            record.index_map.coder,
            record.index_map.grid_h,
            record.index_map.grid_w,
            record.index_map.data,
        )
    # TAIL points at the INDX chunk, whose whole size the generated parser computes.
    if chunks and chunks[-1].chunk_type == ct.tail and got["truncated_at"] is None:
        tail = chunks[-1].payload
        indx = offsets.get(tail.index_offset)
        assert indx is not None and indx.chunk_type == ct.indx
        assert tail.index_size == indx.size
        assert tail.index_offset + tail.index_size == len(data) - 18
    return got


# ---------------------------------------------------------------- conformance vectors


def _valid_vectors():
    out = []
    for path in sorted(VECTORS.glob("*.m3v")):
        meta = path.with_suffix(".json")
        if meta.exists() and json.loads(meta.read_text(encoding="utf-8")).get("valid"):
            out.append(path)
    return out


@pytest.mark.parametrize("path", _valid_vectors(), ids=lambda p: p.stem)
def test_vector(ksy, path):
    want = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    data = path.read_bytes()
    got = check_stream(ksy, data)
    assert got["truncated_at"] == want.get("truncated_at")
    if want.get("truncated_at") is not None:
        # The whole file does not parse (it ends inside a chunk); its complete chunks do.
        gen, ks = ksy
        with pytest.raises(ks.EndOfStreamError):
            gen.M3v.from_bytes(data)
        assert ksy_describe(ksy, data[: want["truncated_at"]])[0]["chunks"] == got["chunks"]


# ---------------------------------------------------------------- streams made here

_WORDS = (
    "a",
    "dog",
    "runs",
    "across",
    "the",
    "grass",
    "café",
    "Bälle",
    "草地",
    "女孩",
    "🌼",
    "slowly",
    "camera",
    "pans",
    "left",
    "light",
    "—",
    "red",
    "jacket",
    "two",
    "cups",
    "steam",
    "rises",
)


def _text(rng, max_words: int) -> str:
    n = int(rng.integers(0, max_words + 1))
    return " ".join(_WORDS[int(i)] for i in rng.integers(0, len(_WORDS), n))


def _stream(
    header: m.Header,
    clips,
    *,
    index=True,
    coder=m.IndexMapCoder.RAW,
    ancillary=None,
    prompts=None,
    prmt_payload=None,
) -> bytes:
    """A stream with ``clips``; ``ancillary`` maps a clip index to the (type, payload) chunks
    written after that clip; ``prompts`` go to the Writer, ``prmt_payload`` is a PRMT payload
    written as it is (in a version 1.2 stream)."""
    ancillary = ancillary or {}
    buf = io.BytesIO()
    head = None if prmt_payload is None else build_head(header, 2)
    with m.Writer(buf, header, index=index, index_map_coder=coder, prompts=prompts, head=head) as w:
        if prmt_payload is not None:
            w.write_ancillary(m.ChunkType.PRMT, prmt_payload)
        for clip in clips:
            w.write_clip(clip)
            for chunk_type, payload in ancillary.get(clip.index, ()):
                w.write_ancillary(chunk_type, payload)
    return buf.getvalue()


def _clips(
    rng, header: m.Header, count: int, *, max_words=12, seeds=(None,), coders=(None,), ancillary=True, frames=(1, 17)
):
    clips, first = [], 0
    for k in range(count):
        n = int(rng.integers(*frames))
        anc = ()
        if ancillary and k % 3 == 1:
            anc = ((8, b""), (15, bytes(rng.integers(0, 256, int(rng.integers(1, 300)), dtype=np.uint8))))
        clips.append(
            m.Clip(
                index=k,
                first_frame=first,
                frame_count=n,
                mode=m.Mode.PREDICTION if k == count - 1 else m.Mode(int(rng.integers(0, 2))),
                keyframe_text=_text(rng, max_words),
                clip_text=_text(rng, max_words),
                index_map=rng.integers(0, header.vocab_size, (header.grid_h, header.grid_w)),
                seed=seeds[k % len(seeds)],
                ancillary=anc,
                index_map_coder=coders[k % len(coders)],
            )
        )
        first += n
    return clips


def _newer_minor(data: bytes, extension: bytes) -> bytes:
    """``data`` as a writer of the next minor version might have written it: HEAD with extension bytes."""
    reader = m.Reader(data)
    raw = data[8 : reader.header_end]
    length, pos = read_leb128(raw, 1, 4)
    payload = raw[pos : pos + length]
    return (
        data[:8]
        + frame_chunk(m.ChunkType.HEAD, bytes([1, m.VERSION_MINOR + 1]) + payload[2:] + extension)
        + data[reader.header_end :]
    )


PROMPTS = {
    "name": "ksy",
    "version": 3,
    "turns": 2,
    "model": "org.example/vlm",
    "system": "You describe video frames.",
    "settings": {"max_new_tokens": 300, "greedy": True, "clip_input": "video", "frames": 0},
    "keyframe": ["Objects, background and what differs from {previous_text}?", "Summarise. " * 30],
    "clip": ["Primary motion, given {keyframe_text}. 草地 🌼"],
}


def _packed_map(entries) -> bytes:
    """A MessagePack map of (key, already packed value) pairs, in the order given."""
    import msgpack

    n = len(entries)
    head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
    return head + b"".join(msgpack.packb(k) + v for k, v in entries)


def every_msgpack_format() -> bytes:
    """A PRMT payload whose map (keys sorted) holds a value of every MessagePack format."""
    import msgpack

    p = msgpack.packb
    ext = [(f"ext-{n}", p(msgpack.ExtType(5, bytes(range(n))))) for n in (1, 2, 4, 8, 16)]
    values = [
        ("array16", p([None] * 16)),
        ("array32", p([None] * 65536)),
        ("bin16", p(bytes(300))),
        ("bin32", p(bytes(65536))),
        ("bin8", p(b"\x00\xff")),
        ("clip", p(["a"] * 3)),
        *ext,
        ("empty", p(["", {}, [], [0] * 15, {f"k{i:02}": "" for i in range(15)}])),
        ("ext16", p(msgpack.ExtType(2, bytes(300)))),
        ("ext32", p(msgpack.ExtType(127, bytes(65536)))),
        ("ext8", p(msgpack.ExtType(1, b"abc"))),
        ("f32", p(1.5, use_single_float=True)),
        ("f64", p(0.1)),
        ("false", p(False)),
        ("int", p([0, 127, -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63)])),
        ("keyframe", p(["x" * 31, "y" * 32, "z" * 255, "w" * 256, "v" * 65535, "u" * 65536])),
        ("map16", p({f"k{i:02}": i for i in range(16)})),
        ("nil", p(None)),
        ("settings", p({"greedy": False, "max_new_tokens": 2**64 - 1})),
        ("true", p(True)),
        ("uint", p([128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1])),
    ]
    return _packed_map(values)


def _made_streams():
    """(name, bytes) of streams that exercise every field and every length of LEB128 the syntax allows."""
    rng = np.random.default_rng(0x3C5)
    out = []
    for codec in m.TextCodec:
        h = m.Header(
            width=320,
            height=240,
            fps=25,
            grid_h=5,
            grid_w=8,
            vocab_size=256,
            text_codec=codec,
            stream_seed=int(rng.integers(0, 2**63)),
        )
        clips = _clips(rng, h, 8, seeds=(None, 0, 5, 2**63, 2**64 - 1, 127, 128, 2**63 - 1))
        out.append((f"text-{codec.name.lower()}-seeds", _stream(h, clips, ancillary={0: [(0xF0, b"skip me")]})))

    # Every coder, a prior, and a header whose fields need long LEB128s.
    h = m.Header(
        width=65535,
        height=1,
        fps=Fraction(30000, 1001),
        time_base=Fraction(1, 30000),
        grid_h=6,
        grid_w=7,
        vocab_size=300,
        text_codec=m.TextCodec.LZW,
        stream_seed=2**64 - 1,
        pack_id="org.example.pack-2_x",
        pack_hash=bytes(rng.integers(0, 256, 32, dtype=np.uint8)),
        prior=tuple(int(v) for v in rng.integers(0, 2**24, 300)),
        default_mode=m.Mode.PREDICTION,
        metadata={
            "encoder": "test_ksy",
            "source": {"file": "x.mp4", "size": [1920, 1080]},
            "prompts": {"keyframe": ["describe"], "clip": ["what happens"]},
        },
    )
    clips = _clips(
        rng,
        h,
        6,
        coders=(m.IndexMapCoder.RAW, m.IndexMapCoder.STATIC, m.IndexMapCoder.CONTEXT),
        seeds=(None, 2**64 - 1),
    )
    big = m.Clip(
        index=6,
        first_frame=clips[-1].first_frame + clips[-1].frame_count,
        frame_count=2**40 - 2**20,
        mode=m.Mode.PREDICTION,
        keyframe_text="x" * 5000,
        index_map=np.zeros((6, 7), int),
    )
    out.append(
        (
            "coders-prior-long-fields",
            _stream(h, clips + [big], coder=m.IndexMapCoder.STATIC, ancillary={2: [(0x80, b""), (0xFF, bytes(300))]}),
        )
    )

    # 32x32 and 64x64 grids. In the 64x64 one, a 4096-symbol map and long texts make
    # sub-chunk tags of three and four bytes and a chunk_length of three; an ancillary
    # chunk of 2 MiB makes one of four.
    for gh, vocab, codec in ((32, 1024, m.TextCodec.TOKANS1), (64, 4096, m.TextCodec.UTF8)):
        h = m.Header(width=512, height=512, fps=8, grid_h=gh, grid_w=gh, vocab_size=vocab, text_codec=codec)
        clips = _clips(rng, h, 3, max_words=40)
        ancillary = {}
        if codec == m.TextCodec.UTF8:
            clips[0].keyframe_text = _text(rng, 6000)[: 2**17 + 100].ljust(2**17 + 100, "z")
            clips[1].clip_text = "long " * 4000
            ancillary = {1: [(0xF0, bytes(2**21))]}
        out.append((f"grid-{gh}x{gh}", _stream(h, clips, ancillary=ancillary)))

    h = m.Header(width=176, height=144, fps=8, grid_h=4, grid_w=5, text_codec=m.TextCodec.LZW)
    unterminated = _stream(h, _clips(rng, h, 4), index=False, ancillary={1: [(0xF0, b"ancillary")]})
    out.append(("no-index", unterminated))
    out.append(("no-clips", _stream(h, [])))
    out.append(("no-clips-no-index", _stream(h, [], index=False)))
    out.append(("no-texts", _stream(h, _clips(rng, h, 3, max_words=0, ancillary=False))))
    out.append(("newer-minor", _newer_minor(unterminated, b"\x2a\x00future fields")))

    # PRMT (since 1.2): as the Writer makes it, every MessagePack format in one, and cut inside it.
    h = m.Header(width=176, height=144, fps=8, grid_h=4, grid_w=5, text_codec=m.TextCodec.UTF8)
    out.append(("prompts", _stream(h, _clips(rng, h, 3), prompts=PROMPTS, ancillary={0: [(0xF0, b"x")]})))
    everything = _stream(h, _clips(rng, h, 2), prmt_payload=every_msgpack_format())
    out.append(("prompts-every-format", everything))
    prmt = m.Reader(everything).index[0].offset - len(every_msgpack_format()) // 2
    out.append(("cut-in-prompts", everything[:prmt]))

    # Cut-off streams: inside a CLIP's length, inside its payload, inside INDX, inside TAIL's CRC.
    full = _stream(h, _clips(rng, h, 4), ancillary={1: [(0xF0, b"ancillary")]})
    reader = m.Reader(full)
    c2 = reader.clip(2)
    for name, cut in (
        ("cut-in-length", c2.offset + 1),
        ("cut-in-clip", c2.offset + c2.size // 2),
        ("cut-in-crc", c2.offset + c2.size - 1),
        ("cut-in-indx", reader.index_offset + 3),
        ("cut-in-tail", len(full) - 2),
    ):
        out.append((name, full[:cut]))
    assert [name for name, _ in out] == MADE, "keep MADE in step with _made_streams()"
    return dict(out)


MADE = [
    "text-utf8-seeds",
    "text-lzw-seeds",
    "text-tokans1-seeds",
    "coders-prior-long-fields",
    "grid-32x32",
    "grid-64x64",
    "no-index",
    "no-clips",
    "no-clips-no-index",
    "no-texts",
    "newer-minor",
    "prompts",
    "prompts-every-format",
    "cut-in-prompts",
    "cut-in-length",
    "cut-in-clip",
    "cut-in-crc",
    "cut-in-indx",
    "cut-in-tail",
]


@pytest.fixture(scope="session")
def made():
    return _made_streams()


@pytest.mark.parametrize("name", MADE)
def test_made_stream(ksy, made, name):
    got = check_stream(ksy, made[name])
    assert (got["truncated_at"] is not None) == name.startswith("cut-")


def test_made_streams_cover_the_syntax(ksy, made):
    """The streams above reach what they are meant to: long LEB128s, every sub-chunk kind, ..."""
    gen, _ = ksy
    ct = gen.M3v.ChunkType
    leb_lengths, kinds, types, seeds, formats = set(), set(), set(), set(), set()

    def format_bytes(v):
        formats.add(v.b1)
        for e in getattr(v, "array_elements", None) or ():
            format_bytes(e)
        for e in getattr(v, "map_entries", None) or ():
            format_bytes(e.key)
            format_bytes(e.value)

    for data in made.values():
        _, chunks = ksy_describe(ksy, data)
        for ch in chunks:
            types.add(ch.type_code)
            if isinstance(ch.payload, gen.M3v.Prmt):
                format_bytes(ch.payload.prompts)
            leb_lengths.add(("chunk_length", ch.chunk_length.len))
            if ch.chunk_type == ct.clip:
                if ch.payload.has_seed:
                    seeds.add(ch.payload.seed.len)
                leb_lengths.add(("frame_count", ch.payload.frame_count.len))
                for s in ch.payload.sub_chunks:
                    kinds.add(s.kind_code)
                    leb_lengths.add(("tag", s.tag.len))
    assert {1, 2, 3, 4, 0x80, 0xF0, 0xFF} <= types
    assert {0, 1, 2, 8, 15} <= kinds
    assert {1, 2, 9, 10} <= seeds  # 2**63 and 2**64-1 take ten bytes
    # every MessagePack format but map 32: fixint, fixmap, fixarray, fixstr, nil, bool, bin,
    # ext, float, uint, int, fixext, str 8-32, array 16-32, map 16
    fixed = {0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xE0, 0xFF}
    assert fixed | set(range(0xC0, 0xDF)) - {0xC1} <= formats, sorted(fixed | set(range(0xC0, 0xDF)) - formats)
    assert {
        ("chunk_length", 1),
        ("chunk_length", 2),
        ("chunk_length", 3),
        ("chunk_length", 4),
        ("tag", 1),
        ("tag", 2),
        ("tag", 3),
        ("tag", 4),
        ("frame_count", 6),
    } <= leb_lengths


# ---------------------------------------------------------------- what the .ksy rejects


def _minimal() -> bytes:
    h = m.Header(width=64, height=48, fps=8, grid_h=2, grid_w=3, vocab_size=16, text_codec=m.TextCodec.UTF8)
    return _stream(
        h,
        [
            m.Clip(
                index=0,
                first_frame=0,
                frame_count=1,
                mode=m.Mode.PREDICTION,
                seed=1,
                keyframe_text="a dog",
                index_map=np.arange(6).reshape(2, 3),
            )
        ],
    )


def _with_clip(data: bytes, change) -> bytes:
    reader = m.Reader(data)
    clip = reader.clip(0)
    raw = data[clip.offset : clip.offset + clip.size]
    return data[: clip.offset] + change(raw) + data[clip.offset + clip.size :]


def test_rejects_what_the_spec_rejects(ksy):
    gen, ks = ksy
    good = _minimal()
    gen.M3v.from_bytes(good)
    # Signature (§3): another format, and line endings converted by a text-mode transfer.
    for bad in (b"\x89PNG\r\n\x1a\n" + good[8:], good.replace(b"\r\n", b"\n", 1), b"\x0bM3V" + good[4:]):
        with pytest.raises(ks.ValidationNotEqualError):
            gen.M3v.from_bytes(bad)
    # Major version 2 (§10).
    head_len = good[9]
    assert head_len < 0x80 and good[10] == 1
    with pytest.raises(ks.ValidationNotEqualError):
        gen.M3v.from_bytes(good[:10] + b"\x02" + good[11:])
    # LEB128 (§1.2): a non-minimal chunk_length, and one longer than leb128(4).
    # (the CLIP's chunk_length is one byte in this stream: written as two, 80|n 00, it is not minimal)
    non_minimal = _with_clip(good, lambda raw: raw[:1] + bytes([raw[1] | 0x80, 0]) + raw[2:])
    with pytest.raises(ks.ValidationExprError):
        gen.M3v.from_bytes(non_minimal)
    too_long = _with_clip(good, lambda raw: raw[:1] + b"\x80\x80\x80\x80\x00" + raw[2:])
    with pytest.raises(ks.ValidationExprError):
        gen.M3v.from_bytes(too_long)
    # A seed longer than leb128(10): flags say seed present, then 11 bytes.
    fields = encode_leb128(0) * 2 + encode_leb128(1) + b"\x02" + b"\xff" * 10 + b"\x01"
    with pytest.raises(ks.ValidationExprError):
        gen.M3v.Clip.from_bytes(fields)
    ok = encode_leb128(0) * 2 + encode_leb128(1) + b"\x02" + b"\xff" * 9 + b"\x01"
    assert gen.M3v.Clip.from_bytes(ok).seed.value == 2**64 - 1
    # TAIL's chunk_length is 12 (§8).
    tail = good[-18:]
    bad_tail = good[:-18] + frame_chunk(0x04, tail[2:14] + b"\x00")
    with pytest.raises(ks.ValidationExprError):
        gen.M3v.from_bytes(bad_tail)
    # A sub-chunk that runs past the end of its CLIP payload (§6.3).
    with pytest.raises(ks.EndOfStreamError):
        gen.M3v.Clip.from_bytes(encode_leb128(0) * 2 + encode_leb128(1) + b"\x00" + encode_leb128(5 << 4) + b"abc")


def test_leb128_values(ksy):
    gen, ks = ksy
    for value in (0, 1, 127, 128, 300, 16383, 16384, 2**28 - 1, 2**35, 2**56 - 1, 2**63 - 1, 2**63, 2**64 - 1):
        enc = encode_leb128(value)
        stream = ks.KaitaiStream(io.BytesIO(enc + b"\xaa"))
        parsed = gen.M3v.Leb128(10, stream)
        assert (parsed.value, parsed.len, stream.pos()) == (value, len(enc), len(enc))
        if len(enc) <= 9:
            assert gen.M3v.Leb128(9, ks.KaitaiStream(io.BytesIO(enc))).value == value
        else:  # leb128(9) stops at its ninth byte
            stream = ks.KaitaiStream(io.BytesIO(enc))
            with pytest.raises(ks.ValidationExprError):
                gen.M3v.Leb128(9, stream)
            assert stream.pos() == 9
