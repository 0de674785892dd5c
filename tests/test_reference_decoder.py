"""The reference decoder in tests/reference (written from spec/ alone) against the
conformance vectors, the spec's worked examples, and the production encoder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference import m3v_reference as R  # noqa: E402

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
    first = got["errors"][0]
    assert type(first).__name__ == want["error"] and first.offset == want["offset"]


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
    freqs, cum, tokens = R.load_tokans_vocab()
    assert len(freqs) == 8141 and sum(freqs) == 2**24 and tokens[0] == b""


def test_normalize_and_rank():
    f = R.normalize([5, 0, 3])
    assert sum(f) == 2**24 and f[1] == 1
    assert R.normalize([0, 0]) == [2**23, 2**23]
    assert R.rank_order([3, 5, 5, 1]) == [1, 2, 0, 3]


@pytest.mark.parametrize("V, rows, coder, prior, hexpayload", [
    (4, [[1, 2, 3]], 0, None, "6c"),
    (3, [[0, 1, 2]], 1, None, "02000001"),
    (3, [[0, 1, 2]], 1, [5, 0, 3], "00006002"),
    (8, [[5, 5, 7], [5, 5, 7]], 2, None, "465ebd74"),
    (8, [[5, 5, 7], [5, 5, 7]], 2, [1, 0, 0, 0, 0, 4, 0, 2], "7d298821"),
    (4, [[3, 3, 3, 1], [3, 3, 1, 1], [0, 3, 1, 2]], 2, None, "6d97ebad9503"),
])
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


def test_decode_seed():
    # m3v §6.4 with all-zero inputs, cross-checked with the vectors' first clip
    _, want = _load("minimal")
    assert R.decode_seed(0, 0, None) == want["clips"][0]["decode_seed"]


# ------------------------------------------------------------------------------ production

m = pytest.importorskip("m3cvc_format")
np = pytest.importorskip("numpy")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

CODECS = {"utf8": (m.TextCodec.UTF8, 0), "lzw": (m.TextCodec.LZW, 1),
          "tokans1": (m.TextCodec.TOKANS1, 2)}
SETTINGS = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("codec", sorted(CODECS))
@SETTINGS
@given(text=st.one_of(st.text(max_size=300),
                      st.text(alphabet="ab é中🌼 .", max_size=600),
                      st.sampled_from(["", "a", "The dog runs.", "é" * 400])))
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
    prior = draw(st.one_of(
        st.none(),
        st.lists(st.integers(0, 2**24 - 1), min_size=V, max_size=V),
        st.just([0] * V),
        st.just([int(x) for x in rng.integers(0, 50, V)])))
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
@given(name=st.sampled_from(["minimal", "ancillary", "text-lzw", "text-tokans1", "newer-minor"]),
       edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1,
                      max_size=4),
       cut=st.one_of(st.none(), st.integers(0, 10**6)))
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
