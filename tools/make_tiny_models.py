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

__all__ = ["BUILDERS", "build_clip", "main", "make_tiny_models"]

CLIP_ID = "openai/clip-vit-base-patch32"

README = """Tiny random-weight stand-ins written by tools/make_tiny_models.py (m3cvc).
The weights are random: use them to exercise loading and code paths, never for quality.
"""


def build_clip(root: Path) -> Path:
    """A tiny CLIPModel and its image processor at ``root/openai/clip-vit-base-patch32``."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=99,
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
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
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(out)
    return out


#: name -> builder(root) -> folder written.  Qwen-VL builders join here.
BUILDERS: dict[str, Callable[[Path], Path]] = {
    "clip": build_clip,
}


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
