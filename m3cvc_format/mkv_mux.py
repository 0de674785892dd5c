"""Writing a Matroska file that carries an `.m3v` stream (m3v-mux); see :mod:`.mkv` for the layout."""

from __future__ import annotations

import errno
import hashlib
import os
import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

from .atomic import atomic_file
from .ebml import (
    ATTACHED_FILE,
    ATTACHMENTS,
    BLOCK,
    BLOCK_DURATION,
    BLOCK_GROUP,
    CHAP_LANGUAGE,
    CHAP_STRING,
    CHAPTER_ATOM,
    CHAPTER_DISPLAY,
    CHAPTER_TIME_END,
    CHAPTER_TIME_START,
    CHAPTER_UID,
    CHAPTERS,
    CLUSTER,
    CODEC_ID,
    CODEC_PRIVATE,
    CONTENT_COMP_ALGO,
    CONTENT_COMPRESSION,
    CONTENT_ENCODING,
    CONTENT_ENCODING_ORDER,
    CONTENT_ENCODING_SCOPE,
    CONTENT_ENCODING_TYPE,
    CONTENT_ENCODINGS,
    CUE_CLUSTER_POSITION,
    CUE_POINT,
    CUE_RELATIVE_POSITION,
    CUE_TIME,
    CUE_TRACK,
    CUE_TRACK_POSITIONS,
    CUES,
    DEFAULT_DURATION,
    DOC_TYPE,
    DOC_TYPE_READ_VERSION,
    DOC_TYPE_VERSION,
    DURATION,
    EBML,
    EBML_MAX_ID_LENGTH,
    EBML_MAX_SIZE_LENGTH,
    EBML_READ_VERSION,
    EBML_VERSION,
    EDITION_ENTRY,
    EDITION_FLAG_DEFAULT,
    EDITION_FLAG_HIDDEN,
    EDITION_UID,
    FILE_DATA,
    FILE_DESCRIPTION,
    FILE_MIME_TYPE,
    FILE_NAME,
    FILE_UID,
    FLAG_LACING,
    INFO,
    LANGUAGE,
    MUXING_APP_ID,
    NAME,
    PIXEL_CROP_BOTTOM,
    PIXEL_CROP_RIGHT,
    PIXEL_HEIGHT,
    PIXEL_WIDTH,
    SEEK,
    SEEK_HEAD,
    SEEK_ID,
    SEEK_POSITION,
    SEGMENT,
    SEGMENT_UID,
    SIMPLE_BLOCK,
    TIMESTAMP,
    TIMESTAMP_SCALE,
    TITLE,
    TRACK_ENTRY,
    TRACK_NUMBER,
    TRACK_TYPE,
    TRACK_UID,
    TRACKS,
    VIDEO,
    WRITING_APP_ID,
    derived_uid,
    element,
    encode_size,
    float_element,
    id_bytes,
    text_element,
    uint_element,
    void_element,
)
from .mkv_extract import DESCRIPTION_MARK, MIME_TYPE
from .mkv_preview import Packet, PreviewEncoder

MUXING_APP = "m3cvc_format.mkv 1"  # fixed: the output must not change with the package version
TIMESTAMP_SCALE_NS = 1_000_000  # block timestamps in milliseconds
VIDEO_TRACK = 1
SUBTITLE_TRACK = 2
_MAX_CLUSTER_BYTES = 4 << 20


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


def _read_source(src: Any) -> tuple[bytes, str]:
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
        self.body = bytearray(uint_element(TIMESTAMP, time))

    def close(self) -> None:
        if self.time is None:
            return
        position = self.file.tell() - self.segment_data
        self.file.write(id_bytes(CLUSTER) + encode_size(len(self.body)) + self.body)
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
        assert self.time is not None  # _open set it
        rel = time - self.time
        head = encode_size(track) + struct.pack(">hB", rel, 0x80 if key and duration is None else 0)
        if cue:
            self._pending_cues.append((time, track, len(self.body)))
        if duration is None:
            self.body += id_bytes(SIMPLE_BLOCK) + encode_size(len(head) + len(payload)) + head + payload
        else:
            block = id_bytes(BLOCK) + encode_size(len(head) + len(payload)) + head + payload
            self.body += element(BLOCK_GROUP, block, uint_element(BLOCK_DURATION, duration))

    def cues_element(self) -> bytes:
        points = [
            element(
                CUE_POINT,
                uint_element(CUE_TIME, t),
                element(
                    CUE_TRACK_POSITIONS,
                    uint_element(CUE_TRACK, track),
                    uint_element(CUE_CLUSTER_POSITION, pos),
                    uint_element(CUE_RELATIVE_POSITION, rel),
                ),
            )
            for t, track, pos, rel in self.cues
        ]
        return element(CUES, *points) if points else b""


def _subtitle_text(keyframe_text: str, clip_text: str) -> str:
    return "\n".join(t for t in (keyframe_text, clip_text) if t)


