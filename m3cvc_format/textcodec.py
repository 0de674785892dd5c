"""The text codecs of the `.m3v` format (spec/text-codecs.md).

Each clip carries two descriptions (keyframe text and clip text); each is coded
on its own as one payload with the stream's text codec::

    payload = encode_text(text, TextCodec.TOKANS1)
    text = decode_text(payload, TextCodec.TOKANS1)

Rules common to every codec: the empty text is the empty payload and back; a
non-empty payload never decodes to the empty text; decoded texts are valid
UTF-8 of at most ``MAX_TEXT_BYTES`` bytes.  Decoders raise
:class:`~m3cvc_format.errors.PayloadError` for payloads that do not decode and
:class:`~m3cvc_format.errors.LimitError` as soon as the output would pass the
limit; encoders raise ``LimitError`` for texts over the limit.

This module imports nothing heavy: numpy, constriction and the ``tokans-1``
vocabulary are loaded the first time the ``tokans-1`` codec is used.
"""

from __future__ import annotations

import math
from collections.abc import Set as AbstractSet
from typing import Any

from .constants import MAX_TEXT_BYTES, TextCodec
from .errors import LimitError, MalformedError, PayloadError

__all__ = [
    "LZW_CLEAR",
    "LZW_END",
    "LZW_FIRST_CODE",
    "LZW_MAX_CODES",
    "TOKANS1_VOCAB_SHA256",
    "decode_text",
    "encode_text",
]

#: SHA-256 of spec/text/tokans-1.vocab (and of the package's copy); written in the spec.
TOKANS1_VOCAB_SHA256 = "4a643a0f0424bcaca97fc840b19c5161072b5aad515bff8b193185e3a37c6566"

LZW_CLEAR = 256
LZW_END = 257
LZW_FIRST_CODE = 258
LZW_MAX_CODES = 4096
LZW_MAX_WIDTH = 12


# --------------------------------------------------------------------------- API


def encode_text(text: str, codec: TextCodec) -> bytes:
    """Code one description as a payload of ``codec``."""
    codec = _codec(codec)
    data = text.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError (a ValueError)
    if len(data) > MAX_TEXT_BYTES:
        raise LimitError(f"text of {len(data)} bytes exceeds the limit of {MAX_TEXT_BYTES}")
    if not data:
        return b""
    if codec is TextCodec.UTF8:
        return data
    if codec is TextCodec.LZW:
        return _lzw_encode(data)
    return _tokans_encode(data)


