"""Tests of the text codecs (spec/text-codecs.md): UTF-8, LZW and tokans-1."""

from __future__ import annotations

import functools
import hashlib
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m3cvc_format import textcodec
from m3cvc_format.ans import AnsEncoder
from m3cvc_format.constants import MAX_TEXT_BYTES, TextCodec
from m3cvc_format.errors import LimitError, M3VError, MalformedError, PayloadError
from m3cvc_format.textcodec import decode_text, encode_text

ROOT = Path(__file__).resolve().parents[1]
ALL = list(TextCodec)
CLEAR, END = 256, 257

SAMPLES = [
    "a",
    "A man is seen speaking to the camera and leads into him playing the guitar.",
    "Grüße aus Zürich — café, naïve façade.",
    "猫がピアノを弾いている。一个人在厨房里做饭。",
    "🎸🔥 rock on 👩‍👩‍👧‍👦 family emoji and 🇫🇷 flag",
    "\x00 NUL, tab\t, newline\n, DEL \x7f and U+FFFF \uffff and U+10FFFF \U0010ffff",
    " ",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
]


def lorem(n_words: int, seed: int = 1) -> str:
    """A deterministic long text in the style of the training captions."""
    rng = random.Random(seed)
    words = [
        "a",
        "man",
        "woman",
        "is",
        "are",
        "the",
        "of",
        "in",
        "on",
        "with",
        "playing",
        "talking",
        "camera",
        "people",
        "shown",
        "then",
        "while",
        "his",
        "her",
        "standing",
        "water",
        "ball",
        "game",
        "video",
        "kitchen",
        "dog",
        "猫",
        "café",
        "🎸",
    ]
    out = []
    for i in range(n_words):
        w = rng.choice(words)
        out.append(w.capitalize() if i % 12 == 0 else w)
        if i % 12 == 11:
            out[-1] += "."
    return " ".join(out)


# ---------------------------------------------------------------- helpers: a bit-writer and
# a reference LZW decoder written from spec/text-codecs.md independently of the package.


