"""Tiny Stable Diffusion 1.5 parts and a tiny trained keyframe codec, for tests (loaded by
tools/make_tiny_models.py, which merges :data:`BUILDERS`).

- ``sd15``: ``DIR/stable-diffusion-v1-5/stable-diffusion-v1-5`` with ``vae/``, ``unet/``,
  ``text_encoder/``, ``tokenizer/`` and ``scheduler/`` as the real repository has them.  The
  geometry is the real one (the VAE downsamples by 8 and has 4 latent channels; the UNet takes 4
  channels and downsamples its input by 2), the widths are a few dozen channels.  The tokenizer is
  an offline byte-level CLIP tokenizer (every byte one token, no merges) in the real files' layout; the scheduler is SD 1.5's
  own PNDM configuration (the codec rebuilds the scheduler it is told to from it).
- ``sd15-keyframe``: ``DIR/m3cvc/keyframe-tiny`` with ``tokenizer_1-16/`` and ``tokenizer_1-8/``
  (random :class:`~m3cvc_codec.packs.full.keyframe.KeyframeTokenizer`) and ``unet/`` (the tiny
  UNet with ``conv_in`` widened by 4 channels): the layout ``tools/train_full.py`` writes,
  untrained.  The new ``conv_in`` weights are small random numbers, not training's zeros, so the
  index map changes the decoded frame as it would after training.

Each builder takes well under a second after the imports; fixed seeds, so the same torch
version writes the same weights.  torch, diffusers and transformers are imported inside the
builders only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

SD15_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
KEYFRAME_TINY = "m3cvc/keyframe-tiny"
#: SD 1.5's parts: the sub-folders of its repository the codec reads.
SD15_PARTS = ("vae", "unet", "text_encoder", "tokenizer", "scheduler")

#: Width of the tiny text encoder's states (= the UNet's cross-attention width).
TEXT_WIDTH = 32


def byte_symbols() -> list[str]:
    """GPT-2's byte -> printable character table (the alphabet of byte-level BPE), in byte order."""
    keep = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def write_clip_tokenizer(folder: Path) -> Path:
    """An offline CLIP tokenizer in SD 1.5's own layout (``vocab.json``, ``merges.txt``,
    ``tokenizer_config.json``, ``special_tokens_map.json``): 256 byte symbols, the same with the
    end-of-word mark, then ``<|startoftext|>`` (512) and ``<|endoftext|>`` (513); no merges;
    77 tokens as SD's."""
    symbols = byte_symbols()
    vocab = {sym: i for i, sym in enumerate(symbols)}
    vocab.update({sym + "</w>": 256 + i for i, sym in enumerate(symbols)})
    vocab["<|startoftext|>"] = 512
    vocab["<|endoftext|>"] = 513
    special = {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
    }
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True, **special}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    return folder


def tiny_vae() -> Any:
    """AutoencoderKL with SD's geometry (4 blocks: downsample 8, 4 latent channels, SD's
    scaling factor), 8-16 channels wide."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8, 8, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=0.18215,
    )


def tiny_unet(in_channels: int = 4) -> Any:
    """UNet2DConditionModel with SD's interface (4 latent channels in and out, cross-attention on
    the text encoder's states), two levels, 16-32 channels."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8,
        in_channels=in_channels,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=8,
        norm_num_groups=8,
    )


def tiny_text_encoder() -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=514,
        hidden_size=TEXT_WIDTH,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=512,
        eos_token_id=513,
        pad_token_id=513,
    )
    return CLIPTextModel(config)


def sd15_scheduler() -> Any:
    """SD 1.5's scheduler configuration (scheduler/scheduler_config.json of the real repository)."""
    from diffusers import PNDMScheduler

    return PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        set_alpha_to_one=False,
        skip_prk_steps=True,
        steps_offset=1,
        trained_betas=None,
    )


def build_sd15(root: Path) -> Path:
    """The tiny SD 1.5 parts at ``root/stable-diffusion-v1-5/stable-diffusion-v1-5``."""
    import torch

    out = root / SD15_ID
    torch.manual_seed(0)
    tiny_vae().eval().save_pretrained(out / "vae")
    torch.manual_seed(1)
    tiny_unet().eval().save_pretrained(out / "unet")
    torch.manual_seed(2)
    tiny_text_encoder().eval().save_pretrained(out / "text_encoder")
    write_clip_tokenizer(out / "tokenizer")
    sd15_scheduler().save_pretrained(out / "scheduler")
    return out


def build_keyframe(root: Path) -> Path:
    """A tiny untrained keyframe codec at ``root/m3cvc/keyframe-tiny``: a KeyframeTokenizer per
    grid (``tokenizer_1-16``, ``tokenizer_1-8``) and the widened UNet (``unet``)."""
    import torch

    from m3cvc_codec.packs.full.keyframe import KeyframeTokenizer, widen_conv_in

    out = root / KEYFRAME_TINY
    for seed, (name, stride) in enumerate((("1/16", 2), ("1/8", 1))):
        torch.manual_seed(10 + seed)
        tok = KeyframeTokenizer(stride=stride, channels=16, code_dim=8, blocks=1, vocab_size=256)
        tok.eval().save_pretrained(out / f"tokenizer_{name.replace('/', '-')}")
    torch.manual_seed(1)
    unet = tiny_unet()
    torch.manual_seed(12)
    widen_conv_in(unet, 4, std=0.1).eval().save_pretrained(out / "unet")
    return out


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "sd15": build_sd15,
    "sd15-keyframe": build_keyframe,
}


def keyframe_components(root: Path) -> dict[str, dict[str, str]]:
    """Pack-config components of the keyframe codec for the tiny models under ``root`` (as made
    by :func:`build_sd15` and :func:`build_keyframe`): the SD parts by id (found with
    ``--models root``), the trained parts as absolute folders.  One UNet for both grids."""
    kt = Path(root) / KEYFRAME_TINY
    comps: dict[str, dict[str, str]] = {n: {"source": SD15_ID, "subfolder": n} for n in SD15_PARTS}
    for grid in ("1/16", "1/8"):
        comps[f"keyframe_tokenizer_{grid}"] = {"source": str(kt / f"tokenizer_{grid.replace('/', '-')}")}
    comps["keyframe_unet"] = {"source": str(kt / "unet")}
    return comps
