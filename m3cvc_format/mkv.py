"""Matroska packaging of `.m3v` streams: a small EBML writer and reader.

:func:`mux` writes a Matroska file that carries the `.m3v` bytes, unchanged, as an attachment
(mimetype ``application/x-m3v``), and, so that any player shows something:

- a subtitle track (``S_TEXT/UTF8``) with each clip's descriptions, keyframe text then clip
  text, timed to the clip (one BlockGroup with a BlockDuration per clip), each block
  zlib-compressed (ContentEncoding with ContentCompAlgo 0, which FFmpeg, mkvtoolnix and VLC
  read; ``compress_subtitles=False`` stores them plain).  Matroska compresses every block on
  its own, so a clip's two sentences shrink to about 60% (ActivityNet descriptions), not to
  what a whole-track compressor would reach;
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

:func:`extract_m3v` finds the attachment again and returns its bytes; :func:`m3v_attachment`
only says where it lies (the remote opener reads the stream inside in ranges);
:func:`subtitles` reads the subtitle track back, its compression undone.  It reads any Matroska
file (mkvmerge's too), checks every EBML size against its parent and the file before it reads
or allocates anything, checks the bytes (the `.m3v` signature; the SHA-256 m3v-mux recorded as
the FileUID, or for another muxer's file the stream's own CRCs), and raises one of the
:class:`MKVError` classes (each an :class:`~m3cvc_format.M3VError` and a ``ValueError``) with a
byte offset.

numpy and PyAV are imported only when a preview track is written.
"""

from __future__ import annotations

from .ebml import (
    DamagedAttachmentError,
    DamagedMKVError,
    MKVError,
    NoAttachmentError,
    NotM3VAttachmentError,
    NotMatroskaError,
    WrongMimeTypeError,
)
from .mkv_extract import MIME_TYPE, Attachment, Subtitle, attachments, extract_m3v, m3v_attachment, subtitles
from .mkv_mux import MUXING_APP, MuxReport, mux

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
    "Subtitle",
    "WrongMimeTypeError",
    "attachments",
    "extract_m3v",
    "m3v_attachment",
    "mux",
    "subtitles",
]
