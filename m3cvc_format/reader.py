"""`.m3v` reader: sequential from a pipe, random access through the index, recovery by scanning.

Reading never allocates more than the bytes that actually arrive: a length
field is checked against the file size (or read only as far as the data
goes) before anything of that size is built.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .chunks import parse_clip, parse_head, parse_index
from .constants import (
    ANCILLARY_CHUNK_BIT,
    MAX_LENGTH_VARINT_BYTES,
    PRMT_VERSION_MINOR,
    SIGNATURE,
    TAIL_SIZE,
    ChunkType,
)
from .errors import (
    ChecksumError,
    LimitError,
    M3VError,
    MalformedError,
    MissingIndexError,
    SignatureError,
    TruncatedError,
    UnknownChunkError,
)
from .framing import WINDOW as _WINDOW
from .framing import ByteSource, RawChunk, chunk_extent, read_chunk, read_tail
from .model import Clip, ClipRecord, Header, IndexEntry, SequentialDecoder, decode_with_references
from .opener import Source, open_source
from .prompts import parse_prompts
from .syntax import read_leb128

__all__ = ["Damage", "RawChunk", "Reader"]

#: Bytes the searches for an intact chunk after damage (spec §9) may checksum in all, per stream:
#: this plus this factor times the furthest offset read.  Each candidate costs a CRC over
#: its whole span and candidates may overlap, so without a bound a hostile stream of n bytes
#: costs n^2; a damaged real stream needs a few megabytes a search.
_RESYNC_BASE_BYTES = 64 << 20
_RESYNC_BYTES_PER_BYTE = 64


@dataclass(frozen=True)
class Damage:
    """A region a reader skipped: where, and why."""

    offset: int
    error: M3VError


class Reader:
    """Read a `.m3v` stream from a path, a ``Path``, ``"-"``, bytes, a binary file object, or
    a Matroska file carrying one (anything :func:`~m3cvc_format.opener.open_source` opens).

    ``on_damage="raise"`` stops at the first damaged chunk; ``"skip"`` records it
    in :attr:`damage`, resynchronises at the next intact chunk and goes on.  ``follow=True``
    reads a file still being written, waiting up to ``timeout`` seconds for more data;
    ``sniff_mkv=False`` reads a Matroska file's bytes as they are (a SignatureError).
    """

    def __init__(
        self,
        src: Any,
        *,
        on_damage: str = "raise",
        follow: bool = False,
        timeout: float | None = None,
        sniff_mkv: bool = True,
    ) -> None:
        if on_damage not in ("raise", "skip"):
            raise ValueError("on_damage must be 'raise' or 'skip'")
        self._source: Source = open_source(src, follow=follow, timeout=timeout, sniff_mkv=sniff_mkv)
        self.name = self._source.name
        self._src = ByteSource(self._source.file)
        self.on_damage = on_damage
        self.damage: list[Damage] = []
        self.truncated = False
        self._index: list[IndexEntry] | None = None
        self._positions: dict[int, int] = {}  # clip index -> position in _index
        self._tail_seen = False  # a walk over the chunks ended at a TAIL chunk
        self._index_source: str | None = None
        self.index_offset: int | None = None
        # The PRMT chunk (spec §4.3): found by the first walk over the chunks before the first
        # clip, or by a look there when the prompts are asked for first.
        self._prompts_chunk: RawChunk | None = None
        self._prompts_settled = False  # the chunks before the first clip have been seen
        self._prompts: dict[str, Any] | None = None
        self._prompts_done = False
        self._resync_checked = 0  # bytes the searches after damage have checksummed
        try:
            self.header, self.header_end = self._read_header()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ basics

    @property
    def seekable(self) -> bool:
        return self._src.seekable

    @property
    def size(self) -> int | None:
        return self._src.size

    @property
    def bytes_seen(self) -> int:
        """Bytes of the stream read so far (its size, once a pipe has been read to the end)."""
        return self._src.position

    @property
    def reads(self) -> int:
        """Read calls made on the underlying file so far (for measuring random access)."""
        return self._src.reads

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_header(self) -> tuple[Header, int]:
        if self.seekable:  # one read usually covers signature and HEAD
            self._src.peek(0, _WINDOW)
        sig = self._src.peek(0, len(SIGNATURE))
        if len(sig) < len(SIGNATURE):
            if SIGNATURE.startswith(sig) and sig:
                raise TruncatedError("data ends inside the signature", len(sig))
            raise SignatureError("not an .m3v stream (too short for the signature)", 0)
        if sig != SIGNATURE:
            raise SignatureError(_signature_problem(sig), 0)
        chunk = self._chunk_at(len(SIGNATURE))
        if chunk is None:
            raise TruncatedError("stream ends before its HEAD chunk", len(SIGNATURE))
        if chunk.chunk_type != ChunkType.HEAD:
            raise MalformedError(f"first chunk is type 0x{chunk.chunk_type:02x}, not HEAD", len(SIGNATURE))
        return parse_head(chunk.payload, chunk.offset), chunk.offset + chunk.size

    # ------------------------------------------------------------ chunks

    def _chunk_at(self, pos: int) -> RawChunk | None:
        """The chunk at ``pos``, CRC checked; None at a clean end of data."""
        return read_chunk(self._src, pos)

    def _resync(self, pos: int, last_clip: int) -> int | None:
        """First offset after ``pos`` where an intact CLIP, INDX or TAIL chunk starts."""
        end = self.size
        q = pos + 1
        while end is None or q < end:
            window = self._src.peek(q, _WINDOW)
            if not window:
                return None
            for i, t in enumerate(window):
                if t not in (ChunkType.CLIP, ChunkType.INDX, ChunkType.TAIL):
                    continue
                cand = q + i
                # Cheap plausibility before a CRC over the span.
                head = self._src.peek(cand, 1 + MAX_LENGTH_VARINT_BYTES + 9)
                try:
                    p, total = chunk_extent(head[: 1 + MAX_LENGTH_VARINT_BYTES], cand)
                except M3VError:
                    continue
                if (end is not None and cand + total > end) or (t == ChunkType.TAIL and total != TAIL_SIZE):
                    continue
                if t == ChunkType.CLIP:
                    try:
                        clip_index, _ = read_leb128(head, p)
                    except (IndexError, ValueError):
                        continue
                    if clip_index <= last_clip:
                        continue
                try:
                    if self._chunk_at(cand) is not None:
                        return cand
                except TruncatedError:  # runs past the data (a pipe's size is not known): no CRC,
                    # only the bytes there were to read
                    self._resync_checked += max(0, min(total, self._src.position - cand))
                except M3VError:
                    self._resync_checked += total
                # The bound grows with the data read, not with cand + total: a length may lie.
                if self._resync_checked > _RESYNC_BASE_BYTES + _RESYNC_BYTES_PER_BYTE * self._src.position:
                    self._note_damage(
                        cand,
                        LimitError(
                            f"stopped looking for an intact chunk after checking {self._resync_checked} bytes",
                            cand,
                        ),
                    )
                    return None
            q += len(window)
        return None

    def chunks(self) -> Iterator[RawChunk]:
        """Every chunk after HEAD in file order (no recovery: the first problem raises)."""
        pos = self.header_end
        while True:
            chunk = self._chunk_at(pos)
            if chunk is None:
                return
            yield chunk
            pos += chunk.size

    # ------------------------------------------------------------ sequential clips

    def __iter__(self) -> Iterator[ClipRecord]:
        return self.clips()

    def clips(self, on_damage: str | None = None) -> Iterator[ClipRecord]:
        """Clips in file order, read sequentially (works on pipes).

        Ancillary chunks are skipped; the walk ends at TAIL or at the end of the
        data.  A stream that ends inside a chunk sets :attr:`truncated` and ends
        after the last complete clip.  ``on_damage`` overrides the reader's
        policy for this walk.
        """
        on_damage = on_damage or self.on_damage
        pos = self.header_end
        last_index = -1
        expected_frame = 0
        minor = self.header.version[1]
        while True:
            try:
                chunk = self._chunk_at(pos)
                if chunk is None:
                    self._prompts_settled = True
                    return
                t = chunk.chunk_type
                if t == ChunkType.PRMT and last_index < 0 and minor >= PRMT_VERSION_MINOR:
                    if self._prompts_chunk is None and not self._prompts_settled:
                        self._prompts_chunk = chunk  # parsed when asked for (prompts)
                    self._prompts_settled = True  # later PRMT chunks are ignored (§4.3)
                if t == ChunkType.CLIP:
                    self._prompts_settled = True
                    record = parse_clip(chunk.payload, pos, chunk.size, minor)
                    if record.index <= last_index:
                        raise MalformedError(f"clip {record.index} follows clip {last_index}", pos)
                    if record.index == last_index + 1 and record.first_frame != expected_frame:
                        raise MalformedError(
                            f"clip {record.index} starts at frame {record.first_frame}, expected {expected_frame}",
                            pos,
                        )
                    last_index = record.index
                    expected_frame = record.end_frame
                    pos += chunk.size
                    yield record
                    continue
                if t == ChunkType.TAIL:
                    self._prompts_settled = True
                    end = pos + chunk.size
                    if self._src.peek(end, 1):
                        raise MalformedError("data follows the TAIL chunk", end)
                    self._tail_seen = True
                    return
                if t == ChunkType.INDX:
                    self.index_offset = pos
                elif t == ChunkType.HEAD:
                    raise MalformedError("a second HEAD chunk", pos)
                elif not t & ANCILLARY_CHUNK_BIT and t not in (ChunkType.INDX,):
                    raise UnknownChunkError(f"unknown critical chunk type 0x{t:02x}", pos)
                pos += chunk.size
            except TruncatedError as err:
                self._note_damage(err.offset if err.offset is not None else pos, err)
                # A length damaged into running past the end looks like a cut; if an
                # intact chunk follows, it was damage and the walk goes on.
                nxt = self._resync(pos, last_index) if on_damage == "skip" else None
                if nxt is None:
                    self.truncated = True
                    return
                pos = nxt
            except M3VError as err:
                if on_damage == "raise" or isinstance(err, UnknownChunkError):
                    raise
                self._note_damage(err.offset if err.offset is not None else pos, err)
                nxt = self._resync(pos, last_index)
                if nxt is None:
                    return
                pos = nxt

    def _note_damage(self, offset: int, err: M3VError) -> None:
        """Record damage once: the look for the prompts and a walk over the clips (or two walks)
        may meet the same damaged chunk."""
        if not any(d.offset == offset and d.error.args == err.args for d in self.damage):
            self.damage.append(Damage(offset, err))

    # ------------------------------------------------------------ prompts

    @property
    def prompts(self) -> dict[str, Any] | None:
        """The prompts recorded in the stream's PRMT chunk (spec/m3v.md §4.3), or None when it
        has none (always so in a stream older than 1.2).

        A map with ``keyframe`` and ``clip`` (lists of the dialogue's turns) and, where the
        writer gave them, ``name``, ``version``, ``turns``, ``model``, ``settings``; keys this
        reader does not know are kept as read.  The chunk's CRC is checked; a damaged or
        malformed PRMT chunk is handled by the reader's ``on_damage`` policy like other damage:
        ``"raise"`` raises its error, ``"skip"`` records it in :attr:`damage` and gives None.
        Nothing else about the stream depends on it.  On a pipe, ask before or while reading
        the clips (the walk over them keeps the chunk); later, earlier bytes are gone."""
        if not self._prompts_done:
            try:
                chunk = self._find_prompts()
                self._prompts = None if chunk is None else parse_prompts(chunk.payload, chunk.offset)
            except M3VError as err:
                if self.on_damage == "raise":
                    raise
                self._note_damage(err.offset if err.offset is not None else self.header_end, err)
                self._prompts = None
            self._prompts_done = True
        return self._prompts

    @property
    def prompts_bytes(self) -> int:
        """Bytes of the stream's PRMT chunk (framing included), 0 when it has none."""
        chunk = self._find_prompts()
        return 0 if chunk is None else chunk.size

    def _find_prompts(self) -> RawChunk | None:
        """The PRMT chunk among the ancillary chunks between HEAD and the first other chunk."""
        if self._prompts_settled or self.header.version[1] < PRMT_VERSION_MINOR:
            return self._prompts_chunk
        src = _Anchored(self._src, self.header_end)
        pos = self.header_end
        while True:
            head = src.peek(pos, 1)
            if not head or not head[0] & ANCILLARY_CHUNK_BIT:  # the end, or a CLIP, INDX or TAIL
                break
            chunk = read_chunk(src, pos)
            assert chunk is not None
            if chunk.chunk_type == ChunkType.PRMT:
                self._prompts_chunk = chunk
                break
            pos += chunk.size
        self._prompts_settled = True
        return self._prompts_chunk

    # ------------------------------------------------------------ index and random access

    @property
    def index(self) -> list[IndexEntry]:
        """Clip index: from INDX via the TAIL when intact, else rebuilt by scanning.

        A clip the index disagrees with, found when :meth:`clip` reads it, makes the reader
        drop the trailer's index and rebuild it (spec/m3v.md §7.2, §9, §12): the list this
        property returns can then change once, from the trailer's to the rebuilt one.  A rebuilt
        index leaves out clips lost to damage, so a clip's position in it is not always its
        ``clip_index``: look clips up with :meth:`entry` or :meth:`clip`."""
        if self._index is None:
            entries = self._index_from_trailer() if self.seekable else None
            if entries is None:
                if not self.seekable:
                    raise MissingIndexError("random access needs a seekable stream", None)
                self._rebuild_index()
            else:
                self._index_source = "trailer"
                self._set_index(entries)
        assert self._index is not None
        return self._index

    def _set_index(self, entries: list[IndexEntry]) -> None:
        self._index = entries
        self._positions = {e.clip_index: i for i, e in enumerate(entries)}

    def _rebuild_index(self) -> None:
        """The index rebuilt by reading the chunks in order (spec/m3v.md §9)."""
        self._set_index(
            [IndexEntry(r.index, r.offset, r.first_frame, r.frame_count) for r in self.clips(on_damage="skip")]
        )
        self._index_source = "scan"

    def entry(self, k: int) -> IndexEntry | None:
        """Clip ``k``'s index entry; None when the index does not hold it (lost to damage)."""
        entries = self.index
        pos = self._positions.get(k)
        return None if pos is None else entries[pos]

    def _index_from_trailer(self) -> list[IndexEntry] | None:
        size = self.size
        if size is None or size < self.header_end + TAIL_SIZE:
            return None
        window = min(size - self.header_end, _WINDOW)
        tail_buf = self._src.peek(size - window, window)
        try:
            found = read_tail(tail_buf[-TAIL_SIZE:], size - TAIL_SIZE)
        except ChecksumError as err:
            self.damage.append(Damage(size - TAIL_SIZE, err))
            return None
        if found is None:
            return None
        index_offset, index_size = found
        if index_offset < self.header_end or index_offset + index_size != size - TAIL_SIZE:
            self.damage.append(
                Damage(size - TAIL_SIZE, MalformedError("TAIL points outside the file", size - TAIL_SIZE))
            )
            return None
        try:
            chunk = self._chunk_at(index_offset)
            if chunk is None or chunk.chunk_type != ChunkType.INDX or chunk.size != index_size:
                raise MalformedError("TAIL does not point at an INDX chunk", index_offset)
            entries = parse_index(chunk.payload, index_offset, index_offset)
        except M3VError as err:
            self.damage.append(Damage(err.offset if err.offset is not None else index_offset, err))
            return None
        if entries and entries[0].offset < self.header_end:
            self.damage.append(Damage(index_offset, MalformedError("INDX points into the header", index_offset)))
            return None
        self.index_offset = index_offset
        return entries

    @property
    def terminated(self) -> bool:
        """Whether the stream is known to end with its INDX and TAIL chunks (spec/m3v.md §2):
        a walk over the chunks (:meth:`clips`) ended at the TAIL, or the index was found
        through it.  A stream cut anywhere before the TAIL's last byte, even just after its
        INDX chunk, is not terminated."""
        return self._tail_seen or self._index_source == "trailer"

    @property
    def index_source(self) -> str:
        """Where the index came from: "trailer" (INDX via TAIL), "scan" (rebuilt), "none" (a pipe)."""
        if not self.seekable:
            return "none"
        _ = self.index  # finds it (and sets _index_source)
        assert self._index_source is not None
        return self._index_source

    @property
    def clip_count(self) -> int:
        return len(self.index)

    @property
    def frame_count(self) -> int:
        """Frames the clips hold (the HEAD's declaration can be 0 = unknown)."""
        entries = self.index
        return entries[-1].first_frame + entries[-1].frame_count if entries else 0

    def clip(self, k: int) -> ClipRecord:
        """Clip ``k`` (its ``clip_index``) by random access: one read of its chunk once the
        index is known.

        The clip read must be the one its index entry describes (clip index, first frame and
        frame count); when the index came from the trailer and the clip is not (or cannot be
        read there), the trailer's index is dropped, the problem recorded in :attr:`damage`,
        and the index rebuilt by scanning (spec/m3v.md §7.2, §12) before clip ``k`` is looked
        up again.  IndexError for a ``k`` outside the stream's clips; MalformedError for a clip
        inside them that the (rebuilt) index lacks, lost to damage."""
        entries = self.index
        try:
            return self._clip_by_index(k)
        except M3VError as err:
            if self._index_source != "trailer":
                raise
            self._note_damage(err.offset if err.offset is not None else self.header_end, err)
            self._rebuild_index()
            if self.entry(k) is None and entries and 0 <= k <= entries[-1].clip_index:
                raise  # the trailer's index holds it, the rebuilt one does not: the clip is damaged
        return self._clip_by_index(k)

    def _clip_by_index(self, k: int) -> ClipRecord:
        entries = self.index
        pos = self._positions.get(k)
        if pos is None:
            last = entries[-1].clip_index if entries else -1
            if not 0 <= k <= last:
                raise IndexError(f"clip {k} out of range 0..{last}")
            following = entries[bisect.bisect_left([e.clip_index for e in entries], k)]
            raise MalformedError(
                f"clip {k} is not in the stream: lost to damage before clip {following.clip_index}", following.offset
            )
        entry = entries[pos]
        end = entries[pos + 1].offset if pos + 1 < len(entries) else (self.index_offset or self.size)
        assert end is not None  # the index is there: the source is seekable, its size known
        if end <= entry.offset:
            raise MalformedError(f"index entry {k} is out of order", entry.offset)
        self._src.peek(entry.offset, end - entry.offset, readahead=0)  # the one read of this clip
        chunk = self._chunk_at(entry.offset)
        if chunk is None or chunk.chunk_type != ChunkType.CLIP:
            raise MalformedError(f"index entry {k} does not point at a CLIP chunk", entry.offset)
        record = parse_clip(chunk.payload, entry.offset, chunk.size, self.header.version[1])
        if (record.index, record.first_frame, record.frame_count) != (k, entry.first_frame, entry.frame_count):
            raise MalformedError(
                f"index entry {k} (frames {entry.first_frame}+{entry.frame_count}) disagrees with the clip it "
                f"points at (clip {record.index}, frames {record.first_frame}+{record.frame_count})",
                entry.offset,
            )
        if pos + 1 == len(entries) and self._index_source == "trailer":
            self._check_nothing_unindexed(entry.offset + chunk.size, end)
        return record

    def _check_nothing_unindexed(self, pos: int, end: int) -> None:
        """Between the last indexed clip and the INDX chunk only ancillary chunks may lie: a
        CLIP there means the index does not list every clip (spec/m3v.md §7.2).  The bytes are
        those the read of the last clip fetched."""
        while pos < end:
            chunk = self._chunk_at(pos)
            if chunk is None:
                return
            if chunk.chunk_type == ChunkType.CLIP:
                raise MalformedError("a CLIP chunk follows the last clip the index lists", pos)
            pos += chunk.size

    def decode_clip(self, k: int, maps: dict[int, Any] | None = None) -> Clip:
        """Clip ``k`` by random access with texts and index map decoded.

        A dependent clip (TEMPORAL, spec §6.5) needs the previous clip's map, so the maps back
        to the nearest independent clip are decoded first (entropy decoding only).  ``maps``
        (clip index -> decoded index map) is consulted for them and receives every map decoded
        here; pass the same dict to consecutive calls to decode each map once.  A missing or
        damaged clip in the chain gives MissingReferenceError."""
        return decode_with_references(self.header, k, self.clip, {} if maps is None else maps)

    def decoded_clips(self, on_damage: str | None = None) -> Iterator[Clip]:
        """Clips in file order with texts and index maps decoded, each dependent map against
        the one before it (works on pipes).  With ``on_damage="skip"`` a clip that does not
        decode (its payload, or a dependent clip whose predecessor is missing) is recorded in
        :attr:`damage` and skipped."""
        on_damage = on_damage or self.on_damage
        decoder = SequentialDecoder(self.header)
        for record in self.clips(on_damage):
            try:
                clip = decoder.decode(record)
            except M3VError as exc:
                exc = exc.at(record.offset)
                if on_damage == "raise":
                    raise exc from None
                self.damage.append(Damage(record.offset, exc))
                continue
            yield clip

    def chunk_bytes(self, record: ClipRecord) -> bytes:
        """The whole CLIP chunk of ``record`` as stored (type, length, payload, CRC); on a
        pipe, only for the record just read (earlier bytes are gone)."""
        data = bytes(self._src.peek(record.offset, record.size, readahead=0))
        if len(data) != record.size or data[0] != ChunkType.CLIP:
            raise MalformedError("CLIP chunk is no longer available", record.offset)
        return data

    def clip_at_frame(self, frame: int) -> int:
        """Index of the clip that holds ``frame``."""
        entries = self.index
        if not entries or not 0 <= frame < self.frame_count:
            raise IndexError(f"frame {frame} is outside the stream")
        return entries[bisect.bisect_right([e.first_frame for e in entries], frame) - 1].clip_index


class _Anchored:
    """A :class:`ByteSource` view that, on a pipe, keeps every byte from ``base`` on (a look
    ahead at the chunks after HEAD must not drop the bytes the clip walk reads next)."""

    def __init__(self, src: ByteSource, base: int) -> None:
        self._src = src
        self._base = base
        self.size = src.size

    def peek(self, pos: int, n: int, readahead: int = _WINDOW) -> bytes:
        if self._src.seekable:
            return self._src.peek(pos, n, readahead)
        return self._src.peek(self._base, pos - self._base + n)[pos - self._base :]


def _signature_problem(sig: bytes) -> str:
    if sig.replace(b"\r\n", b"\n").startswith(SIGNATURE.replace(b"\r\n", b"\n")[:6]) or b"\r\r\n" in sig:
        return "signature damaged by line-ending conversion (file was transferred in text mode)"
    if sig[0] == SIGNATURE[0] & 0x7F and sig[1:4] == SIGNATURE[1:4]:
        return "signature damaged: high bit stripped (7-bit transfer)"
    return "not an .m3v stream (bad signature)"
