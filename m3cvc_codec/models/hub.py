"""Finding and loading pretrained models: by id, from a local folder, offline.

One rule for every model the codec loads (CLIP, the Qwen-VL dialogue, later the diffusion models):

1. ``source`` naming an existing folder is loaded from that folder.
2. With a models folder (``--models DIR``, :attr:`RuntimeOptions.models_dir`), an id
   ``org/name`` is looked up as ``DIR/org/name``, then ``DIR/name``, then ``DIR/org--name``;
   a models folder means offline: an id that is not there is an error, never a download.
3. Otherwise the id goes to ``from_pretrained``, which uses the Hugging Face cache and downloads
   what is missing, unless ``HF_HUB_OFFLINE`` is set.

Whatever fails on the way (no such folder, nothing in the cache, no network) becomes one
:class:`ModelNotFoundError` line naming the model and how to provide it, never a stack of
download errors.  A missing ``full`` extra becomes one :class:`MissingExtraError` line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import CodecError

if TYPE_CHECKING:
    from ..packs.config import RuntimeOptions

__all__ = [
    "MissingExtraError",
    "ModelError",
    "ModelNotFoundError",
    "load_model",
    "locate",
    "offline",
    "quiet_model_loading",
    "require_full",
    "torch_device",
    "torch_dtype",
]

T = TypeVar("T")

FULL_EXTRA_HINT = "pip install 'm3cvc[full]' (or pip install -e '.[full]' in a checkout)"


class ModelError(CodecError):
    """A model cannot be loaded or run as asked (bad device, dtype, damaged folder)."""


class ModelNotFoundError(ModelError):
    """A model is neither in the local folder named nor in the cache, and may not be downloaded."""


class MissingExtraError(ModelError):
    """The ``full`` extra (torch, transformers) is not installed."""


def require_full(feature: str) -> None:
    """MissingExtraError naming ``feature`` unless torch and transformers import."""
    missing = []
    for module in ("torch", "transformers"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MissingExtraError(f"{feature} needs {' and '.join(missing)} (the full extra): {FULL_EXTRA_HINT}")


def offline(models_dir: str | os.PathLike[str] | None = None) -> bool:
    """True when nothing may be downloaded: a models folder is given, or HF_HUB_OFFLINE is set."""
    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return models_dir is not None or flag not in ("", "0", "false", "no", "off")


def _candidates(source: str, models_dir: Path) -> list[Path]:
    parts = [p for p in re.split(r"[/\\]", source) if p]
    out = [models_dir.joinpath(*parts)] if parts else []
    if len(parts) > 1:
        out += [models_dir / parts[-1], models_dir / "--".join(parts)]
    return out


def quiet_model_loading() -> None:
    """For command-line tools: no progress bars or advisory warnings from transformers or
    diffusers while models load (a CLI says one line per problem).  Cheap: it imports neither
    library; it takes effect in :func:`load_model`, where they have been imported.  Library
    callers who never call it keep the libraries' own settings."""
    global _quiet
    _quiet = True
    _silence_loaded_libraries()


_quiet = False


def _silence_loaded_libraries() -> None:
    """Turn off the loading bars and warnings of whichever of transformers and diffusers is
    imported by now (each keeps its setting in a module global, set once here)."""
    import sys

    for name in ("transformers.utils.logging", "diffusers.utils.logging"):
        logging = sys.modules.get(name)
        if logging is not None:
            logging.disable_progress_bar()
            logging.set_verbosity_error()


def locate(source: str, models_dir: str | os.PathLike[str] | None = None, *, what: str = "model") -> str:
    """The folder or id ``from_pretrained`` should get for ``source`` (rules 1-3 of the module
    docstring); ModelNotFoundError when a models folder is given and does not hold it."""
    if not isinstance(source, str) or not source.strip():
        raise ModelError(f"{what}: empty model name")
    here = Path(source).expanduser()
    if here.is_dir():
        return str(here)
    if models_dir is not None:
        root = Path(models_dir).expanduser()
        if not root.is_dir():
            raise ModelNotFoundError(f"models folder {str(root)!r} does not exist")
        for path in _candidates(source, root):
            if path.is_dir():
                return str(path)
        raise ModelNotFoundError(
            f"{what} {source!r} is not in the models folder {str(root)!r} (looked for {source}/ there): "
            f"download it with `hf download {source} --local-dir {root / source}`"
        )
    if here.is_absolute() or source.startswith((".", "~")) or source.count("/") > 1:
        raise ModelNotFoundError(f"{what} folder {source!r} does not exist")
    return source


def load_model(
    loader: Callable[..., T],
    source: str,
    *,
    what: str,
    models_dir: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> T:
    """``loader(location, **kwargs)`` (a ``from_pretrained``) for the model ``source`` found by
    :func:`locate`, with ``local_files_only`` when offline; every way of not finding it is one
    ModelNotFoundError line, and a folder that holds something unloadable one ModelError line."""
    location = locate(source, models_dir, what=what)
    local = Path(location).is_dir()
    if _quiet:
        _silence_loaded_libraries()  # the loader's library is imported by now
    if offline(models_dir) and not local:
        kwargs.setdefault("local_files_only", True)
    try:
        return loader(location, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if local:
            raise ModelError(f"{what} in {location!r} could not be loaded: {first}") from None
        how = "it is not in the Hugging Face cache and downloads are off (HF_HUB_OFFLINE)"
        if not offline(models_dir):
            how = f"it could not be fetched ({first})"
        raise ModelNotFoundError(
            f"{what} {source!r} is not available: {how}; download it (`hf download {source}`) "
            f"or give a folder holding it with --models DIR"
        ) from None


_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


def torch_device(options: RuntimeOptions | None) -> Any:
    """The torch.device ``options.device`` names, checked (ModelError when CUDA is asked for
    and absent)."""
    import torch

    name = options.device if options is not None else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ModelError(f"device {name!r} is not a torch device (cpu, cuda, cuda:1, mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {name!r}: CUDA is not available here")
    return device


def torch_dtype(options: RuntimeOptions | None, default: str = "float32") -> Any:
    """The torch dtype ``options.dtype`` names (``default`` when None); float16 only on a GPU,
    where CPU kernels for it are missing or slow."""
    import torch

    name = (options.dtype if options is not None else None) or default
    key = _DTYPES.get(str(name).lower())
    if key is None:
        raise ModelError(f"dtype {name!r} is not one of float32, float16, bfloat16")
    device = options.device if options is not None else "cpu"
    if key == "float16" and str(device).startswith("cpu"):
        raise ModelError("dtype float16 needs a GPU device (use bfloat16 or float32 on the CPU)")
    return getattr(torch, key)
