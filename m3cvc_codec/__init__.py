"""m3cvc_codec: the M3-CVC codec pipeline (keyframe selection, descriptions, VQ keyframe
codec through a model pack, clip reconstruction).  It depends on :mod:`m3cvc_format`, never the
reverse, and never imports torch.

    import m3cvc_codec as c
    report = c.encode("in.mp4", "out.m3v", target_bpp=0.005)  # the default pack
    print(report.summary())
    c.decode("out.m3v", "out.mp4", frames="0:40")

Names resolve lazily, so ``import m3cvc_codec`` stays cheap.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "encode": "encoder",
    "EncodeReport": "encoder",
    "decode": "decoder",
    "DecodeReport": "decoder",
    "CodecError": "errors",
    "KeyframeParams": "keyframes",
    "ClipSpan": "descriptions",
    "DescriptionProvider": "descriptions",
    "NoDescriptions": "descriptions",
    "SidecarDescriptions": "descriptions",
    "load_sidecar": "descriptions",
    "read_frames": "video_io",
    "open_writer": "video_io",
    "probe": "video_io",
    "PackError": "packs",
    "load_pack": "packs",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'm3cvc_codec' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    if name != "load_pack":  # stays patchable in m3cvc_codec.packs
        globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