def pack_codes(codes, widths, pad: int = 0) -> bytes:
    """Pack codes MSB-first with the given widths, then pad to a byte with the bits of ``pad``."""
    acc, n = 0, 0
    for c, w in zip(codes, widths, strict=True):
        assert 0 <= c < 1 << w
        acc, n = (acc << w) | c, n + w
    fill = -n % 8
    assert 0 <= pad < 1 << max(fill, 0) or pad == 0
    acc, n = (acc << fill) | pad, n + fill
    return acc.to_bytes(n // 8, "big")


def spec_widths(codes) -> list[int]:
    """Widths a decoder reads ``codes`` with: min(12, bit_length(next)), next per the spec."""
    widths, nxt, have_prev = [], 258, False
    for c in codes:
        widths.append(min(12, nxt.bit_length()))
        if c == CLEAR:
            nxt, have_prev = 258, False
        elif c != END:
            if have_prev and nxt < 4096:
                nxt += 1
            have_prev = True
    return widths


def lzw(codes, pad: int = 0) -> bytes:
    return pack_codes(codes, spec_widths(codes), pad)


def ref_lzw_codes(payload: bytes) -> list[int]:
    """Codes of a valid LZW payload, read by a deliberately plain reference reader."""
    bits = "".join(f"{b:08b}" for b in payload)
    pos, nxt, prev, codes = 0, 258, None, []
    table = {i: bytes([i]) for i in range(256)}
    while True:
        w = min(12, nxt.bit_length())
        code = int(bits[pos : pos + w], 2)
        pos += w
        codes.append(code)
        if code == END:
            assert set(bits[pos:]) <= {"0"} and len(bits) - pos < 8
            return codes
        if code == CLEAR:
            table = {i: bytes([i]) for i in range(256)}
            nxt, prev = 258, None
            continue
        entry = table[code] if code in table else prev + prev[:1]
        if prev is not None and nxt < 4096:
            table[nxt] = prev + entry[:1]
            nxt += 1
        prev = entry


def distinct_pairs(n: int) -> bytes:
    """n printable ASCII bytes in which no adjacent-byte pair repeats: LZW codes them all as literals.

    A prefix of the order-2 de Bruijn sequence over the 94 bytes 0x21..0x7E (FKM algorithm).
    """
    k, seq, a = 94, [], [0] * 3

    def db(t: int, p: int) -> None:
        if t > 2:
            if 2 % p == 0:
                seq.extend(a[1 : p + 1])
            return
        a[t] = a[t - p]
        db(t + 1, p)
        for j in range(a[t - p] + 1, k):
            a[t] = j
            db(t + 1, t)

    db(1, 1)
    seq += seq[:1]  # close the cycle: k*k + 1 symbols, every pair once
    assert n <= len(seq)
    out = bytes(0x21 + x for x in seq[:n])
    assert len({out[i : i + 2] for i in range(n - 1)}) == n - 1
    return out


# ---------------------------------------------------------------- common rules


@pytest.mark.parametrize("codec", ALL)
def test_empty_text_is_empty_payload(codec):
    assert encode_text("", codec) == b""
    assert decode_text(b"", codec) == ""


@pytest.mark.parametrize("codec", ALL)
@pytest.mark.parametrize("text", SAMPLES)
def test_round_trip_samples(codec, text):
    payload = encode_text(text, codec)
    assert payload
    assert decode_text(payload, codec) == text


@pytest.mark.parametrize("codec", ALL)
def test_round_trip_long_text(codec):
    text = lorem(40_000)
    assert len(text.encode()) > 200_000
    payload = encode_text(text, codec)
    assert decode_text(payload, codec) == text
    if codec != TextCodec.UTF8:
        assert len(payload) < len(text.encode()) // 2


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=400), codec=st.sampled_from(ALL))
def test_round_trip_random_unicode(text, codec):
    assert decode_text(encode_text(text, codec), codec) == text


