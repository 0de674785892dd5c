"""The model-pack flags the codec's commands share: ``--pack``, ``--pack-config``,
``--models``, ``--device``, ``--dtype``.  They name no pack: the default id comes from
:data:`m3cvc_codec.packs.DEFAULT_PACK`, and what a pack accepts is the pack's business
(:func:`m3cvc_codec.packs.load_pack` reports a refusal as a one-line PackError)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .packs.config import RuntimeOptions

__all__ = ["add_pack_arguments", "runtime_options"]


def add_pack_arguments(parser: argparse.ArgumentParser, *, pack_default: str | None, pack_help: str) -> None:
    """Add the pack flags to ``parser`` (``--pack`` defaults to ``pack_default``)."""
    group = parser.add_argument_group("model pack")
    group.add_argument("--pack", metavar="ID", default=pack_default, help=pack_help)
    group.add_argument(
        "--pack-config",
        metavar="FILE",
        help="the pack's configuration file (which weights: model ids or local folders, revisions, "
        "SHA-256); default: the pack's own",
    )
    group.add_argument("--models", metavar="DIR", help="local folder holding the pack's models (offline use)")
    group.add_argument(
        "--device", metavar="DEV", default="cpu", help="where the models run: cpu (default), cuda, cuda:1, ..."
    )
    group.add_argument(
        "--dtype",
        choices=["float32", "float16", "bfloat16"],
        help="weights' type for the torch models (default: the model's choice; float16 needs a GPU)",
    )


def runtime_options(args: argparse.Namespace) -> RuntimeOptions:
    """The RuntimeOptions the parsed pack flags ask for."""
    from .packs.config import RuntimeOptions

    return RuntimeOptions(device=args.device, dtype=args.dtype, models_dir=args.models)
