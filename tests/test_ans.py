"""The rANS coder (m3cvc_format.ans): its two encoder paths give the same payload."""

from __future__ import annotations

import numpy as np
import pytest

from m3cvc_format.ans import (
    AnsDecoder,
    AnsEncoder,
    _encode_constriction,
    _encode_python,
    normalize,
)


def _segments(rng, n_segments, max_len, widths):
    segments = []
    for _ in range(n_segments):
        n = int(rng.integers(1, max_len + 1))
        width = int(rng.choice(widths))
        if rng.random() < 0.5:
            table = normalize(rng.integers(0, 1000, width))
            symbols = rng.integers(0, width, n)
        else:
            table = np.stack([normalize(rng.integers(0, 1000, width)) for _ in range(n)])
            symbols = rng.integers(0, width, n)
        # skewed tables too: one symbol near certain, others at frequency 1
        if rng.random() < 0.3:
            table = normalize(np.r_[10**9, np.zeros(width - 1, np.int64)])
            symbols = np.where(rng.random(n) < 0.9, 0, rng.integers(0, width, n))
        segments.append((symbols.astype(np.int32), np.asarray(table, np.int64)))
    return segments


@pytest.mark.parametrize("seed", range(12))
def test_python_and_constriction_encoders_agree(seed):
    rng = np.random.default_rng(seed)
    segments = _segments(rng, int(rng.integers(1, 40)), 12, [2, 5, 256])
    start = int(rng.choice([0, 1, 7, 255, (1 << 32) - 1]))
    payload = _encode_python(segments, start)
    assert payload == _encode_constriction(segments, start)
    # and the decoder recovers every symbol and the start state
    dec = AnsDecoder(payload)
    for symbols, table in segments:
        for i, s in enumerate(symbols.tolist()):
            assert dec.pop(table if table.ndim == 1 else table[i]) == s
    assert dec.finish_state(1 << 32) == start


def test_finish_takes_the_python_path_for_many_short_segments(monkeypatch):
    import m3cvc_format.ans as ans

    calls = []
    monkeypatch.setattr(ans, "_encode_constriction", lambda *a: calls.append("c") or b"")
    table = normalize([3, 1])
    enc = AnsEncoder()
    for s in [0, 1, 0, 0, 1]:
        enc.push(s, table)
    assert enc.finish() != b"" and calls == []
    enc = AnsEncoder()
    enc.push_many(np.zeros(100, np.int32) + 1, table)
    enc.finish()
    assert calls == ["c"]


def test_intervals_code_like_their_tables():
    rng = np.random.default_rng(5)
    tables = [normalize(rng.integers(0, 50, w)) for w in (2, 5, 256) for _ in range(4)]
    symbols = [int(rng.integers(0, len(t))) for t in tables]
    by_table = AnsEncoder()
    for s, t in zip(symbols, tables):
        by_table.push(s, t)
    by_interval = AnsEncoder()
    by_interval.push_intervals(
        [int(np.sum(t[:s])) for s, t in zip(symbols, tables)], [int(t[s]) for s, t in zip(symbols, tables)]
    )
    assert by_interval.finish(3) == by_table.finish(3)
    for cum, freq in (([0], [0]), ([-1], [2]), ([(1 << 24) - 1], [2]), ([0, 1], [1])):
        with pytest.raises(ValueError):
            AnsEncoder().push_intervals(cum, freq)
