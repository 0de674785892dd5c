#!/usr/bin/env python3
"""Write tiny random-weight models in the folder layout ``from_pretrained`` reads, for tests and
offline trials of the full models' loading code:

    python tools/make_tiny_models.py DIR [--only clip,qwen2-vl,...]

Each model is saved under the path of the real model's id (``DIR/openai/clip-vit-base-patch32``,
``DIR/Qwen/Qwen2-VL-7B-Instruct``, ...), so ``--models DIR`` stands in for the real weights with
the default ids.  Configs are a few hundred parameters wide; tokenizers and processors are built
offline (no download).  The weights are random: outputs are gibberish, the code paths are real.
Deterministic: the same torch version writes the same weights (fixed seeds).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "BUILDERS",
    "build_clip",
    "build_qwen2_5_vl",
    "build_qwen2_vl",
    "build_qwen3_vl",
    "main",
    "make_tiny_models",
    "qwen_tokenizer",
]

CLIP_ID = "openai/clip-vit-base-patch32"
QWEN2_VL_ID = "Qwen/Qwen2-VL-7B-Instruct"
QWEN2_5_VL_ID = "Qwen/Qwen2.5-VL-7B-Instruct"
QWEN3_VL_ID = "Qwen/Qwen3-VL-8B-Instruct"

README = """Tiny random-weight stand-ins written by tools/make_tiny_models.py (m3cvc).
The weights are random: use them to exercise loading and code paths, never for quality.
"""


def build_clip(root: Path) -> Path:
    """A tiny CLIPModel and its image processor at ``root/openai/clip-vit-base-patch32``."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=99,
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            # CLIPTextConfig's defaults (49406/49407) lie outside this vocabulary
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
        ),
        vision_config=dict(
            image_size=32,
            patch_size=8,
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
        ),
        projection_dim=16,
    )
    out = root / CLIP_ID
    CLIPModel(config).eval().save_pretrained(out)
    # the PIL processor (the default one wants torchvision, which does not import everywhere)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(out)
    return out


# ---- Qwen-VL: a byte-level tokenizer (256 byte symbols, no merges) plus Qwen's special tokens ----

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# The chat template of Qwen2-VL-7B-Instruct and Qwen2.5-VL-7B-Instruct (images, videos and text
# interleaved in a message's content; a default system turn).
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen3-VL's template in the same shape, without the default system turn (as Qwen3-VL's own).
QWEN3_VL_CHAT_TEMPLATE = QWEN2_VL_CHAT_TEMPLATE.replace(
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}",
    "",
)


def qwen_tokenizer(chat_template: str = QWEN2_VL_CHAT_TEMPLATE):
    """A Qwen2Tokenizer built offline: every byte is one token (ids 0-255, no merges), then the
    special tokens (ids 256-262); ``<|im_end|>`` ends a reply, as in the real models."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import Qwen2Tokenizer

    vocab = {symbol: i for i, symbol in enumerate(sorted(ByteLevel.alphabet()))}
    for token in QWEN_SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=[],
        unk_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(QWEN_SPECIAL_TOKENS[1:]),
    )
    tokenizer.chat_template = chat_template
    return tokenizer


def _qwen_ids(tokenizer) -> dict[str, int]:
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIAL_TOKENS}
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }


def _qwen_text(tokenizer, **extra) -> dict:
    ids = _qwen_ids(tokenizer)
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=ids["bos_token_id"],
        eos_token_id=ids["eos_token_id"],
        pad_token_id=ids["pad_token_id"],
        **extra,
    )


def _save_qwen(model, tokenizer, image_processor, out: Path) -> Path:
    """Save a tiny Qwen-VL: weights, config, greedy generation config, tokenizer (with its chat
    template) and the image processor -- what the real repositories hold, minus the video
    processor (it needs torchvision; the loading code builds without it)."""
    model.generation_config.do_sample = False
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    image_processor.save_pretrained(out)
    return out


# Images are resized to 56x56 .. 112x112 pixels: 4 to 16 vision tokens each.
_QWEN_PIXELS = dict(min_pixels=56 * 56, max_pixels=112 * 112)


def build_qwen2_vl(root: Path) -> Path:
    """A tiny Qwen2VLForConditionalGeneration at ``root/Qwen/Qwen2-VL-7B-Instruct``."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    torch.manual_seed(0)
    tokenizer = qwen_tokenizer()
    ids = _qwen_ids(tokenizer)
    config = Qwen2VLConfig(
        text_config=_qwen_text(
            tokenizer, rope_parameters={"rope_type": "default", "rope_theta": 1e4, "mrope_section": [2, 1, 1]}
        ),
        vision_config=dict(
            depth=2,
            embed_dim=32,
            hidden_size=32,
            num_heads=4,
            mlp_ratio=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
        ),
        image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"],
        vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"],
    )
    model = Qwen2VLForConditionalGeneration(config)
    return _save_qwen(model, tokenizer, Qwen2VLImageProcessorPil(**_QWEN_PIXELS), root / QWEN2_VL_ID)


