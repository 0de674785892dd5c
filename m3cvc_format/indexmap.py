"""Index-map coders (spec/entropy-coding.md, "Index maps").

A keyframe's VQ index map K* is a ``grid_h x grid_w`` array of indices into a
``vocab_size``-entry codebook.  Three coders turn it into a payload, symbols in
raster order (row by row, left to right):

* ``RAW`` (0): each index as ``bit_length(vocab_size - 1)`` bits, MSB first.
* ``STATIC`` (1): i.i.d. rANS with the table ``normalize(prior)``.
* ``CONTEXT`` (2): two-stage context model on the causal neighbours W, N, NW,
  NE: stage 1 codes which neighbour value the index repeats (or ESCAPE) with
  adaptive counts per neighbour-vote context; stage 2 codes an escaped
  index from prior + occurrence counts + a boost for the second neighbour
  ring, candidates excluded.

All models are integer-only; the entropy coder is :mod:`m3cvc_format.ans`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .ans import TOTAL, AnsDecoder, AnsEncoder, ideal_bits, normalize, rank_order
from .constants import (
    MAX_GRID_SIDE,
    MAX_GRID_SYMBOLS,
    MAX_PRIOR_COUNT,
    MAX_VOCAB_SIZE,
    IndexMapCoder,
)
from .errors import LimitError, M3VError, MissingReferenceError, PayloadError

__all__ = [
    "check_index_map_params",
    "decode_index_map",
    "encode_index_map",
    "index_map_code_length",
]

# ---------------------------------------------------------------------------
# CONTEXT model constants (spec/entropy-coding.md, "CONTEXT"); chosen by
# measurement on stand-in maps (tools/bench/bench_indexmap.py).

#: Stage-1 alphabet: candidate ranks 0..3, then ESCAPE.
ESCAPE = 4
#: Initial stage-1 counts of every context (ranks 0..3, ESCAPE).
S1_INIT = (4, 2, 1, 1, 2)
#: Added to the coded stage-1 symbol's count.
S1_INC = 16
#: When a context's count sum exceeds this, every count c becomes (c + 1) >> 1.
S1_LIMIT = 1024
#: Stage-2 base counts: 1 + floor(S2_WEIGHT * (P + V * p_i) / (2 * V * P)), V = vocab_size,
#: p = prior (all ones when absent or all zero), P = sum(p): half uniform, half prior.
S2_WEIGHT = 4096
#: Added to an index's stage-2 count each time it occurs in the map.
S2_INC = 8
#: Added once to the stage-2 count of each distinct value found at the NEAR_OFFSETS.
S2_NEAR = 256
#: TEMPORAL stage 0: COPY (the index equals the reference map's at the same position) or NEW.
COPY, NEW = 0, 1
#: Initial stage-0 counts (COPY, NEW) of every stage-0 context.
S0_INIT = (2, 1)
#: Added to the coded stage-0 symbol's count.
S0_INC = 16
#: When a stage-0 context's count sum exceeds this, both counts c become (c + 1) >> 1.
S0_LIMIT = 1024
#: Stage-0 contexts: 0..4 = how many of the existing neighbours W, N, NW, NE copied.
N_S0_CONTEXTS = 5
#: (dy, dx) of the second ring of causal neighbours: WW, NN, NWW, NEE, NNW, NNE.
NEAR_OFFSETS = ((0, -2), (-2, 0), (-1, -2), (-1, 2), (-2, -1), (-2, 1))

#: Neighbour slots, in priority order: W, N, NW, NE as (dy, dx).
NEIGHBOURS = ((0, -1), (-1, 0), (-1, -1), (-1, 1))
#: Equality bits of a neighbourhood key, bit 4 + b for pair PAIRS[b].
PAIRS = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
#: The stage-1 contexts: sorted vote counts of the candidates (spec table "Stage-1 contexts").
CONTEXTS = (
    (1,),
    (2,),
    (1, 1),
    (3,),
    (2, 1),
    (1, 1, 1),
    (4,),
    (3, 1),
    (2, 2),
    (2, 1, 1),
    (1, 1, 1, 1),
)


def _build_context_table() -> tuple[list[int], list[tuple[int, ...]]]:
    """For each neighbourhood key: (context number or -1, neighbour slots of ranks 0, 1, ...).

    key = sum of (1 << j) over existing neighbours j (0 W, 1 N, 2 NW, 3 NE)
        + sum of (1 << (4 + b)) over pairs PAIRS[b] = (j, k) of existing, equal neighbours.
    Keys that no map produces map to (-1, ()).
    """
    ctx_of = [-1] * 1024
    slots_of: list[tuple[int, ...]] = [()] * 1024
    for key in range(1024):
        valid = [(key >> j) & 1 == 1 for j in range(4)]
        eq = {pair: (key >> (4 + b)) & 1 == 1 for b, pair in enumerate(PAIRS)}
        # The first existing neighbour of equal value is each neighbour's representative.
        rep = [-1] * 4
        for j in range(4):
            if valid[j]:
                rep[j] = next(i for i in range(j + 1) if valid[i] and (i == j or eq[(i, j)]))
        consistent = all(eq[(j, k)] == (valid[j] and valid[k] and rep[j] == rep[k]) for j, k in PAIRS)
        if not consistent:
            continue
        firsts = [j for j in range(4) if valid[j] and rep[j] == j]
        votes = {j: rep.count(j) for j in firsts}
        order = sorted(firsts, key=lambda j: (-votes[j], j))
        slots_of[key] = tuple(order)
        ctx_of[key] = CONTEXTS.index(tuple(votes[j] for j in order)) if order else -1
    return ctx_of, slots_of


_CTX_OF, _SLOTS_OF = _build_context_table()
N_CONTEXTS = len(CONTEXTS)


# ---------------------------------------------------------------------------
# Parameter checks.


def check_index_map_params(
    grid_h: int, grid_w: int, vocab_size: int, prior: Sequence[int] | np.ndarray | None = None
) -> np.ndarray | None:
    """Validate grid size, vocabulary and prior; return the prior as int64 array (or None)."""
    for name, side in (("grid_h", grid_h), ("grid_w", grid_w)):
        if not isinstance(side, (int, np.integer)) or not 1 <= side <= MAX_GRID_SIDE:
            raise LimitError(f"{name} {side!r} outside 1..{MAX_GRID_SIDE}")
    if grid_h * grid_w > MAX_GRID_SYMBOLS:
        raise LimitError(f"index map of {grid_h * grid_w} symbols exceeds {MAX_GRID_SYMBOLS}")
    if not isinstance(vocab_size, (int, np.integer)) or not 1 <= vocab_size <= MAX_VOCAB_SIZE:
        raise LimitError(f"vocab_size {vocab_size!r} outside 1..{MAX_VOCAB_SIZE}")
    if prior is None:
        return None
    p = list(prior)
    if len(p) != vocab_size:
        raise LimitError(f"prior has {len(p)} counts, vocab_size is {vocab_size}")
    for v in p:
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not 0 <= v <= MAX_PRIOR_COUNT:
            raise LimitError(f"prior count {v!r} outside 0..{MAX_PRIOR_COUNT}")
    return np.asarray(p, dtype=np.int64)


def _coder(coder: IndexMapCoder | int) -> IndexMapCoder:
    try:
        return IndexMapCoder(coder)
    except ValueError:
        raise LimitError(f"unknown index-map coder {coder!r}") from None


def _static_table(prior: np.ndarray | None, vocab_size: int) -> np.ndarray:
    return normalize(np.ones(vocab_size, np.int64) if prior is None else prior)


def _s2_base(prior: np.ndarray | None, vocab_size: int) -> np.ndarray:
    """Stage-2 base counts: half uniform, half prior, total mass about S2_WEIGHT."""
    p = np.ones(vocab_size, dtype=np.int64) if prior is None or not prior.any() else prior
    v = vocab_size
    tot = int(p.sum())
    return 1 + (S2_WEIGHT * (tot + v * p)) // (2 * v * tot)


def _small_normalize(c: list[int]) -> list[int]:
    """ans.normalize for a short list of Python ints (same arithmetic)."""
    n = len(c)
    total = sum(c)
    if total == 0:
        c = [1] * n
        total = n
    scale = TOTAL - n
    f = [1 + (x * scale) // total for x in c]
    f[c.index(max(c))] += TOTAL - sum(f)
    return f


def _stage1_row(cnt: list[int], m: int, vocab_size: int) -> list[int]:
    """Stage-1 counts with m candidates: ranks >= m get 0, ESCAPE 0 when nothing is left."""
    return cnt[:m] + [0] * (4 - m) + [cnt[4] if m < vocab_size else 0]


def _normalize_rows(c: np.ndarray) -> np.ndarray:
    """ans.normalize applied to every row of ``c`` (rows of non-negative counts)."""
    n = c.shape[1]
    tot = c.sum(axis=1)
    zero = tot == 0
    if zero.any():
        c = c.copy()
        c[zero] = 1
        tot = np.where(zero, n, tot)
    f: np.ndarray = 1 + (c * (TOTAL - n)) // tot[:, None]
    f[np.arange(len(c)), np.argmax(c, axis=1)] += TOTAL - f.sum(axis=1)
    return f


# ---------------------------------------------------------------------------
# CONTEXT encoder side: the whole coding plan, vectorised where the model allows.


def _shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """x[y + dy, x + dx] for every position, -1 outside the map (dy <= 0, |dx| <= 2)."""
    h, w = x.shape
    pad = np.full((h + 2, w + 4), -1, dtype=np.int64)
    pad[2:, 2:-2] = x
    return pad[2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w]


_SLOT_LUT = np.full((1024, 4), -1, dtype=np.int64)
for _k, _s in enumerate(_SLOTS_OF):
    _SLOT_LUT[_k, : len(_s)] = _s
_CTX_LUT = np.asarray(_CTX_OF, dtype=np.int64)


def _last_cell_weights(
    c2: np.ndarray, near: list[int], cands: list[int], table1: Sequence[int] | None, exclude: int = -1
) -> np.ndarray:
    """Combined weight of each value of the last cell: f1[rank] * 2**24 for the candidate of
    that rank, f1[ESCAPE] * f2[v] for any other value (f2: the stage-2 table there).
    ``exclude`` (TEMPORAL: the reference index of a NEW cell) gets weight 0."""
    t = np.array(c2, dtype=np.int64)
    for v in set(v for v in near if v >= 0):
        t[v] += S2_NEAR
    for v in cands:
        t[v] = 0
    if exclude >= 0:
        t[exclude] = 0
    f2 = normalize(t)
    if table1 is None:  # no candidates: stage 2 alone
        weights = f2
    else:
        weights = int(table1[ESCAPE]) * f2
        for k, v in enumerate(cands):
            weights[v] = int(table1[k]) * TOTAL
    if exclude >= 0:
        weights[exclude] = 0
    return weights


def _rank_of(weights: np.ndarray, value: int) -> int:
    return int(np.flatnonzero(rank_order(weights) == value)[0])


def _stage0_contexts(copied: np.ndarray) -> np.ndarray:
    """TEMPORAL stage-0 context of every position: copied existing neighbours W, N, NW, NE."""
    c = copied.astype(np.int64)
    total: np.ndarray = sum((_shifted(c, dy, dx) == 1).astype(np.int64) for dy, dx in NEIGHBOURS)
    return total.reshape(-1)


class _ContextPlan:
    """Every symbol of a CONTEXT or TEMPORAL payload with its table, in decoding order.

    With a reference map (TEMPORAL) each position first codes stage 0, COPY or NEW; only NEW
    positions go on to stages 1 and 2, with the reference index excluded there.  Stage-0,
    stage-1 and stage-2 symbols are kept apart; ``pos0``/``pos1``/``esc`` are their raster
    positions.
    """

    def __init__(self, x: np.ndarray, vocab_size: int, prior: np.ndarray | None, ref: np.ndarray | None = None):
        h, w = x.shape
        flat = x.reshape(-1)
        n = len(flat)
        nb = np.stack([_shifted(x, dy, dx) for dy, dx in NEIGHBOURS], axis=-1).reshape(-1, 4)
        valid = nb >= 0
        key = np.zeros(len(nb), dtype=np.int64)
        for j in range(4):
            key |= valid[:, j].astype(np.int64) << j
        for b, (j, k) in enumerate(PAIRS):
            key |= ((nb[:, j] == nb[:, k]) & valid[:, j]).astype(np.int64) << (4 + b)
        ctx = _CTX_LUT[key]
        slots = _SLOT_LUT[key]
        ncand = (slots >= 0).sum(axis=1)
        cand = np.where(slots >= 0, np.take_along_axis(nb, np.maximum(slots, 0), axis=1), -1)
        match = cand == flat[:, None]
        s1 = np.where(match.any(axis=1), np.argmax(match, axis=1), ESCAPE)

        # Stage 0 (TEMPORAL): COPY/NEW with adaptive counts per copied-neighbour context.
        self.ref = None if ref is None else ref.reshape(-1)
        if self.ref is None:
            active = np.ones(n, dtype=bool)
            excl = np.full(n, -1, dtype=np.int64)
            self.pos0 = np.zeros(0, dtype=np.int64)
            self.s0 = np.zeros(0, dtype=np.int64)
            self.tables0 = np.zeros((0, 2), dtype=np.int64)
        else:
            copied = flat == self.ref
            active = ~copied
            excl = self.ref
            ctx0 = _stage0_contexts(copied.reshape(h, w))
            self.pos0 = np.arange(n)
            self.s0 = np.where(copied, COPY, NEW)
            self.tables0 = np.empty((n, 2), dtype=np.int64)
            counts0 = [list(S0_INIT) for _ in range(N_S0_CONTEXTS)]
            for i, (c, s) in enumerate(zip(ctx0.tolist(), self.s0.tolist())):
                cnt = counts0[c]
                self.tables0[i] = _small_normalize(cnt)
                cnt[s] += S0_INC
                if cnt[0] + cnt[1] > S0_LIMIT:
                    counts0[c] = [(v + 1) >> 1 for v in cnt]

        # Stage 1: adaptive counts per context, updated in raster order; a candidate equal to
        # the excluded reference index gets count 0.
        pos1 = np.flatnonzero((ncand > 0) & active)
        tables1 = np.empty((len(pos1), 5), dtype=np.int64)
        counts = [list(S1_INIT) for _ in range(N_CONTEXTS)]
        for i, (c, m, s, cd, e) in enumerate(
            zip(ctx[pos1].tolist(), ncand[pos1].tolist(), s1[pos1].tolist(), cand[pos1].tolist(), excl[pos1].tolist())
        ):
            cnt = counts[c]
            row = _stage1_row(cnt, m, vocab_size)
            if e >= 0 and e in cd[:m]:
                row[cd.index(e)] = 0
            tables1[i] = _small_normalize(row)
            cnt[s] += S1_INC
            if sum(cnt) > S1_LIMIT:
                counts[c] = [(v + 1) >> 1 for v in cnt]

        # Stage 2: every escape (and a first position without candidates).
        esc = np.flatnonzero((s1 == ESCAPE) & active)
        near = np.stack([_shifted(x, dy, dx) for dy, dx in NEAR_OFFSETS], axis=-1).reshape(-1, len(NEAR_OFFSETS))
        base = _s2_base(prior, vocab_size)
        self.chunks2: list[np.ndarray] = []
        step = max(1, (1 << 21) // vocab_size)
        for lo in range(0, len(esc), step):
            e = esc[lo : lo + step]
            rows = np.arange(len(e))
            occ = np.zeros((len(e), vocab_size), dtype=np.int64)
            occ[0] = np.bincount(flat[: e[0]], minlength=vocab_size)
            between = np.arange(e[0], e[-1])
            np.add.at(occ, (np.searchsorted(e, between, side="right"), flat[between]), 1)
            c2 = base + S2_INC * np.cumsum(occ, axis=0)
            boost = np.zeros((len(e), vocab_size), dtype=bool)
            for j in range(near.shape[1]):
                v = near[e, j]
                ok = v >= 0
                boost[rows[ok], v[ok]] = True
            c2 += S2_NEAR * boost
            for v in [cand[e, j] for j in range(4)] + [excl[e]]:
                ok = v >= 0
                c2[rows[ok], v[ok]] = 0
            self.chunks2.append(_normalize_rows(c2))
        self.flat, self.pos1, self.s1, self.tables1, self.esc = flat, pos1, s1, tables1, esc
        last = n - 1
        self._last = dict(
            m=int(ncand[last]),
            cand=cand[last].tolist(),
            near=near[last].tolist(),
            table1=tables1[-1] if len(pos1) and pos1[-1] == last else None,
            base=base,
            copied=not active[last],
            exclude=int(excl[last]),
        )

    def start_state(self) -> int:
        """The payload's start state: the last cell's rank in its weights (0 for a COPY)."""
        d = self._last
        if d["copied"]:
            return 0
        c2 = d["base"] + S2_INC * np.bincount(self.flat[:-1], minlength=len(d["base"]))
        weights = _last_cell_weights(c2, d["near"], d["cand"][: d["m"]], d["table1"], d["exclude"])
        return _rank_of(weights, int(self.flat[-1]))

    def code_length(self) -> float:
        bits = ideal_bits(self.s0, self.tables0) if len(self.pos0) else 0.0
        bits += ideal_bits(self.s1[self.pos1], self.tables1) if len(self.pos1) else 0.0
        lo = 0
        for t in self.chunks2:
            bits += ideal_bits(self.flat[self.esc[lo : lo + len(t)]], t)
            lo += len(t)
        return bits

    def push(self, enc: AnsEncoder) -> None:
        """Push the symbols in decoding order: per position stage 0, stage 1, then stage 2.

        The last cell's stage-1 and stage-2 symbols travel as the start state instead.  The
        stages alternate symbol by symbol, so each symbol goes in as its interval of its own
        table, all in one call."""
        last = len(self.flat) - 1
        tables2 = np.concatenate(self.chunks2) if self.chunks2 else np.zeros((0, 2), np.int64)
        stages = (
            (self.pos0, self.s0, self.tables0),
            (self.pos1, self.s1[self.pos1], self.tables1),
            (self.esc, self.flat[self.esc], tables2),
        )
        keys, cums, freqs = [], [], []
        for st, (pos, sym, tab) in enumerate(stages):
            keep = np.flatnonzero(pos < last) if st else np.arange(len(pos))
            rows = np.arange(len(keep))
            t = tab[keep]
            s = sym[keep]
            keys.append(pos[keep] * 3 + st)
            cums.append((np.cumsum(t, axis=1) - t)[rows, s])
            freqs.append(t[rows, s])
        order = np.argsort(np.concatenate(keys), kind="stable")
        enc.push_intervals(np.concatenate(cums)[order], np.concatenate(freqs)[order])


# ---------------------------------------------------------------------------
# Public API.


def _check_indices(indices: Any, vocab_size: int) -> np.ndarray:
    x = np.asarray(indices)
    if x.ndim != 2:
        raise ValueError("an index map is a 2-D array")
    if x.size and (not np.issubdtype(x.dtype, np.integer) and x.dtype != bool):
        raise ValueError("index map must hold integers")
    x = x.astype(np.int64)
    if x.size and (x.min() < 0 or x.max() >= vocab_size):
        raise ValueError(f"index outside the vocabulary 0..{vocab_size - 1}")
    return x


def _prepare(
    indices: Any, vocab_size: int, coder: IndexMapCoder | int, prior: Sequence[int] | None
) -> tuple[IndexMapCoder, np.ndarray, np.ndarray | None]:
    """Checked coder, map (int64, 2-D) and prior shared by the encoder and the code length."""
    x = np.asarray(indices)
    if x.ndim != 2:
        raise ValueError("an index map is a 2-D array")
    p = check_index_map_params(int(x.shape[0]), int(x.shape[1]), vocab_size, prior)
    return _coder(coder), _check_indices(x, vocab_size), p


def _reference(coder: IndexMapCoder, reference: Any, grid_h: int, grid_w: int, vocab_size: int) -> np.ndarray | None:
    """The reference map TEMPORAL needs (int64), None for the other coders (which ignore it)."""
    if coder is not IndexMapCoder.TEMPORAL:
        return None
    if reference is None:
        raise MissingReferenceError("a TEMPORAL index map needs the previous clip's index map as its reference")
    r = np.asarray(reference)
    if r.shape != (grid_h, grid_w):
        raise MissingReferenceError(f"reference map is {r.shape}, the index map is {(grid_h, grid_w)}")
    try:
        return _check_indices(r, vocab_size)
    except ValueError as exc:
        raise MissingReferenceError(f"reference map: {exc}") from None


def encode_index_map(
    indices: np.ndarray,
    vocab_size: int,
    coder: IndexMapCoder | int,
    prior: Sequence[int] | None = None,
    reference: np.ndarray | None = None,
) -> bytes:
    """Code a 2-D index map; the grid size travels outside the payload.  TEMPORAL needs
    ``reference``, the previous clip's map (same shape); the other coders ignore it."""
    coder, x, p = _prepare(indices, vocab_size, coder, prior)
    ref = _reference(coder, reference, x.shape[0], x.shape[1], vocab_size)
    if vocab_size == 1:
        return b""
    if coder is IndexMapCoder.RAW:
        bits = (vocab_size - 1).bit_length()
        shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
        b = ((x.reshape(-1)[:, None] >> shifts) & 1).astype(np.uint8)
        return np.packbits(b.reshape(-1)).tobytes()
    enc = AnsEncoder()
    flat = x.reshape(-1)
    if coder is IndexMapCoder.STATIC:
        table = _static_table(p, vocab_size)
        enc.push_many(flat[:-1], table)
        return enc.finish(_rank_of(table, int(flat[-1])))
    plan = _ContextPlan(x, vocab_size, p, ref)
    plan.push(enc)
    return enc.finish(plan.start_state())


