"""Stream header and clips as Python values, with the semantic rules of spec/m3v.md.

:class:`Header` and :class:`Clip` hold decoded values (texts as ``str``, the
index map as an array).  :class:`ClipRecord` is a CLIP chunk as read from a
file: fields parsed, payloads still coded, with its byte offset and sizes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from typing import Any, TypeVar

from .constants import (
    BASE_VERSION_MINOR,
    MAX_CELLS_PER_CLIP_BYTE,
    MAX_CLIP_COUNT,
    MAX_DIMENSION,
    MAX_FRAME_COUNT,
    MAX_GRID_SIDE,
    MAX_GRID_SYMBOLS,
    MAX_PACK_ID_BYTES,
    MAX_PRIOR_COUNT,
    MAX_RATE_TERM,
    MAX_VOCAB_SIZE,
    PACK_HASH_SIZE,
    VERSION_MAJOR,
    IndexMapCoder,
    Mode,
    TextCodec,
)
from .errors import LimitError, M3VError, MalformedError, MissingReferenceError

_E = TypeVar("_E", bound=Enum)

__all__ = [
    "Clip",
    "ClipRecord",
    "Header",
    "IndexEntry",
    "IndexMapPayload",
    "SequentialDecoder",
    "check_work_limit",
    "decode_seed",
    "decode_with_references",
    "min_clip_chunk_size",
]

_PACK_ID = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
_MASK64 = (1 << 64) - 1


def _limit(name: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedError(f"{name} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise LimitError(f"{name} = {value} is outside {low}..{high}")


def min_clip_chunk_size(grid_cells: int) -> int:
    """The least size in bytes of a CLIP chunk whose index map has ``grid_cells`` cells: the
    work limit of spec/m3v.md §11 (at most 16 cells a byte of chunk)."""
    return -(-grid_cells // MAX_CELLS_PER_CLIP_BYTE)


def check_work_limit(clip_index: int, grid_cells: int, chunk_size: int, offset: int | None = None) -> None:
    """LimitError unless a CLIP chunk of ``chunk_size`` bytes may hold a map of ``grid_cells``
    cells (spec/m3v.md §11).  Checked when the chunk is parsed, before any map is decoded:
    decoding costs time per cell whatever the payload, and a map of 0 bytes can declare 2^18
    cells."""
    need = min_clip_chunk_size(grid_cells)
    if chunk_size < need:
        raise LimitError(
            f"clip {clip_index}: an index map of {grid_cells} cells needs a CLIP chunk of at least {need} bytes "
            f"(at most {MAX_CELLS_PER_CLIP_BYTE} cells a byte), this one has {chunk_size}",
            offset,
        )


def _rational(name: str, value: Fraction) -> None:
    if value <= 0:
        raise MalformedError(f"{name} must be positive, got {value}")
    _limit(f"{name} numerator", value.numerator, 1, MAX_RATE_TERM)
    _limit(f"{name} denominator", value.denominator, 1, MAX_RATE_TERM)


def pack_metadata(metadata: Mapping[str, Any]) -> bytes:
    """msgpack with map keys sorted at every level, so equal metadata gives equal bytes."""
    import msgpack

    def canonical(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): canonical(value[k]) for k in sorted(value, key=str)}
        if isinstance(value, (list, tuple)):
            return [canonical(v) for v in value]
        return value

    packed: bytes = msgpack.packb(canonical(dict(metadata)), use_bin_type=True)
    return packed


def unpack_metadata(data: bytes) -> dict[str, Any]:
    import msgpack

    if not data:
        return {}
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as err:  # msgpack raises several unrelated types
        raise MalformedError(f"metadata is not valid msgpack: {err}") from None
    if not isinstance(value, dict):
        raise MalformedError("metadata must be a msgpack map")
    return value


@dataclass(frozen=True)
class Header:
    """The HEAD chunk: what a decoder needs before the first clip (spec/m3v.md, "HEAD")."""

    width: int
    height: int
    fps: Fraction
    grid_h: int
    grid_w: int
    vocab_size: int = 256
    time_base: Fraction = None  # type: ignore[assignment]  # None: 1 / fps (set by __post_init__)
    frame_count: int = 0
    pack_id: str = "none"
    pack_hash: bytes = bytes(PACK_HASH_SIZE)
    text_codec: TextCodec = TextCodec.TOKANS1
    default_mode: Mode = Mode.INTERPOLATION
    stream_seed: int = 0
    prior: tuple[int, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: The version of the stream read; for a header made here, the version a stream without a
    #: PRMT chunk is written at (a writer writes the lowest version that covers the stream).
    version: tuple[int, int] = (VERSION_MAJOR, BASE_VERSION_MINOR)
    #: Bytes a newer minor version appended to HEAD; kept, never interpreted.
    extension: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "fps", Fraction(self.fps))
        if self.time_base is None:
            object.__setattr__(self, "time_base", 1 / self.fps if self.fps > 0 else Fraction(0))
        object.__setattr__(self, "time_base", Fraction(self.time_base))
        object.__setattr__(self, "text_codec", _enum(TextCodec, self.text_codec, "text codec"))
        object.__setattr__(self, "default_mode", _enum(Mode, self.default_mode, "default mode"))
        object.__setattr__(self, "prior", tuple(self.prior))
        self.validate()

    def validate(self) -> None:
        _limit("width", self.width, 1, MAX_DIMENSION)
        _limit("height", self.height, 1, MAX_DIMENSION)
        _rational("frame rate", self.fps)
        _rational("time base", self.time_base)
        per_frame = 1 / (self.fps * self.time_base)
        if per_frame.denominator != 1:
            raise MalformedError(f"time base {self.time_base} cannot express every frame time at {self.fps} fps")
        _limit("frame count", self.frame_count, 0, MAX_FRAME_COUNT)
        raw_id = self.pack_id.encode("ascii", "replace")
        if not 1 <= len(raw_id) <= MAX_PACK_ID_BYTES or not _PACK_ID.match(self.pack_id):
            raise MalformedError(f"pack id {self.pack_id!r} is not 1-64 characters of [a-z0-9._-]")
        if not isinstance(self.pack_hash, bytes) or len(self.pack_hash) != PACK_HASH_SIZE:
            raise MalformedError("pack hash must be 32 bytes")
        _limit("grid height", self.grid_h, 1, MAX_GRID_SIDE)
        _limit("grid width", self.grid_w, 1, MAX_GRID_SIDE)
        if self.grid_h * self.grid_w > MAX_GRID_SYMBOLS:
            raise LimitError(f"grid {self.grid_h}x{self.grid_w} has more than {MAX_GRID_SYMBOLS} cells")
        _limit("vocabulary size", self.vocab_size, 1, MAX_VOCAB_SIZE)
        _limit("stream seed", self.stream_seed, 0, _MASK64)
        if self.prior:
            if len(self.prior) != self.vocab_size:
                raise MalformedError(f"prior has {len(self.prior)} counts for a vocabulary of {self.vocab_size}")
            for count in self.prior:
                _limit("prior count", count, 0, MAX_PRIOR_COUNT)
        if self.version[0] != VERSION_MAJOR:
            raise MalformedError(f"cannot describe major version {self.version[0]}")

    @property
    def version_major(self) -> int:
        """``version[0]``: the major version of the stream read (of this implementation, for a
        header made here)."""
        return self.version[0]

    @property
    def version_minor(self) -> int:
        """``version[1]``: the minor version of the stream read.  A writer does not take it from
        here: it writes the lowest minor version that covers the stream (spec/m3v.md §10)."""
        return self.version[1]

    @property
    def duration_s(self) -> float:
        return float(self.frame_count / self.fps)

    @property
    def pixels_per_frame(self) -> int:
        return self.width * self.height

    @property
    def frame_duration(self) -> int:
        """Length of one frame in time-base units (an integer by the header's rules)."""
        return int(1 / (self.fps * self.time_base))


def _enum(kind: type[_E], value: Any, name: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise MalformedError(f"unknown {name} {value}") from None


@dataclass
class Clip:
    """One clip with decoded contents, as an encoder writes it or a decoder uses it."""

    index: int
    first_frame: int
    frame_count: int
    mode: Mode = Mode.INTERPOLATION
    keyframe_text: str = ""
    clip_text: str = ""
    index_map: Any = None  # numpy array (grid_h, grid_w) of indices
    seed: int | None = None
    #: Ancillary sub-chunks as (kind, body), kept in their order.
    ancillary: tuple[tuple[int, bytes], ...] = ()
    #: Coder for the index map; None lets the writer choose.
    index_map_coder: IndexMapCoder | None = None

    def __post_init__(self) -> None:
        self.mode = _enum(Mode, self.mode, "mode")
        _limit("clip index", self.index, 0, MAX_CLIP_COUNT - 1)
        _limit("first frame", self.first_frame, 0, MAX_FRAME_COUNT - 1)
        _limit("clip frame count", self.frame_count, 1, MAX_FRAME_COUNT)
        if self.seed is not None:
            _limit("clip seed", self.seed, 0, _MASK64)


@dataclass(frozen=True)
class IndexMapPayload:
    """The index-map sub-chunk: coder, grid and the coded bytes."""

    coder: int
    grid_h: int
    grid_w: int
    data: bytes


@dataclass(frozen=True)
class ClipRecord:
    """A CLIP chunk read from a stream: fields parsed, payloads still coded."""

    offset: int
    size: int
    index: int
    first_frame: int
    frame_count: int
    flags: int
    seed: int | None
    keyframe_text_coded: bytes
    clip_text_coded: bytes
    index_map: IndexMapPayload | None
    ancillary: tuple[tuple[int, bytes], ...] = ()
    #: Bytes of sub-chunk bodies that hold text and index maps (for the byte split).
    index_map_body_size: int = 0

    @property
    def mode(self) -> Mode:
        return Mode(self.flags & 1)

    @property
    def text_bytes(self) -> int:
        return len(self.keyframe_text_coded) + len(self.clip_text_coded)

    @property
    def vq_bytes(self) -> int:
        return self.index_map_body_size

    @property
    def end_frame(self) -> int:
        return self.first_frame + self.frame_count

    @property
    def dependent(self) -> bool:
        """Whether the index map is coded against the previous clip's (TEMPORAL, spec §6.5)."""
        return self.index_map is not None and self.index_map.coder == IndexMapCoder.TEMPORAL

    def decode(self, header: Header, reference: Any = None) -> Clip:
        """Decode texts and index map with the stream's codecs (raises PayloadError).

        A dependent clip needs ``reference``, the decoded index map of clip ``index - 1``
        (MissingReferenceError without it); :meth:`Reader.decode_clip` finds it."""
        from .indexmap import decode_index_map
        from .textcodec import decode_text

        index_map = None
        coder = None
        if self.index_map is not None:
            coder = self.index_map_coder()
            if (self.index_map.grid_h, self.index_map.grid_w) != (header.grid_h, header.grid_w):
                raise MalformedError(
                    f"clip {self.index} index map is {self.index_map.grid_h}x{self.index_map.grid_w}, "
                    f"the header's grid is {header.grid_h}x{header.grid_w}",
                    self.offset,
                )
            if self.dependent and reference is None:
                raise MissingReferenceError(
                    f"clip {self.index} is coded against clip {self.index - 1}'s index map, which is not available",
                    self.offset,
                )
            assert coder is not None
            index_map = decode_index_map(
                self.index_map.data,
                self.index_map.grid_h,
                self.index_map.grid_w,
                header.vocab_size,
                coder,
                header.prior or None,
                reference,
            )
        return Clip(
            index=self.index,
            first_frame=self.first_frame,
            frame_count=self.frame_count,
            mode=self.mode,
            keyframe_text=decode_text(self.keyframe_text_coded, header.text_codec),
            clip_text=decode_text(self.clip_text_coded, header.text_codec),
            index_map=index_map,
            seed=self.seed,
            ancillary=self.ancillary,
            index_map_coder=coder,
        )

    def index_map_coder(self) -> IndexMapCoder | None:
        """The index map's coder as a registered value; MalformedError (naming the field and
        the clip's offset) for a value the registry does not hold (spec/m3v.md §6.5, §12)."""
        if self.index_map is None:
            return None
        try:
            return IndexMapCoder(self.index_map.coder)
        except ValueError:
            raise MalformedError(
                f"clip {self.index} index map: coder {self.index_map.coder} is not a registered index-map coder",
                self.offset,
            ) from None


def decode_with_references(
    header: Header,
    k: int,
    record_of: Callable[[int], ClipRecord],
    maps: MutableMapping[int, Any],
) -> Clip:
    """Clip ``k`` decoded, walking its reference chain: the one walk every decoding path uses
    (:meth:`Reader.decode_clip`, :class:`SequentialDecoder`, the FrameSource).

    A dependent clip (TEMPORAL, spec §6.5) is coded against clip k-1's decoded index map, so the
    records back to the nearest independent clip, or to one whose map is in ``maps`` (clip index
    -> decoded index map), are fetched with ``record_of(j)`` and decoded forward (entropy
    decoding only).  ``maps`` receives every map decoded here; pass the same mapping to
    consecutive calls to decode each map once.  A clip in the chain that cannot be read or does
    not decode gives MissingReferenceError; an error in clip ``k`` itself is located at it."""
    chain = [record_of(k)]
    while chain[-1].dependent and chain[-1].index - 1 not in maps:
        j = chain[-1].index - 1
        try:
            chain.append(record_of(j))
        except (IndexError, KeyError, M3VError) as exc:
            reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise MissingReferenceError(
                f"clip {j + 1} is coded against clip {j}'s index map, which cannot be read: {reason}",
                chain[-1].offset,
            ) from None
    clip = None
    for record in reversed(chain):
        try:
            clip = record.decode(header, maps.get(record.index - 1))
        except M3VError as exc:
            if record.index == k:
                raise exc.at(record.offset) from None
            raise MissingReferenceError(
                f"clip {k} depends on clip {record.index}, which does not decode: {exc}", record.offset
            ) from None
        maps[record.index] = clip.index_map
    assert clip is not None
    return clip


class SequentialDecoder:
    """Decodes records met in stream order, handing each the map of the record decoded just
    before it when that is clip ``index - 1`` (the reference a dependent clip needs, spec §6.5),
    through :func:`decode_with_references`.  A record that fails to decode breaks the chain:
    the next one has no reference (MissingReferenceError if it is dependent)."""

    def __init__(self, header: Header) -> None:
        self.header = header
        self._maps: dict[int, Any] = {}  # at most the last record's map

    def decode(self, record: ClipRecord) -> Clip:
        maps, self._maps = self._maps, {}

        def record_of(j: int) -> ClipRecord:
            if j == record.index:
                return record
            raise KeyError(f"clip {j} did not decode just before clip {record.index}")

        clip = decode_with_references(self.header, record.index, record_of, maps)
        self._maps = {record.index: clip.index_map}
        return clip


@dataclass(frozen=True)
class IndexEntry:
    """One clip in the index: where its CLIP chunk starts and which frames it holds."""

    clip_index: int
    offset: int
    first_frame: int
    frame_count: int


def _mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def decode_seed(stream_seed: int, clip_index: int, clip_seed: int | None) -> int:
    """The clip's 64-bit decode seed (spec/m3v.md, "Decode seed")."""
    x = (stream_seed + 0x9E3779B97F4A7C15 * (clip_index + 1)) & _MASK64
    return _mix64(_mix64(x) ^ (clip_seed or 0))
