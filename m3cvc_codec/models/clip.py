"""CLIP image features for keyframe selection (the paper's ``f_Clip``, section II-A).

:class:`ClipEmbedder` wraps a transformers ``CLIPModel`` (default ``openai/clip-vit-base-patch32``)
and its image processor, found by :func:`m3cvc_codec.models.hub.load_model` (a model id, a
local folder, ``--models DIR``, ``HF_HUB_OFFLINE``).  ``embed`` gives the projected image
features, ``get_image_features(...).pooler_output`` (transformers 5 returns an output object),
as float32, in batches, under ``torch.inference_mode``.

The processor is always the PIL one (``CLIPImageProcessorPil``), whether or not torchvision
imports, so the same frames give the same features on every machine (the torchvision
processor resizes slightly differently).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .hub import ModelError, load_model, require_full, torch_device, torch_dtype

if TYPE_CHECKING:
    from ..packs.config import RuntimeOptions

__all__ = ["DEFAULT_CLIP", "ClipEmbedder"]

#: The paper's CLIP (ViT-B/32).
DEFAULT_CLIP = "openai/clip-vit-base-patch32"


class ClipEmbedder:
    """CLIP image features of frames: ``embed(N x H x W x 3 uint8) -> float32 (N, D)``.

    Loads the model at construction (so a missing model fails before any video is read):
    ModelNotFoundError / ModelError as :mod:`.hub` gives them, MissingExtraError without the
    ``full`` extra.  ``batch`` frames go through the model at a time."""

    def __init__(self, model_id: str = DEFAULT_CLIP, options: RuntimeOptions | None = None, *, batch: int = 16) -> None:
        require_full("the CLIP keyframe scorer")
        if not isinstance(batch, int) or batch < 1:
            raise ModelError(f"CLIP batch {batch!r} must be a positive integer")
        from transformers import CLIPImageProcessorPil, CLIPModel

        self.model_id = model_id
        self.options = options
        self.batch = batch
        models_dir = options.models_dir if options is not None else None
        self.device = torch_device(options)
        self.dtype = torch_dtype(options)
        model = load_model(
            CLIPModel.from_pretrained, model_id, what="CLIP model", models_dir=models_dir, dtype=self.dtype
        )
        self.processor: Any = load_model(
            CLIPImageProcessorPil.from_pretrained, model_id, what="CLIP image processor", models_dir=models_dir
        )
        self.model: Any = model.eval().to(self.device)
        self.dim = int(self.model.config.projection_dim)

    def metadata(self) -> dict[str, Any]:
        return {"clip_model": self.model_id}

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """Projected CLIP image features of ``frames`` (N x H x W x 3 uint8, or one frame),
        float32 N x D, not normalised."""
        import torch

        x = np.asarray(frames)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ModelError(f"CLIP: embed takes N x H x W x 3 uint8 frames, got {x.shape}")
        out = np.empty((len(x), self.dim), np.float32)
        with torch.inference_mode():
            for s in range(0, len(x), self.batch):
                chunk = [np.ascontiguousarray(f, dtype=np.uint8) for f in x[s : s + self.batch]]
                pixels = self.processor(images=chunk, return_tensors="pt")["pixel_values"]
                pixels = pixels.to(device=self.device, dtype=self.dtype)
                features = self.model.get_image_features(pixel_values=pixels).pooler_output
                out[s : s + len(chunk)] = features.float().cpu().numpy()
        return out
