"""The reference decoder in tests/reference (written from spec/ alone) against the
conformance vectors, the spec's worked examples, and the production encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reference import m3v_reference as R

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "spec" / "vectors"
ALL = sorted(p.stem for p in VECTORS.glob("*.m3v"))


def _load(name):
    return (VECTORS / f"{name}.m3v").read_bytes(), json.loads((VECTORS / f"{name}.json").read_text())


VALID = [n for n in ALL if _load(n)[1]["valid"]]
INVALID = [n for n in ALL if not _load(n)[1]["valid"]]


def test_vectors_present():
    assert len(VALID) >= 10 and len(INVALID) >= 8


# ------------------------------------------------------------------------------ vectors


@pytest.mark.parametrize("name", VALID)
def test_valid_vector(name):
    data, want = _load(name)
    assert len(data) == want["size"]
    got = R.read_stream(data)
    assert got["errors"] == []
    assert got["header"] == want["header"]
    assert len(got["clips"]) == len(want["clips"])
    for g, w in zip(got["clips"], want["clips"]):
        for key in w:
            assert g[key] == w[key], (name, w["index"], key)
    assert got["index"] == want["index"]
    assert got["terminated"] == want["terminated"]
    assert got["truncated_at"] == want["truncated_at"]


@pytest.mark.parametrize("name", INVALID)
def test_invalid_vector(name):
    data, want = _load(name)
    assert len(data) == want["size"]
    with pytest.raises(R.M3VError) as info:
        R.read_stream(data)
    assert type(info.value).__name__ == want["error"]
    assert info.value.offset == want["offset"]


@pytest.mark.parametrize("name", INVALID)
def test_invalid_vector_recovery(name):
    """In recovering mode the readable clips are exactly the ones the .json lists."""
    data, want = _load(name)
    try:
        got = R.read_stream(data, strict=False)
    except R.M3VError as e:  # fatal for the whole stream
        assert want["readable_clips"] == []
        assert type(e).__name__ == want["error"] and e.offset == want["offset"]
        return
    assert [c["index"] for c in got["clips"]] == want["readable_clips"]
    if "decodable_clips" in want:  # since 1.1: a dependent clip needs its predecessor
        assert [c["index"] for c in got["clips"] if c["decodable"]] == want["decodable_clips"]
    for c in got["clips"]:
        assert (c["index_map"] is not None) == c["decodable"]
    first = got["errors"][0]
    assert type(first).__name__ == want["error"] and first.offset == want["offset"]
    # every readable clip that is not decodable is reported, at its own offset
    undecodable = [c["offset"] for c in got["clips"] if not c["decodable"]]
    assert [e.offset for e in got["errors"] if isinstance(e, R.MissingReferenceError)] == undecodable


def test_temporal_vectors():
    """The vectors with dependent clips: every TEMPORAL map decodes against its predecessor's,
    and the damaged copy loses exactly the dependants of the damaged clip."""
    names = [n for n in ALL if n.startswith("temporal")]
    assert names, "the TEMPORAL vectors are missing from spec/vectors"
    for name in names:
        data, want = _load(name)
        got = R.read_stream(data, strict=False)
        if want["valid"]:
            assert got["errors"] == []
            coders = [c["index_map_coder"] for c in got["clips"]]
            assert R.TEMPORAL in coders and coders[0] != R.TEMPORAL
            assert all(c["decodable"] for c in got["clips"])
            continue
        by_index = {c["index"]: c for c in got["clips"]}
        for k in want["decodable_clips"]:
            assert by_index[k]["decodable"]
        for k in set(want["readable_clips"]) - set(want["decodable_clips"]):
            c = by_index[k]
            assert c["index_map_coder"] == R.TEMPORAL and c["index_map"] is None
            assert k - 1 not in want["decodable_clips"]
            assert any(isinstance(e, R.MissingReferenceError) and e.offset == c["offset"] for e in got["errors"])
    if "temporal" in names and "temporal-damaged" in names:
        intact = {c["index"]: c for c in _load("temporal")[1]["clips"]}
        for c in R.read_stream(_load("temporal-damaged")[0], strict=False)["clips"]:
            if c["decodable"]:
                assert c["index_map"] == intact[c["index"]]["index_map"]


def test_text_mode_damage_is_recognised():
    data, _ = _load("text-mode-damage")
    with pytest.raises(R.SignatureError) as info:
        R.read_stream(data)
    assert info.value.text_mode_damage
    data, _ = _load("bad-signature")
    with pytest.raises(R.SignatureError) as info:
        R.read_stream(data)
    assert not info.value.text_mode_damage


def test_recovered_clips_match_the_intact_stream():
    """The clips recovered from the damaged copies of clips-modes equal the intact ones."""
    _, intact = _load("clips-modes")
    by_index = {c["index"]: c for c in intact["clips"]}
    for name in ("crc-mismatch", "length-beyond-file"):
        data, _ = _load(name)
        for c in R.read_stream(data, strict=False)["clips"]:
            w = by_index[c["index"]]
            for key in ("keyframe_text", "clip_text", "index_map", "seed", "decode_seed", "mode"):
                assert c[key] == w[key]


# ------------------------------------------------------------------------------ spec examples


def test_leb128_examples_and_rules():
    for value, enc in [(0, "00"), (127, "7f"), (128, "8001"), (300, "ac02"), (16384, "808001")]:
        b = bytes.fromhex(enc)
        assert R.read_leb128(b, 0, len(b)) == (value, len(b))
    with pytest.raises(R.MalformedError):
        R.read_leb128(bytes.fromhex("8000"), 0, 2)  # not minimal
    with pytest.raises(R.MalformedError):  # 5 bytes in a leb128(4), rejected at byte 4
        R.read_leb128(bytes.fromhex("80808080"), 0, 4, 4)
    with pytest.raises(R.TruncatedError):
        R.read_leb128(bytes.fromhex("8080"), 0, 2)
    b = bytes.fromhex("ffffffffffffffff7f")
    assert R.read_leb128(b, 0, 9)[0] == 2**63 - 1


def test_crc32c_check_value():
    assert R.crc32c(b"123456789") == 0xE3069283


def test_lzw_examples():
    assert R.lzw_decode(bytes.fromhex("3098a0504808")) == "abababa"
    assert R.lzw_decode(bytes.fromhex("30c040")) == "a"
    # 255 literals with no repeated pair, END in 10 bits (tc §5.4)
    text = bytes([i for i in range(127)] + [i for i in range(127, -1, -1)])
    assert len(text) == 255
    bits = "".join(format(b, "09b") for b in text) + format(257, "010b")
    bits += "0" * (-len(bits) % 8)
    payload = int(bits, 2).to_bytes(len(bits) // 8, "big")
    assert R.lzw_decode(payload) == text.decode()
    bits9 = "".join(format(b, "09b") for b in text) + format(257, "09b")
    bits9 += "0" * (-len(bits9) % 8)
    with pytest.raises(R.PayloadError):
        R.lzw_decode(int(bits9, 2).to_bytes(len(bits9) // 8, "big"))


@pytest.mark.parametrize("payload", ["30c041", "30c04000", "30c0", "8080"])
def test_lzw_invalid(payload):
    # non-zero padding, bytes after END, END missing, END alone (zero output bytes)
    with pytest.raises(R.PayloadError):
        R.lzw_decode(bytes.fromhex(payload))


def test_lzw_first_code_not_literal():
    bits = format(258, "09b") + format(257, "09b")
    bits += "0" * (-len(bits) % 8)
    with pytest.raises(R.PayloadError):
        R.lzw_decode(int(bits, 2).to_bytes(len(bits) // 8, "big"))


def test_lzw_clear_accepted():
    bits = "".join(format(c, "09b") for c in (256, 256, 97, 256, 98, 257))
    bits += "0" * (-len(bits) % 8)
    assert R.lzw_decode(int(bits, 2).to_bytes(len(bits) // 8, "big")) == "ab"


def test_text_rules():
    for codec in (0, 1, 2):
        assert R.decode_text(b"", codec) == ""
    assert R.decode_text("grüße".encode(), 0) == "grüße"
    with pytest.raises(R.PayloadError):
        R.decode_text(b"\xc0\x80", 0)  # overlong
    with pytest.raises(R.PayloadError):
        R.decode_text(b"\xed\xa0\x80", 0)  # surrogate
    with pytest.raises(R.LimitError):
        R.decode_text(b"a" * (2**20 + 1), 0)
    with pytest.raises(R.PayloadError):
        R.decode_text(b"\x01\x00", 2)  # rANS payload ending in a zero byte
    with pytest.raises(R.MalformedError):
        R.decode_text(b"x", 3)


def test_lzw_limit():
    # KwKwK chains grow entries by one byte each: ~1500 codes give > 2^20 bytes
    codes = [97]
    nxt = 258
    for _ in range(3000):
        codes.append(nxt if nxt < 4096 else 4095)
        nxt += 1
    codes.append(257)
    bits, n = [], 258
    for i, c in enumerate(codes):
        w = min(12, n.bit_length())
        bits.append(format(c, f"0{w}b"))
        if i >= 1 and n < 4096 and c != 257:
            n += 1
    s = "".join(bits)
    s += "0" * (-len(s) % 8)
    with pytest.raises(R.LimitError):
        R.lzw_decode(int(s, 2).to_bytes(len(s) // 8, "big"))


def test_tokans_vocab():
    freqs, _cum, tokens = R.load_tokans_vocab()
    assert len(freqs) == 8141 and sum(freqs) == 2**24 and tokens[0] == b""


def test_normalize_and_rank():
    f = R.normalize([5, 0, 3])
    assert sum(f) == 2**24 and f[1] == 1
    assert R.normalize([0, 0]) == [2**23, 2**23]
    assert R.rank_order([3, 5, 5, 1]) == [1, 2, 0, 3]


@pytest.mark.parametrize(
    "V, rows, coder, prior, hexpayload",
    [
        (4, [[1, 2, 3]], 0, None, "6c"),
        (3, [[0, 1, 2]], 1, None, "02000001"),
        (3, [[0, 1, 2]], 1, [5, 0, 3], "00006002"),
        (8, [[5, 5, 7], [5, 5, 7]], 2, None, "465ebd74"),
        (8, [[5, 5, 7], [5, 5, 7]], 2, [1, 0, 0, 0, 0, 4, 0, 2], "7d298821"),
        (4, [[3, 3, 3, 1], [3, 3, 1, 1], [0, 3, 1, 2]], 2, None, "6d97ebad9503"),
    ],
)
def test_index_map_examples(V, rows, coder, prior, hexpayload):
    got = R.decode_index_map(bytes.fromhex(hexpayload), len(rows), len(rows[0]), V, coder, prior)
    assert got == rows


def test_index_map_invalid():
    with pytest.raises(R.PayloadError):
        R.decode_index_map(b"\x6d", 1, 3, 4, 0, None)  # padding bit set
    with pytest.raises(R.PayloadError):
        R.decode_index_map(b"\x6c\x00", 1, 3, 4, 0, None)  # wrong length
    with pytest.raises(R.PayloadError):
        R.decode_index_map(b"\xf0", 1, 2, 3, 0, None)  # index 3 >= V
    for coder in (1, 2):
        with pytest.raises(R.PayloadError):
            R.decode_index_map(b"\x01", 2, 2, 1, coder, None)  # V = 1 needs empty payload
        with pytest.raises(R.PayloadError):
            R.decode_index_map(bytes.fromhex("0200000100"), 1, 3, 3, coder, None)
    assert R.decode_index_map(b"", 3, 2, 1, 2, None) == [[0, 0]] * 3
    with pytest.raises(R.LimitError):
        R.decode_index_map(b"", 1025, 1, 2, 0, None)
    with pytest.raises(R.LimitError):
        R.decode_index_map(b"", 1, 1, 2, 1, [1, 2, 3])


# TEMPORAL (ec "TEMPORAL (3)"): the worked examples
EX_REF = [[3, 3, 3, 1], [3, 3, 1, 1], [0, 3, 1, 2]]
EX_MAP = [[3, 3, 3, 1], [3, 2, 1, 1], [0, 3, 1, 1]]


def test_temporal_examples():
    assert R.decode_index_map(bytes.fromhex("11062136"), 3, 4, 4, 3, None, EX_REF) == EX_MAP
    assert R.decode_index_map(b"", 3, 4, 4, 3, None, EX_REF) == EX_REF  # all COPY
    assert R.decode_index_map(b"", 3, 4, 4, R.TEMPORAL, None, EX_MAP) == EX_MAP
    # V = 1: empty payload, all zeros (the reference is still required, see below)
    assert R.decode_index_map(b"", 2, 3, 1, 3, None, [[0] * 3] * 2) == [[0] * 3] * 2


def test_temporal_needs_its_reference():
    with pytest.raises(R.MissingReferenceError) as info:
        R.decode_index_map(bytes.fromhex("11062136"), 3, 4, 4, 3, None)
    assert not isinstance(info.value, R.MalformedError)
    with pytest.raises(R.MissingReferenceError):
        R.decode_index_map(b"", 3, 4, 4, 3, None, None)
    with pytest.raises(R.MissingReferenceError):
        R.decode_index_map(b"", 2, 2, 1, 3, None)
    # the other coders ignore a reference
    assert R.decode_index_map(bytes.fromhex("6d97ebad9503"), 3, 4, 4, 2, None, EX_MAP) == EX_REF
    # a reference of the wrong size or vocabulary is the caller's mistake
    for bad in ([[3, 3, 3, 1]], [[3, 3, 3], [3, 3, 1], [0, 3, 1]], [[4] * 4] * 3):
        with pytest.raises(ValueError):
            R.decode_index_map(b"", 3, 4, 4, 3, None, bad)


def _rans_encode(symbols, start_state=0):
    """ec "Encoding (informative)": symbols = [(s, f), ...] in decoding order."""
    state, out = start_state, []
    for s, f in reversed(symbols):
        cum = R.cumulative(f)
        if (state >> (64 - 24)) >= f[s]:
            out.append(state & (2**32 - 1))
            state >>= 32
        state = ((state // f[s]) << 24) | (cum[s] + state % f[s])
    while state:
        out.append(state & (2**32 - 1))
        state >>= 32
    return b"".join(w.to_bytes(4, "little") for w in out).rstrip(b"\0")


S0 = R.normalize([2, 1])  # a fresh stage-0 table


def test_temporal_crafted_payloads():
    """Hand-coded symbol sequences from the TEMPORAL text (no production code)."""
    V = 4
    # 1x1 map, reference 2: NEW, then the index as its rank; weight[2] = 0 puts 2 last (rank 3)
    f2 = R.normalize([c if v != 2 else 0 for v, c in enumerate([1 + 4096 // V] * V)])
    order = R.rank_order([w if v != 2 else 0 for v, w in enumerate(f2)])
    assert order[-1] == 2
    for rank in range(V - 1):
        got = R.decode_index_map(_rans_encode([(1, S0)], rank), 1, 1, V, 3, None, [[2]])
        assert got == [[order[rank]]]
    with pytest.raises(R.PayloadError):  # rank V-1: the excluded reference index
        R.decode_index_map(_rans_encode([(1, S0)], V - 1), 1, 1, V, 3, None, [[2]])
    with pytest.raises(R.PayloadError):  # rank >= V
        R.decode_index_map(_rans_encode([(1, S0)], V), 1, 1, V, 3, None, [[2]])
    # 1x1, COPY: the start state must be 0
    assert R.decode_index_map(_rans_encode([(0, S0)], 0), 1, 1, V, 3, None, [[2]]) == [[2]]
    with pytest.raises(R.PayloadError):
        R.decode_index_map(_rans_encode([(0, S0)], 1), 1, 1, V, 3, None, [[2]])

    # 1x2: position 0 NEW with stage-2 value equal to its reference index 1 -> invalid
    base = [1 + 4096 // V] * V
    c2 = list(base)
    c2[1] = 0
    f2 = R.normalize(c2)
    ok = _rans_encode([(1, S0), (3, f2), (0, S0)])
    assert R.decode_index_map(ok, 1, 2, V, 3, None, [[1, 0]]) == [[3, 0]]
    bad = _rans_encode([(1, S0), (1, f2), (0, S0)])
    with pytest.raises(R.PayloadError):
        R.decode_index_map(bad, 1, 2, V, 3, None, [[1, 0]])

    # 1x3, reference [[2, 2, 0]]: position 0 COPY (2); position 1 NEW with r = 2, the only
    # candidate (W = 2, rank 0, excluded: stage-1 count 0); stage-1 rank 0 -> invalid
    s0_after_copy = R.normalize([2, 1])  # context t = 1 (W copied) is still fresh
    f1 = R.normalize([0, 0, 0, 0, R.S1_INIT[4]])
    bad = _rans_encode([(0, S0), (1, s0_after_copy), (0, f1), (0, S0)])
    with pytest.raises(R.PayloadError):
        R.decode_index_map(bad, 1, 3, V, 3, None, [[2, 2, 0]])
    # the same with ESCAPE and a stage-2 value 3 (2 excluded twice over) is valid
    c2 = [b + (R.S2_INC if v == 2 else 0) for v, b in enumerate(base)]
    c2[2] = 0
    ok = _rans_encode([(0, S0), (1, s0_after_copy), (R.ESCAPE, f1), (3, R.normalize(c2)), (0, S0)])
    assert R.decode_index_map(ok, 1, 3, V, 3, None, [[2, 2, 0]]) == [[2, 3, 0]]


@pytest.mark.parametrize(
    "payload",
    [
        "01",  # all COPY, but the final state is 1, not 0 (a trailing symbol)
        "1106213601",  # the worked example with a word appended
        "110621",  # the worked example cut short
        "1106213600",  # ends with a zero byte
        "0100",  # ends with a zero byte
    ],
)
def test_temporal_invalid(payload):
    with pytest.raises(R.PayloadError):
        R.decode_index_map(bytes.fromhex(payload), 3, 4, 4, 3, None, EX_REF)


def test_temporal_invalid_other():
    with pytest.raises(R.PayloadError):  # V = 1 needs the empty payload
        R.decode_index_map(b"\x01", 2, 2, 1, 3, None, [[0, 0], [0, 0]])
    with pytest.raises(R.MalformedError):  # coder 4 is reserved
        R.decode_index_map(b"", 3, 4, 4, 4, None, EX_REF)
    with pytest.raises(R.LimitError):  # limits are checked before the reference is looked at
        R.decode_index_map(b"", 1025, 1, 2, 3, None, None)


# ---- streams with dependent clips, built byte by byte from m3v §4-§6


def _leb(v):
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _chunk(ctype, payload):
    body = bytes([ctype]) + _leb(len(payload)) + payload
    return body + R.crc32c(body).to_bytes(4, "little")


def _head(minor=1, grid=(3, 4), V=4):
    p = bytes([1, minor]) + _leb(64) + _leb(48) + _leb(8) + _leb(1) + _leb(1) + _leb(8)
    p += _leb(0) + _leb(4) + b"none" + bytes(32) + _leb(grid[0]) + _leb(grid[1]) + _leb(V)
    p += bytes([0, 0]) + bytes(8) + _leb(0) + _leb(0)
    return _chunk(R.HEAD, p)


def _clip(index, first, coder, payload, grid=(3, 4), text=""):
    p = _leb(index) + _leb(first) + _leb(2) + bytes([1])
    if text:
        t = text.encode()
        p += _leb(len(t) << 4 | 0) + t
    body = bytes([coder]) + _leb(grid[0]) + _leb(grid[1]) + payload
    p += _leb(len(body) << 4 | 2) + body
    return _chunk(R.CLIP, p)


# clip 0 CONTEXT -> EX_REF; clip 1 TEMPORAL -> EX_MAP; clip 2 TEMPORAL, all copy -> EX_MAP;
# clip 3 CONTEXT -> EX_REF; clip 4 TEMPORAL, all copy -> EX_REF
DEP_CLIPS = [
    (2, "6d97ebad9503", EX_REF),
    (3, "11062136", EX_MAP),
    (3, "", EX_MAP),
    (2, "6d97ebad9503", EX_REF),
    (3, "", EX_REF),
]


def _dep_stream(minor=1, clips=DEP_CLIPS, damage=None):
    data = bytearray(R.SIGNATURE + _head(minor))
    offsets = []
    for k, (coder, hexp, _) in enumerate(clips):
        offsets.append(len(data))
        ch = bytearray(_clip(k, 2 * k, coder, bytes.fromhex(hexp), text=f"clip {k}"))
        if damage == k:
            ch[-6] ^= 0x40  # a flipped bit in the text: CRC mismatch
        data += ch
    return bytes(data), offsets


def test_stream_with_dependent_clips():
    data, offsets = _dep_stream()
    got = R.read_stream(data)
    assert got["errors"] == [] and got["header"]["version"] == [1, 1]
    assert [c["index_map"] for c in got["clips"]] == [w for _, _, w in DEP_CLIPS]
    assert all(c["decodable"] for c in got["clips"])
    assert [c["index_map_coder"] for c in got["clips"]] == [c for c, _, _ in DEP_CLIPS]
    assert [c["offset"] for c in got["clips"]] == offsets


@pytest.mark.parametrize("damaged, lost", [(0, [1, 2]), (1, [2]), (2, []), (3, [4]), (4, [])])
def test_damaged_clip_takes_its_dependants(damaged, lost):
    data, offsets = _dep_stream(damage=damaged)
    with pytest.raises(R.ChecksumError) as info:
        R.read_stream(data)
    assert info.value.offset == offsets[damaged]
    got = R.read_stream(data, strict=False)
    # the dependants stay readable (their chunks are intact) but are not decodable
    assert [c["index"] for c in got["clips"]] == [k for k in range(len(DEP_CLIPS)) if k != damaged]
    assert [c["index"] for c in got["clips"] if c["decodable"]] == [
        k for k in range(len(DEP_CLIPS)) if k != damaged and k not in lost
    ]
    for c in got["clips"]:
        if c["decodable"]:
            assert c["index_map"] == DEP_CLIPS[c["index"]][2]
        else:
            assert c["index_map"] is None and c["index_map_coder"] == 3
            assert c["keyframe_text"] == f"clip {c['index']}"  # the rest is read
    assert [(type(e).__name__, e.offset) for e in got["errors"]] == [("ChecksumError", offsets[damaged])] + [
        ("MissingReferenceError", offsets[k]) for k in lost
    ]


def test_cut_off_stream_with_dependent_clips():
    data, offsets = _dep_stream()
    got = R.read_stream(data[: offsets[3] + 5])
    assert got["errors"] == [] and got["truncated_at"] == offsets[3]
    assert [c["index_map"] for c in got["clips"]] == [w for _, _, w in DEP_CLIPS[:3]]


def test_lost_clip_takes_its_dependants():
    """Clip 1 cut out of the data altogether (its bytes replaced by garbage)."""
    data, offsets = _dep_stream()
    data = data[: offsets[1]] + b"\x02\x7f" + data[offsets[2] :]
    got = R.read_stream(data, strict=False)
    assert [c["index"] for c in got["clips"]] == [0, 2, 3, 4]
    assert [c["index"] for c in got["clips"] if c["decodable"]] == [0, 3, 4]
    last = got["errors"][-1]
    assert isinstance(last, R.MissingReferenceError) and last.offset == offsets[1] + 2
    with pytest.raises(R.M3VError) as info:
        R.read_stream(data)
    assert not isinstance(info.value, R.MissingReferenceError)  # the loss is met first


def test_temporal_in_clip_0_or_in_a_1_0_stream():
    data, _ = _dep_stream(clips=[(3, "", EX_REF)] + DEP_CLIPS[1:])
    with pytest.raises(R.MalformedError) as info:
        R.read_stream(data)
    assert type(info.value) is R.MalformedError
    data, offsets = _dep_stream(minor=0)
    with pytest.raises(R.MalformedError) as info:  # an unregistered coder in 1.0
        R.read_stream(data)
    assert type(info.value) is R.MalformedError and info.value.offset == offsets[1]
    got = R.read_stream(data, strict=False)
    assert [c["index"] for c in got["clips"]] == [0, 3]
    assert [type(e).__name__ for e in got["errors"]] == ["MalformedError"] * 3
    data, _ = _dep_stream(minor=2)  # a later minor version keeps TEMPORAL
    assert len(R.read_stream(data)["clips"]) == len(DEP_CLIPS)


def test_decode_seed():
    # m3v §6.4 with all-zero inputs, cross-checked with the vectors' first clip
    _, want = _load("minimal")
    assert R.decode_seed(0, 0, None) == want["clips"][0]["decode_seed"]


# ------------------------------------------------------------------------------ production

m = pytest.importorskip("m3cvc_format")
np = pytest.importorskip("numpy")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

CODECS = {"utf8": (m.TextCodec.UTF8, 0), "lzw": (m.TextCodec.LZW, 1), "tokans1": (m.TextCodec.TOKANS1, 2)}
SETTINGS = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("codec", sorted(CODECS))
@SETTINGS
@given(
    text=st.one_of(
        st.text(max_size=300),
        st.text(alphabet="ab é中🌼 .", max_size=600),
        st.sampled_from(["", "a", "The dog runs.", "é" * 400]),
    )
)
def test_text_roundtrip_with_production_encoder(codec, text):
    prod, ours = CODECS[codec]
    payload = m.encode_text(text, prod)
    assert R.decode_text(payload, ours) == text
    if ours == 1:
        assert R.lzw_decode(payload) == text


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_long_text_with_production_encoder(codec):
    """Long enough to fill the LZW dictionary (12-bit codes, no more entries)."""
    import random

    rng = random.Random(7)
    words = ["dog", "grass", "the", "runs", "über", "猫", "🌼", "park", "a", "man"]
    text = " ".join(rng.choice(words) + str(rng.randrange(1000)) for _ in range(6000))
    prod, ours = CODECS[codec]
    assert R.decode_text(m.encode_text(text, prod), ours) == text


CODERS = {0: m.IndexMapCoder.RAW, 1: m.IndexMapCoder.STATIC, 2: m.IndexMapCoder.CONTEXT}
TEMPORAL = getattr(m.IndexMapCoder, "TEMPORAL", None)
needs_temporal = pytest.mark.skipif(TEMPORAL is None, reason="production has no TEMPORAL coder")


@st.composite
def index_maps(draw):
    V = draw(st.sampled_from([1, 2, 16, 256]))
    h = draw(st.integers(1, 24))
    w = draw(st.integers(1, 24))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["random", "blocky", "constant"]))
    if kind == "random":
        arr = rng.integers(0, V, (h, w))
    elif kind == "blocky":
        b = draw(st.integers(1, 6))
        small = rng.integers(0, V, ((h + b - 1) // b, (w + b - 1) // b))
        arr = np.kron(small, np.ones((b, b), dtype=np.int64))[:h, :w]
        noise = rng.random((h, w)) < 0.15
        arr = np.where(noise, rng.integers(0, V, (h, w)), arr)
    else:
        arr = np.full((h, w), int(rng.integers(0, V)))
    prior = draw(
        st.one_of(
            st.none(),
            st.lists(st.integers(0, 2**24 - 1), min_size=V, max_size=V),
            st.just([0] * V),
            st.just([int(x) for x in rng.integers(0, 50, V)]),
        )
    )
    return arr.astype(np.int64), V, prior


@pytest.mark.parametrize("coder", sorted(CODERS))
@SETTINGS
@given(case=index_maps())
def test_index_map_roundtrip_with_production_encoder(coder, case):
    arr, V, prior = case
    payload = m.encode_index_map(arr, V, CODERS[coder], prior)
    got = R.decode_index_map(payload, arr.shape[0], arr.shape[1], V, coder, prior)
    assert got == arr.tolist()


@settings(max_examples=200, deadline=None, database=None)
@given(
    name=st.sampled_from(["minimal", "ancillary", "text-lzw", "text-tokans1", "newer-minor"]),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_damaged_streams_fail_only_with_format_errors(name, edits, cut):
    """Any damage gives a result or one of the decoder's own errors, never a crash."""
    data = bytearray(_load(name)[0])
    for pos, val in edits:
        data[pos % len(data)] = val
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    for strict in (True, False):
        try:
            R.read_stream(bytes(data), strict=strict)
        except R.M3VError:
            pass


