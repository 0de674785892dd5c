#!/usr/bin/env python3
"""Train the ``tokans-1`` vocabulary (spec/text-codecs.md, "tokans-1").

Deterministic: the same two caption files give the same vocabulary file, byte
for byte.  Usage::

    python tools/train_textmodel.py \\
        --activitynet /work/shared/media/captions/activitynet_paragraphs.txt \\
        --msrvtt /work/shared/media/captions/msrvtt_trainval_captions.txt

writes ``spec/text/tokans-1.vocab`` (normative copy) and
``m3cvc_format/data/tokans-1.vocab`` (the package's copy, identical bytes)
and prints their SHA-256, which must then be written into spec/text-codecs.md
and ``TOKANS1_VOCAB_SHA256`` in m3cvc_format/textcodec.py.

Training data: the ActivityNet lines with an even 0-based line index, plus
every 4th MSR-VTT caption (0-based index divisible by 4).  The odd ActivityNet
lines are never read, so they stay a held-out test set
(tools/bench/bench_text.py reports on them separately).

Method (a SentencePiece-unigram-style vocabulary, hard-EM):

1. Candidates: words with an optional leading space (`` ?[A-Za-z]+``, `` ?[0-9]+``),
   punctuation runs with an optional leading and/or trailing space, and every
   byte n-gram of length 2..6 (not crossing a line end) seen at least 20
   times; words and punctuation runs seen at least twice; at most 24 bytes.
   Plus all 256 single bytes.  Initial score of a token: its occurrence count.
2. Four rounds of: Viterbi segmentation of every training line with costs
   -log2(count / total) (minimum total cost; ties go to the earlier-found
   path), re-count the tokens used, keep all 256 single bytes and the
   most used multi-byte tokens (ties broken by the token's bytes): 20000,
   14000, 10000, then 7935 (so at most 8192 ids with END and the bytes).
3. A last segmentation with the final vocabulary gives the counts; multi-byte
   tokens it never uses are dropped; END is counted once per line.
4. Token ids: 0 = END, 1..256 = bytes 0x00..0xFF, then the multi-byte tokens
   by decreasing count (ties: by bytes).  Frequencies: ``ans.normalize`` of
   the counts (sum 2**24).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from m3cvc_format.ans import TOTAL, normalize
from m3cvc_format.textcodec import cheapest_parse

ROOT = Path(__file__).resolve().parents[1]

MAX_TOKEN_LEN = 24
NGRAM_MIN, NGRAM_MAX, NGRAM_MIN_COUNT = 2, 6, 20
WORD_MIN_COUNT = 2
VOCAB_IDS = 8192  # END + 256 bytes + 7935 multi-byte tokens, at most
MAX_MULTI = VOCAB_IDS - 1 - 256
#: Multi-byte tokens kept after each round (the last equals MAX_MULTI): pruning
#: gradually keeps tokens that only pay off once their neighbours are gone.
SCHEDULE = (20000, 14000, 10000, MAX_MULTI)
ROUNDS = len(SCHEDULE)

HEADER = (
    b"# tokans-1 vocabulary: line k+2 holds token id k as '<frequency>[ <bytes as lowercase hex>]';"
    b" id 0 = END, 1..256 = bytes 0x00..0xff; frequencies sum to 2^24\n"
)

WORD_RE = re.compile(rb" ?(?:[A-Za-z]+|[0-9]+)")
PUNCT_RE = re.compile(rb" ?[!-/:-@\[-`{-~]+ ?")


def read_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def training_lines(activitynet: Path, msrvtt: Path) -> list[bytes]:
    an = read_lines(activitynet)
    mv = read_lines(msrvtt)
    return [line for i, line in enumerate(an) if i % 2 == 0] + [line for i, line in enumerate(mv) if i % 4 == 0]


def ngram_counts(lines: list[bytes]) -> Counter:
    """Counts of byte n-grams (2..6) not crossing a line end, via numpy (n-gram -> integer)."""
    buf = np.frombuffer(b"\n".join(lines) + b"\n", dtype=np.uint8).astype(np.uint64)
    is_nl = buf == 10
    out: Counter = Counter()
    for n in range(NGRAM_MIN, NGRAM_MAX + 1):
        m = len(buf) - n + 1
        key = np.zeros(m, dtype=np.uint64)
        bad = np.zeros(m, dtype=bool)
        for k in range(n):
            key = (key << np.uint64(8)) | buf[k : k + m]
            bad |= is_nl[k : k + m]
        uniq, cnt = np.unique(key[~bad], return_counts=True)
        keep = cnt >= NGRAM_MIN_COUNT
        for u, c in zip(uniq[keep].tolist(), cnt[keep].tolist()):
            out[int(u).to_bytes(n, "big")] = c
    return out


def candidates(lines: list[bytes]) -> Counter:
    cand: Counter = Counter()
    for line in lines:
        for rx in (WORD_RE, PUNCT_RE):
            cand.update(rx.findall(line))
    cand = Counter({t: c for t, c in cand.items() if c >= WORD_MIN_COUNT and 2 <= len(t) <= MAX_TOKEN_LEN})
    for t, c in ngram_counts(lines).items():
        cand[t] = max(cand.get(t, 0), c)
    return cand


def costs_from_counts(counts: dict[bytes, int]) -> dict[bytes, float]:
    """-log2 p of every token; single bytes never used count as 1."""
    total = sum(counts.values()) + sum(1 for b in range(256) if counts.get(bytes([b]), 0) == 0)
    cost = {}
    for t, c in counts.items():
        if c > 0:
            cost[t] = math.log2(total / c)
    for b in range(256):
        t = bytes([b])
        if t not in cost:
            cost[t] = math.log2(total)
    return cost


def segment_counts(lines: Counter, cost: dict[bytes, float]) -> Counter:
    """Viterbi-segment each distinct line (weighted by its multiplicity); count tokens used."""
    prefixes = set()
    for t in cost:
        for k in range(1, len(t) + 1):
            prefixes.add(t[:k])
    counts: Counter = Counter()
    for line, weight in lines.items():
        for piece in cheapest_parse(line, cost, prefixes, MAX_TOKEN_LEN):
            counts[piece] += weight
    return counts


def prune(counts: Counter, keep: int) -> dict[bytes, int]:
    multi = sorted(((c, t) for t, c in counts.items() if len(t) > 1 and c > 0), key=lambda x: (-x[0], x[1]))
    kept = {t: c for c, t in multi[:keep]}
    for b in range(256):
        kept[bytes([b])] = counts.get(bytes([b]), 0)
    return kept


def train(activitynet: Path, msrvtt: Path, log=print) -> tuple[list[bytes], list[int]]:
    t0 = time.perf_counter()
    lines = training_lines(activitynet, msrvtt)
    line_counts = Counter(lines)
    log(f"{len(lines)} training lines ({len(line_counts)} distinct), {sum(map(len, lines))} bytes")
    cand = candidates(lines)
    for b in range(256):
        cand.setdefault(bytes([b]), 0)
    byte_counts = np.bincount(np.frombuffer(b"".join(lines), dtype=np.uint8), minlength=256)
    for b in range(256):
        cand[bytes([b])] = int(byte_counts[b])
    log(f"{len(cand)} candidates ({time.perf_counter() - t0:.1f} s)")
    vocab: dict[bytes, int] = dict(cand)
    for r in range(ROUNDS):
        counts = segment_counts(line_counts, costs_from_counts(vocab))
        vocab = prune(counts, SCHEDULE[r])
        bits = sum(c * math.log2(sum(counts.values()) / c) for c in counts.values() if c)
        log(
            f"round {r + 1}: {len(vocab)} tokens, ~{bits / 8 / sum(map(len, lines)):.4f} of raw ({time.perf_counter() - t0:.1f} s)"
        )
    counts = segment_counts(line_counts, costs_from_counts(vocab))
    multi = sorted(((c, t) for t, c in counts.items() if len(t) > 1 and c > 0), key=lambda x: (-x[0], x[1]))
    tokens = [b""] + [bytes([b]) for b in range(256)] + [t for _, t in multi]
    raw_counts = [len(lines)] + [counts.get(bytes([b]), 0) for b in range(256)] + [c for c, _ in multi]
    freqs = [int(f) for f in normalize(raw_counts)]
    assert sum(freqs) == TOTAL
    log(f"final: {len(tokens)} token ids ({time.perf_counter() - t0:.1f} s)")
    return tokens, freqs


def vocab_bytes(tokens: list[bytes], freqs: list[int]) -> bytes:
    out = [HEADER]
    for i, (t, f) in enumerate(zip(tokens, freqs)):
        out.append(f"{f}\n".encode() if i == 0 else f"{f} {t.hex()}\n".encode())
    return b"".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    media = Path("/work/shared/media/captions")
    ap.add_argument("--activitynet", type=Path, default=media / "activitynet_paragraphs.txt")
    ap.add_argument("--msrvtt", type=Path, default=media / "msrvtt_trainval_captions.txt")
    ap.add_argument(
        "--out",
        type=Path,
        action="append",
        help="output file (repeatable); default: spec/text/tokans-1.vocab and m3cvc_format/data/tokans-1.vocab",
    )
    args = ap.parse_args(argv)
    outs = args.out or [ROOT / "spec/text/tokans-1.vocab", ROOT / "m3cvc_format/data/tokans-1.vocab"]
    tokens, freqs = train(args.activitynet, args.msrvtt, log=lambda s: print(s, file=sys.stderr))
    data = vocab_bytes(tokens, freqs)
    for out in outs:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, out)
        print(f"wrote {out} ({len(data)} bytes)")
    print(f"SHA-256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