def build_qwen2_5_vl(root: Path) -> Path:
    """A tiny Qwen2_5_VLForConditionalGeneration at ``root/Qwen/Qwen2.5-VL-7B-Instruct``."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    torch.manual_seed(0)
    tokenizer = qwen_tokenizer()
    ids = _qwen_ids(tokenizer)
    config = Qwen2_5_VLConfig(
        text_config=_qwen_text(
            tokenizer, rope_parameters={"rope_type": "default", "rope_theta": 1e4, "mrope_section": [2, 1, 1]}
        ),
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=4,
            out_hidden_size=32,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=56,
            fullatt_block_indexes=[1],
        ),
        image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"],
        vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"],
    )
    model = Qwen2_5_VLForConditionalGeneration(config)
    return _save_qwen(model, tokenizer, Qwen2VLImageProcessorPil(**_QWEN_PIXELS), root / QWEN2_5_VL_ID)


def build_qwen3_vl(root: Path) -> Path:
    """A tiny Qwen3VLForConditionalGeneration at ``root/Qwen/Qwen3-VL-8B-Instruct`` (16-pixel
    patches, deepstack features from vision layer 1)."""
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    torch.manual_seed(0)
    tokenizer = qwen_tokenizer(QWEN3_VL_CHAT_TEMPLATE)
    ids = _qwen_ids(tokenizer)
    config = Qwen3VLConfig(
        text_config=_qwen_text(
            tokenizer,
            head_dim=8,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 1e4,
                "mrope_section": [2, 1, 1],
                "mrope_interleaved": True,
            },
        ),
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=4,
            out_hidden_size=32,
            patch_size=16,
            spatial_merge_size=2,
            temporal_patch_size=2,
            num_position_embeddings=64,
            deepstack_visual_indexes=[1],
        ),
        image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"],
        vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"],
    )
    model = Qwen3VLForConditionalGeneration(config)
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=16, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], min_pixels=64 * 64, max_pixels=128 * 128
    )
    return _save_qwen(model, tokenizer, image_processor, root / QWEN3_VL_ID)


#: name -> builder(root) -> folder written.
BUILDERS: dict[str, Callable[[Path], Path]] = {
    "clip": build_clip,
    "qwen2-vl": build_qwen2_vl,
    "qwen2.5-vl": build_qwen2_5_vl,
    "qwen3-vl": build_qwen3_vl,
}


def _more_builders() -> None:
    """The full pack's families keep their builders beside this script, one module each
    (tools/tiny_models/*.py, each with its own ``BUILDERS``), loaded by path: tools/ is not a
    package.  They import torch and diffusers inside their builders, not at load time."""
    import importlib.util

    for path in sorted((Path(__file__).resolve().parent / "tiny_models").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"m3cvc_tiny_models_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        clash = set(module.BUILDERS) & set(BUILDERS)
        if clash:
            raise RuntimeError(f"{path.name}: tiny model names already taken: {', '.join(sorted(clash))}")
        BUILDERS.update(module.BUILDERS)


_more_builders()


def make_tiny_models(root: str | Path, only: list[str] | None = None) -> dict[str, Path]:
    """Build the models named in ``only`` (default: all) under ``root``; returns name -> folder."""
    root = Path(root)
    names = only or list(BUILDERS)
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        raise ValueError(f"unknown tiny model {unknown[0]!r} (known: {', '.join(BUILDERS)})")
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.txt").write_text(README)
    return {name: BUILDERS[name](root) for name in names}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make_tiny_models.py", description=__doc__.split("\n\n")[0])
    p.add_argument("dir", help="folder to write the models into")
    p.add_argument("--only", help=f"comma-separated subset of: {', '.join(BUILDERS)}")
    args = p.parse_args(argv)
    try:
        made = make_tiny_models(args.dir, args.only.split(",") if args.only else None)
    except ValueError as err:
        print(f"make_tiny_models.py: {err}", file=sys.stderr)
        return 1
    for name, path in made.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