@st.composite
def temporal_cases(draw):
    """(map, reference, V, prior): small maps; references made from the map with some cells
    changed (COPY and NEW both occur), equal to it, or drawn independently."""
    V = draw(st.sampled_from([1, 2, 3, 16, 256]))
    h = draw(st.integers(1, 12))
    w = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        b = draw(st.integers(1, 4))
        small = rng.integers(0, V, ((h + b - 1) // b, (w + b - 1) // b))
        arr = np.kron(small, np.ones((b, b), dtype=np.int64))[:h, :w]
    else:
        arr = rng.integers(0, V, (h, w))
    kind = draw(st.sampled_from(["edited", "edited", "equal", "random"]))
    if kind == "random":
        ref = rng.integers(0, V, (h, w))
    else:
        ref = arr.copy()
        if kind == "edited":
            frac = draw(st.sampled_from([0.05, 0.3, 0.7]))
            change = rng.random((h, w)) < frac
            ref = np.where(change, rng.integers(0, V, (h, w)), ref)
    prior = draw(
        st.one_of(
            st.none(),
            st.just([0] * V),
            st.just([int(x) for x in rng.integers(0, 50, V)]),
            st.lists(st.integers(0, 2**24 - 1), min_size=V, max_size=V),
        )
    )
    return arr.astype(np.int64), ref.astype(np.int64), V, prior


TEMPORAL_SETTINGS = settings(
    max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@needs_temporal
@TEMPORAL_SETTINGS
@given(case=temporal_cases())
def test_temporal_roundtrip_with_production_encoder(case):
    arr, ref, V, prior = case
    payload = m.encode_index_map(arr, V, TEMPORAL, prior, ref)
    h, w = arr.shape
    assert R.decode_index_map(payload, h, w, V, 3, prior, ref.tolist()) == arr.tolist()
    assert R.decode_index_map(payload, h, w, V, 3, prior, ref) == arr.tolist()  # array ref
    if (arr == ref).all():
        assert payload == b""
    with pytest.raises(R.MissingReferenceError):
        R.decode_index_map(payload, h, w, V, 3, prior)


@needs_temporal
@TEMPORAL_SETTINGS
@given(
    case=temporal_cases(),
    edit=st.one_of(
        st.tuples(st.just("flip"), st.integers(0, 2**16), st.integers(1, 255)),
        st.tuples(st.just("cut"), st.integers(1, 8), st.just(0)),
        st.tuples(st.just("append"), st.integers(1, 255), st.integers(0, 3)),
    ),
)
def test_temporal_damaged_payloads(case, edit):
    """A changed payload is rejected (PayloadError) or, when accepted, is the only coding of
    what it decodes to (ec "Encoding": payloads are unique), so production re-encodes it."""
    arr, ref, V, prior = case
    payload = bytearray(m.encode_index_map(arr, V, TEMPORAL, prior, ref))
    what, a, b = edit
    if what == "flip":
        if not payload:
            return
        payload[a % len(payload)] ^= b
    elif what == "cut":
        if not payload:
            return
        del payload[-min(a, len(payload)) :]
    else:
        payload += bytes([a]) + bytes(b)
    h, w = arr.shape
    try:
        got = R.decode_index_map(bytes(payload), h, w, V, 3, prior, ref.tolist())
    except R.PayloadError:
        return
    again = m.encode_index_map(np.array(got, dtype=np.int64), V, TEMPORAL, prior, ref)
    assert again == bytes(payload)
