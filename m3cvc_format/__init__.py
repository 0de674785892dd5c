"""m3cvc_format: the `.m3v` bitstream of M3-CVC (spec/m3v.md).

Reading::

    with m3cvc_format.Reader("clip.m3v") as reader:
        print(reader.header.width, reader.clip_count)
        clip = reader.clip(3).decode(reader.header)   # random access
        print(clip.keyframe_text, clip.index_map.shape)

Writing::

    header = m3cvc_format.Header(width=512, height=320, fps=8, grid_h=20, grid_w=32)
    with m3cvc_format.Writer("out.m3v", header) as writer:
        writer.write_clip(m3cvc_format.Clip(index=0, first_frame=0, frame_count=16,
                                            keyframe_text="a dog", index_map=indices))

Decoding frames, with PyAV's interface (the frame decoder for the stream's pack is found
through the ``m3cvc.frame_decoders`` entry points; docs/pyav-compat.md)::

    with m3cvc_format.open("clip.m3v") as container:      # as av.open
        for frame in container.decode(video=0):          # av.VideoFrame
            rgb = frame.to_ndarray(format="rgb24")

Names resolve lazily, so ``import m3cvc_format`` stays cheap; numpy,
constriction, construct and av load when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # reading and writing
    "Reader": "reader",
    "Damage": "reader",
    "Writer": "writer",
    "write": "writer",
    "describe": "structure",
    "edit_texts": "edit",
    # frames: a PyAV-compatible container, the clip-level frame source, frame decoders
    "open": "container",
    "FrameSource": "framesource",
    "open_source": "opener",
    "FollowFile": "follow",
    "available_frame_decoders": "framedecoders",
    "DecoderNotFoundError": "framedecoders",
    # values
    "Header": "model",
    "Clip": "model",
    "ClipRecord": "model",
    "IndexEntry": "model",
    "IndexMapPayload": "model",
    "decode_seed": "model",
    # payload codecs
    "encode_text": "textcodec",
    "decode_text": "textcodec",
    "encode_index_map": "indexmap",
    "decode_index_map": "indexmap",
    # registries and constants
    "ChunkType": "constants",
    "Mode": "constants",
    "TextCodec": "constants",
    "IndexMapCoder": "constants",
    "SIGNATURE": "constants",
    "VERSION_MAJOR": "constants",
    "VERSION_MINOR": "constants",
    # errors
    "M3VError": "errors",
    "SignatureError": "errors",
    "UnsupportedVersionError": "errors",
    "TruncatedError": "errors",
    "ChecksumError": "errors",
    "MalformedError": "errors",
    "LimitError": "errors",
    "UnknownChunkError": "errors",
    "PayloadError": "errors",
    "MissingIndexError": "errors",
    "MissingReferenceError": "errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'm3cvc_format' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