def decode_text(data: bytes, codec: TextCodec) -> str:
    """Decode one payload of ``codec`` back to its text."""
    codec = _codec(codec)
    data = bytes(data)
    if not data:
        return ""
    if codec is TextCodec.UTF8:
        if len(data) > MAX_TEXT_BYTES:
            raise LimitError(f"text of {len(data)} bytes exceeds the limit of {MAX_TEXT_BYTES}")
        raw = data
    elif codec is TextCodec.LZW:
        raw = _lzw_decode(data)
    else:
        raw = _tokans_decode(data)
    if not raw:
        raise PayloadError("non-empty text payload decodes to the empty text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"decoded text is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _codec(codec: int) -> TextCodec:
    try:
        return TextCodec(codec)
    except ValueError:
        raise MalformedError(f"unknown text codec {codec!r}") from None


# --------------------------------------------------------------------------- LZW


def _lzw_encode(data: bytes, clear_when_full: bool = False) -> bytes:
    """LZW codes of ``data`` (non-empty), then END, packed MSB-first.

    Our encoder never emits CLEAR (``clear_when_full=False``): once the
    dictionary holds 4096 entries it stops adding.  ``clear_when_full=True``
    emits CLEAR as soon as the dictionary is full (decoders accept both).

    Every code is written with the width the decoder will read it with:
    min(12, bit_length(next)) for the decoder's ``next``; after k codes since
    the start or the last CLEAR the decoder has assigned max(0, k - 1) entries.
    """
    acc = 0  # bit accumulator
    nbits = 0
    out = bytearray()

    def put(code: int, width: int) -> None:
        nonlocal acc, nbits
        acc = (acc << width) | code
        nbits += width
        while nbits >= 8:
            nbits -= 8
            out.append((acc >> nbits) & 0xFF)
        acc &= (1 << nbits) - 1

    table: dict[bytes, int] = {}
    next_e = LZW_FIRST_CODE  # the encoder's next entry (one ahead of the decoder's)
    emitted = 0  # codes since the start or the last CLEAR

    def width() -> int:
        dnext = min(LZW_MAX_CODES, LZW_FIRST_CODE + max(0, emitted - 1))
        return min(LZW_MAX_WIDTH, dnext.bit_length())

    w = data[:1]
    for i in range(1, len(data)):
        c = data[i : i + 1]
        wc = w + c
        if wc in table:
            w = wc
            continue
        put(table[w] if len(w) > 1 else w[0], width())
        emitted += 1
        if next_e < LZW_MAX_CODES:
            table[wc] = next_e
            next_e += 1
        elif clear_when_full:
            put(LZW_CLEAR, width())
            table.clear()
            next_e = LZW_FIRST_CODE
            emitted = 0
        w = c
    put(table[w] if len(w) > 1 else w[0], width())
    emitted += 1
    put(LZW_END, width())
    if nbits:
        put(0, 8 - nbits)
    return bytes(out)


def _lzw_decode(data: bytes) -> bytes:
    out = bytearray()
    entries: list[bytes] = [bytes([b]) for b in range(256)] + [b"", b""]
    nxt = LZW_FIRST_CODE
    prev: bytes | None = None
    acc = 0
    nbits = 0
    pos = 0
    n = len(data)
    while True:
        width = min(LZW_MAX_WIDTH, nxt.bit_length())
        while nbits < width:
            if pos >= n:
                raise PayloadError("LZW data ends without an END code")
            acc = (acc << 8) | data[pos]
            pos += 1
            nbits += 8
        nbits -= width
        code = acc >> nbits
        acc &= (1 << nbits) - 1
        if code == LZW_END:
            break
        if code == LZW_CLEAR:
            del entries[LZW_FIRST_CODE:]
            nxt = LZW_FIRST_CODE
            prev = None
            continue
        if prev is None:
            if code > 255:
                raise PayloadError(f"LZW code {code} where a literal byte must come (after start or CLEAR)")
            entry = entries[code]
        elif code < nxt:
            entry = entries[code]
        elif code == nxt and nxt < LZW_MAX_CODES:
            entry = prev + prev[:1]
        else:
            raise PayloadError(f"LZW code {code} is beyond the next free code {nxt}")
        if prev is not None and nxt < LZW_MAX_CODES:
            entries.append(prev + entry[:1])
            nxt += 1
        if len(out) + len(entry) > MAX_TEXT_BYTES:
            raise LimitError(f"decoded text exceeds the limit of {MAX_TEXT_BYTES} bytes")
        out += entry
        prev = entry
    if acc:
        raise PayloadError("non-zero padding bits after the LZW END code")
    if pos != n:
        raise PayloadError(f"{n - pos} bytes after the LZW END code")
    return bytes(out)


# --------------------------------------------------------------------------- tokans-1

_VOCAB_NAME = "tokans-1.vocab"
_TOKANS_MAX_TOKEN_LEN = 24


class _Vocab:
    """The loaded vocabulary and what the coder needs of it."""

    def __init__(self, tokens: list[bytes], freqs: Any) -> None:
        self.tokens = tokens  # by id; tokens[0] (END) is b""
        self.freqs = freqs  # numpy int64 array, sums to 2**24
        self.ids = {t: i for i, t in enumerate(tokens) if i}
        # code length in bits of each token: 24 - log2(freq)
        self.cost = {t: 24.0 - math.log2(int(freqs[i])) for t, i in self.ids.items()}
        self.prefixes = frozenset(t[:k] for t in tokens[1:] for k in range(1, len(t) + 1))
        self.model: Any = None  # ans.Model of the table, built on the first decode


_vocab_cache: _Vocab | None = None


def parse_vocab(data: bytes) -> tuple[list[bytes], list[int]]:
    """Parse a ``tokans-1`` vocabulary file (spec/text-codecs.md) into tokens and frequencies by id."""
    if not data.endswith(b"\n"):
        raise ValueError("vocabulary must end with LF")
    lines = data[:-1].split(b"\n")
    if not lines or not lines[0].startswith(b"#"):
        raise ValueError("vocabulary must start with a '#' header line")
    tokens: list[bytes] = []
    freqs: list[int] = []
    for k, line in enumerate(lines[1:]):
        parts = line.split(b" ")
        if k == 0:
            if len(parts) != 1:
                raise ValueError("id 0 (END) has no token bytes")
            token = b""
        else:
            if len(parts) != 2 or not parts[1] or parts[1] != parts[1].lower():
                raise ValueError(f"bad vocabulary line for id {k}")
            token = bytes.fromhex(parts[1].decode("ascii"))
            if len(token) * 2 != len(parts[1]):
                raise ValueError(f"bad hex for id {k}")
        f = parts[0]
        if not f.isdigit() or (f.startswith(b"0")):
            raise ValueError(f"bad frequency for id {k}")
        tokens.append(token)
        freqs.append(int(f))
    if len(tokens) < 257 or any(tokens[1 + b] != bytes([b]) for b in range(256)):
        raise ValueError("ids 1..256 must be the single bytes 0x00..0xff")
    multi = tokens[257:]
    if any(not 2 <= len(t) <= _TOKANS_MAX_TOKEN_LEN for t in multi) or len(set(multi)) != len(multi):
        raise ValueError("ids from 257 must be distinct tokens of 2..24 bytes")
    if sum(freqs) != 1 << 24:
        raise ValueError("frequencies must sum to 2**24")
    return tokens, freqs


def _load_vocab() -> _Vocab:
    global _vocab_cache
    if _vocab_cache is not None:
        return _vocab_cache
    import hashlib
    from importlib import resources

    import numpy as np

    data = resources.files(__package__).joinpath("data").joinpath(_VOCAB_NAME).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != TOKANS1_VOCAB_SHA256:
        raise RuntimeError(f"packaged {_VOCAB_NAME} has SHA-256 {digest}, expected {TOKANS1_VOCAB_SHA256}")
    tokens, freqs = parse_vocab(data)
    _vocab_cache = _Vocab(tokens, np.asarray(freqs, dtype=np.int64))
    return _vocab_cache


def cheapest_parse(
    data: bytes, cost: dict[bytes, float], prefixes: AbstractSet[bytes], max_len: int = _TOKANS_MAX_TOKEN_LEN
) -> list[bytes]:
    """The split of ``data`` into tokens of ``cost`` with the least total cost (Viterbi;
    ties: the earlier-found path).  ``prefixes`` holds every prefix of every token, so the
    search stops as soon as no token can continue.  The trainer uses it too."""
    n = len(data)
    best = [math.inf] * (n + 1)
    back = [0] * (n + 1)
    best[0] = 0.0
    for i in range(n):
        bi = best[i]
        for j in range(i + 1, min(n, i + max_len) + 1):
            piece = data[i:j]
            if piece not in prefixes:
                break
            c = cost.get(piece)
            if c is not None and bi + c < best[j]:
                best[j] = bi + c
                back[j] = i
    pieces = []
    j = n
    while j > 0:
        i = back[j]
        pieces.append(data[i:j])
        j = i
    pieces.reverse()
    return pieces


def _tokans_parse(data: bytes, v: _Vocab) -> list[int]:
    """Token ids of a parse of ``data`` with the least total code length."""
    return [v.ids[piece] for piece in cheapest_parse(data, v.cost, v.prefixes)]


def _tokans_encode(data: bytes) -> bytes:
    import numpy as np

    from .ans import AnsEncoder

    v = _load_vocab()
    ids = _tokans_parse(data, v)
    ids.append(0)
    enc = AnsEncoder()
    enc.push_many(np.asarray(ids, dtype=np.int32), v.freqs)
    return enc.finish()


def _tokans_decode(data: bytes) -> bytes:
    from .ans import AnsDecoder, Model

    v = _load_vocab()
    if v.model is None:
        v.model = Model(v.freqs)
    tokens = v.tokens
    ntok = len(tokens)
    try:
        dec = AnsDecoder(data)
        out = bytearray()
        while True:
            t = dec.pop(v.model)
            if t == 0:
                break
            if not 0 < t < ntok:  # cannot happen with a valid table; guard anyway
                raise PayloadError(f"token id {t} outside the vocabulary")
            tok = tokens[t]
            if len(out) + len(tok) > MAX_TEXT_BYTES:
                raise LimitError(f"decoded text exceeds the limit of {MAX_TEXT_BYTES} bytes")
            out += tok
        dec.finish()
    except (PayloadError, LimitError):
        raise
    except (ValueError, RuntimeError, OverflowError) as exc:  # constriction rejecting its input
        raise PayloadError(f"tokans-1 payload does not decode: {exc}") from None
    return bytes(out)
