"""Pack configuration (which weights) and runtime options (how to run them).

A :class:`PackConfig` names every component a pack loads, and is plain data saved as JSON::

    {
      "pack": "org.example.full",
      "components": {
        "vae": {"source": "stabilityai/sd-vae-ft-mse", "revision": "31f26fd..."},
        "keyframe_decoder": {"source": "ours/keyframe_decoder.safetensors", "sha256": "9f2c..."}
      },
      "grids": {"32x32": ["vae", "keyframe_decoder"], "64x64": ["vae", "keyframe_decoder"]},
      "settings": {"guidance": 3.0}
    }

A component's ``source`` is a model id (``org/name``, for ``from_pretrained``), a local folder
or a file; a relative local path is resolved against the folder of the config file
(:attr:`PackConfig.root`).  ``revision`` pins a model id; ``sha256`` is the digest of a file we
trained.  ``grids`` lists, per grid variant, the components a stream coded with that variant
needs: the header's weights hash covers exactly those (:meth:`PackConfig.weights_hash`).
``settings`` holds pack-specific values.

A *weights manifest* (format 1, the ``lite`` pack's ``weights/manifest.json``) is also a
config: ``{"pack": ..., "variants": {grid: {"dir": ..., "files": {name: sha256}, ...}}}``
gives one component per file (source = its name, relative to the manifest's folder), each
grid's list = its files, and ``settings["variants"]`` = the variants as written.

:class:`RuntimeOptions` say where and how a pack runs; they never change a stream's bytes or
its decoded frames' identity requirements, only speed and memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .base import PackError

__all__ = [
    "ATTENTION_SLICING_NAMES",
    "SPEED_ONLY_OPTIONS",
    "Component",
    "PackConfig",
    "RuntimeOptions",
    "attention_slicing_value",
    "weights_hash",
]


def weights_hash(entries: Mapping[str, str]) -> bytes:
    """The one weights-hash rule: SHA-256 of the UTF-8 text made of one line
    ``"<name> <digest>\\n"`` per entry, sorted by name (32 bytes).  Stream headers carry it as
    ``pack_hash``; the lite pack's entries are its variant's files and their SHA-256 hex."""
    text = "".join(f"{name} {entries[name]}\n" for name in sorted(entries))
    return hashlib.sha256(text.encode("utf-8")).digest()


def _frozen(value: Any) -> Any:
    """A read-only, hashable-by-content copy of JSON data (dicts -> mapping proxies, lists -> tuples)."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _plain(value: Any) -> Any:
    """JSON-ready data from :func:`_frozen` data."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Component:
    """One thing a pack loads: a model id, a local folder or a file."""

    source: str
    revision: str | None = None
    sha256: str | None = None
    #: Folder inside ``source`` (a diffusers repository's ``vae``, ``unet``, ``text_encoder``...).
    subfolder: str | None = None

    @property
    def digest(self) -> str:
        """What the weights hash takes for this component: its SHA-256, else
        ``source@revision`` (``source@revision/subfolder`` for a part of a repository)."""
        if self.sha256:
            return self.sha256
        base = f"{self.source}@{self.revision or ''}"
        return f"{base}/{self.subfolder}" if self.subfolder else base

    def to_dict(self) -> dict[str, str]:
        out = {"source": self.source}
        if self.revision is not None:
            out["revision"] = self.revision
        if self.sha256 is not None:
            out["sha256"] = self.sha256
        if self.subfolder is not None:
            out["subfolder"] = self.subfolder
        return out


@dataclass(frozen=True, eq=False)
class PackConfig:
    """Which weights a pack loads (see the module documentation).  Equality and :meth:`hash`
    cover the data and :attr:`root` (relative sources name different files in different
    folders)."""

    pack_id: str
    components: Mapping[str, Component] = field(default_factory=dict)
    grids: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: Folder relative local sources are resolved against (the config file's folder); None: the
    #: current directory.
    root: Path | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.pack_id, str) or not self.pack_id:
            raise PackError("a pack config needs a pack id")
        comps = {}
        for name, c in dict(self.components).items():
            if isinstance(c, Mapping):
                c = Component(**c)
            if not isinstance(c, Component) or not isinstance(c.source, str) or not c.source:
                raise PackError(f"pack config: component {name!r} needs a source")
            comps[str(name)] = c
        grids = {}
        for g, names in dict(self.grids).items():
            names = (names,) if isinstance(names, str) else tuple(names)
            missing = [n for n in names if n not in comps]
            if missing:
                raise PackError(f"pack config: grid {g!r} names unknown components {', '.join(missing)}")
            grids[str(g)] = names
        object.__setattr__(self, "components", MappingProxyType(comps))
        object.__setattr__(self, "grids", MappingProxyType(grids))
        object.__setattr__(self, "settings", _frozen(dict(self.settings)))
        if self.root is not None:
            object.__setattr__(self, "root", Path(self.root))

    # -- data -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (without :attr:`root`, which is where the file lies)."""
        return {
            "pack": self.pack_id,
            "components": {n: c.to_dict() for n, c in sorted(self.components.items())},
            "grids": {g: list(names) for g, names in self.grids.items()},
            "settings": _plain(self.settings),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], root: str | Path | None = None) -> PackConfig:
        """A config from its JSON form, or from a format-1 weights manifest."""
        if not isinstance(data, Mapping) or not isinstance(data.get("pack"), str):
            raise PackError('a pack config is a JSON object with a "pack" id')
        root = Path(root) if root is not None else None
        if "components" not in data and isinstance(data.get("variants"), Mapping):
            variants = data["variants"]
            comps: dict[str, Component] = {}
            grids: dict[str, tuple[str, ...]] = {}
            for g, v in variants.items():
                files = v.get("files") if isinstance(v, Mapping) else None
                if not isinstance(files, Mapping):
                    raise PackError(f"weights manifest: variant {g!r} has no files")
                for name, digest in files.items():
                    comps[name] = Component(source=name, sha256=digest)
                grids[g] = tuple(sorted(files))
            return cls(data["pack"], comps, grids, {"variants": variants}, root)
        try:
            comps = {n: Component(**c) for n, c in dict(data.get("components", {})).items()}
        except TypeError as exc:
            raise PackError(f"pack config: bad component: {exc}") from None
        return cls(data["pack"], comps, dict(data.get("grids", {})), dict(data.get("settings", {})), root)

    @classmethod
    def from_file(cls, path: str | Path) -> PackConfig:
        """Read a config (or a weights manifest) from a JSON file; PackError if it cannot be.
        A folder means its ``manifest.json``.  Relative sources resolve against its folder."""
        p = Path(path)
        if p.is_dir():
            p = p / "manifest.json"
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PackError(f"cannot read pack config {p}: {exc}") from None
        return cls.from_dict(data, root=p.parent)

    def save(self, path: str | Path) -> None:
        """Write the JSON form to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    # -- identity ---------------------------------------------------------------------

    def hash(self) -> str:
        """SHA-256 hex of the config (its JSON form and its root): the cache key of
        :func:`m3cvc_codec.packs.load_pack`."""
        data = self.to_dict()
        data["root"] = str(self.root.resolve()) if self.root is not None else None
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PackConfig) and self.hash() == other.hash()

    def __hash__(self) -> int:
        return hash(self.hash())

    def weights_hash(self, grid: str) -> bytes:
        """The header's ``pack_hash`` for streams coded with grid variant ``grid``:
        :func:`weights_hash` over that grid's components and their digests."""
        names = self.grids.get(grid)
        if names is None:
            raise PackError(f"pack config for {self.pack_id!r} has no components for grid {grid!r}")
        return weights_hash({n: self.components[n].digest for n in names})

    def resolve(self, name: str, models_dir: str | Path | None = None) -> str | Path:
        """Where component ``name`` is: a local path (relative sources against :attr:`root`;
        a model id found as a folder under ``models_dir``), else the model id itself."""
        source = self.components[name].source
        local = Path(source)
        if local.is_absolute():
            return local
        base = self.root if self.root is not None else Path()
        if (base / local).exists():
            return base / local
        if models_dir is not None and (Path(models_dir) / local).exists():
            return Path(models_dir) / local
        return source