@pytest.mark.parametrize("codec", ALL)
def test_encoder_refuses_text_over_limit(codec):
    with pytest.raises(LimitError):
        encode_text("a" * (MAX_TEXT_BYTES + 1), codec)
    with pytest.raises(LimitError):  # the limit counts UTF-8 bytes, not characters
        encode_text("é" * (MAX_TEXT_BYTES // 2 + 1), codec)


@pytest.mark.parametrize("codec", ALL)
def test_encoder_rejects_lone_surrogate(codec):
    with pytest.raises(ValueError):
        encode_text("a\ud800b", codec)


def test_unknown_codec_id():
    with pytest.raises(MalformedError):
        decode_text(b"x", 7)
    with pytest.raises(MalformedError):
        encode_text("x", 3)


def test_errors_are_value_errors():
    assert issubclass(PayloadError, ValueError) and issubclass(LimitError, ValueError)


# ---------------------------------------------------------------- UTF-8


def test_utf8_is_the_bytes():
    assert encode_text("héllo 🎸", TextCodec.UTF8) == "héllo 🎸".encode()


@pytest.mark.parametrize("bad", [b"\xff", b"abc\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])
def test_utf8_invalid(bad):
    with pytest.raises(PayloadError):
        decode_text(bad, TextCodec.UTF8)


def test_utf8_limit():
    assert len(decode_text(b"a" * MAX_TEXT_BYTES, TextCodec.UTF8)) == MAX_TEXT_BYTES
    with pytest.raises(LimitError):
        decode_text(b"a" * (MAX_TEXT_BYTES + 1), TextCodec.UTF8)


# ---------------------------------------------------------------- LZW


def test_lzw_worked_example():
    # The spec's worked example: "abababa" -> codes 97 98 258 260(KwKwK) END, 9 bits each.
    payload = encode_text("abababa", TextCodec.LZW)
    assert payload == bytes.fromhex("3098a0504808")
    assert payload == pack_codes([97, 98, 258, 260, END], [9] * 5)
    assert decode_text(payload, TextCodec.LZW) == "abababa"


def test_lzw_single_byte():
    # 'a' then END, 18 bits: 001100001 100000001 000000
    assert encode_text("a", TextCodec.LZW) == bytes([0b00110000, 0b11000000, 0b01000000])


def expected_width(i: int) -> int:
    """Hand-derived: the i-th code (0-based) after the start when every code before it was data."""
    if i < 255:
        return 9  # next = 258 + max(0, i-1) <= 511
    if i < 767:
        return 10  # next reaches 512 at i = 255
    if i < 1791:
        return 11  # next reaches 1024 at i = 767
    return 12  # next reaches 2048 at i = 1791, caps at 4096 from i = 3839


@pytest.mark.parametrize("n", [1, 2, 253, 254, 255, 256, 766, 767, 768, 1790, 1791, 1792, 3838, 3839, 3840, 5000])
def test_lzw_width_transitions(n):
    # n literals (no pair repeats) then END: END is read with the decoder's next = 258 + n - 1,
    # one more than the encoder-side formula bit_length(next_e - 1) of the data codes gives.
    data = distinct_pairs(n)
    codes = list(data) + [END]
    widths = [expected_width(i) for i in range(n + 1)]
    payload = textcodec._lzw_encode(data)
    assert payload == pack_codes(codes, widths)
    assert textcodec._lzw_decode(payload) == data


def test_lzw_end_width_at_512():
    # The off-by-one spelled out: 255 literals at 9 bits, then END at 10 bits (next = 512).
    data = distinct_pairs(255)
    payload = textcodec._lzw_encode(data)
    assert len(payload) == (255 * 9 + 10 + 7) // 8
    assert payload == pack_codes(list(data) + [END], [9] * 255 + [10])
    with pytest.raises(PayloadError):  # END written 9 bits wide is a different (broken) payload
        textcodec._lzw_decode(pack_codes(list(data) + [END], [9] * 256))


def test_lzw_kwkwk_at_width_change():
    # "a" * n makes codes 97, 258, 259, ... (the k-th covers k bytes), each the KwKwK case;
    # n = m(m+1)/2 (+1) puts END (or the last code) on either side of the 512 and 1024 widths.
    for m in (254, 255, 256, 766, 767, 768):
        for n in (m * (m + 1) // 2, m * (m + 1) // 2 + 1):
            data = b"a" * n
            payload = textcodec._lzw_encode(data)
            assert textcodec._lzw_decode(payload) == data
            codes = ref_lzw_codes(payload)
            assert codes[:3] == [97, 258, 259][: len(codes) - 1] and codes[-1] == END
            assert payload == lzw(codes)


def dictionary_filler(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.choice(b"abcdefgh ") for _ in range(n))


@pytest.mark.parametrize("clear", [False, True])
def test_lzw_full_dictionary(clear):
    data = dictionary_filler(60_000, 5)
    payload = textcodec._lzw_encode(data, clear_when_full=clear)
    codes = ref_lzw_codes(payload)
    assert len(codes) > 4096
    assert (CLEAR in codes) == clear
    assert max(codes) > 4000  # entries near the end of the dictionary are used
    assert textcodec._lzw_decode(payload) == data
    assert decode_text(payload, TextCodec.LZW) == data.decode()
    assert encode_text(data.decode(), TextCodec.LZW) == textcodec._lzw_encode(data)  # our choice: no CLEAR


def test_lzw_clear_resets_the_dictionary():
    # a b <258 = "ab"> CLEAR a b <258 = "ab" again> END
    payload = lzw([97, 98, 258, CLEAR, 97, 98, 258, END])
    assert decode_text(payload, TextCodec.LZW) == "abababab"
    # entries from before CLEAR are gone: 260 was "ab", after CLEAR it is beyond next (258)
    with pytest.raises(PayloadError, match="beyond"):
        decode_text(lzw([97, 98, 97, 98, CLEAR, 97, 260, END]), TextCodec.LZW)
    assert decode_text(lzw([CLEAR, 97, END]), TextCodec.LZW) == "a"  # CLEAR first is allowed
    assert decode_text(lzw([97, CLEAR, CLEAR, 98, END]), TextCodec.LZW) == "ab"


def test_lzw_clear_width_back_to_9():
    # 600 literals (widths reach 10), CLEAR at 10 bits, then 9-bit codes again.
    data = list(distinct_pairs(600))
    codes = data + [CLEAR, 97, 98, 258, END]
    widths = [expected_width(i) for i in range(601)] + [9, 9, 9, 9]
    assert spec_widths(codes) == widths
    assert decode_text(pack_codes(codes, widths), TextCodec.LZW) == bytes(data).decode() + "abab"


@settings(deadline=None, max_examples=60)
@given(data=st.binary(max_size=3000) | st.lists(st.sampled_from(b"ab"), max_size=6000).map(bytes))
def test_lzw_matches_reference_reader(data):
    if not data:
        return
    payload = textcodec._lzw_encode(data)
    codes = ref_lzw_codes(payload)
    assert payload == lzw(codes)
    assert textcodec._lzw_decode(payload) == data


@pytest.mark.parametrize(
    "payload, message",
    [
        (lzw([97]), "without an END"),  # missing END
        (lzw([97, 98]), "without an END"),
        (lzw([97, END])[:-1], "without an END"),  # truncated
        (lzw([97, END], pad=1), "padding"),
        (lzw([97, END], pad=0b100000), "padding"),
        (lzw([97, END]) + b"\x00", "after the LZW END"),
        (lzw([97, END]) + b"\x80", "after the LZW END"),
        (lzw([97, 259, END]), "beyond the next"),  # next is 258
        (lzw([97, 98, 511, END]), "beyond the next"),
        (lzw([258, END]), "literal"),  # first code not a literal (258 would be KwKwK otherwise)
        (lzw([300, END]), "literal"),
        (lzw([97, CLEAR, 258, END]), "literal"),  # ... nor after CLEAR
        (lzw([END]), "empty text"),  # a non-empty payload for the empty text
        (lzw([CLEAR, END]), "empty text"),
        (lzw([0xFF, END]), "UTF-8"),  # decodes, but not to UTF-8
        (lzw([0xC3, END]), "UTF-8"),
        (lzw([0xED, 0xA0, 0x80, END]), "UTF-8"),  # a surrogate
        (b"\x00", "without an END"),
    ],
)
def test_lzw_errors(payload, message):
    with pytest.raises(PayloadError, match=message):
        decode_text(payload, TextCodec.LZW)


def test_lzw_end_aligned_to_byte_needs_no_padding():
    # 7 codes of 9 bits + END 9 bits = 72 bits: no padding; one more zero byte is trailing data.
    codes = [97, 98, 99, 100, 101, 102, 103, END]
    payload = lzw(codes)
    assert len(payload) * 8 == 72
    assert decode_text(payload, TextCodec.LZW) == "abcdefg"
    with pytest.raises(PayloadError):
        decode_text(payload + b"\x00", TextCodec.LZW)


def test_lzw_output_limit():
    exact = textcodec._lzw_encode(b"a" * MAX_TEXT_BYTES)
    assert len(decode_text(exact, TextCodec.LZW)) == MAX_TEXT_BYTES
    over = textcodec._lzw_encode(b"a" * (MAX_TEXT_BYTES + 1))
    assert len(over) < 4000  # a tiny payload ...
    with pytest.raises(LimitError):  # ... that would expand past the limit
        decode_text(over, TextCodec.LZW)


@settings(deadline=None, max_examples=300)
@given(data=st.binary(min_size=1, max_size=300))
def test_lzw_random_bytes_only_raise_payload_errors(data):
    try:
        text = decode_text(data, TextCodec.LZW)
    except (PayloadError, LimitError):
        return
    assert isinstance(text, str) and text


# ---------------------------------------------------------------- tokans-1


def spec_sha256() -> str:
    spec = (ROOT / "spec/text-codecs.md").read_text(encoding="utf-8")
    m = re.search(r"SHA-256[^\n]*?`([0-9a-f]{64})`", spec)
    assert m, "spec/text-codecs.md names the vocabulary's SHA-256 in backticks"
    return m.group(1)


def test_vocabulary_hashes():
    spec_copy = (ROOT / "spec/text/tokans-1.vocab").read_bytes()
    pkg_copy = (ROOT / "m3cvc_format/data/tokans-1.vocab").read_bytes()
    want = spec_sha256()
    assert hashlib.sha256(spec_copy).hexdigest() == want
    assert hashlib.sha256(pkg_copy).hexdigest() == want
    assert want == textcodec.TOKANS1_VOCAB_SHA256


def test_vocabulary_layout():
    tokens, freqs = textcodec.parse_vocab((ROOT / "spec/text/tokans-1.vocab").read_bytes())
    assert tokens[0] == b"" and all(tokens[1 + b] == bytes([b]) for b in range(256))
    assert 257 < len(tokens) <= 8192
    assert all(2 <= len(t) <= 24 for t in tokens[257:]) and len(set(tokens)) == len(tokens)
    assert min(freqs) >= 1 and sum(freqs) == 1 << 24


@pytest.mark.parametrize(
    "bad",
    [
        b"# h\n5\n",  # too few ids
        b"no header\n",
        b"# h\n16777216",  # no final LF
    ],
)
def test_vocabulary_parser_rejects(bad):
    with pytest.raises(ValueError):
        textcodec.parse_vocab(bad)


def test_import_is_light():
    code = (
        "import sys, m3cvc_format; before = set(sys.modules); import m3cvc_format.textcodec as t; "
        "new = set(sys.modules) - before; "
        "print(sorted(m for m in new if m.split('.')[0] in ('numpy', 'constriction')), t._vocab_cache)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PATH": ""})
    assert out.stdout.strip() == "[] None"


def tokans_payload(ids) -> bytes:
    """rANS-code token ids (END not added) with the vocabulary's table, bypassing the encoder."""
    v = textcodec._load_vocab()
    enc = AnsEncoder()
    enc.push_many(np.asarray(ids, dtype=np.int32), v.freqs)
    return enc.finish()


def test_tokans_payload_is_token_ids_then_end():
    v = textcodec._load_vocab()
    text = "A man is playing the guitar."
    ids = textcodec._tokans_parse(text.encode(), v)
    assert b"".join(v.tokens[i] for i in ids) == text.encode()
    assert any(i > 256 for i in ids)  # multi-byte tokens are used
    assert encode_text(text, TextCodec.TOKANS1) == tokans_payload(ids + [0])
    # any other parse of the same text decodes the same: the decoder does not care
    single_bytes = [1 + b for b in text.encode()] + [0]
    assert decode_text(tokans_payload(single_bytes), TextCodec.TOKANS1) == text


CAPTION_WORDS = [
    "A",
    "man",
    "woman",
    "the",
    "a",
    "is",
    "playing",
    "talking",
    "in",
    "on",
    "with.",
    "then",
    "while",
    "camera",
    "people",
    "shown",
    "his",
    "her",
]


@settings(deadline=None, max_examples=100)
@given(
    text=st.lists(st.sampled_from(CAPTION_WORDS), min_size=1, max_size=12).map(" ".join)
    | st.text(min_size=1, max_size=40)
)
def test_tokans_parse_is_optimal(text):

    v = textcodec._load_vocab()
    data = text.encode()
    bits = {t: 24 - np.log2(float(v.freqs[i])) for t, i in v.ids.items()}

    @functools.cache
    def least(i: int) -> float:  # top-down: least code length of data[i:]
        if i == len(data):
            return 0.0
        return min(bits[data[i:j]] + least(j) for j in range(i + 1, min(len(data), i + 24) + 1) if data[i:j] in bits)

    ids = textcodec._tokans_parse(data, v)
    assert b"".join(v.tokens[i] for i in ids) == data
    assert sum(bits[v.tokens[i]] for i in ids) == pytest.approx(least(0), abs=1e-6)


def test_tokans_compresses_captions():
    text = (
        "A young woman is seen standing in a room and leads into her dancing. The girl dances around "
        "the room while the camera captures her movements."
    )
    payload = encode_text(text, TextCodec.TOKANS1)
    assert len(payload) < 0.4 * len(text)
    assert len(payload) < 0.6 * len(encode_text(text, TextCodec.LZW))


@pytest.mark.parametrize(
    "ids, error",
    [
        ([256, 0], PayloadError),  # byte 0xFF: not UTF-8
        ([1 + 0xC3, 0], PayloadError),  # truncated UTF-8 sequence
    ],
)
def test_tokans_bad_token_sequences(ids, error):
    with pytest.raises(error):
        decode_text(tokans_payload(ids), TextCodec.TOKANS1)


def test_tokans_output_limit():
    v = textcodec._load_vocab()
    long_id = max(range(257, len(v.tokens)), key=lambda i: (len(v.tokens[i]), -i))
    tok = v.tokens[long_id]
    assert tok.isascii()
    k, rest = divmod(MAX_TEXT_BYTES, len(tok))
    exact = [long_id] * k + [1 + ord("a")] * rest
    assert len(decode_text(tokans_payload(exact + [0]), TextCodec.TOKANS1)) == MAX_TEXT_BYTES
    with pytest.raises(LimitError):
        decode_text(tokans_payload(exact + [1 + ord("a"), 0]), TextCodec.TOKANS1)
    with pytest.raises(LimitError):  # no END at all: the limit still stops the decoder
        decode_text(tokans_payload([long_id] * (k + 1)), TextCodec.TOKANS1)


def test_tokans_damaged_payloads():
    text = "Two people are seen moving around a kitchen quickly performing various tasks."
    payload = encode_text(text, TextCodec.TOKANS1)
    assert decode_text(payload, TextCodec.TOKANS1) == text
    damaged = [payload[:-1], payload[1:], payload + b"\x01", payload + b"\x00", payload[:-1] + b"\x00"]
    damaged += [payload[:i] + bytes([payload[i] ^ 0x10]) + payload[i + 1 :] for i in range(len(payload))]
    for bad in damaged:
        try:
            out = decode_text(bad, TextCodec.TOKANS1)
        except (PayloadError, LimitError):
            continue
        assert out != text  # a damaged payload never silently gives the original back


def test_tokans_end_alone_is_the_empty_payload():
    # END has cumulative frequency 0: coding it from the coder's initial state leaves the state
    # at 0, so END alone codes as the empty payload -- the empty text's payload, as the rule says.
    assert tokans_payload([0]) == b""
    one = tokans_payload([1 + ord("a"), 0])
    assert one == tokans_payload([1 + ord("a")])  # the final END adds no bytes
    assert decode_text(one, TextCodec.TOKANS1) == "a"


def test_tokans_trailing_zero_byte():
    payload = encode_text("a", TextCodec.TOKANS1)
    with pytest.raises(PayloadError):
        decode_text(payload + b"\x00", TextCodec.TOKANS1)


@settings(deadline=None, max_examples=400)
@given(data=st.binary(min_size=1, max_size=400))
def test_tokans_random_bytes_only_raise_payload_errors(data):
    try:
        text = decode_text(data, TextCodec.TOKANS1)
    except (PayloadError, LimitError):
        return
    assert isinstance(text, str) and text


def test_tokans_random_large_payload_fails_cleanly():
    rng = np.random.default_rng(7)
    for size in (4096, 65536):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes().rstrip(b"\x00") + b"\x01"
        with pytest.raises((PayloadError, LimitError)) as info:
            decode_text(data, TextCodec.TOKANS1)
        assert isinstance(info.value, M3VError)