#: zlib's level for the subtitle track: the smallest; the texts are a few kB in all.
SUBTITLE_ZLIB_LEVEL = 9


def _zlib_encoding() -> bytes:
    """ContentEncodings of a track whose every frame is zlib-compressed (ContentCompAlgo 0): the
    one compression FFmpeg, mkvtoolnix and VLC all read.  Each block is compressed on its own,
    as Matroska requires (a reader may start at any block)."""
    return element(
        CONTENT_ENCODINGS,
        element(
            CONTENT_ENCODING,
            uint_element(CONTENT_ENCODING_ORDER, 0),
            uint_element(CONTENT_ENCODING_SCOPE, 1),  # the frames
            uint_element(CONTENT_ENCODING_TYPE, 0),  # compression
            element(CONTENT_COMPRESSION, uint_element(CONTENT_COMP_ALGO, 0)),  # zlib
        ),
    )


def mux(
    m3v_src: Any,
    out_path: str | os.PathLike[str],
    *,
    preview_frames: Iterable[Any] | Callable[[], Iterable[Any]] | None = None,
    preview_codec: str = "libx264",
    preview_crf: int = 30,
    subtitles: bool = True,
    chapters: bool = True,
    name: str | None = None,
    compress_subtitles: bool = True,
) -> MuxReport:
    """Write ``out_path`` (.mkv) carrying the `.m3v` stream ``m3v_src`` (path, ``"-"``, bytes or
    binary file) as an attachment, with a subtitle track of the descriptions and chapters at
    clip starts unless disabled, and a preview track when ``preview_frames`` (an iterable of
    H x W x 3 uint8 RGB frames at the stream's size and rate, or a callable returning one) is
    given.  ``name`` overrides the attachment's file name.  The subtitle track is
    zlib-compressed (Matroska ContentCompression) unless ``compress_subtitles`` is False.  Raises M3VError for a bad stream,
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
    frames_in: Iterable[Any] = ()
    if preview_frames is not None:
        frames_in = preview_frames() if callable(preview_frames) else preview_frames
        encoder = PreviewEncoder(header.width, header.height, fps, preview_codec, preview_crf)
    options = f"preview={encoder is not None} subtitles={subtitles} chapters={chapters}"
    salt = digest + options.encode()

    # ---- elements before the clusters
    tracks = []
    track_names = []
    if encoder is not None:
        video = [uint_element(PIXEL_WIDTH, encoder.width), uint_element(PIXEL_HEIGHT, encoder.height)]
        if encoder.pad[0]:
            video.append(uint_element(PIXEL_CROP_BOTTOM, encoder.pad[0]))
        if encoder.pad[1]:
            video.append(uint_element(PIXEL_CROP_RIGHT, encoder.pad[1]))
        tracks.append(
            element(
                TRACK_ENTRY,
                uint_element(TRACK_NUMBER, VIDEO_TRACK),
                uint_element(TRACK_UID, derived_uid(salt, "track video")),
                uint_element(TRACK_TYPE, 1),
                uint_element(FLAG_LACING, 0),
                uint_element(DEFAULT_DURATION, _ns(1, fps)),
                text_element(NAME, "M3-CVC decoded preview"),
                text_element(LANGUAGE, "und"),
                text_element(CODEC_ID, "V_MPEG4/ISO/AVC"),
                element(CODEC_PRIVATE, encoder.codec_private),
                element(VIDEO, *video),
            )
        )
        track_names.append("video")
    subtitle_clips = [c for c in clips if c[3]] if subtitles else []
    if subtitles:
        tracks.append(
            element(
                TRACK_ENTRY,
                uint_element(TRACK_NUMBER, SUBTITLE_TRACK),
                uint_element(TRACK_UID, derived_uid(salt, "track subtitles")),
                uint_element(TRACK_TYPE, 17),
                uint_element(FLAG_LACING, 0),
                text_element(NAME, "M3-CVC descriptions"),
                text_element(LANGUAGE, "und"),
                text_element(CODEC_ID, "S_TEXT/UTF8"),
                # a track without a single text has no block to compress: no ContentEncodings
                *([_zlib_encoding()] if compress_subtitles and subtitle_clips else []),
            )
        )
        track_names.append("subtitles")

    info = [
        uint_element(TIMESTAMP_SCALE, TIMESTAMP_SCALE_NS),
        text_element(MUXING_APP_ID, MUXING_APP),
        text_element(WRITING_APP_ID, MUXING_APP),
        element(SEGMENT_UID, hashlib.sha256(salt + b"segment").digest()[:16]),
        text_element(TITLE, attachment_name),
    ]
    if frames:
        info.insert(1, float_element(DURATION, float(Fraction(frames * 1000) / fps)))
    level1: list[tuple[int, bytes]] = [(INFO, element(INFO, *info))]
    if tracks:
        level1.append((TRACKS, element(TRACKS, *tracks)))
    if chapters and clips:
        atoms = [
            element(
                CHAPTER_ATOM,
                uint_element(CHAPTER_UID, derived_uid(salt, f"chapter {k}")),
                uint_element(CHAPTER_TIME_START, _ns(first, fps)),
                uint_element(CHAPTER_TIME_END, _ns(end, fps)),
                element(CHAPTER_DISPLAY, text_element(CHAP_STRING, f"Clip {k}"), text_element(CHAP_LANGUAGE, "eng")),
            )
            for k, first, end, _ in clips
        ]
        level1.append(
            (
                CHAPTERS,
                element(
                    CHAPTERS,
                    element(
                        EDITION_ENTRY,
                        uint_element(EDITION_UID, derived_uid(salt, "edition")),
                        uint_element(EDITION_FLAG_HIDDEN, 0),
                        uint_element(EDITION_FLAG_DEFAULT, 1),
                        *atoms,
                    ),
                ),
            )
        )
    # FileUID = the first 8 bytes of the SHA-256, which extract_m3v checks
    description = (
        f"{DESCRIPTION_MARK}, {header.width}x{header.height}, {fps} fps, "
        f"{frames} frames, {len(records)} clips, pack {header.pack_id}"
    )
    level1.append(
        (
            ATTACHMENTS,
            element(
                ATTACHMENTS,
                element(
                    ATTACHED_FILE,
                    text_element(FILE_DESCRIPTION, description),
                    text_element(FILE_NAME, attachment_name),
                    text_element(FILE_MIME_TYPE, MIME_TYPE),
                    element(FILE_DATA, data),
                    uint_element(FILE_UID, int.from_bytes(digest[:8], "big") or 1),
                ),
            ),
        )
    )

    # The SeekHead comes first; the positions of the elements before the clusters are known now
    # (they depend on the SeekHead's own size: iterate), the Cues' is patched in at the end.
    seek_head_size = 0
    while True:
        known, pos = {}, seek_head_size
        for element_id, body in level1:
            known[element_id] = pos
            pos += len(body)
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
            element(
                EBML,
                uint_element(EBML_VERSION, 1),
                uint_element(EBML_READ_VERSION, 1),
                uint_element(EBML_MAX_ID_LENGTH, 4),
                uint_element(EBML_MAX_SIZE_LENGTH, 8),
                text_element(DOC_TYPE, "matroska"),
                uint_element(DOC_TYPE_VERSION, 4),
                uint_element(DOC_TYPE_READ_VERSION, 2),
            )
        )
        segment_size_at = f.tell() + 4
        f.write(id_bytes(SEGMENT) + encode_size(0, 8))
        segment_data = f.tell()
        f.write(bytes(seek_head_size))  # the SeekHead, written at the end
        for element_id, body in level1:
            assert f.tell() - segment_data == known[element_id]
            f.write(body)

        clusters = _ClusterWriter(f, segment_data)
        pending = [(_ms(first, fps), _ms(end, fps) - _ms(first, fps), text) for _, first, end, text in subtitle_clips]
        pending.reverse()  # pop() from the end = earliest first

        def flush_subtitles(until: float) -> None:
            while pending and pending[-1][0] <= until:
                start, duration, text = pending.pop()
                payload = text.encode("utf-8")
                clusters.add(
                    SUBTITLE_TRACK,
                    start,
                    zlib.compress(payload, SUBTITLE_ZLIB_LEVEL) if compress_subtitles else payload,
                    key=True,
                    duration=duration,
                    cue=None if encoder is None else False,
                )
                report.subtitles += 1

        if encoder is not None:
            keys = {first for _, first, _, _ in clips}

            def write_packet(p: Packet) -> None:
                flush_subtitles(_ms(p.order, fps))
                clusters.add(VIDEO_TRACK, _ms(p.frame, fps), p.data, key=p.key, new_cluster=p.key, cue=p.key)

            n = 0
            for rgb in frames_in:
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
            seek_head += void_element(seek_head_size - len(seek_head))
        f.seek(segment_data)
        f.write(seek_head)
        f.seek(segment_size_at)
        f.write(encode_size(end - segment_data, 8))
        report.size = end
        report.chapters = len(clips) if chapters else 0
    return report


def _seek_head(positions: dict[int, int], cues: int | None) -> bytes:
    """SeekHead for ``positions``, plus the Cues at ``cues`` (unless None) with an 8-byte
    position, so its size is known before the clusters are written."""
    entries: list[tuple[int, int, int | None]] = [(i, pos, None) for i, pos in positions.items()]
    if cues is not None:
        entries.append((CUES, cues, 8))
    return element(
        SEEK_HEAD,
        *(
            element(SEEK, element(SEEK_ID, id_bytes(i)), uint_element(SEEK_POSITION, pos, width))
            for i, pos, width in entries
        ),
    )
