"""Reference decoder for the `.m3v` bitstream, written from spec/*.md alone.

Pure Python standard library. Sections cited as m3v §n, tc §n (text-codecs.md) and
ec "name" (entropy-coding.md).
"""

from __future__ import annotations

import bisect
import hashlib
import struct
from pathlib import Path

# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class M3VError(Exception):
    """Base class. ``offset`` is the byte offset (from the signature) of the chunk concerned,
    or None where no offset applies (stand-alone payload decoders)."""

    def __init__(self, message: str, offset: int | None = None):
        super().__init__(message)
        self.message = message
        self.offset = offset


class SignatureError(M3VError):
    def __init__(self, message, offset=0, text_mode_damage=False):
        super().__init__(message, offset)
        self.text_mode_damage = text_mode_damage


class TruncatedError(M3VError):
    pass


class ChecksumError(M3VError):
    pass


class UnknownChunkError(M3VError):
    pass


class UnsupportedVersionError(M3VError):
    pass


class MalformedError(M3VError):
    pass


class PayloadError(MalformedError):
    """tc §1 / ec: the payload is not a valid coding."""


class LimitError(MalformedError):
    """tc §3 rule 4, ec "Limits", m3v §11."""


class MissingReferenceError(M3VError):
    """m3v §6.5, §12: a dependent (TEMPORAL) clip's reference map, the decoded map of the clip
    whose clip_index is one less, is unavailable. Not a kind of MalformedError: the clip itself
    may be intact."""


# ---------------------------------------------------------------------------------------------
# LEB128 (m3v §1.2) and CRC-32C (m3v §1.3)
# ---------------------------------------------------------------------------------------------


def read_leb128(data, pos: int, end: int, max_bytes: int = 9):
    """Return (value, new_pos). Raises TruncatedError if the data ends inside the number,
    MalformedError if it is longer than max_bytes or not minimal."""
    value = 0
    for i in range(max_bytes):
        if pos + i >= end:
            raise TruncatedError("data ends inside a LEB128 number")
        b = data[pos + i]
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            if b == 0 and i > 0:
                raise MalformedError("LEB128 number is not minimal")
            return value, pos + i + 1
    raise MalformedError(f"LEB128 number longer than {max_bytes} bytes")


def _make_crc_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _make_crc_table()


def crc32c(data, crc: int = 0) -> int:
    c = crc ^ 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# Decode seed (m3v §6.4)
# ---------------------------------------------------------------------------------------------

_M64 = (1 << 64) - 1


def mix64(z: int) -> int:
    z &= _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def decode_seed(stream_seed: int, clip_index: int, seed: int | None) -> int:
    x = (stream_seed + 0x9E3779B97F4A7C15 * (clip_index + 1)) & _M64
    return mix64(mix64(x) ^ (seed or 0))


# ---------------------------------------------------------------------------------------------
# rANS (ec "The rANS coder"), normalize, rank order
# ---------------------------------------------------------------------------------------------

PRECISION = 24
TOTAL = 1 << 24
_W = 1 << 32


class RansDecoder:
    def __init__(self, payload: bytes):
        payload = bytes(payload)
        if payload and payload[-1] == 0:
            raise PayloadError("rANS payload ends with a zero byte")
        padded = payload + b"\0" * (-len(payload) % 4)
        self.words = list(struct.unpack(f"<{len(padded) // 4}I", padded))
        if not self.words:
            self.state = 0
        else:
            st = self.words.pop()
            while st < _W and self.words:
                st = (st << 32) | self.words.pop()
            self.state = st

    def decode(self, freqs, cum) -> int:
        """Decode one symbol; ``cum`` is the list of cumulative frequencies (len n)."""
        st = self.state
        q = st & (TOTAL - 1)
        s = bisect.bisect_right(cum, q) - 1
        st = (st >> PRECISION) * freqs[s] + q - cum[s]
        if st < _W and self.words:
            st = (st << 32) | self.words.pop()
        self.state = st
        return s

    def finish(self, bound: int | None) -> int:
        """End check: no words left, and state == 0 (bound None) or state < bound."""
        if self.words:
            raise PayloadError("rANS payload has words left after the last symbol")
        if bound is None:
            if self.state != 0:
                raise PayloadError("rANS final state is not 0")
        elif self.state >= bound:
            raise PayloadError("rANS final state is not a valid rank")
        return self.state


def cumulative(freqs):
    cum, t = [], 0
    for f in freqs:
        cum.append(t)
        t += f
    return cum


