"""The model-pack flags the codec's commands share: ``--pack``, ``--pack-config``,
``--models``, ``--device``, ``--dtype``, ``--cpu-offload``, ``--attention-slicing``.  They name
no pack: the default id comes from :data:`m3cvc_codec.packs.DEFAULT_PACK`, and what a pack
accepts is the pack's business (:func:`m3cvc_codec.packs.load_pack` reports a refusal as a
one-line PackError)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .packs.config import RuntimeOptions

__all__ = ["add_pack_arguments", "runtime_options"]


def _slice_size(text: str) -> str | int | None:
    """``--attention-slicing``'s value, checked when parsing (a usage error, not a pack's)."""
    from .packs.base import PackError
    from .packs.config import attention_slicing_value

    try:
        return attention_slicing_value(text)
    except PackError:
        raise argparse.ArgumentTypeError(f"{text!r} is not auto, max, off or a positive number") from None


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
    group.add_argument(
        "--cpu-offload",
        action="store_true",
        help="keep the models on the CPU and move each to the device only while it runs "
        "(less GPU memory, slower; nothing to do on the CPU)",
    )
    group.add_argument(
        "--attention-slicing",
        metavar="SIZE",
        type=_slice_size,
        help="compute attention a few heads at a time (less memory, slower): auto (half the heads), "
        "max (one head), or N heads; the lite pack has nothing to slice",
    )


def runtime_options(args: argparse.Namespace) -> RuntimeOptions:
    """The RuntimeOptions the parsed pack flags ask for."""
    from .packs.config import RuntimeOptions

    return RuntimeOptions(
        device=args.device,
        dtype=args.dtype,
        models_dir=args.models,
        cpu_offload=bool(getattr(args, "cpu_offload", False)),
        attention_slicing=getattr(args, "attention_slicing", None),
    )