def index_map_code_length(
    indices: np.ndarray,
    vocab_size: int,
    coder: IndexMapCoder | int,
    prior: Sequence[int] | None = None,
    reference: np.ndarray | None = None,
) -> float:
    """Ideal code length in bits of ``indices`` under ``coder``'s own model."""
    coder, x, p = _prepare(indices, vocab_size, coder, prior)
    ref = _reference(coder, reference, x.shape[0], x.shape[1], vocab_size)
    if vocab_size == 1:
        return 0.0
    if coder is IndexMapCoder.RAW:
        return float(x.size * (vocab_size - 1).bit_length())
    if coder is IndexMapCoder.STATIC:
        return ideal_bits(x.reshape(-1), _static_table(p, vocab_size))
    return _ContextPlan(x, vocab_size, p, ref).code_length()


def decode_index_map(
    data: bytes,
    grid_h: int,
    grid_w: int,
    vocab_size: int,
    coder: IndexMapCoder | int,
    prior: Sequence[int] | None = None,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """Decode a payload to a ``(grid_h, grid_w)`` uint16 array; PayloadError if it is invalid.
    TEMPORAL needs ``reference`` (MissingReferenceError without it); other coders ignore it."""
    coder = _coder(coder)
    p = check_index_map_params(grid_h, grid_w, vocab_size, prior)
    ref = _reference(coder, reference, grid_h, grid_w, vocab_size)
    data = bytes(data)
    n = grid_h * grid_w
    if vocab_size == 1:
        if data:
            raise PayloadError("a one-symbol vocabulary codes an empty payload")
        return np.zeros((grid_h, grid_w), dtype=np.uint16)
    if coder is IndexMapCoder.RAW:
        return _decode_raw(data, grid_h, grid_w, vocab_size)
    try:
        dec = AnsDecoder(data)
        flat: np.ndarray | list[int]
        if coder is IndexMapCoder.STATIC:
            table = _static_table(p, vocab_size)
            flat = np.append(dec.pop_many(n - 1, table), rank_order(table)[dec.finish_state(vocab_size)])
        else:
            flat = _decode_context(
                dec, grid_h, grid_w, vocab_size, p, None if ref is None else ref.reshape(-1).tolist()
            )
    except M3VError as exc:
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError(str(exc)) from None
    except (ValueError, RuntimeError, OverflowError, IndexError) as exc:
        raise PayloadError(f"index-map payload does not decode: {exc}") from None
    return np.asarray(flat, dtype=np.uint16).reshape(grid_h, grid_w)


def _decode_raw(data: bytes, grid_h: int, grid_w: int, vocab_size: int) -> np.ndarray:
    bits = (vocab_size - 1).bit_length()
    n = grid_h * grid_w
    nbits = n * bits
    if len(data) != (nbits + 7) // 8:
        raise PayloadError(f"RAW index map of {n} x {bits} bits needs {(nbits + 7) // 8} bytes, got {len(data)}")
    b = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    if b[nbits:].any():
        raise PayloadError("RAW index map has non-zero padding bits")
    weights = (1 << np.arange(bits - 1, -1, -1)).astype(np.int64)
    vals = b[:nbits].reshape(n, bits).astype(np.int64) @ weights
    if vals.max(initial=0) >= vocab_size:
        raise PayloadError("RAW index map holds an index outside the vocabulary")
    return vals.astype(np.uint16).reshape(grid_h, grid_w)


def _decode_context(
    dec: AnsDecoder, h: int, w: int, vocab_size: int, prior: np.ndarray | None, ref: list[int] | None = None
) -> list[int]:
    """CONTEXT, or TEMPORAL when ``ref`` (the reference map, flat) is given."""
    out = [0] * (h * w)
    copied = [False] * (h * w)
    counts = [list(S1_INIT) for _ in range(N_CONTEXTS)]
    counts0 = [list(S0_INIT) for _ in range(N_S0_CONTEXTS)]
    c2 = _s2_base(prior, vocab_size)  # live stage-2 counts: base + S2_INC * occurrences
    c2_sum = int(c2.sum())
    ctx_of, slots_of = _CTX_OF, _SLOTS_OF
    scale2 = TOTAL - vocab_size
    pop = dec.pop
    near_offsets = [(dy * w + dx, dy, dx) for dy, dx in NEAR_OFFSETS]
    last = h * w - 1
    for y in range(h):
        row = y * w
        for xx in range(w):
            i = row + xx
            excl = -1
            if ref is not None:  # stage 0: COPY or NEW
                t = 0
                if xx:
                    t += copied[i - 1]
                if y:
                    t += copied[i - w] + (copied[i - w - 1] if xx else 0) + (copied[i - w + 1] if xx + 1 < w else 0)
                cnt0 = counts0[t]
                s0 = pop(_small_normalize(cnt0))
                cnt0[s0] += S0_INC
                if cnt0[0] + cnt0[1] > S0_LIMIT:
                    counts0[t] = [(v + 1) >> 1 for v in cnt0]
                excl = ref[i]
                if s0 == COPY:
                    out[i] = excl
                    copied[i] = True
                    c2[excl] += S2_INC
                    c2_sum += S2_INC
                    if i == last:
                        dec.finish_state(1)
                    continue
            # Neighbours W, N, NW, NE (-1 = missing).
            w_ = out[i - 1] if xx else -1
            if y:
                n_ = out[i - w]
                nw_ = out[i - w - 1] if xx else -1
                ne_ = out[i - w + 1] if xx + 1 < w else -1
            else:
                n_ = nw_ = ne_ = -1
            nb = (w_, n_, nw_, ne_)
            key = (w_ >= 0) | (n_ >= 0) << 1 | (nw_ >= 0) << 2 | (ne_ >= 0) << 3
            if w_ >= 0:
                key |= (w_ == n_) << 4 | (w_ == nw_) << 5 | (w_ == ne_) << 6
            if n_ >= 0:
                key |= (n_ == nw_) << 7 | (n_ == ne_) << 8
            if nw_ >= 0:
                key |= (nw_ == ne_) << 9
            slots = slots_of[key]
            m = len(slots)
            cands = [nb[k] for k in slots]
            row1 = _stage1_row(counts[ctx_of[key]], m, vocab_size) if m else []
            if m and excl in cands:
                row1[cands.index(excl)] = 0
            if i == last:  # the last cell: its rank is the state the coder ends in
                table1 = _small_normalize(row1) if m else None
                near = [out[i + off] for off, dy, dx in near_offsets if y + dy >= 0 and 0 <= xx + dx < w]
                weights = _last_cell_weights(c2, near, cands, table1, excl)
                v = int(rank_order(weights)[dec.finish_state(vocab_size)])
                if v == excl:
                    raise PayloadError("TEMPORAL: a NEW cell decoded its reference index")
                out[i] = v
                break
            if m:
                c = ctx_of[key]
                cnt = counts[c]
                s = pop(_small_normalize(row1))
                cnt[s] += S1_INC
                if sum(cnt) > S1_LIMIT:
                    counts[c] = [(v + 1) >> 1 for v in cnt]
                if s < m:
                    v = cands[s]
                    if v == excl:
                        raise PayloadError("TEMPORAL: a NEW cell decoded its reference index")
                    out[i] = v
                    c2[v] += S2_INC
                    c2_sum += S2_INC
                    continue
                if s != ESCAPE:
                    raise PayloadError("CONTEXT stage 1 decoded a rank without a candidate")
            # Stage 2.
            t = c2.copy()
            tot = c2_sum
            boosted = set()
            for off, dy, dx in near_offsets:
                if y + dy >= 0 and 0 <= xx + dx < w:
                    v = out[i + off]
                    if v not in boosted:
                        boosted.add(v)
                        t[v] += S2_NEAR
                        tot += S2_NEAR
            for v in set(cands) | ({excl} if excl >= 0 else set()):
                tot -= int(t[v])
                t[v] = 0
            if tot == 0:
                t[:] = 1
                tot = vocab_size
            f = 1 + (t * scale2) // tot
            f[int(np.argmax(t))] += TOTAL - int(f.sum())
            v = pop(f)
            if v in cands or v == excl:
                raise PayloadError("CONTEXT stage 2 decoded an excluded value")
            out[i] = v
            c2[v] += S2_INC
            c2_sum += S2_INC
    return out
