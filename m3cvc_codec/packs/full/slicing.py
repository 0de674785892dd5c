"""Attention slicing for the full pack's diffusers models (``RuntimeOptions.attention_slicing``).

Sliced attention computes a layer's attention a few heads (rows of batch x heads) at a time
instead of all at once: less peak memory, somewhat slower, the same result up to float rounding
(diffusers' ``SlicedAttnProcessor``, plain matmul + softmax where the default is PyTorch's
scaled-dot-product attention).  :func:`slice_attention` sets it on every diffusers ``Attention``
layer of a model; unlike a pipeline's ``enable_attention_slicing``, which reaches only the
models that have ``set_attention_slice`` of their own, this reaches AnimateDiff's
``UNetMotionModel`` too.  A VAE's attention has one head, so there is nothing to slice in it:
a VAE gets batch slicing instead (:func:`slice_vae`: frames decoded one at a time) where it
decodes several frames at once (SparseCtrl's clips; a keyframe is one frame).

LTX-Video's transformer has no sliced attention processor in diffusers (its layers keep their
own rotary-embedding attention), so the LTX clip backend refuses the option
(:func:`unsupported_by`).
"""

from __future__ import annotations

from typing import Any

from ..base import PackError

__all__ = ["SLICING_UNSUPPORTED", "slice_attention", "slice_size", "slice_vae", "unsupported_by"]

#: Clip backends that cannot slice attention -> why (the refusal's words).
SLICING_UNSUPPORTED = {
    "ltx": "LTX-Video's transformer has no sliced attention in diffusers",
}


def unsupported_by(backend: str, slicing: str | int | None) -> None:
    """PackError (one line) when ``slicing`` is asked of a clip backend that cannot do it."""
    if slicing is not None and backend in SLICING_UNSUPPORTED:
        raise PackError(
            f"full pack: attention slicing is not supported by the {backend} clip backend "
            f"({SLICING_UNSUPPORTED[backend]}); leave out --attention-slicing or use the sparsectrl backend"
        )


def slice_size(slicing: str | int, heads: int) -> int:
    """Rows (heads) per slice for a layer of ``heads`` heads: ``"auto"`` half of them, ``"max"``
    one, a number that many (at most ``heads``)."""
    if slicing == "auto":
        return max(1, heads // 2)
    if slicing == "max":
        return 1
    return max(1, min(int(slicing), heads))


def slice_attention(model: Any, slicing: str | int) -> int:
    """Sliced attention (``slicing`` as :func:`slice_size` takes it) on every diffusers
    ``Attention`` layer of ``model``; returns how many layers it set."""
    from diffusers.models.attention_processor import Attention

    count = 0
    for module in model.modules():
        if not isinstance(module, Attention):
            continue
        module.set_attention_slice(slice_size(slicing, module.sliceable_head_dim))
        count += 1
    return count


def slice_vae(vae: Any) -> None:
    """Batch slicing of a VAE on: the frames of a batch encoded and decoded one at a time."""
    vae.enable_slicing()
