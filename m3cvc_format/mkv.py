"""Matroska packaging of `.m3v` streams: a small EBML writer and reader.

:func:`mux` writes a Matroska file that carries the `.m3v` bytes, unchanged, as an attachment
(mimetype ``application/x-m3v``), and, so that any player shows something:

- a subtitle track (``S_TEXT/UTF8``) with each clip's descriptions, keyframe text then clip
  text, timed to the clip (one BlockGroup with a BlockDuration per clip);
- a chapter at each clip start, named ``Clip k``;
- optionally a preview video track: H.264 (``V_MPEG4/ISO/AVC``), because every player, browser
  and phone decodes it; frames come from the caller (``preview_frames``), so this module never
  imports the codec.  PyAV's encoder makes the packets (CRF 30, yuv420p, one thread, so the
  bytes are reproducible); this module writes them as SimpleBlocks, converted from Annex B to
  the length-prefixed form Matroska wants, with the ``avcC`` record built from the encoder's
  SPS and PPS as CodecPrivate.  Blocks go in decode order with presentation timestamps (x264's
  B-frames stay).  Every clip start is forced to an IDR frame and opens a Cluster, so chapters
  and Cues land on keyframes.

The layout is EBML header, then one Segment: SeekHead, Info (with Duration), Tracks, Chapters,
Attachments, the Clusters, Cues.  The attachment comes before the clusters, so a file cut off in
its video still gives back the stream.  A file without any block still gets one empty Cluster
(FFmpeg 5.1 cannot read a Segment without one).  Output is deterministic: the FileUID is the
first 8 bytes of the stream's SHA-256, the other UIDs are derived from it, the muxing
application string is fixed, no dates are written.  The file is written to a temporary name
and renamed.

:func:`extract_m3v` finds the attachment again and returns its bytes.  It reads any Matroska
file (mkvmerge's too), checks every EBML size against its parent and the file before it reads
or allocates anything, checks the bytes (the `.m3v` signature; the SHA-256 m3v-mux recorded as
the FileUID, or for another muxer's file the stream's own CRCs), and raises one of the
:class:`MKVError` classes (each an :class:`~m3cvc_format.M3VError` and a ``ValueError``) with a
byte offset.

numpy and PyAV are imported only when a preview track is written.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

from .atomic import atomic_file
from .constants import SIGNATURE
from .errors import M3VError, TruncatedError

__all__ = [
    "MIME_TYPE",
    "MUXING_APP",
    "Attachment",
    "DamagedAttachmentError",
    "DamagedMKVError",
    "MKVError",
    "MuxReport",
    "NoAttachmentError",
    "NotM3VAttachmentError",
    "NotMatroskaError",
    "WrongMimeTypeError",
    "attachments",
    "extract_m3v",
    "mux",
]

MIME_TYPE = "application/x-m3v"
MUXING_APP = "m3cvc_format.mkv 1"  # fixed: the output must not change with the package version

# ------------------------------------------------------------------------------ EBML ids

EBML = 0x1A45DFA3
EBML_VERSION = 0x4286
EBML_READ_VERSION = 0x42F7
EBML_MAX_ID_LENGTH = 0x42F2
EBML_MAX_SIZE_LENGTH = 0x42F3
DOC_TYPE = 0x4282
DOC_TYPE_VERSION = 0x4287
DOC_TYPE_READ_VERSION = 0x4285
VOID = 0xEC

SEGMENT = 0x18538067
SEEK_HEAD = 0x114D9B74
SEEK = 0x4DBB
SEEK_ID = 0x53AB
SEEK_POSITION = 0x53AC

INFO = 0x1549A966
TIMESTAMP_SCALE = 0x2AD7B1
DURATION = 0x4489
MUXING_APP_ID = 0x4D80
WRITING_APP_ID = 0x5741
TITLE = 0x7BA9
SEGMENT_UID = 0x73A4

TRACKS = 0x1654AE6B
TRACK_ENTRY = 0xAE
TRACK_NUMBER = 0xD7
TRACK_UID = 0x73C5
TRACK_TYPE = 0x83
FLAG_LACING = 0x9C
DEFAULT_DURATION = 0x23E383
NAME = 0x536E
LANGUAGE = 0x22B59C
CODEC_ID = 0x86
CODEC_PRIVATE = 0x63A2
VIDEO = 0xE0
PIXEL_WIDTH = 0xB0
PIXEL_HEIGHT = 0xBA
PIXEL_CROP_BOTTOM = 0x54AA
PIXEL_CROP_RIGHT = 0x54DD

CLUSTER = 0x1F43B675
TIMESTAMP = 0xE7
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
BLOCK = 0xA1
BLOCK_DURATION = 0x9B

CUES = 0x1C53BB6B
CUE_POINT = 0xBB
CUE_TIME = 0xB3
CUE_TRACK_POSITIONS = 0xB7
CUE_TRACK = 0xF7
CUE_CLUSTER_POSITION = 0xF1
CUE_RELATIVE_POSITION = 0xF0

ATTACHMENTS = 0x1941A469
ATTACHED_FILE = 0x61A7
FILE_DESCRIPTION = 0x467E
FILE_NAME = 0x466E
FILE_MIME_TYPE = 0x4660
FILE_DATA = 0x465C
FILE_UID = 0x46AE

CHAPTERS = 0x1043A770
EDITION_ENTRY = 0x45B9
EDITION_UID = 0x45BC
EDITION_FLAG_HIDDEN = 0x45BD
EDITION_FLAG_DEFAULT = 0x45DB
CHAPTER_ATOM = 0xB6
CHAPTER_UID = 0x73C4
CHAPTER_TIME_START = 0x91
CHAPTER_TIME_END = 0x92
CHAPTER_FLAG_HIDDEN = 0x98
CHAPTER_FLAG_ENABLED = 0x4598
CHAPTER_DISPLAY = 0x80
CHAP_STRING = 0x85
CHAP_LANGUAGE = 0x437C

TAGS = 0x1254C367

#: Children of a Segment: where a Cluster of unknown size ends.
_LEVEL1 = frozenset({SEEK_HEAD, INFO, TRACKS, CLUSTER, CUES, ATTACHMENTS, CHAPTERS, TAGS, EBML, SEGMENT})

TIMESTAMP_SCALE_NS = 1_000_000  # block timestamps in milliseconds
VIDEO_TRACK = 1
SUBTITLE_TRACK = 2
_MAX_CLUSTER_BYTES = 4 << 20
_H264_CODECS = ("libx264", "libopenh264", "h264")

# ------------------------------------------------------------------------------ errors


class MKVError(M3VError):
    """Base class of the errors about Matroska input (also an M3VError and a ValueError)."""


class NotMatroskaError(MKVError):
    """The data is not a Matroska file (no EBML header, another document type)."""


class DamagedMKVError(MKVError):
    """An EBML element is malformed or runs past its parent or the end of the file."""


class NoAttachmentError(MKVError):
    """The Matroska file has no attachments."""


class WrongMimeTypeError(NoAttachmentError):
    """The Matroska file has attachments, none of them with the `.m3v` mimetype."""


class DamagedAttachmentError(DamagedMKVError):
    """The `.m3v` attachment is cut off, malformed, or differs from its recorded SHA-256."""


class NotM3VAttachmentError(MKVError):
    """The attachment with the `.m3v` mimetype does not hold an `.m3v` stream."""


# ------------------------------------------------------------------------------ EBML writing


def _id_bytes(element_id: int) -> bytes:
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")


def _size(n: int, length: int | None = None) -> bytes:
    """EBML variable-size integer; the all-ones value of each length is reserved (unknown)."""
    if length is None:
        length = next((k for k in range(1, 9) if n < (1 << (7 * k)) - 1), None)
        if length is None:
            raise ValueError(f"EBML size {n} too large")
    elif n >= (1 << (7 * length)) - 1:
        raise ValueError(f"EBML size {n} does not fit in {length} bytes")
    return (n | (1 << (7 * length))).to_bytes(length, "big")


def _el(element_id: int, *payload: bytes) -> bytes:
    data = b"".join(payload)
    return _id_bytes(element_id) + _size(len(data)) + data


def _uint(element_id: int, value: int, width: int | None = None) -> bytes:
    if width is None:
        width = max(1, (value.bit_length() + 7) // 8)
    return _el(element_id, value.to_bytes(width, "big"))


def _float(element_id: int, value: float) -> bytes:
    return _el(element_id, struct.pack(">d", value))


def _text(element_id: int, value: str) -> bytes:
    return _el(element_id, value.encode("utf-8"))


def _uid(digest: bytes, label: str) -> int:
    """A non-zero 64-bit UID derived from the stream's digest: deterministic, unlikely to collide."""
    value = int.from_bytes(hashlib.sha256(digest + label.encode()).digest()[:8], "big")
    return value or 1


