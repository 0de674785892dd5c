"""m3cvc_codec: the M3-CVC codec pipeline (keyframe selection, descriptions, VQ keyframe
codec, clip reconstruction).  Not implemented yet: it arrives with the lite-pack issue.
It depends on :mod:`m3cvc_format`, never the reverse."""

__version__ = "0.1.0"
__all__: list[str] = []
