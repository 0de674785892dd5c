"""Numbers fixed by the specification (spec/m3v.md): magic, type codes, registries, limits."""

from __future__ import annotations

from enum import IntEnum

#: Eight bytes that open every stream (spec/m3v.md, "Signature").  The high-bit
#: byte catches 7-bit transfers, CR LF and the lone LF catch line-ending
#: conversion in either direction, 0x1A stops a DOS ``type``.
SIGNATURE = b"\x8bM3V\r\n\x1a\n"

VERSION_MAJOR = 1
#: The minor version this implementation reads (1.2 registers the ancillary chunk PRMT, 1.3 the
#: PAD sub-chunk and the work limit of spec/m3v.md §11).
VERSION_MINOR = 3
#: The minor version writers write when a stream uses nothing newer (spec/m3v.md §10): every
#: stream without a PRMT chunk keeps the bytes a 1.1 writer gave it.
BASE_VERSION_MINOR = 1
#: The first minor version that defines the PRMT chunk; a stream that carries one has at least it.
PRMT_VERSION_MINOR = 2


class ChunkType(IntEnum):
    """Top-level chunk types; bit 7 set marks an ancillary chunk."""

    HEAD = 0x01
    CLIP = 0x02
    INDX = 0x03
    TAIL = 0x04
    #: Ancillary: the description prompts (since 1.2, spec/m3v.md §4.3).
    PRMT = 0x80


ANCILLARY_CHUNK_BIT = 0x80


class SubChunkKind(IntEnum):
    """Sub-chunk kinds inside a CLIP chunk; bit 3 set marks an ancillary sub-chunk."""

    KEYFRAME_TEXT = 0
    CLIP_TEXT = 1
    INDEX_MAP = 2


ANCILLARY_SUBCHUNK_BIT = 0x8
SUBCHUNK_KIND_BITS = 4
#: The ancillary sub-chunk kind PAD (since 1.3, spec/m3v.md §6.3): zero bytes that make a CLIP
#: chunk big enough for the work limit; readers skip it as any ancillary sub-chunk.
PAD_SUBCHUNK_KIND = 15


class Mode(IntEnum):
    """Clip reconstruction mode (the paper's section II-D)."""

    INTERPOLATION = 0
    PREDICTION = 1


class TextCodec(IntEnum):
    """Registry of text codecs (spec/text-codecs.md)."""

    UTF8 = 0
    LZW = 1
    TOKANS1 = 2


class IndexMapCoder(IntEnum):
    """Registry of index-map coders (spec/entropy-coding.md)."""

    RAW = 0
    STATIC = 1
    CONTEXT = 2
    TEMPORAL = 3


# Clip flags byte.
FLAG_PREDICTION = 0x01
FLAG_SEED_PRESENT = 0x02
CLIP_FLAGS_KNOWN = FLAG_PREDICTION | FLAG_SEED_PRESENT

# TAIL: fixed payload of index offset (u64le) and index chunk size (u32le).
TAIL_PAYLOAD_SIZE = 12
TAIL_SIZE = 1 + 1 + TAIL_PAYLOAD_SIZE + 4

PACK_HASH_SIZE = 32

# Limits (spec/m3v.md, "Limits").  Readers reject values beyond them, which
# bounds the memory any input can make a reader allocate.
MAX_VARINT_BYTES = 9
MAX_LENGTH_VARINT_BYTES = 4
MAX_CHUNK_LENGTH = (1 << 28) - 1
MAX_DIMENSION = 65535
MAX_RATE_TERM = (1 << 32) - 1
MAX_FRAME_COUNT = (1 << 40) - 1
MAX_PACK_ID_BYTES = 64
MAX_GRID_SIDE = 1024
MAX_GRID_SYMBOLS = 1 << 18
MAX_VOCAB_SIZE = 4096
MAX_PRIOR_COUNT = (1 << 24) - 1
MAX_METADATA_BYTES = 1 << 20
MAX_PROMPTS_BYTES = 1 << 20
MAX_TEXT_BYTES = 1 << 20
MAX_CLIP_COUNT = (1 << 32) - 1
#: The work limit (spec/m3v.md §11, since 1.3): a CLIP chunk of n bytes holds an index map of at
#: most 16 n cells, so the time a reader spends decoding maps grows with the bytes it reads.
MAX_CELLS_PER_CLIP_BYTE = 16

#: Probability precision of every rANS model in the format: frequencies sum to 2**24.
ANS_PRECISION = 24
