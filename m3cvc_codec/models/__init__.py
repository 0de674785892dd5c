"""The paper's pretrained models, behind small wrappers: CLIP image features and optical flow for
keyframe selection, the Qwen-VL dialogue for descriptions.

Everything here needs the ``full`` extra (torch, transformers; torchvision where it imports) and
imports it lazily: importing this package imports nothing heavy.  :mod:`.hub` is the one way
models are found (a model id, a local folder, ``--models DIR``, ``HF_HUB_OFFLINE``) and the one
place a missing model or a missing extra becomes a one-line error.
"""

from __future__ import annotations

from .hub import MissingExtraError, ModelError, ModelNotFoundError

__all__ = ["MissingExtraError", "ModelError", "ModelNotFoundError"]