def _void(total: int) -> bytes:
    """A Void element of exactly ``total`` bytes (``total`` >= 2)."""
    if total < 2:
        raise ValueError("a Void element takes at least 2 bytes")
    for length in range(1, 9):
        n = total - 1 - length
        if n >= 0 and n < (1 << (7 * length)) - 1:
            return b"\xec" + _size(n, length) + bytes(n)
    raise ValueError(total)


# ------------------------------------------------------------------------------ H.264 glue


def _annexb_nals(data: bytes) -> list[bytes]:
    """NAL units of an Annex B byte stream (start codes removed, trailing zero bytes dropped)."""
    starts = []
    i = data.find(b"\x00\x00\x01")
    while i != -1:
        starts.append(i + 3)
        i = data.find(b"\x00\x00\x01", i + 3)
    nals = []
    for j, s in enumerate(starts):
        end = starts[j + 1] - 3 if j + 1 < len(starts) else len(data)
        nal = data[s:end].rstrip(b"\x00")
        if nal:
            nals.append(nal)
    return nals


def _length_prefixed(data: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(n)) + n for n in _annexb_nals(data))


class _Bits:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def bit(self) -> int:
        byte = self.data[self.pos >> 3]  # IndexError past the end
        value = (byte >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("Exp-Golomb code too long")
        value = 1
        for _ in range(zeros):
            value = (value << 1) | self.bit()
        return value - 1


def _avcc(extradata: bytes) -> bytes:
    """The AVCDecoderConfigurationRecord (ISO/IEC 14496-15) for Annex B SPS/PPS extradata."""
    if extradata[:1] == b"\x01":  # already avcC
        return extradata
    nals = _annexb_nals(extradata)
    sps = [n for n in nals if n[0] & 0x1F == 7]
    pps = [n for n in nals if n[0] & 0x1F == 8]
    if not sps or not pps or len(sps[0]) < 4:
        raise ValueError("H.264 encoder gave no SPS/PPS in its extradata")
    first = sps[0]
    out = bytearray([1, first[1], first[2], first[3], 0xFF, 0xE0 | len(sps)])
    for n in sps:
        out += struct.pack(">H", len(n)) + n
    out.append(len(pps))
    for n in pps:
        out += struct.pack(">H", len(n)) + n
    if first[1] in (100, 110, 122, 144):  # High profiles carry chroma format and bit depths
        rbsp = first[4:].replace(b"\x00\x00\x03", b"\x00\x00")
        bits = _Bits(rbsp)
        bits.ue()  # seq_parameter_set_id
        chroma = bits.ue()
        if chroma == 3:
            bits.bit()  # separate_colour_plane_flag
        luma_depth, chroma_depth = bits.ue(), bits.ue()
        out += bytes([0xFC | (chroma & 3), 0xF8 | (luma_depth & 7), 0xF8 | (chroma_depth & 7), 0])
    return bytes(out)


@dataclass
class _Packet:
    frame: int  # presentation index (pts in frames)
    order: int  # decode position (dts in frames), for interleaving
    key: bool
    data: bytes


class _PreviewEncoder:
    """H.264 through PyAV; packets in decode order with frame-index timestamps."""

    def __init__(self, width: int, height: int, fps: Fraction, codec: str, crf: int):
        import av
        from av.codec.context import Flags

        try:
            av.codec.Codec(codec, "w")
        except Exception:
            raise ValueError(f"video encoder {codec!r} is not available in this FFmpeg build") from None
        if av.codec.Codec(codec, "w").canonical_name != "h264":
            raise ValueError(f"preview codec {codec!r} is not an H.264 encoder (only H.264 previews are written)")
        self.width, self.height = width + width % 2, height + height % 2  # 4:2:0 needs even sizes
        self.pad = (self.height - height, self.width - width)
        rate = Fraction(fps).limit_denominator(65535)
        try:
            cc = av.CodecContext.create(codec, "w")
            cc.width, cc.height = self.width, self.height
            cc.pix_fmt = "yuv420p"
            cc.framerate = rate
            cc.time_base = 1 / rate
            cc.gop_size = max(1, min(250, round(float(fps) * 5)))
            cc.flags |= Flags.global_header
            cc.thread_count = 1
            try:  # say what swscale's RGB -> yuv420p gives: BT.601 (SMPTE 170M), limited range
                cc.color_range, cc.colorspace, cc.color_primaries, cc.color_trc = 1, 6, 6, 6
            except (AttributeError, TypeError, ValueError):  # older PyAV
                pass
            options = {}
            if codec == "libx264":
                # one thread: x264's output depends on the thread count, and must not vary by machine
                options = {"crf": str(crf), "preset": "fast", "threads": "1", "forced-idr": "1"}
            cc.options = options
            cc.open()
        except (av.FFmpegError, ValueError, OverflowError) as err:
            raise ValueError(f"cannot open the {codec} preview encoder at {width}x{height}, {fps} fps: {err}") from None
        self.cc = cc
        self.codec_private = _avcc(bytes(cc.extradata or b""))
        self._annexb = bytes(cc.extradata or b"")[:1] != b"\x01"

    def _packets(self, packets) -> Iterator[_Packet]:
        for p in packets:
            data = bytes(p)
            yield _Packet(
                int(p.pts),
                int(p.dts if p.dts is not None else p.pts),
                bool(p.is_keyframe),
                _length_prefixed(data) if self._annexb else data,
            )

    def encode(self, rgb, index: int, key: bool) -> Iterator[_Packet]:
        import av
        import numpy as np
        from av.video.frame import PictureType

        rgb = np.asarray(rgb)
        if any(self.pad):
            rgb = np.pad(rgb, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = index
        if key:
            frame.pict_type = PictureType.I
        yield from self._packets(self.cc.encode(frame))

    def flush(self) -> Iterator[_Packet]:
        yield from self._packets(self.cc.encode(None))


# ------------------------------------------------------------------------------ muxing


@dataclass
class MuxReport:
    """What :func:`mux` wrote."""

    output: str
    size: int
    m3v_size: int
    attachment_name: str
    clips: int
    frames: int
    duration_s: float
    subtitles: int = 0
    chapters: int = 0
    preview_frames: int = 0
    tracks: list[str] = field(default_factory=list)

    @property
    def overhead(self) -> int:
        return self.size - self.m3v_size


def _read_source(src) -> tuple[bytes, str]:
    """The `.m3v` bytes of ``src`` (anything the opener takes: a Matroska file made by m3v-mux
    gives the stream attached to it) and a name for the attachment."""
    from .opener import open_source

    with open_source(src) as source:
        data = source.read_all()
        name = source.name
    if name.startswith("<"):  # <bytes>, <stdin>, <stream>
        name = "stream.m3v"
    return data, os.path.basename(name) or "stream.m3v"


def _attachment_name(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1] or "stream.m3v"
    if name.startswith("<"):
        name = "stream.m3v"
    return name if name.lower().endswith(".m3v") else f"{Path(name).stem or 'stream'}.m3v"


def _ms(frame: int, fps: Fraction) -> int:
    """Presentation time of ``frame`` in milliseconds (the TimestampScale), rounded."""
    return round(Fraction(frame * 1000) / fps)


def _ns(frame: int, fps: Fraction) -> int:
    return round(Fraction(frame * 1_000_000_000) / fps)


class _ClusterWriter:
    """Collects blocks into Clusters, writes each when it closes, and records Cue points."""

    def __init__(self, file: BinaryIO, segment_data: int):
        self.file, self.segment_data = file, segment_data
        self.time: int | None = None
        self.body = bytearray()
        self.cues: list[tuple[int, int, int, int]] = []  # time, track, cluster position, relative
        self._pending_cues: list[tuple[int, int, int]] = []
        self.clusters = 0

    def _open(self, time: int) -> None:
        self.close()
        self.time = time
        self.body = bytearray(_uint(TIMESTAMP, time))

    def close(self) -> None:
        if self.time is None:
            return
        position = self.file.tell() - self.segment_data
        self.file.write(_id_bytes(CLUSTER) + _size(len(self.body)) + self.body)
        self.cues += [(t, track, position, rel) for t, track, rel in self._pending_cues]
        self._pending_cues = []
        self.time, self.body = None, bytearray()
        self.clusters += 1

    def add(
        self,
        track: int,
        time: int,
        payload: bytes,
        *,
        key: bool,
        duration: int | None = None,
        new_cluster: bool = False,
        cue: bool | None = False,
    ) -> None:
        """One block; ``cue=None`` adds a Cue point only when the block opens a Cluster."""
        opened = (
            self.time is None
            or new_cluster
            or not -32768 <= time - self.time <= 32767
            or len(self.body) > _MAX_CLUSTER_BYTES
        )
        if opened:
            self._open(max(0, time))
        if cue is None:
            cue = opened
        rel = time - self.time
        head = _size(track) + struct.pack(">hB", rel, 0x80 if key and duration is None else 0)
        if cue:
            self._pending_cues.append((time, track, len(self.body)))
        if duration is None:
            self.body += _id_bytes(SIMPLE_BLOCK) + _size(len(head) + len(payload)) + head + payload
        else:
            block = _id_bytes(BLOCK) + _size(len(head) + len(payload)) + head + payload
            self.body += _el(BLOCK_GROUP, block, _uint(BLOCK_DURATION, duration))

    def cues_element(self) -> bytes:
        points = [
            _el(
                CUE_POINT,
                _uint(CUE_TIME, t),
                _el(
                    CUE_TRACK_POSITIONS,
                    _uint(CUE_TRACK, track),
                    _uint(CUE_CLUSTER_POSITION, pos),
                    _uint(CUE_RELATIVE_POSITION, rel),
                ),
            )
            for t, track, pos, rel in self.cues
        ]
        return _el(CUES, *points) if points else b""


def _subtitle_text(keyframe_text: str, clip_text: str) -> str:
    return "\n".join(t for t in (keyframe_text, clip_text) if t)


def mux(
    m3v_src,
    out_path,
    *,
    preview_frames: Iterable[Any] | Callable[[], Iterable[Any]] | None = None,
    preview_codec: str = "libx264",
    preview_crf: int = 30,
    subtitles: bool = True,
    chapters: bool = True,
    name: str | None = None,
) -> MuxReport:
    """Write ``out_path`` (.mkv) carrying the `.m3v` stream ``m3v_src`` (path, ``"-"``, bytes or
    binary file) as an attachment, with a subtitle track of the descriptions and chapters at
    clip starts unless disabled, and a preview track when ``preview_frames`` (an iterable of
    H x W x 3 uint8 RGB frames at the stream's size and rate, or a callable returning one) is
    given.  ``name`` overrides the attachment's file name.  Raises M3VError for a bad stream,
    ValueError for bad frames or encoder settings, OSError for files."""
    from .reader import Reader
    from .textcodec import decode_text

    data, source_name = _read_source(m3v_src)
    attachment_name = _attachment_name(name or source_name)
    with Reader(data, sniff_mkv=False) as reader:
        header = reader.header
        records = list(reader.clips())
    fps = header.fps
    frames = records[-1].end_frame if records else 0
    digest = hashlib.sha256(data).digest()
    clips = []  # (index, first, end, text)
    for rec in records:
        text = ""
        if subtitles:
            text = _subtitle_text(
                decode_text(rec.keyframe_text_coded, header.text_codec),
                decode_text(rec.clip_text_coded, header.text_codec),
            )
        clips.append((rec.index, rec.first_frame, rec.end_frame, text))

    encoder = None
    if preview_frames is not None:
        if callable(preview_frames):
            preview_frames = preview_frames()
        encoder = _PreviewEncoder(header.width, header.height, fps, preview_codec, preview_crf)
    options = f"preview={encoder is not None} subtitles={subtitles} chapters={chapters}"
    salt = digest + options.encode()

    # ---- elements before the clusters
    tracks = []
    track_names = []
    if encoder is not None:
        video = [_uint(PIXEL_WIDTH, encoder.width), _uint(PIXEL_HEIGHT, encoder.height)]
        if encoder.pad[0]:
            video.append(_uint(PIXEL_CROP_BOTTOM, encoder.pad[0]))
        if encoder.pad[1]:
            video.append(_uint(PIXEL_CROP_RIGHT, encoder.pad[1]))
        tracks.append(
            _el(
                TRACK_ENTRY,
                _uint(TRACK_NUMBER, VIDEO_TRACK),
                _uint(TRACK_UID, _uid(salt, "track video")),
                _uint(TRACK_TYPE, 1),
                _uint(FLAG_LACING, 0),
                _uint(DEFAULT_DURATION, _ns(1, fps)),
                _text(NAME, "M3-CVC decoded preview"),
                _text(LANGUAGE, "und"),
                _text(CODEC_ID, "V_MPEG4/ISO/AVC"),
                _el(CODEC_PRIVATE, encoder.codec_private),
                _el(VIDEO, *video),
            )
        )
        track_names.append("video")
    subtitle_clips = [c for c in clips if c[3]] if subtitles else []
    if subtitles:
        tracks.append(
            _el(
                TRACK_ENTRY,
                _uint(TRACK_NUMBER, SUBTITLE_TRACK),
                _uint(TRACK_UID, _uid(salt, "track subtitles")),
                _uint(TRACK_TYPE, 17),
                _uint(FLAG_LACING, 0),
                _text(NAME, "M3-CVC descriptions"),
                _text(LANGUAGE, "und"),
                _text(CODEC_ID, "S_TEXT/UTF8"),
            )
        )
        track_names.append("subtitles")

    info = [
        _uint(TIMESTAMP_SCALE, TIMESTAMP_SCALE_NS),
        _text(MUXING_APP_ID, MUXING_APP),
        _text(WRITING_APP_ID, MUXING_APP),
        _el(SEGMENT_UID, hashlib.sha256(salt + b"segment").digest()[:16]),
        _text(TITLE, attachment_name),
    ]
    if frames:
        info.insert(1, _float(DURATION, float(Fraction(frames * 1000) / fps)))
    level1: list[tuple[int, bytes]] = [(INFO, _el(INFO, *info))]
    if tracks:
        level1.append((TRACKS, _el(TRACKS, *tracks)))
    if chapters and clips:
        atoms = [
            _el(
                CHAPTER_ATOM,
                _uint(CHAPTER_UID, _uid(salt, f"chapter {k}")),
                _uint(CHAPTER_TIME_START, _ns(first, fps)),
                _uint(CHAPTER_TIME_END, _ns(end, fps)),
                _el(CHAPTER_DISPLAY, _text(CHAP_STRING, f"Clip {k}"), _text(CHAP_LANGUAGE, "eng")),
            )
            for k, first, end, _ in clips
        ]
        level1.append(
            (
                CHAPTERS,
                _el(
                    CHAPTERS,
                    _el(
                        EDITION_ENTRY,
                        _uint(EDITION_UID, _uid(salt, "edition")),
                        _uint(EDITION_FLAG_HIDDEN, 0),
                        _uint(EDITION_FLAG_DEFAULT, 1),
                        *atoms,
                    ),
                ),
            )
        )
    # FileUID = the first 8 bytes of the SHA-256, which extract_m3v checks
    description = (
        f"{_DESCRIPTION_MARK}, {header.width}x{header.height}, {fps} fps, "
        f"{frames} frames, {len(records)} clips, pack {header.pack_id}"
    )
    level1.append(
        (
            ATTACHMENTS,
            _el(
                ATTACHMENTS,
                _el(
                    ATTACHED_FILE,
                    _text(FILE_DESCRIPTION, description),
                    _text(FILE_NAME, attachment_name),
                    _text(FILE_MIME_TYPE, MIME_TYPE),
                    _el(FILE_DATA, data),
                    _uint(FILE_UID, int.from_bytes(digest[:8], "big") or 1),
                ),
            ),
        )
    )

    # The SeekHead comes first; the positions of the elements before the clusters are known now
    # (they depend on the SeekHead's own size: iterate), the Cues' is patched in at the end.
    seek_head_size = 0
    while True:
        known, pos = {}, seek_head_size
        for element_id, element in level1:
            known[element_id] = pos
            pos += len(element)
        size = len(_seek_head(known, cues=0 if tracks else None))
        if size == seek_head_size:
            break
        seek_head_size = size

    out_path = Path(out_path)
    folder = out_path.parent if str(out_path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, "folder does not exist", str(folder))
    report = MuxReport(
        output=str(out_path),
        size=0,
        m3v_size=len(data),
        attachment_name=attachment_name,
        clips=len(records),
        frames=frames,
        duration_s=float(frames / fps),
        tracks=track_names,
    )
    with atomic_file(out_path) as f:
        f.write(
            _el(
                EBML,
                _uint(EBML_VERSION, 1),
                _uint(EBML_READ_VERSION, 1),
                _uint(EBML_MAX_ID_LENGTH, 4),
                _uint(EBML_MAX_SIZE_LENGTH, 8),
                _text(DOC_TYPE, "matroska"),
                _uint(DOC_TYPE_VERSION, 4),
                _uint(DOC_TYPE_READ_VERSION, 2),
            )
        )
        segment_size_at = f.tell() + 4
        f.write(_id_bytes(SEGMENT) + _size(0, 8))
        segment_data = f.tell()
        f.write(bytes(seek_head_size))  # the SeekHead, written at the end
        for element_id, element in level1:
            assert f.tell() - segment_data == known[element_id]
            f.write(element)

        clusters = _ClusterWriter(f, segment_data)
        pending = [(_ms(first, fps), _ms(end, fps) - _ms(first, fps), text) for _, first, end, text in subtitle_clips]
        pending.reverse()  # pop() from the end = earliest first

        def flush_subtitles(until: float) -> None:
            while pending and pending[-1][0] <= until:
                start, duration, text = pending.pop()
                clusters.add(
                    SUBTITLE_TRACK,
                    start,
                    text.encode("utf-8"),
                    key=True,
                    duration=duration,
                    cue=None if encoder is None else False,
                )
                report.subtitles += 1

        if encoder is not None:
            keys = {first for _, first, _, _ in clips}

            def write_packet(p: _Packet) -> None:
                flush_subtitles(_ms(p.order, fps))
                clusters.add(VIDEO_TRACK, _ms(p.frame, fps), p.data, key=p.key, new_cluster=p.key, cue=p.key)

            n = 0
            for rgb in preview_frames:
                if n >= frames:
                    raise ValueError(f"preview has more frames than the stream's {frames}")
                shape = getattr(rgb, "shape", None)
                if shape != (header.height, header.width, 3):
                    raise ValueError(
                        f"preview frame {n} has shape {shape}, expected ({header.height}, {header.width}, 3)"
                    )
                if str(rgb.dtype) != "uint8":
                    raise ValueError(f"preview frame {n} is {rgb.dtype}, expected uint8 RGB")
                for p in encoder.encode(rgb, n, n in keys):
                    write_packet(p)
                n += 1
            for p in encoder.flush():
                write_packet(p)
            report.preview_frames = n
        # subtitles alone (or after the preview's end) share clusters, a new one when the
        # 16-bit millisecond block timestamps would overflow
        flush_subtitles(float("inf"))
        if clusters.clusters == 0 and clusters.time is None:
            # no blocks at all: one empty Cluster still, as FFmpeg's demuxer (5.1) fails on a
            # Segment without any and resynchronises into the attachment's bytes
            clusters._open(0)
        clusters.close()

        cues = clusters.cues_element()
        cues_at = None
        if cues:
            cues_at = f.tell() - segment_data
            f.write(cues)
        end = f.tell()
        seek_head = _seek_head(known, cues=cues_at)
        if len(seek_head) < seek_head_size:  # no Cues after all (no blocks): pad
            seek_head += _void(seek_head_size - len(seek_head))
        f.seek(segment_data)
        f.write(seek_head)
        f.seek(segment_size_at)
        f.write(_size(end - segment_data, 8))
        report.size = end
        report.chapters = len(clips) if chapters else 0
    return report


def _seek_head(positions: dict[int, int], cues: int | None) -> bytes:
    """SeekHead for ``positions``, plus the Cues at ``cues`` (unless None) with an 8-byte
    position, so its size is known before the clusters are written."""
    entries = [(i, pos, None) for i, pos in positions.items()]
    if cues is not None:
        entries.append((CUES, cues, 8))
    return _el(
        SEEK_HEAD,
        *(_el(SEEK, _el(SEEK_ID, _id_bytes(i)), _uint(SEEK_POSITION, pos, width)) for i, pos, width in entries),
    )


# ------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class Attachment:
    """An AttachedFile element: its fields and where its FileData lies in the file."""

    name: str
    mime_type: str
    description: str
    uid: int | None
    offset: int  # of the AttachedFile element
    data_offset: int | None
    data_size: int | None

    def describe(self) -> str:
        return f"{self.name or '(no name)'} ({self.mime_type or 'no mimetype'})"


class _File:
    """Bounded reads at absolute offsets of a seekable binary file."""

    def __init__(self, file: BinaryIO):
        self.file = file
        self.size = file.seek(0, io.SEEK_END)
        self._base, self._buf = 0, b""

    def read(self, pos: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``pos`` (``n`` is clipped to the file's end before reading)."""
        n = max(0, min(n, self.size - pos))
        if self._base <= pos and pos + n <= self._base + len(self._buf):
            return self._buf[pos - self._base : pos + n - self._base]
        self.file.seek(pos)
        if n <= 4096:  # small reads (element headers) go through a read-ahead window
            self._buf, self._base = self.file.read(min(65536, self.size - pos)), pos
            return self._buf[:n]
        return self.file.read(n)


def _open(src):
    """``src`` opened for the demuxer, which seeks: a pipe is read into memory (bounded by the
    input's size)."""
    from .opener import open_source

    return open_source(src, sniff_mkv=False, seekable=True)


@dataclass(frozen=True)
class _Header:
    offset: int
    element_id: int
    data: int  # offset of the element's data
    size: int | None  # None: unknown size

    @property
    def end(self) -> int | None:
        return None if self.size is None else self.data + self.size


def _header(f: _File, pos: int, limit: int) -> _Header:
    """The element header at ``pos``; DamagedMKVError if malformed or past ``limit``."""
    head = f.read(pos, min(12, limit - pos))
    if not head:
        raise DamagedMKVError("data ends where an EBML element should start", pos)
    first = head[0]
    if first == 0 or first < 0x10:
        raise DamagedMKVError(f"invalid EBML element id byte 0x{first:02x}", pos)
    id_len = 8 - first.bit_length() + 1
    if len(head) < id_len + 1:
        raise DamagedMKVError("data ends inside an EBML element header", pos)
    element_id = int.from_bytes(head[:id_len], "big")
    lead = head[id_len]
    if lead == 0:
        raise DamagedMKVError(f"invalid EBML size in element 0x{element_id:X}", pos)
    size_len = 8 - lead.bit_length() + 1
    if len(head) < id_len + size_len:
        raise DamagedMKVError("data ends inside an EBML element header", pos)
    raw = int.from_bytes(head[id_len : id_len + size_len], "big") & ((1 << (7 * size_len)) - 1)
    size = None if raw == (1 << (7 * size_len)) - 1 else raw
    return _Header(pos, element_id, pos + id_len + size_len, size)


def _children(f: _File, start: int, end: int, parent: str, error=DamagedMKVError) -> Iterator[_Header]:
    """Children of a master element spanning [start, end), each checked to lie within it."""
    pos = start
    while pos < end:
        try:
            h = _header(f, pos, end)
        except DamagedMKVError as err:
            if error is DamagedMKVError:
                raise
            raise error(f"{err.message} in its {parent}", err.offset) from None
        if h.size is None or h.end > end:
            size = "an unknown size" if h.size is None else f"{h.size} bytes"
            raise error(f"element 0x{h.element_id:X} of {size} runs past the end of its {parent}", pos)
        yield h
        pos = h.end


def _uint_value(f: _File, h: _Header) -> int:
    if h.size > 8:
        raise DamagedMKVError(f"unsigned integer element 0x{h.element_id:X} of {h.size} bytes", h.offset)
    return int.from_bytes(f.read(h.data, h.size), "big")


def _string_value(f: _File, h: _Header) -> str:
    return f.read(h.data, h.size).split(b"\x00", 1)[0].decode("utf-8", "replace")


def _check_ebml_header(f: _File) -> int:
    """Check the EBML header; the offset just after it."""
    if f.size == 0:
        raise NotMatroskaError("not a Matroska file: the file is empty", 0)
    if f.read(0, 4) != _id_bytes(EBML):
        raise NotMatroskaError("not a Matroska file: no EBML header", 0)
    try:
        h = _header(f, 0, f.size)
    except DamagedMKVError as err:
        raise NotMatroskaError(f"not a Matroska file: {err.message}", 0) from None
    if h.size is None or h.end > f.size or h.size > 4096:
        raise NotMatroskaError("not a Matroska file: the EBML header's size is wrong or past the end", 0)
    doc_type = "matroska"  # EBML's default
    try:
        for child in _children(f, h.data, h.end, "EBML header"):
            if child.element_id == DOC_TYPE:
                doc_type = _string_value(f, child)
            elif child.element_id == EBML_READ_VERSION and _uint_value(f, child) > 1:
                raise NotMatroskaError("EBML read version is above 1", child.offset)
    except DamagedMKVError as err:
        raise NotMatroskaError(f"not a Matroska file: damaged EBML header: {err.message}", err.offset) from None
    if doc_type not in ("matroska", "webm"):
        raise NotMatroskaError(f"not a Matroska file: EBML document type is {doc_type!r}", 0)
    return h.end


def _cluster_end(f: _File, h: _Header, limit: int) -> int:
    """Where a Cluster of unknown size ends: at the first element that cannot be its child."""
    pos = h.data
    while pos < limit:
        child = _header(f, pos, limit)
        if child.element_id in _LEVEL1:
            return pos
        if child.size is None:
            raise DamagedMKVError(f"element 0x{child.element_id:X} of unknown size inside a Cluster", pos)
        pos = min(child.end, limit)
    return limit


def _parse_attachments(f: _File, h: _Header) -> list[Attachment]:
    found = []
    for af in _children(f, h.data, h.end, "Attachments", DamagedAttachmentError):
        if af.element_id != ATTACHED_FILE:
            continue
        fields: dict[int, Any] = {}
        data_at = data_size = None
        for child in _children(f, af.data, af.end, "AttachedFile", DamagedAttachmentError):
            if child.element_id == FILE_DATA:
                data_at, data_size = child.data, child.size
            elif child.element_id in (FILE_NAME, FILE_MIME_TYPE, FILE_DESCRIPTION):
                fields[child.element_id] = _string_value(f, child)
            elif child.element_id == FILE_UID:
                fields[FILE_UID] = _uint_value(f, child)
        found.append(
            Attachment(
                name=fields.get(FILE_NAME, ""),
                mime_type=fields.get(FILE_MIME_TYPE, ""),
                description=fields.get(FILE_DESCRIPTION, ""),
                uid=fields.get(FILE_UID),
                offset=af.offset,
                data_offset=data_at,
                data_size=data_size,
            )
        )
    return found


def _scan(f: _File) -> list[Attachment]:
    pos = _check_ebml_header(f)
    while True:  # the Segment, after any Void elements
        if pos >= f.size:
            raise NoAttachmentError("Matroska file has no Segment, so no attachments", pos)
        h = _header(f, pos, f.size)
        if h.element_id == SEGMENT:
            break
        if h.element_id != VOID or h.size is None or h.end > f.size:
            raise DamagedMKVError(f"expected a Segment after the EBML header, found element 0x{h.element_id:X}", pos)
        pos = h.end
    segment_end = f.size if h.size is None else min(h.end, f.size)
    cut = None if h.size is None or h.end <= f.size else h.offset  # a truncated file
    pos = h.data
    while pos < segment_end:
        if segment_end - pos < 2:
            break  # a stray byte at the end of a cut-off file
        try:
            child = _header(f, pos, segment_end)
        except DamagedMKVError:
            if cut is not None:
                break  # the file ends inside this header
            raise
        if child.element_id == ATTACHMENTS:
            if child.size is None:
                raise DamagedAttachmentError("Attachments element has an unknown size", pos)
            if child.end > segment_end:
                raise DamagedAttachmentError(
                    f"Attachments element of {child.size} bytes runs past the end of the file "
                    f"({segment_end - child.data} bytes left)",
                    pos,
                )
            return _parse_attachments(f, child)  # at most one Attachments element
        elif child.size is None:
            if child.element_id != CLUSTER:
                raise DamagedMKVError(f"element 0x{child.element_id:X} of unknown size in the Segment", pos)
            pos = _cluster_end(f, child, segment_end)
        elif child.end > segment_end:
            cut = pos  # this element is cut off (or its size is damaged): nothing more to read
            break
        else:
            pos = child.end
    if cut is not None:
        raise DamagedMKVError(
            "Matroska file is cut off or damaged before any attachment: element runs past the end of the file", cut
        )
    return []


def attachments(src) -> list[Attachment]:
    """Every attached file of a Matroska file (path, Path, ``"-"``, bytes or binary file)."""
    with _open(src) as source:
        return _scan(_File(source.file))


_SHA = re.compile(r"(?:^|[ ;,])sha256=([0-9a-f]{64})(?:$|[ ;,.])")
_DESCRIPTION_MARK = "M3-CVC video stream (.m3v)"


def _verify(a: Attachment, data: bytes) -> None:
    """Check the attached bytes against the SHA-256 recorded for them: m3v-mux makes the FileUID
    the first 8 bytes of it (its description says it wrote the file), and a ``sha256=<hex>`` in
    the description gives all of it.  A file from another muxer records neither: the stream's
    own chunk CRCs decide."""
    digest = hashlib.sha256(data).digest()
    m = _SHA.search(a.description)
    if m and m.group(1) != digest.hex():
        raise DamagedAttachmentError(
            f"attachment {a.name!r} is damaged: its SHA-256 differs from the one in its description", a.data_offset
        )
    uid_matches = a.uid == (int.from_bytes(digest[:8], "big") or 1)
    if m or uid_matches:
        return  # the recorded digest matches
    if "sha256=" in a.description or a.description.startswith(_DESCRIPTION_MARK):
        raise DamagedAttachmentError(
            f"attachment {a.name!r} is damaged: its SHA-256 does not match its FileUID", a.data_offset
        )
    from .reader import Reader

    try:
        with Reader(data, on_damage="skip", sniff_mkv=False) as reader:
            for _ in reader.clips():
                pass
            damage = list(reader.damage)
    except M3VError as err:
        damage = [err]
    else:
        if len(damage) == 1 and reader.truncated and isinstance(damage[0].error, TruncatedError):
            damage = []  # a stream cut off after its last complete chunk is valid (spec §9)
        damage = [getattr(d, "error", d) for d in damage]
    if damage:
        err = damage[0]
        where = f" at byte {err.offset} of the stream" if err.offset is not None else ""
        raise DamagedAttachmentError(
            f"attachment {a.name!r} holds a damaged .m3v stream: {err.message}{where}",
            a.data_offset + (err.offset or 0),
        )


def extract_m3v(src, *, verify: bool = True) -> bytes:
    """The `.m3v` stream attached to a Matroska file (path, Path, ``"-"``, bytes or binary
    file), byte for byte.  Raises an :class:`MKVError` subclass naming the problem.

    The stream must start with the `.m3v` signature.  With ``verify`` (the default) its bytes
    must also match the SHA-256 m3v-mux records or, for a file from another muxer, pass the
    stream's own CRC checks; ``verify=False`` returns a damaged stream for recovery."""
    with _open(src) as source:
        f = _File(source.file)
        found = _scan(f)
        if not found:
            raise NoAttachmentError("Matroska file has no attachments")
        matches = [a for a in found if a.mime_type.strip().lower() == MIME_TYPE]
        if not matches:
            names = ", ".join(a.describe() for a in found[:5]) + (", ..." if len(found) > 5 else "")
            raise WrongMimeTypeError(
                f"no attachment of type {MIME_TYPE} ({len(found)} attachment{'s' if len(found) != 1 else ''}: {names})",
                found[0].offset,
            )
        a = matches[0]
        if a.data_offset is None:
            raise DamagedAttachmentError(f"attachment {a.name!r} has no FileData", a.offset)
        data = f.read(a.data_offset, a.data_size)  # its size was checked against the file
        if len(data) != a.data_size:
            raise DamagedAttachmentError(f"attachment {a.name!r} is cut off", a.data_offset)
        if data[: len(SIGNATURE)] != SIGNATURE:
            raise NotM3VAttachmentError(
                f"attachment {a.name!r} of type {MIME_TYPE} is not an .m3v stream (no .m3v signature)", a.data_offset
            )
        if verify:
            _verify(a, data)
        return data
