"""Tiny random-weight stand-ins for the full pack's clip models (section II-D), loaded by
tools/make_tiny_models.py (``BUILDERS``); each writes the real repository's layout under the
real id's path, so ``--models DIR`` with the default ids loads them:

* ``ltx-video``: ``Lightricks/LTX-Video-0.9.5`` (model_index.json, transformer/, vae/,
  text_encoder/, tokenizer/, scheduler/) -- a 1-layer LTXVideoTransformer3DModel, an
  AutoencoderKLLTXVideo that compresses 8x in space and 8x in time (as the real one does in
  time), a 2-layer T5 encoder with an offline word-piece tokenizer, FlowMatchEulerDiscreteScheduler.
* ``animatediff-sparsectrl``: ``guoyww/animatediff-motion-adapter-v1-5-3`` (MotionAdapter) and
  ``guoyww/animatediff-sparsectrl-rgb`` (SparseControlNetModel taking VAE latents, as the RGB
  SparseCtrl does; its zero-initialised convolutions made small and random, so the
  conditioning frames change the output), sized for the tiny SD 1.5 UNet of tools/tiny_models/sd.py (``sd15``:
  block_out_channels (16, 32), one layer per block, cross-attention width 32, 8 norm groups),
  which the SparseCtrl backend runs on.

torch, diffusers and transformers are imported inside the builders, not at load time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

LTX_ID = "Lightricks/LTX-Video-0.9.5"
MOTION_ADAPTER_ID = "guoyww/animatediff-motion-adapter-v1-5-3"
SPARSECTRL_RGB_ID = "guoyww/animatediff-sparsectrl-rgb"

# The tiny SD 1.5 UNet's shape (tools/tiny_models/sd.py), which the motion adapter and the
# sparse ControlNet must match.
_SD_BLOCKS = (16, 32)
_SD_CROSS = 32
_SD_GROUPS = 8

_WORD_PIECES = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"-()")


def t5_tokenizer():
    """A T5 tokenizer built offline: <pad>, </s>, <unk>, the word boundary, then one piece per
    letter, digit and punctuation mark (with and without the boundary); no extra ids."""
    from transformers import T5TokenizerFast

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [(p, -3.0) for p in _WORD_PIECES] + [("\u2581" + p, -2.5) for p in _WORD_PIECES]
    return T5TokenizerFast(vocab=vocab, extra_ids=0, model_max_length=128)


def build_ltx_video(root: Path) -> Path:
    """A tiny LTXConditionPipeline at ``root/Lightricks/LTX-Video-0.9.5``."""
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXConditionPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    tokenizer = t5_tokenizer()
    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    torch.manual_seed(0)
    text_encoder = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
        )
    )
    pipe = LTXConditionPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        transformer=transformer,
    )
    out = root / LTX_ID
    pipe.save_pretrained(out)
    return out


def build_animatediff_sparsectrl(root: Path) -> Path:
    """A tiny MotionAdapter and RGB SparseControlNetModel at their real ids; returns the
    adapter's folder."""
    import torch
    from diffusers import MotionAdapter, SparseControlNetModel

    torch.manual_seed(0)
    adapter = MotionAdapter(
        block_out_channels=_SD_BLOCKS,
        motion_layers_per_block=1,
        motion_norm_num_groups=_SD_GROUPS,
        motion_num_attention_heads=2,
        motion_max_seq_length=32,
        use_motion_mid_block=False,
    )
    torch.manual_seed(0)
    controlnet = SparseControlNetModel(
        in_channels=4,
        conditioning_channels=4,
        block_out_channels=_SD_BLOCKS,
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlockMotion", "DownBlockMotion"),
        cross_attention_dim=_SD_CROSS,
        attention_head_dim=8,
        conditioning_embedding_out_channels=(8, 16),
        norm_num_groups=_SD_GROUPS,
        motion_num_attention_heads=2,
        use_simplified_condition_embedding=True,
    )
    # a ControlNet's condition embedding and output convolutions start at zero, which would make the keyframes no
    # influence at all: small random ones, so tests see the conditioning frames act
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        zeroed = [controlnet.controlnet_cond_embedding, *controlnet.controlnet_down_blocks]
        for block in [*zeroed, controlnet.controlnet_mid_block]:
            block.weight.copy_(torch.randn(block.weight.shape, generator=generator) * 0.1)
    out = root / MOTION_ADAPTER_ID
    adapter.save_pretrained(out)
    controlnet.save_pretrained(root / SPARSECTRL_RGB_ID)
    return out


#: name -> builder(root) -> folder written (merged into tools/make_tiny_models.py's BUILDERS).
BUILDERS: dict[str, Callable[[Path], Path]] = {
    "ltx-video": build_ltx_video,
    "animatediff-sparsectrl": build_animatediff_sparsectrl,
}