#: :attr:`RuntimeOptions.attention_slicing`'s named sizes (diffusers' ``set_attention_slice``).
ATTENTION_SLICING_NAMES = ("auto", "max")


def attention_slicing_value(value: Any) -> str | int | None:
    """An attention-slicing setting checked (PackError if it is not one): None, ``False`` or
    ``"off"``/``"none"``/``""`` (no slicing), ``True`` or ``"auto"``, ``"max"``, or a positive
    whole number (also as text, as the command line and the environment give it)."""
    if value is None or value is False:
        return None
    if value is True:
        return "auto"
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "off", "none"):
            return None
        if text in ATTENTION_SLICING_NAMES:
            return text
        if text.isdigit():
            value = int(text)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return int(value)
    raise PackError(f"attention slicing {value!r} is not auto, max or a positive number of heads per slice")


@dataclass(frozen=True)
class RuntimeOptions:
    """Where and how a pack runs: ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``...),
    ``dtype`` (e.g. ``"float16"``; None: the pack's choice), ``models_dir`` (a local folder
    holding model ids as sub-folders, for offline use), ``cpu_offload`` (keep weights on the
    CPU and move each model to the device while it runs), ``attention_slicing`` (compute
    attention a few heads at a time, to save memory: None, off; ``"auto"``, half of each
    layer's heads at a time; ``"max"``, one head at a time; a number N, N heads at a time,
    at most each layer's heads; see :func:`attention_slicing_value` for what it accepts).

    ``cpu_offload`` and ``attention_slicing`` trade speed for memory and nothing else (the
    frames may differ in the last bits of float rounding, as on another device), which is why
    :func:`m3cvc_codec.batch.settings_digest` leaves them out (:data:`SPEED_ONLY_OPTIONS`)."""

    device: str = "cpu"
    dtype: str | None = None
    models_dir: str | None = None
    cpu_offload: bool = False
    attention_slicing: str | int | None = None

    def __post_init__(self) -> None:
        if self.models_dir is not None:
            object.__setattr__(self, "models_dir", str(self.models_dir))
        object.__setattr__(self, "attention_slicing", attention_slicing_value(self.attention_slicing))


#: RuntimeOptions fields that change only speed and memory, not what a pack computes.
SPEED_ONLY_OPTIONS = ("cpu_offload", "attention_slicing")