def normalize(c):
    n = len(c)
    if n < 2:
        raise ValueError("normalize needs at least 2 symbols")
    C = sum(c)
    if C == 0:
        c = [1] * n
        C = n
    scale = TOTAL - n
    f = [1 + (ci * scale) // C for ci in c]
    mx = max(c)
    k = c.index(mx)
    f[k] += TOTAL - sum(f)
    return f


def rank_order(weights):
    """Symbols by decreasing weight, ties by increasing symbol."""
    return sorted(range(len(weights)), key=lambda v: (-weights[v], v))


# ---------------------------------------------------------------------------------------------
# Index maps (ec "Index maps")
# ---------------------------------------------------------------------------------------------

RAW, STATIC, CONTEXT, TEMPORAL = 0, 1, 2, 3


def _check_index_map_limits(grid_h, grid_w, vocab_size, prior):
    if not (1 <= grid_h <= 1024 and 1 <= grid_w <= 1024):
        raise LimitError("grid size out of range")
    if grid_h * grid_w > 1 << 18:
        raise LimitError("grid has more than 2^18 positions")
    if not 1 <= vocab_size <= 4096:
        raise LimitError("vocab_size out of range")
    if prior is not None:
        if len(prior) != vocab_size:
            raise LimitError("prior length differs from vocab_size")
        if any(not 0 <= p < 1 << 24 for p in prior):
            raise LimitError("prior count out of range")


def decode_index_map(payload, grid_h, grid_w, vocab_size, coder, prior=None, reference=None):
    """Decode one index map (ec "Index maps"). ``reference`` is the reference map R (rows of
    indices, or anything indexable as reference[y][x]) and is used by TEMPORAL only; TEMPORAL
    without one raises MissingReferenceError (m3v §6.5: a dependent map is never decoded against
    anything but its reference)."""
    payload = bytes(payload)
    if prior is not None and len(prior) == 0:
        prior = None
    _check_index_map_limits(grid_h, grid_w, vocab_size, prior)
    coder = int(coder)
    ref = None
    if coder == TEMPORAL:
        if reference is None:
            raise MissingReferenceError("TEMPORAL index map without its reference map")
        ref = _flatten_reference(reference, grid_h, grid_w, vocab_size)
    if coder == RAW:
        flat = _decode_raw(payload, grid_h * grid_w, vocab_size)
    elif coder in (STATIC, CONTEXT, TEMPORAL):
        if vocab_size == 1:
            if payload:
                raise PayloadError("non-empty payload for a one-symbol vocabulary")
            flat = [0] * (grid_h * grid_w)
        elif coder == STATIC:
            flat = _decode_static(payload, grid_h * grid_w, vocab_size, prior)
        else:
            flat = _decode_context(payload, grid_h, grid_w, vocab_size, prior, ref)
    else:
        raise MalformedError(f"unknown index-map coder {coder}")
    return [flat[y * grid_w : (y + 1) * grid_w] for y in range(grid_h)]


def _flatten_reference(reference, grid_h, grid_w, V):
    """The reference map in raster order, as Python ints. ec "Index maps": same size and
    vocabulary as the map; anything else is the caller's mistake (ValueError)."""
    if len(reference) != grid_h:
        raise ValueError("reference map has the wrong number of rows")
    flat = []
    for row in reference:
        if len(row) != grid_w:
            raise ValueError("reference map has the wrong number of columns")
        for v in row:
            v = int(v)
            if not 0 <= v < V:
                raise ValueError("reference map holds an index outside 0..vocab_size-1")
            flat.append(v)
    return flat


def _decode_raw(payload, n, V):
    b = (V - 1).bit_length()
    if len(payload) != (n * b + 7) // 8:
        raise PayloadError("RAW payload has the wrong length")
    if b == 0:
        return [0] * n
    big = int.from_bytes(payload, "big")
    total_bits = len(payload) * 8
    pad = total_bits - n * b
    if big & ((1 << pad) - 1):
        raise PayloadError("RAW padding bits are not zero")
    big >>= pad
    mask = (1 << b) - 1
    out = [0] * n
    for i in range(n - 1, -1, -1):
        v = big & mask
        if v >= V:
            raise PayloadError("RAW index >= vocab_size")
        out[i] = v
        big >>= b
    return out


def _decode_static(payload, n, V, prior):
    f = normalize(list(prior) if prior is not None else [1] * V)
    cum = cumulative(f)
    dec = RansDecoder(payload)
    out = [dec.decode(f, cum) for _ in range(n - 1)]
    s = dec.finish(V)
    out.append(rank_order(f)[s])
    return out


S1_INIT = (4, 2, 1, 1, 2)
S1_INC = 16
S1_LIMIT = 1024
S2_WEIGHT = 4096
S2_INC = 8
S2_NEAR = 256
ESCAPE = 4
# TEMPORAL stage 0 (ec "TEMPORAL (3)")
COPY, NEW = 0, 1
S0_INIT = (2, 1)
S0_INC = 16
S0_LIMIT = 1024

_CONTEXT_OF = {
    (1,): 0,
    (2,): 1,
    (1, 1): 2,
    (3,): 3,
    (2, 1): 4,
    (1, 1, 1): 5,
    (4,): 6,
    (3, 1): 7,
    (2, 2): 8,
    (2, 1, 1): 9,
    (1, 1, 1, 1): 10,
}
_NEAR = ((0, -2), (-2, 0), (-1, -2), (-1, 2), (-2, -1), (-2, 1))


def _stage2_table(acc, K, y, x, Wd, cands, r_ref):
    """Stage-2 table at (y, x): ``acc[v]`` = base[v] + S2_INC * occ[v], the near-set boost,
    0 for the candidates and (TEMPORAL, ``r_ref`` not None) for the reference index."""
    c2 = acc[:]
    for dy, dx in _NEAR:
        yy, xx = y + dy, x + dx
        if yy >= 0 and 0 <= xx < Wd:
            v = K[yy * Wd + xx]
            # the near set is a set: boost each distinct value once
            if c2[v] == acc[v]:
                c2[v] += S2_NEAR
    for v in cands:
        c2[v] = 0
    if r_ref is not None:
        c2[r_ref] = 0
    return normalize(c2)


def _decode_context(payload, H, Wd, V, prior, ref=None):
    """CONTEXT (ec "CONTEXT (2)"), or TEMPORAL (ec "TEMPORAL (3)") when ``ref``, the reference
    map in raster order, is given."""
    n = H * Wd
    temporal = ref is not None
    if prior is None or sum(prior) == 0:
        q, Q = [1] * V, V
    else:
        q, Q = list(prior), sum(prior)
    base = [1 + (S2_WEIGHT * (Q + V * q[v])) // (2 * V * Q) for v in range(V)]
    cnt = [list(S1_INIT) for _ in range(11)]
    cnt0 = [list(S0_INIT) for _ in range(5)]  # TEMPORAL stage-0 contexts t = 0..4
    copied = [False] * n
    acc = base[:]  # base[v] + S2_INC * occ[v]
    K = [0] * n
    dec = RansDecoder(payload)

    for i in range(n):
        y, x = divmod(i, Wd)
        last = i == n - 1
        # neighbours W, N, NW, NE (positions in raster order)
        nb = []
        if x >= 1:
            nb.append(i - 1)
        if y >= 1:
            nb.append(i - Wd)
            if x >= 1:
                nb.append(i - Wd - 1)
            if x + 1 < Wd:
                nb.append(i - Wd + 1)

        r_ref = None  # the excluded reference index of a NEW position (TEMPORAL)
        if temporal:
            # stage 0
            k0 = cnt0[sum(1 for j in nb if copied[j])]
            f0 = normalize(k0)
            s0 = dec.decode(f0, cumulative(f0))
            k0[s0] += S0_INC
            if k0[0] + k0[1] > S0_LIMIT:
                for u in (0, 1):
                    k0[u] = (k0[u] + 1) >> 1
            if s0 == COPY:
                index = ref[i]
                copied[i] = True
                if last:
                    dec.finish(None)  # start state 0 when the last position copies
                K[i] = index
                acc[index] += S2_INC
                continue
            r_ref = ref[i]

        vals = [K[j] for j in nb]
        cands = []
        for a in vals:
            if a not in cands:
                cands.append(a)
        votes = {v: vals.count(v) for v in cands}
        cands.sort(key=lambda v: -votes[v])  # stable: keeps first-slot order among ties
        m = len(cands)
        # TEMPORAL: rank of the reference index among the candidates, if it is one
        jref = cands.index(r_ref) if r_ref is not None and r_ref in cands else None

        f1 = None
        if m:
            k = cnt[_CONTEXT_OF[tuple(votes[v] for v in cands)]]
            r = [
                k[0] if m > 0 else 0,
                k[1] if m > 1 else 0,
                k[2] if m > 2 else 0,
                k[3] if m > 3 else 0,
                k[4] if m < V else 0,
            ]
            if jref is not None:
                r[jref] = 0
            f1 = normalize(r)

        if last:
            f2 = _stage2_table(acc, K, y, x, Wd, cands, r_ref)
            if m == 0:
                weight = list(f2)
            else:
                weight = [f1[ESCAPE] * f2[v] for v in range(V)]
                for rk, v in enumerate(cands):
                    weight[v] = f1[rk] * TOTAL
            if r_ref is not None:
                weight[r_ref] = 0
            s = dec.finish(V)
            index = rank_order(weight)[s]
            if index == r_ref:
                raise PayloadError("TEMPORAL last index of a NEW position equals its reference")
            K[i] = index
            break

        index = None
        if m:
            s = dec.decode(f1, cumulative(f1))
            k[s] += S1_INC
            if sum(k) > S1_LIMIT:
                for t in range(5):
                    k[t] = (k[t] + 1) >> 1
            if s < m:
                if s == jref:
                    raise PayloadError("TEMPORAL stage-1 rank of the excluded reference index")
                index = cands[s]
            elif s != ESCAPE:
                raise PayloadError("CONTEXT stage-1 rank without a candidate")
        if index is None:
            f2 = _stage2_table(acc, K, y, x, Wd, cands, r_ref)
            v = dec.decode(f2, cumulative(f2))
            if v in cands:
                raise PayloadError("CONTEXT stage-2 symbol is an excluded candidate")
            if v == r_ref:
                raise PayloadError("TEMPORAL stage-2 symbol is the excluded reference index")
            index = v
        K[i] = index
        acc[index] += S2_INC
    return K


# ---------------------------------------------------------------------------------------------
# Text codecs (text-codecs.md)
# ---------------------------------------------------------------------------------------------

UTF8, LZW, TOKANS1 = 0, 1, 2
TEXT_LIMIT = 1 << 20


def _utf8(out: bytes) -> str:
    try:
        return out.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        raise PayloadError(f"decoded text is not well-formed UTF-8: {e}") from None


def decode_text(payload, codec) -> str:
    payload = bytes(payload)
    codec = int(codec)
    if codec not in (UTF8, LZW, TOKANS1):
        raise MalformedError(f"text codec {codec} is not in the registry")
    if not payload:
        return ""
    if codec == UTF8:
        if len(payload) > TEXT_LIMIT:
            raise LimitError("text longer than 2^20 bytes")
        return _utf8(payload)
    if codec == LZW:
        return lzw_decode(payload)
    return tokans_decode(payload)


def lzw_decode(payload) -> str:
    payload = bytes(payload)
    if not payload:
        return ""
    total_bits = len(payload) * 8
    big = int.from_bytes(payload, "big")
    pos = 0
    table: list[bytes | None] = [bytes([i]) for i in range(256)] + [None, None]
    nxt = 258
    prev: bytes | None = None
    out = bytearray()
    while True:
        width = min(12, nxt.bit_length())
        if total_bits - pos < width:
            raise PayloadError("LZW: END missing")
        code = (big >> (total_bits - pos - width)) & ((1 << width) - 1)
        pos += width
        if code == 257:
            break
        if code == 256:
            del table[258:]
            nxt = 258
            prev = None
            continue
        if prev is None:
            if code >= 258:
                raise PayloadError("LZW: first code is not a literal")
            entry = table[code]
        elif code < nxt:
            entry = table[code]
        elif code == nxt and nxt < 4096:
            entry = prev + prev[:1]
        else:
            raise PayloadError("LZW: code beyond next")
        if prev is not None and nxt < 4096:
            table.append(prev + entry[:1])
            nxt += 1
        if len(out) + len(entry) > TEXT_LIMIT:
            raise LimitError("LZW: text longer than 2^20 bytes")
        out += entry
        prev = entry
    # padding: remaining bits in END's last byte must be zero; no bytes after it
    end_byte = (pos + 7) // 8
    if end_byte != len(payload):
        raise PayloadError("LZW: bytes follow END")
    pad = total_bits - pos
    if big & ((1 << pad) - 1):
        raise PayloadError("LZW: non-zero padding after END")
    if not out:
        raise PayloadError("non-empty payload decodes to zero bytes")
    return _utf8(bytes(out))


VOCAB_PATH = Path(__file__).resolve().parents[2] / "spec" / "text" / "tokans-1.vocab"
VOCAB_SHA256 = "4a643a0f0424bcaca97fc840b19c5161072b5aad515bff8b193185e3a37c6566"
_vocab_cache = None


def load_tokans_vocab(path=VOCAB_PATH):
    global _vocab_cache
    if _vocab_cache is not None and path == VOCAB_PATH:
        return _vocab_cache
    raw = Path(path).read_bytes()
    if hashlib.sha256(raw).hexdigest() != VOCAB_SHA256:
        raise ValueError("tokans-1 vocabulary differs from the specification (SHA-256)")
    lines = raw.decode("ascii").split("\n")
    assert lines[-1] == "" and lines[0].startswith("#")
    lines = lines[1:-1]
    freqs, tokens = [], []
    for k, line in enumerate(lines):
        if k == 0:
            freqs.append(int(line))
            tokens.append(b"")
        else:
            f, hx = line.split(" ")
            freqs.append(int(f))
            tokens.append(bytes.fromhex(hx))
    assert sum(freqs) == TOTAL and len(freqs) == 8141
    assert all(tokens[k] == bytes([k - 1]) for k in range(1, 257))
    result = (freqs, cumulative(freqs), tokens)
    if path == VOCAB_PATH:
        _vocab_cache = result
    return result


def tokans_decode(payload) -> str:
    payload = bytes(payload)
    if not payload:
        return ""
    freqs, cum, tokens = load_tokans_vocab()
    dec = RansDecoder(payload)
    out = bytearray()
    while True:
        t = dec.decode(freqs, cum)
        if t == 0:
            break
        tok = tokens[t]
        if len(out) + len(tok) > TEXT_LIMIT:
            raise LimitError("tokans-1: text longer than 2^20 bytes")
        out += tok
    dec.finish(None)
    if not out:
        raise PayloadError("non-empty payload decodes to zero bytes")
    return _utf8(bytes(out))


# ---------------------------------------------------------------------------------------------
# MessagePack (for HEAD metadata, m3v §5.4)
# ---------------------------------------------------------------------------------------------


class _MsgpackError(Exception):
    pass


def msgpack_unpack(buf: bytes):
    obj, pos = _mp(buf, 0, 0)
    if pos != len(buf):
        raise _MsgpackError("bytes after the msgpack object")
    return obj


def _mp_take(buf, pos, n):
    if pos + n > len(buf):
        raise _MsgpackError("truncated msgpack")
    return buf[pos : pos + n], pos + n


def _mp(buf, pos, depth):
    if depth > 256:
        raise _MsgpackError("msgpack nested too deeply")
    b, pos = _mp_take(buf, pos, 1)
    t = b[0]
    if t <= 0x7F:
        return t, pos
    if t >= 0xE0:
        return t - 0x100, pos
    if 0x80 <= t <= 0x8F:
        return _mp_map(buf, pos, t & 0x0F, depth)
    if 0x90 <= t <= 0x9F:
        return _mp_arr(buf, pos, t & 0x0F, depth)
    if 0xA0 <= t <= 0xBF:
        return _mp_str(buf, pos, t & 0x1F)
    if t == 0xC0:
        return None, pos
    if t == 0xC2:
        return False, pos
    if t == 0xC3:
        return True, pos
    sizes = {0xC4: 1, 0xC5: 2, 0xC6: 4}
    if t in sizes:
        raw, pos = _mp_take(buf, pos, sizes[t])
        return _mp_take(buf, pos, int.from_bytes(raw, "big"))
    ext = {0xC7: 1, 0xC8: 2, 0xC9: 4}
    if t in ext:
        raw, pos = _mp_take(buf, pos, ext[t])
        typ, pos = _mp_take(buf, pos, 1)
        data, pos = _mp_take(buf, pos, int.from_bytes(raw, "big"))
        return ("ext", struct.unpack("b", typ)[0], data), pos
    if t == 0xCA:
        raw, pos = _mp_take(buf, pos, 4)
        return struct.unpack(">f", raw)[0], pos
    if t == 0xCB:
        raw, pos = _mp_take(buf, pos, 8)
        return struct.unpack(">d", raw)[0], pos
    uints = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
    if t in uints:
        raw, pos = _mp_take(buf, pos, uints[t])
        return int.from_bytes(raw, "big"), pos
    ints = {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
    if t in ints:
        raw, pos = _mp_take(buf, pos, ints[t])
        return int.from_bytes(raw, "big", signed=True), pos
    fixext = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}
    if t in fixext:
        typ, pos = _mp_take(buf, pos, 1)
        data, pos = _mp_take(buf, pos, fixext[t])
        return ("ext", struct.unpack("b", typ)[0], data), pos
    strs = {0xD9: 1, 0xDA: 2, 0xDB: 4}
    if t in strs:
        raw, pos = _mp_take(buf, pos, strs[t])
        return _mp_str(buf, pos, int.from_bytes(raw, "big"))
    if t in (0xDC, 0xDD):
        raw, pos = _mp_take(buf, pos, 2 if t == 0xDC else 4)
        return _mp_arr(buf, pos, int.from_bytes(raw, "big"), depth)
    if t in (0xDE, 0xDF):
        raw, pos = _mp_take(buf, pos, 2 if t == 0xDE else 4)
        return _mp_map(buf, pos, int.from_bytes(raw, "big"), depth)
    raise _MsgpackError(f"msgpack type byte 0x{t:02x} is never used")


def _mp_str(buf, pos, n):
    raw, pos = _mp_take(buf, pos, n)
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError:
        raise _MsgpackError("msgpack str is not UTF-8") from None


def _mp_arr(buf, pos, n, depth):
    if n > len(buf) - pos:  # each element takes at least one byte
        raise _MsgpackError("truncated msgpack array")
    out = []
    for _ in range(n):
        v, pos = _mp(buf, pos, depth + 1)
        out.append(v)
    return out, pos


def _mp_map(buf, pos, n, depth):
    if 2 * n > len(buf) - pos:
        raise _MsgpackError("truncated msgpack map")
    out = {}
    for _ in range(n):
        k, pos = _mp(buf, pos, depth + 1)
        v, pos = _mp(buf, pos, depth + 1)
        if isinstance(k, list):
            k = tuple(k)
        try:
            if k in out:
                raise _MsgpackError("duplicate msgpack map key")
            out[k] = v
        except TypeError:
            raise _MsgpackError("unhashable msgpack map key") from None
    return out, pos


# ---------------------------------------------------------------------------------------------
# Container (m3v.md)
# ---------------------------------------------------------------------------------------------

SIGNATURE = b"\x8bM3V\r\n\x1a\n"
HEAD, CLIP, INDX, TAIL = 1, 2, 3, 4
READER_MAJOR, READER_MINOR = 1, 1
_PACK_CHARS = set(b"abcdefghijklmnopqrstuvwxyz0123456789._-")


def check_signature(data: bytes):
    if data[:8] == SIGNATURE:
        return
    damaged = {
        b"\x8bM3V\n\x1a\n": "CR LF converted to LF",
        b"\x8bM3V\r\n\x1a\r\n": "LF converted to CR LF",
        b"\x0bM3V\r\n\x1a\n": "bit 7 cleared",
    }
    for sig, why in damaged.items():
        if data[: len(sig)] == sig and len(data) >= len(sig):
            raise SignatureError(f"signature damaged by text-mode transfer ({why})", 0, True)
    if len(data) < 8 and SIGNATURE.startswith(bytes(data)):
        raise TruncatedError("data ends inside the signature", 0)
    raise SignatureError("not an .m3v stream (bad signature)", 0)


class Chunk:
    __slots__ = ("crc_ok", "end", "offset", "payload_end", "payload_start", "type")

    def __init__(self, ctype, offset, pstart, pend, crc_ok):
        self.type = ctype
        self.offset = offset
        self.payload_start = pstart
        self.payload_end = pend
        self.end = pend + 4
        self.crc_ok = crc_ok


def read_chunk(data, pos: int) -> Chunk:
    """Frame one chunk at ``pos`` (m3v §4.1). Checks it fits before touching its payload."""
    n = len(data)
    if pos >= n:
        raise TruncatedError("data ends before the chunk type", pos)
    ctype = data[pos]
    try:
        length, p = read_leb128(data, pos + 1, n, 4)
    except TruncatedError:
        raise TruncatedError("data ends inside the chunk length", pos) from None
    except MalformedError as e:
        raise MalformedError(f"chunk length is malformed: {e}", pos) from None
    total = p - pos + length + 4
    if pos + total > n:
        raise TruncatedError(f"chunk of {total} bytes runs past the end of the data ({n - pos} left)", pos)
    stored = struct.unpack_from("<I", data, p + length)[0]
    ok = crc32c(memoryview(data)[pos : p + length]) == stored
    return Chunk(ctype, pos, p, p + length, ok)


class _Reader:
    """Cursor inside one payload; every failure is MalformedError at the chunk's offset."""

    def __init__(self, data, start, end, chunk_offset):
        self.d, self.p, self.end, self.off = data, start, end, chunk_offset

    def fail(self, msg, cls=None):
        raise (cls or MalformedError)(msg, self.off)

    def u8(self):
        if self.p >= self.end:
            self.fail("payload ends inside a field")
        v = self.d[self.p]
        self.p += 1
        return v

    def fixed(self, n):
        if self.p + n > self.end:
            self.fail("payload ends inside a field")
        v = bytes(self.d[self.p : self.p + n])
        self.p += n
        return v

    def leb(self, max_bytes=9):
        try:
            v, self.p = read_leb128(self.d, self.p, self.end, max_bytes)
        except M3VError as e:
            self.fail(f"malformed LEB128 field: {e.message}")
        return v

    def rest(self):
        v = bytes(self.d[self.p : self.end])
        self.p = self.end
        return v


def _rng(r, value, lo, hi, what, cls=LimitError):
    if not lo <= value <= hi:
        r.fail(f"{what} = {value} outside {lo}..{hi}", cls)
    return value


def parse_head(data, chunk: Chunk) -> dict:
    r = _Reader(data, chunk.payload_start, chunk.payload_end, chunk.offset)
    major = r.u8()
    minor = r.u8()
    if major != READER_MAJOR:
        raise UnsupportedVersionError(
            f"stream version {major}.{minor} is not supported (this reader implements 1.x)", chunk.offset
        )
    h = {"version": [major, minor]}
    h["width"] = _rng(r, r.leb(), 1, 65535, "width")
    h["height"] = _rng(r, r.leb(), 1, 65535, "height")
    terms = [_rng(r, r.leb(), 1, 2**32 - 1, "rational term") for _ in range(4)]
    h["fps"] = terms[0:2]
    h["time_base"] = terms[2:4]
    if (terms[1] * terms[3]) % (terms[0] * terms[2]):
        r.fail("time base does not give integer timestamps")
    h["frame_count"] = _rng(r, r.leb(), 0, 2**40 - 1, "frame_count")
    plen = _rng(r, r.leb(), 1, 64, "pack_id_length")
    pid = r.fixed(plen)
    if any(b not in _PACK_CHARS for b in pid) or pid[0] in b"._-":
        r.fail("pack_id has characters outside a-z 0-9 . _ - or starts badly")
    h["pack_id"] = pid.decode("ascii")
    h["pack_hash"] = r.fixed(32).hex()
    gh = _rng(r, r.leb(), 1, 1024, "grid_h")
    gw = _rng(r, r.leb(), 1, 1024, "grid_w")
    if gh * gw > 1 << 18:
        r.fail("grid_h * grid_w exceeds 2^18", LimitError)
    h["grid"] = [gh, gw]
    V = _rng(r, r.leb(), 1, 4096, "vocab_size")
    h["vocab_size"] = V
    tc = r.u8()
    if tc not in (UTF8, LZW, TOKANS1):
        r.fail(f"text codec {tc} is not in the registry")
    h["text_codec"] = tc
    h["default_mode"] = _rng(r, r.u8(), 0, 1, "default_mode", MalformedError)
    h["stream_seed"] = struct.unpack("<Q", r.fixed(8))[0]
    pc = r.leb()
    if pc not in (0, V):
        r.fail("prior_count is neither 0 nor vocab_size")
    h["prior"] = [_rng(r, r.leb(), 0, 2**24 - 1, "prior[i]") for _ in range(pc)]
    ml = _rng(r, r.leb(), 0, 2**20, "metadata_length")
    meta = r.fixed(ml)
    if ml == 0:
        h["metadata"] = {}  # see report: empty metadata is written as length 0
    else:
        try:
            m = msgpack_unpack(meta)
        except _MsgpackError as e:
            r.fail(f"metadata is not well-formed msgpack: {e}")
        if not isinstance(m, dict) or not all(isinstance(k, str) for k in m):
            r.fail("metadata is not a map with string keys")
        h["metadata"] = m
    ext = r.rest()
    if ext and minor <= READER_MINOR:
        r.fail(f"non-empty HEAD extension in a version 1.{minor} stream (this reader implements 1.{READER_MINOR})")
    h["extension"] = ext.hex()
    return h


def parse_clip(data, chunk: Chunk, header: dict, reference_of=None) -> dict:
    """Parse and decode one CLIP chunk. ``reference_of(k)`` returns the decoded index map of
    clip k, or None when that clip is unavailable (m3v §6.5); it is asked only for the
    reference of a TEMPORAL map. Without it every reference is unavailable.

    A dependent clip whose reference is unavailable is intact but undecodable (m3v §6.5, §14
    ``readable_clips`` / ``decodable_clips``): it is returned with ``decodable`` False,
    ``index_map`` None and the MissingReferenceError in ``reference_error``; the caller
    reports it. Every other problem raises."""
    r = _Reader(data, chunk.payload_start, chunk.payload_end, chunk.offset)
    c = {"offset": chunk.offset, "size": chunk.end - chunk.offset}
    c["index"] = r.leb()
    c["first_frame"] = r.leb()
    c["frame_count"] = _rng(r, r.leb(), 1, 2**40 - 1, "frame_count")
    if c["first_frame"] + c["frame_count"] > 2**40 - 1:
        r.fail("first_frame + frame_count exceeds 2^40-1", LimitError)
    flags = r.u8()
    if flags & 0xFC and header["version"][1] <= READER_MINOR:
        r.fail("reserved flag bits set")
    c["mode"] = "prediction" if flags & 1 else "interpolation"
    if flags & 2:
        seed = r.leb(10)
        c["seed"] = _rng(r, seed, 0, 2**64 - 1, "seed")
    else:
        c["seed"] = None
    c["decode_seed"] = decode_seed(header["stream_seed"], c["index"], c["seed"])
    texts = {0: "", 1: ""}
    imap = None
    have_map = False
    missing_reference = None
    last_kind = -1
    anc = []
    codec = header["text_codec"]
    while r.p < r.end:
        tag = r.leb()
        kind, blen = tag & 15, tag >> 4
        body = r.fixed(blen)
        if kind & 8:
            anc.append([kind, body.hex()])
            continue
        if kind > 2:
            raise UnknownChunkError(f"unknown critical sub-chunk kind {kind}", chunk.offset)
        if kind <= last_kind:
            r.fail("critical sub-chunks repeated or out of order")
        last_kind = kind
        if kind in (0, 1):
            if not body:
                r.fail("empty text sub-chunk")
            try:
                texts[kind] = decode_text(body, codec)
            except M3VError as e:
                raise type(e)(e.message, chunk.offset) from None
        else:
            br = _Reader(body, 0, len(body), chunk.offset)
            coder = br.u8()
            mh, mw = br.leb(), br.leb()
            if [mh, mw] != header["grid"]:
                br.fail("index map size differs from the header's grid")
            # m3v §11 (since 1.3): at most 16 cells a byte of CLIP chunk, checked before decoding
            if mh * mw > 16 * c["size"]:
                br.fail("index map has more than 16 cells a byte of its CLIP chunk", LimitError)
            # TEMPORAL is registered since 1.1: in a 1.0 stream it is an unregistered coder
            known = (RAW, STATIC, CONTEXT, TEMPORAL) if header["version"][1] >= 1 else (RAW, STATIC, CONTEXT)
            if coder not in known:
                br.fail(f"unknown index-map coder {coder}")
            reference = None
            if coder == TEMPORAL:
                if c["index"] == 0:
                    br.fail("clip 0 uses TEMPORAL (it has no previous clip)")
                reference = reference_of(c["index"] - 1) if reference_of else None
                if reference is None:
                    # m3v §6.5: MUST NOT be decoded against any other map
                    missing_reference = MissingReferenceError(
                        f"clip {c['index']} is dependent (TEMPORAL) and its reference, clip "
                        f"{c['index'] - 1}, is unavailable",
                        chunk.offset,
                    )
            have_map = True
            c["index_map_coder"] = coder
            if missing_reference is None:
                try:
                    imap = decode_index_map(
                        br.rest(), mh, mw, header["vocab_size"], coder, header["prior"] or None, reference
                    )
                except M3VError as e:
                    raise type(e)(e.message, chunk.offset) from None
    if not have_map:
        r.fail("index map sub-chunk missing")
    c["keyframe_text"], c["clip_text"] = texts[0], texts[1]
    c["index_map"] = imap
    c["ancillary"] = anc
    c["decodable"] = missing_reference is None
    c["reference_error"] = missing_reference
    return c


def parse_indx(data, chunk: Chunk) -> list:
    r = _Reader(data, chunk.payload_start, chunk.payload_end, chunk.offset)
    count = _rng(r, r.leb(), 0, 2**32 - 1, "clip_count")
    frame_end = r.leb()
    if count > chunk.payload_end - r.p:  # each entry takes at least 2 bytes
        r.fail("clip_count larger than the payload can hold")
    entries, off, fr = [], 0, 0
    for k in range(count):
        od, fd = r.leb(), r.leb()
        if k and (od == 0 or fd == 0):
            r.fail("index deltas must be positive")
        off, fr = off + od, fr + fd
        entries.append([off, fr])
    if r.p != r.end:
        r.fail("bytes after the last index entry")
    if count == 0 and frame_end != 0:
        r.fail("frame_end must be 0 without clips")
    if count and entries[0][1] != 0:
        r.fail("first_frame(0) must be 0")
    result = []
    for k, (o, f) in enumerate(entries):
        nxt = entries[k + 1][1] if k + 1 < count else frame_end
        if nxt <= f:
            r.fail("index gives a clip no frames")
        result.append({"offset": o, "first_frame": f, "frame_count": nxt - f})
    return result


def _resync(data, start, last_clip_index):
    """m3v §9 resynchronisation: first offset >= start where a CLIP/INDX/TAIL chunk with a
    correct CRC begins (a CLIP's clip_index must exceed the last intact one)."""
    n = len(data)
    for p in range(start, n - 5):
        if data[p] not in (CLIP, INDX, TAIL):
            continue
        try:
            ch = read_chunk(data, p)
        except M3VError:
            continue
        if not ch.crc_ok:
            continue
        if ch.type == CLIP:
            try:
                ci, _ = read_leb128(data, ch.payload_start, ch.payload_end, 9)
            except M3VError:
                continue
            if ci <= last_clip_index:
                continue
        return p
    return None


def read_stream(data: bytes, strict: bool = True) -> dict:
    """Read a whole stream.

    strict=True raises the first error met (after §9 recovery, truncation at the end of the
    data is not an error: it is reported in ``truncated_at``). strict=False returns every
    readable clip and lists the errors in ``errors``. Errors that make the whole stream
    unreadable (signature, HEAD, version, unknown critical chunk) are raised in both modes.

    A dependent (TEMPORAL) clip whose reference, clip k-1, is unavailable (damaged, lost, cut
    off, or itself undecodable) is readable but not decodable (m3v §6.5, §14): it is listed in
    ``clips`` with ``decodable`` False and ``index_map`` None, and a MissingReferenceError at its
    offset is reported like any per-clip error. Every other clip has ``decodable`` True.
    """
    data = bytes(data)
    check_signature(data)
    head_chunk = read_chunk(data, 8)
    if not head_chunk.crc_ok:
        raise ChecksumError(f"CRC-32C mismatch in chunk type 0x{head_chunk.type:02x}", 8)
    if head_chunk.type != HEAD:
        raise MalformedError("the first chunk is not HEAD", 8)
    header = parse_head(data, head_chunk)

    errors: list[M3VError] = []

    def damage(err):
        if strict:
            raise err
        errors.append(err)

    clips: list[dict] = []
    indx_chunk = None
    index_entries = None
    index_source = "scan"
    terminated = False
    truncated_at = None
    pos = head_chunk.end
    last_index = -1
    expect_index, expect_frame = 0, 0
    gap_ok = False  # a clip was lost: numbering may jump
    n = len(data)

    while pos < n:
        try:
            ch = read_chunk(data, pos)
        except (TruncatedError, MalformedError) as e:
            nxt = _resync(data, pos + 1, last_index)
            if nxt is None and isinstance(e, TruncatedError):
                truncated_at = pos  # m3v §9 truncation: the incomplete chunk is absent
                break
            damage(e)
            if nxt is None:
                break
            pos, gap_ok = nxt, True
            continue
        t = ch.type
        if t & 0x80:
            pos = ch.end  # unknown ancillary chunk: skipped
            continue
        if t not in (CLIP, INDX, TAIL) and ch.crc_ok:
            if t == HEAD:
                raise MalformedError("a second HEAD chunk", ch.offset)
            raise UnknownChunkError(f"unknown critical chunk type 0x{t:02x}", ch.offset)
        if not ch.crc_ok:
            damage(ChecksumError(f"CRC-32C mismatch in chunk type 0x{t:02x}", ch.offset))
            # the length may be damaged too: step by it only if a good chunk follows
            try:
                follow = ch.end >= n or read_chunk(data, ch.end).crc_ok
            except M3VError:
                follow = False
            if follow:
                pos = ch.end
            else:
                nxt = _resync(data, pos + 1, last_index)
                if nxt is None:
                    break
                pos = nxt
            gap_ok = True
            continue
        if t == CLIP:
            if index_entries is not None:
                damage(MalformedError("CLIP after INDX", ch.offset))
            try:
                # m3v §6.5: a dependent clip k decodes against clip k-1's map, available only
                # if clip k-1 is the last clip read intact and was itself decodable
                clip = parse_clip(
                    data, ch, header, lambda k: clips[-1]["index_map"] if clips and clips[-1]["index"] == k else None
                )
                if gap_ok:
                    ok = clip["index"] > last_index and (
                        clip["index"] != expect_index or clip["first_frame"] == expect_frame
                    )
                else:
                    ok = clip["index"] == expect_index and clip["first_frame"] == expect_frame
                if not ok:
                    raise MalformedError("clip numbering or frames out of sequence", ch.offset)
            except M3VError as e:
                if e.offset is None:
                    e.offset = ch.offset
                damage(e)
                gap_ok = True
                pos = ch.end
                continue
            missing = clip.pop("reference_error")
            if missing is not None:
                # intact but undecodable (m3v §6.5, §9): reported, and kept as a readable clip
                damage(missing)
            clips.append(clip)
            last_index = clip["index"]
            expect_index = clip["index"] + 1
            expect_frame = clip["first_frame"] + clip["frame_count"]
            gap_ok = False
            pos = ch.end
            continue
        if t == INDX:
            try:
                index_entries = parse_indx(data, ch)
            except M3VError as e:
                damage(e)
                index_entries = []
            indx_chunk = ch
            pos = ch.end
            # TAIL must follow immediately
            if pos >= n:
                break  # ends after INDX: unterminated
            try:
                tail = read_chunk(data, pos)
            except TruncatedError:
                truncated_at = pos
                break
            if tail.type != TAIL or not tail.crc_ok:
                damage(MalformedError("INDX is not followed by an intact TAIL", pos))
                index_entries = None
                continue
            t = TAIL
            ch = tail
        # TAIL
        if ch.payload_end - ch.payload_start != 12 or data[ch.offset + 1] != 0x0C:
            damage(MalformedError("TAIL payload is not 12 bytes", ch.offset))
            break
        ioff, isize = struct.unpack_from("<QI", data, ch.payload_start)
        index_ok = index_entries is not None and indx_chunk is not None
        if index_ok and not (
            ioff == indx_chunk.offset and isize == indx_chunk.end - ioff and ioff + isize == ch.offset
        ):
            damage(MalformedError("TAIL does not point at the INDX chunk", ch.offset))
            index_ok = False
        if ch.end != n:
            damage(MalformedError("bytes follow TAIL", ch.offset))
        terminated = True
        if index_ok:
            # every intact clip must agree with its entry; entries of lost clips cannot be
            # checked, and the index must list every clip (no entries beyond the last one)
            agree = all(
                c["index"] < len(index_entries)
                and index_entries[c["index"]]
                == {"offset": c["offset"], "first_frame": c["first_frame"], "frame_count": c["frame_count"]}
                for c in clips
            )
            if clips and len(index_entries) <= clips[-1]["index"]:
                agree = False
            if (agree and len(index_entries) == len(clips)) or (agree and errors):
                index_source = "trailer"
            else:
                damage(MalformedError("INDX disagrees with the clips", indx_chunk.offset))
        break

    if terminated and not errors and header["frame_count"]:
        total = sum(c["frame_count"] for c in clips)
        if total != header["frame_count"]:
            damage(MalformedError("header frame_count differs from the clips' sum", 8))

    return {
        "header": header,
        "clips": clips,
        "index": index_source,
        "terminated": terminated,
        "truncated_at": truncated_at,
        "errors": errors,
    }
