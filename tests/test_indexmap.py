"""Index-map coders (spec/entropy-coding.md): round trips, damaged payloads, limits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m3cvc_format.constants import MAX_GRID_SIDE, MAX_GRID_SYMBOLS, MAX_PRIOR_COUNT, MAX_VOCAB_SIZE, IndexMapCoder
from m3cvc_format.errors import LimitError, MissingReferenceError, PayloadError
from m3cvc_format.indexmap import decode_index_map, encode_index_map, index_map_code_length

CODERS = list(IndexMapCoder)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def index_maps(draw, max_side: int = 12):
    vocab = draw(st.sampled_from([1, 2, 3, 5, 16, 256, 257, MAX_VOCAB_SIZE]))
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["random", "few", "runs", "constant", "blocks"]))
    if kind == "random":
        x = rng.integers(0, vocab, size=(h, w))
    elif kind == "few":
        x = rng.choice(rng.integers(0, vocab, size=3), size=(h, w))
    elif kind == "runs":
        x = np.repeat(rng.integers(0, vocab, size=(h, (w + 2) // 3)), 3, axis=1)[:, :w]
    elif kind == "constant":
        x = np.full((h, w), int(rng.integers(0, vocab)))
    else:
        small = rng.integers(0, vocab, size=((h + 1) // 2, (w + 1) // 2))
        x = np.kron(small, np.ones((2, 2), dtype=np.int64))[:h, :w]
    prior = None
    if draw(st.booleans()):
        prior = draw(st.sampled_from(["random", "zeros", "max", "sparse"]))
        if prior == "random":
            prior = rng.integers(0, 1000, size=vocab).tolist()
        elif prior == "zeros":
            prior = [0] * vocab
        elif prior == "max":
            prior = [MAX_PRIOR_COUNT] * vocab
        else:
            prior = [0] * vocab
            prior[int(rng.integers(0, vocab))] = MAX_PRIOR_COUNT
    return x, vocab, prior


def reference_for(x, vocab, seed=0, changed=0.3):
    """A reference map for TEMPORAL: ``x`` with a share of its cells set to random values."""
    rng = np.random.default_rng(seed)
    ref = np.asarray(x, dtype=np.int64).copy()
    cells = rng.random(ref.shape) < changed
    ref[cells] = rng.integers(0, vocab, size=int(cells.sum()))
    return ref


def roundtrip(x, vocab, coder, prior=None):
    ref = reference_for(x, vocab)  # the other coders ignore it
    data = encode_index_map(x, vocab, coder, prior, ref)
    out = decode_index_map(data, x.shape[0], x.shape[1], vocab, coder, prior, ref)
    assert out.dtype == np.uint16 and out.shape == x.shape
    assert np.array_equal(out, x)
    return data


@pytest.mark.parametrize("coder", CODERS)
@SETTINGS
@given(case=index_maps())
def test_roundtrip(coder, case):
    x, vocab, prior = case
    data = roundtrip(x, vocab, coder, prior)
    if vocab == 1:
        assert data == b""
    if coder is not IndexMapCoder.RAW and vocab > 1:
        ideal = index_map_code_length(x, vocab, coder, prior, reference_for(x, vocab))
        # rANS: at most the ideal length plus the final state (64 bits) and rounding.
        assert len(data) * 8 <= ideal + 64 + 32 + 1e-6 * ideal


@pytest.mark.parametrize("coder", CODERS)
def test_one_by_one(coder):
    for vocab in (1, 2, 256, MAX_VOCAB_SIZE):
        for v in {0, vocab - 1}:
            roundtrip(np.array([[v]]), vocab, coder)
            roundtrip(np.array([[v]]), vocab, coder, [1] * vocab)


def test_raw_layout():
    x = np.array([[1, 2, 3]])
    assert encode_index_map(x, 4, IndexMapCoder.RAW) == bytes([0b01101100])
    assert encode_index_map(np.array([[5]]), 256, IndexMapCoder.RAW) == b"\x05"
    assert encode_index_map(np.array([[1, 0, 1]]), 2, IndexMapCoder.RAW) == bytes([0b10100000])


def test_static_empty_payload_for_one_symbol():
    assert encode_index_map(np.zeros((5, 7), int), 1, IndexMapCoder.STATIC) == b""
    with pytest.raises(PayloadError):
        decode_index_map(b"\x01", 5, 7, 1, IndexMapCoder.CONTEXT)


def test_large_static_and_raw():
    rng = np.random.default_rng(1)
    x = rng.integers(0, MAX_VOCAB_SIZE, size=(256, MAX_GRID_SYMBOLS // 256))
    for coder in (IndexMapCoder.RAW, IndexMapCoder.STATIC):
        roundtrip(x, MAX_VOCAB_SIZE, coder)
    y = rng.integers(0, 2, size=(MAX_GRID_SIDE, MAX_GRID_SYMBOLS // MAX_GRID_SIDE))
    roundtrip(y, 2, IndexMapCoder.STATIC, [3, 1])


def test_large_context():
    rng = np.random.default_rng(2)
    small = rng.integers(0, 256, size=(32, 32))
    x = np.kron(small, np.ones((4, 4), dtype=np.int64))
    noise = rng.random(x.shape) < 0.3
    x[noise] = rng.integers(0, 256, size=int(noise.sum()))
    data = roundtrip(x, 256, IndexMapCoder.CONTEXT)
    assert len(data) < x.size  # better than 8 bits an index
    roundtrip(rng.integers(0, MAX_VOCAB_SIZE, size=(40, 64)), MAX_VOCAB_SIZE, IndexMapCoder.CONTEXT)


@pytest.mark.parametrize("coder", CODERS)
@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(max_size=64),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    vocab=st.sampled_from([2, 3, 256, MAX_VOCAB_SIZE]),
    use_prior=st.booleans(),
)
def test_garbage_raises_only_payload_error(coder, data, h, w, vocab, use_prior):
    prior = list(range(vocab)) if use_prior else None
    ref = np.arange(h * w).reshape(h, w) % vocab
    try:
        out = decode_index_map(data, h, w, vocab, coder, prior, ref)
    except PayloadError:
        return
    assert out.shape == (h, w) and int(out.max()) < vocab
    # A payload that decodes is the canonical one: re-encoding gives it back.
    assert encode_index_map(out, vocab, coder, prior, ref) == data


@pytest.mark.parametrize("coder", CODERS)
@SETTINGS
@given(case=index_maps(), cut=st.integers(1, 8), flip=st.integers(0, 10**6))
def test_damaged_payloads(coder, case, cut, flip):
    x, vocab, prior = case
    ref = reference_for(x, vocab, seed=flip)
    data = encode_index_map(x, vocab, coder, prior, ref)
    if not data:
        return
    truncated = data[: max(0, len(data) - cut)]
    try:
        out = decode_index_map(truncated, x.shape[0], x.shape[1], vocab, coder, prior, ref)
    except PayloadError:
        pass
    else:
        # A short payload can shrink into another valid one by chance (one
        # symbol whose cumulative frequency ends in a zero byte, or symbols of
        # frequency 1 that code as all-ones words); it then decodes to another map.
        assert coder is not IndexMapCoder.RAW
        assert not np.array_equal(out, x)
    # A flipped bit either fails cleanly or decodes to some valid map.
    b = bytearray(data)
    b[flip % len(b)] ^= 1 << (flip // len(b) % 8)
    try:
        out = decode_index_map(bytes(b), x.shape[0], x.shape[1], vocab, coder, prior, ref)
    except PayloadError:
        return
    assert out.shape == x.shape and int(out.max()) < vocab


@pytest.mark.parametrize("coder", CODERS)
def test_truncated_payload_fails(coder):
    rng = np.random.default_rng(4)
    x = np.kron(rng.integers(0, 256, size=(10, 16)), np.ones((2, 2), dtype=np.int64))
    x[rng.random(x.shape) < 0.2] = 7
    # Not the uniform STATIC table for 256 symbols: with every frequency 2**16
    # that coder is a plain 8-bit packer, and any shorter byte string is the
    # valid code of some other map (the container's CRC catches truncation).
    prior = np.bincount(x.reshape(-1), minlength=256).tolist()
    ref = reference_for(x, 256, seed=5)
    data = encode_index_map(x, 256, coder, prior, ref)
    for cut in range(1, 17):
        with pytest.raises(PayloadError):
            decode_index_map(data[:-cut], 20, 32, 256, coder, prior, ref)


def test_raw_wrong_length_and_padding():
    x = np.array([[1, 2, 3]])
    data = encode_index_map(x, 4, IndexMapCoder.RAW)
    for bad in (data + b"\x00", b"", bytes([data[0] | 1])):
        with pytest.raises(PayloadError):
            decode_index_map(bad, 1, 3, 4, IndexMapCoder.RAW)
    with pytest.raises(PayloadError):  # index 4 in a 3-entry vocabulary
        decode_index_map(bytes([0b11000000]), 1, 1, 3, IndexMapCoder.RAW)


def test_trailing_zero_byte_rejected():
    x = np.arange(12).reshape(3, 4) % 7
    for coder in (IndexMapCoder.STATIC, IndexMapCoder.CONTEXT):
        data = encode_index_map(x, 7, coder)
        with pytest.raises(PayloadError):
            decode_index_map(data + b"\x00", 3, 4, 7, coder)
        with pytest.raises(PayloadError):
            decode_index_map(data + b"\x01", 3, 4, 7, coder)


@pytest.mark.parametrize("coder", CODERS)
def test_limits(coder):
    x = np.zeros((2, 2), dtype=np.int64)
    for h, w in ((0, 1), (1, 0), (MAX_GRID_SIDE + 1, 1), (MAX_GRID_SIDE, MAX_GRID_SIDE)):
        with pytest.raises(LimitError):
            decode_index_map(b"", h, w, 4, coder)
    for vocab in (0, MAX_VOCAB_SIZE + 1):
        with pytest.raises(LimitError):
            decode_index_map(b"", 2, 2, vocab, coder)
        with pytest.raises(LimitError):
            encode_index_map(x, vocab, coder)
    for prior in ([1, 2, 3], [1, 2, 3, 4, 5], [1, -1, 1, 1], [0, 0, 0, MAX_PRIOR_COUNT + 1], [1.5, 1, 1, 1]):
        with pytest.raises(LimitError):
            encode_index_map(x, 4, coder, prior)
        with pytest.raises(LimitError):
            decode_index_map(b"", 2, 2, 4, coder, prior)
    with pytest.raises(ValueError):
        encode_index_map(np.array([[0, 4]]), 4, coder)
    with pytest.raises(ValueError):
        encode_index_map(np.array([[0, -1]]), 4, coder)
    with pytest.raises(ValueError):
        encode_index_map(np.zeros(4, dtype=np.int64), 4, coder)
    with pytest.raises(LimitError):
        encode_index_map(np.zeros((MAX_GRID_SIDE + 1, 1), dtype=np.int64), 4, coder)
    with pytest.raises(LimitError):
        encode_index_map(np.zeros((0, 3), dtype=np.int64), 4, coder)


def test_unknown_coder():
    with pytest.raises(ValueError):
        encode_index_map(np.zeros((1, 1), int), 4, 7)
    with pytest.raises(ValueError):
        decode_index_map(b"", 1, 1, 4, 4)


def test_temporal_needs_a_reference_of_the_map_size():
    x = np.arange(12).reshape(3, 4) % 5
    for bad in (None, np.zeros((4, 3), int), np.full((3, 4), 5)):
        with pytest.raises(MissingReferenceError):
            encode_index_map(x, 5, IndexMapCoder.TEMPORAL, None, bad)
        with pytest.raises(MissingReferenceError):
            decode_index_map(b"", 3, 4, 5, IndexMapCoder.TEMPORAL, None, bad)
    assert isinstance(MissingReferenceError("x"), ValueError)


def test_temporal_copies_cost_almost_nothing():
    """A map equal to its reference is the empty payload; a few changed cells cost a few bytes,
    far below CONTEXT; a reference unrelated to the map costs little more than CONTEXT."""
    rng = np.random.default_rng(8)
    x = rng.integers(0, 256, size=(40, 64))
    assert encode_index_map(x, 256, IndexMapCoder.TEMPORAL, None, x) == b""
    assert np.array_equal(decode_index_map(b"", 40, 64, 256, IndexMapCoder.TEMPORAL, None, x), x)
    y = x.copy()
    y[rng.random(x.shape) < 0.05] = 7
    temporal = len(encode_index_map(y, 256, IndexMapCoder.TEMPORAL, None, x))
    context = len(encode_index_map(y, 256, IndexMapCoder.CONTEXT))
    assert temporal < context / 4
    unrelated = rng.integers(0, 256, size=x.shape)
    assert len(encode_index_map(y, 256, IndexMapCoder.TEMPORAL, None, unrelated)) < context * 1.02


def test_temporal_new_cell_decoding_its_reference_is_invalid():
    """A NEW cell can never be its reference index: payloads built to say so are rejected."""
    from m3cvc_format.ans import AnsEncoder, normalize
    from m3cvc_format.indexmap import S0_INIT, _s2_base

    ref = np.zeros((1, 1), dtype=np.int64)
    # A one-cell map: stage 0 says NEW, then the start state gives rank 1 of the weights,
    # in which the excluded reference index 0 comes last.
    enc = AnsEncoder()
    enc.push(1, normalize(list(S0_INIT)))
    with pytest.raises(PayloadError, match="reference"):
        decode_index_map(enc.finish(1), 1, 1, 2, IndexMapCoder.TEMPORAL, None, ref)
    assert np.array_equal(decode_index_map(enc.finish(0), 1, 1, 2, IndexMapCoder.TEMPORAL, None, ref), [[1]])
    # Stage 2 at the first of two cells: NEW, then the excluded value 0 (frequency 1).
    ref = np.zeros((1, 2), dtype=np.int64)
    c2 = _s2_base(None, 3)
    c2[0] = 0
    enc = AnsEncoder()
    enc.push(1, normalize(list(S0_INIT)))
    enc.push(0, normalize(c2))
    enc.push(0, normalize(list(S0_INIT)))  # the last cell: COPY
    with pytest.raises(PayloadError, match="excluded"):
        decode_index_map(enc.finish(0), 1, 2, 3, IndexMapCoder.TEMPORAL, None, ref)
