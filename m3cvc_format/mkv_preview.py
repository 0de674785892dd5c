"""The H.264 preview track of m3v-mux: PyAV's encoder (imported only here, when a preview is
written) makes the packets; they are converted from Annex B to the length-prefixed form
Matroska wants, with the ``avcC`` record built from the encoder's SPS and PPS."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

H264_CODECS = ("libx264", "libopenh264", "h264")

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
class Packet:
    frame: int  # presentation index (pts in frames)
    order: int  # decode position (dts in frames), for interleaving
    key: bool
    data: bytes


class PreviewEncoder:
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
            cc: Any = av.CodecContext.create(codec, "w")  # a VideoCodecContext
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

    def _packets(self, packets: Iterable[Any]) -> Iterator[Packet]:
        for p in packets:
            data = bytes(p)
            yield Packet(
                int(p.pts),
                int(p.dts if p.dts is not None else p.pts),
                bool(p.is_keyframe),
                _length_prefixed(data) if self._annexb else data,
            )

    def encode(self, rgb: Any, index: int, key: bool) -> Iterator[Packet]:
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

    def flush(self) -> Iterator[Packet]:
        yield from self._packets(self.cc.encode(None))
