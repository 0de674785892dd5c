"""The format's rANS arithmetic (spec/entropy-coding.md, "The rANS coder"), on constriction.

Every entropy-coded payload in a `.m3v` stream (index maps, the ``tokans-1``
text codec) uses one coder: range ANS with a 64-bit state, 32-bit words and
frequencies that sum to ``2**24``.  Models are integer frequency tables; they
reach constriction as ``freq - 1`` so that its fast quantiser reproduces them
exactly (scale 1.0, see ``_constriction_model``), which keeps encoder and
decoder bit-identical and lets a decoder written from the spec alone agree.

A payload is the coder's words in little-endian byte order, with the zero
bytes at the end of the last (most significant, never zero) word removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .constants import ANS_PRECISION
from .errors import PayloadError

# What AnsEncoder keeps: (symbols, table or tables), or (cums, freqs, None) for intervals.
_Segment = tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, None]

__all__ = ["TOTAL", "AnsDecoder", "AnsEncoder", "Model", "ideal_bits", "normalize", "rank_order"]

TOTAL = 1 << ANS_PRECISION


def normalize(counts: Sequence[int] | np.ndarray, total: int = TOTAL) -> np.ndarray:
    """Turn non-negative integer counts into frequencies >= 1 that sum to ``total``.

    The spec's procedure: with n symbols and C = sum(counts) (every count taken
    as 1 when C is 0), f_i = 1 + floor(c_i * (total - n) / C); the shortfall
    goes to the first symbol with the largest count.
    """
    c = np.asarray(counts, dtype=np.int64)
    n = c.shape[-1] if c.ndim else 0
    if c.ndim != 1 or n < 1 or n > total // 2:
        raise ValueError(f"cannot normalise {n} counts")
    if np.any(c < 0) or np.any(c >= 1 << 31):
        raise ValueError("counts must lie in [0, 2**31)")
    total_count = int(c.sum())
    if total_count == 0:
        c = np.ones(n, dtype=np.int64)
        total_count = n
    # c_i < 2**31 and total - n < 2**24 keep the product inside int64.
    freqs = 1 + (c * (total - n)) // total_count
    freqs[int(np.argmax(c))] += total - int(freqs.sum())
    return freqs


def ideal_bits(symbols: np.ndarray, freqs: np.ndarray) -> float:
    """Code length in bits of ``symbols`` under per-symbol tables ``freqs`` (shape N x n or n)."""
    symbols = np.asarray(symbols, dtype=np.int64)
    if freqs.ndim == 1:
        p = freqs[symbols]
    else:
        p = freqs[np.arange(len(symbols)), symbols]
    return float(np.sum(ANS_PRECISION - np.log2(p)))


def _constriction_model(freqs: np.ndarray) -> Any:
    import constriction

    # With probabilities f_i - 1 the quantiser's scale is (2**24 - n) / sum = 1.0
    # exactly, so its left cumulatives are exactly sum_{j<i} f_j: the model IS the table.
    return constriction.stream.model.Categorical(np.asarray(freqs, dtype=np.float64) - 1.0, perfect=False)


def _check_table(freqs: np.ndarray) -> None:
    if freqs.shape[-1] >= 2 and (np.any(freqs < 1) or np.any(freqs.sum(axis=-1) != TOTAL)):
        raise ValueError("frequency table must have entries >= 1 summing to 2**24")


class Model:
    """A frequency table prepared once for many symbols (building the constriction model
    costs far more than one pop)."""

    def __init__(self, freqs: np.ndarray) -> None:
        self.freqs = np.asarray(freqs, dtype=np.int64)
        if self.freqs.ndim != 1:
            raise ValueError("a Model holds one table")
        _check_table(self.freqs)
        self._model = _constriction_model(self.freqs) if self.freqs.shape[0] > 1 else None


class AnsEncoder:
    """Collects symbols in decoding order; :meth:`finish` codes them (ANS runs in reverse)."""

    def __init__(self) -> None:
        # (symbols, tables), or (cums, freqs, None) for symbols given by their intervals
        self._segments: list[_Segment] = []

    def push(self, symbol: int, freqs: np.ndarray) -> None:
        """Append one symbol coded with its own frequency table."""
        self.push_many(np.asarray([symbol]), np.asarray(freqs)[None, :])

    def push_many(self, symbols: np.ndarray, freqs: np.ndarray) -> None:
        """Append symbols with one shared table (``freqs`` 1-D) or one table each (2-D)."""
        symbols = np.asarray(symbols, dtype=np.int32)
        freqs = np.asarray(freqs, dtype=np.int64)
        if symbols.size == 0 or freqs.shape[-1] == 1:
            return  # a one-symbol alphabet codes no bits
        _check_table(freqs)
        if np.any(symbols < 0) or np.any(symbols >= freqs.shape[-1]):
            raise ValueError("symbol outside the model's alphabet")
        self._segments.append((symbols, freqs))

    def push_intervals(self, cum: np.ndarray, freq: np.ndarray) -> None:
        """Append symbols given directly by their intervals ``[cum, cum + freq)`` of their own
        tables (what the coder uses of a table), for callers that mix tables symbol by symbol."""
        cum = np.asarray(cum, dtype=np.int64)
        freq = np.asarray(freq, dtype=np.int64)
        if cum.shape != freq.shape or cum.ndim != 1:
            raise ValueError("cum and freq must be 1-D arrays of one length")
        if np.any(freq < 1) or np.any(cum < 0) or np.any(cum + freq > TOTAL):
            raise ValueError("an interval must lie inside 0..2**24 with a frequency >= 1")
        if cum.size:
            self._segments.append((cum, freq, None))

    def finish(self, start_state: int = 0) -> bytes:
        """Code everything pushed, starting from ``start_state`` (< 2**32; see
        :func:`rank_order`: a payload's final symbol can ride in the start state)."""
        if not 0 <= start_state < 1 << 32:
            raise ValueError("start state must fit one word")
        n_symbols = sum(len(seg[0]) for seg in self._segments)
        if len(self._segments) * 4 > n_symbols or any(len(seg) == 3 for seg in self._segments):
            # Many short segments (a TEMPORAL map alternates its stages symbol by symbol):
            # constriction's per-call cost dominates, so run the spec's integer steps here.
            return _encode_python(self._segments, start_state)
        return _encode_constriction(self._segments, start_state)


def _encode_constriction(segments: list[_Segment], start_state: int) -> bytes:
    import constriction

    initial = np.asarray([start_state] if start_state else [], dtype=np.uint32)
    coder = constriction.stream.stack.AnsCoder(initial)
    for segment in reversed(segments):  # no intervals: finish() sends those to _encode_python
        symbols, freqs = segment[0], segment[1]
        if freqs.ndim == 1:
            coder.encode_reverse(symbols, _constriction_model(freqs))
        else:
            family = constriction.stream.model.Categorical(perfect=False)
            coder.encode_reverse(symbols, family, freqs.astype(np.float64) - 1.0)
    words = np.asarray(coder.get_compressed(), dtype="<u4")
    return words.tobytes().rstrip(b"\x00")


def _encode_python(segments: list[_Segment], start_state: int) -> bytes:
    """The encoder of spec/entropy-coding.md ("Encoding"), step by step on Python integers;
    the same payload as constriction's (checked in tests/test_ans.py)."""
    cums, freqs = [], []
    for segment in segments:
        if len(segment) == 3:  # already intervals
            cums.append(segment[0])
            freqs.append(segment[1])
            continue
        symbols, table = segment
        table = table if table.ndim == 2 else np.broadcast_to(table, (len(symbols), table.shape[0]))
        rows = np.arange(len(symbols))
        cum = np.cumsum(table, axis=1) - table
        cums.append(cum[rows, symbols])
        freqs.append(table[rows, symbols])
    state, out = start_state, []
    mask = (1 << 32) - 1
    for cum, f in zip(reversed(np.concatenate(cums).tolist()), reversed(np.concatenate(freqs).tolist())):
        if (state >> (64 - ANS_PRECISION)) >= f:
            out.append(state & mask)
            state >>= 32
        state = ((state // f) << ANS_PRECISION) | (cum + state % f)
    while state:
        out.append(state & mask)
        state >>= 32
    return np.asarray(out, dtype="<u4").tobytes().rstrip(b"\x00")


class AnsDecoder:
    """Pops symbols from a payload in order; :meth:`finish` checks the end state."""

    def __init__(self, payload: bytes) -> None:
        import constriction

        if payload and payload[-1] == 0:
            raise PayloadError("coded payload ends in a zero byte")
        padded = bytes(payload) + b"\x00" * (-len(payload) % 4)
        words = np.frombuffer(padded, dtype="<u4").astype(np.uint32)
        self._coder = constriction.stream.stack.AnsCoder(words)

    def pop(self, model: Model | np.ndarray | Sequence[int]) -> int:
        """Pop one symbol coded with ``model`` (a :class:`Model` or a frequency table)."""
        if isinstance(model, Model):
            return 0 if model._model is None else int(self._coder.decode(model._model))
        freqs = np.asarray(model, dtype=np.int64)
        if freqs.shape[-1] == 1:
            return 0
        return int(self._coder.decode(_constriction_model(freqs)))

    def pop_many(self, count: int, freqs: np.ndarray) -> np.ndarray:
        """Pop ``count`` symbols with one shared table (1-D) or one table each (2-D)."""
        freqs = np.asarray(freqs, dtype=np.int64)
        if count == 0 or freqs.shape[-1] == 1:
            return np.zeros(count, dtype=np.int32)
        if freqs.ndim == 1:
            return np.asarray(self._coder.decode(_constriction_model(freqs), count), dtype=np.int32)
        import constriction

        family = constriction.stream.model.Categorical(perfect=False)
        return np.asarray(self._coder.decode(family, freqs.astype(np.float64) - 1.0), dtype=np.int32)

    @property
    def exhausted(self) -> bool:
        """True once the state is back at its start value 0 (no words left)."""
        return bool(self._coder.is_empty())

    def finish(self) -> None:
        """Raise unless every word was consumed and the state returned to 0."""
        if not self._coder.is_empty():
            raise PayloadError("coded payload has data left after its last symbol")

    def finish_state(self, limit: int) -> int:
        """The state left after the last popped symbol, which must be below ``limit``
        with no words left: the start state the encoder was given."""
        rest = np.asarray(self._coder.get_compressed())
        state = int(rest[0]) if len(rest) == 1 else 0
        if len(rest) > 1 or state >= limit:
            raise PayloadError("coded payload has data left after its last symbol")
        return state


def rank_order(weights: np.ndarray) -> np.ndarray:
    """Symbols by decreasing weight, ties by increasing symbol: ``rank_order(w)[r]`` is the
    symbol of rank r.  A payload's final symbol is sent as its rank, as the coder's start
    state, so a likely final symbol costs a few bits instead of up to 24."""
    w = np.asarray(weights)
    return np.lexsort((np.arange(len(w)), -w))
