"""The codec's one clip decoder: the frames of a stream's clips through its model pack.

:class:`ClipDecoder` is the :class:`m3cvc_format.framedecoders.FrameDecoder` every path uses:
``m3cvc_codec.decode``, ``m3cvc_format.open`` (the PyAV facade) and the player.  The format
package finds it by pack id in the ``m3cvc.frame_decoders`` entry-point group (pyproject)::

    [project.entry-points."m3cvc.frame_decoders"]
    lite = "m3cvc_codec.clip_decoder:ClipDecoder"

so that ``m3cvc_format.open("x.m3v")`` decodes frames without the format package importing
the codec; build one yourself to decode with another pack config or runtime options::

    decoder = ClipDecoder(header, pack_config="my-weights/", options=RuntimeOptions(device="cuda"))
    m3cvc_format.FrameSource(reader, decoder=decoder)

Construction checks the stream's pack id and weights hash
(:func:`m3cvc_codec.packs.check_stream_pack`) and raises PackError when they do not match.
Keyframes are decoded with their decode seed (:func:`m3cvc_format.decode_seed`); clips come from
:meth:`Pack.reconstruct_clip <m3cvc_codec.packs.Pack.reconstruct_clip>` with the same seed.
Frames a pack makes at another size (a video model's own resolution) are resized to the
stream's (area interpolation).  Whether a clip is
interpolated or predicted is the caller's choice (FrameSource passes the next keyframe or None).

**Progress.**  Each pack call runs inside :func:`m3cvc_codec.progress.reporting`, so a pack
that reports steps (the full pack's diffusion loops) reaches ``progress``: a callable taking a
:class:`~m3cvc_codec.progress.Step`, ``False`` (nothing), ``True`` (a line on stderr) or None,
the default: :func:`m3cvc_codec.progress.default_hook` (a line on stderr when it is a terminal,
or as ``M3CVC_PROGRESS`` says).

**Defaults from the environment.**  A decoder built by pack id alone (``m3cvc_format.open``,
which passes nothing but the header) takes its pack config and runtime options from
``M3CVC_PACK_CONFIG`` (a config file) with ``M3CVC_DEVICE``, ``M3CVC_DTYPE``,
``M3CVC_CPU_OFFLOAD`` (1/0, true/false, yes/no, on/off) and ``M3CVC_ATTENTION_SLICING`` (auto,
max, a number, off), used for streams of that config's pack, and ``M3CVC_MODELS`` (the models folder), where set; arguments
win (:func:`environment_defaults`: ``m3v-decode`` and ``m3v-play`` take the config and models
folder from there when ``--pack-config`` and ``--models`` are not given).  So a
full-pack stream decodes through the PyAV facade once these name the trained weights::

    M3CVC_PACK_CONFIG=runs/full/pack-config.json M3CVC_MODELS=models python -c \
        "import m3cvc_format; print(sum(1 for _ in m3cvc_format.open('out.m3v').decode()))"
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import packs as _packs
from . import progress as _progress
from .packs.config import attention_slicing_value

__all__ = ["ENV_OPTIONS", "ENV_PACK_CONFIG", "ClipDecoder", "environment_defaults"]

#: The pack config a decoder built without one uses, when it is for the stream's pack.
ENV_PACK_CONFIG = "M3CVC_PACK_CONFIG"
#: RuntimeOptions fields a decoder built without options takes from the environment.
ENV_OPTIONS = {
    "models_dir": "M3CVC_MODELS",
    "device": "M3CVC_DEVICE",
    "dtype": "M3CVC_DTYPE",
    "cpu_offload": "M3CVC_CPU_OFFLOAD",
    "attention_slicing": "M3CVC_ATTENTION_SLICING",
}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _env_value(field: str, text: str) -> Any:
    """An environment variable's text as the RuntimeOptions field's value (PackError naming
    the variable when it is not one)."""
    if field == "cpu_offload":
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise _packs.PackError(f"{ENV_OPTIONS[field]}={text!r} is not 1 or 0 (true/false, yes/no, on/off)")
    if field == "attention_slicing":
        try:
            return attention_slicing_value(text)
        except _packs.PackError as err:
            raise _packs.PackError(f"{ENV_OPTIONS[field]}: {err}") from None
    return text


def environment_defaults(
    pack_id: str,
    pack_config: _packs.PackConfig | str | Path | None,
    options: _packs.RuntimeOptions | None,
) -> tuple[_packs.PackConfig | str | Path | None, _packs.RuntimeOptions | None]:
    """``(pack_config, options)`` with what is None filled from the environment
    (:data:`ENV_PACK_CONFIG`, :data:`ENV_OPTIONS`).  The config is used only for streams of its
    own pack, and ``M3CVC_DEVICE``, ``M3CVC_DTYPE``, ``M3CVC_CPU_OFFLOAD`` and
    ``M3CVC_ATTENTION_SLICING`` only with it (they configure that pack: a lite stream is not
    sent to a GPU the full pack's settings name); ``M3CVC_MODELS`` fills the models folder
    wherever it is None.  Given ``options`` keep their device and CPU offload (which always
    have a value) and fill only what is None; a config file that cannot be read, or a value
    that is not one, is PackError, as from ``--pack-config``."""
    applies = False
    if pack_config is None:
        named = os.environ.get(ENV_PACK_CONFIG, "").strip()
        if named:
            config = _packs.PackConfig.from_file(named)
            if config.pack_id == pack_id:
                pack_config, applies = config, True
    env: dict[str, Any] = {f: os.environ[v].strip() for f, v in ENV_OPTIONS.items() if os.environ.get(v, "").strip()}
    if not applies:
        env = {f: v for f, v in env.items() if f == "models_dir"}
    env = {f: _env_value(f, v) for f, v in env.items()}
    if options is None:
        if env:
            options = _packs.RuntimeOptions(**env)
    else:
        fill = {f: v for f, v in env.items() if f not in ("device", "cpu_offload") and getattr(options, f) is None}
        if fill:
            options = dataclasses.replace(options, **fill)
    return pack_config, options


class ClipDecoder:
    """Frames of one stream: ``decode_keyframe(clip)`` and ``reconstruct(clip, kf, next_kf)``
    (the :class:`m3cvc_format.framedecoders.FrameDecoder` protocol).  ``pack_config`` and ``options`` are
    those of :func:`m3cvc_codec.packs.load_pack` (None: from the environment where it says,
    else the pack's defaults); ``progress`` as the module documentation says."""

    def __init__(
        self,
        header,
        *,
        pack_config: _packs.PackConfig | str | Path | None = None,
        options: _packs.RuntimeOptions | None = None,
        progress: _progress.Hook | bool | None = None,
    ) -> None:
        self.header = header
        pack_config, options = environment_defaults(header.pack_id, pack_config, options)
        self.pack, self.grid = _packs.check_stream_pack(header, pack_config, options)
        if progress is None:
            self.progress = _progress.default_hook()
        elif progress is True:
            self.progress = _progress.StderrLine()
        elif progress is False:
            self.progress = None
        else:
            self.progress = progress

    def _clip(self, clip):
        return clip.decode(self.header) if hasattr(clip, "keyframe_text_coded") else clip

    def _seed(self, clip) -> int:
        import m3cvc_format as m

        return m.decode_seed(self.header.stream_seed, clip.index, clip.seed)

    def _fit(self, frame) -> np.ndarray:
        """A pack's frame as RGB uint8 at the stream's size (resized if the pack's is not)."""
        frame = np.asarray(frame)
        h = self.header
        if frame.shape != (h.height, h.width, 3):
            import cv2

            frame = cv2.resize(frame.astype(np.uint8), (h.width, h.height), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(frame, dtype=np.uint8)

    def decode_keyframe(self, clip) -> np.ndarray:
        """The clip's keyframe, RGB uint8 at the stream's size."""
        clip = self._clip(clip)
        with _progress.reporting(self.progress, clip=clip.index):
            frame = self.pack.decode_keyframe(
                np.asarray(clip.index_map), self.grid, clip.keyframe_text, self._seed(clip)
            )
        return self._fit(frame)

    def reconstruct(self, clip, keyframe: np.ndarray, next_keyframe: np.ndarray | None) -> Iterator[np.ndarray]:
        """The clip's frames, in order, at the stream's size: towards ``next_keyframe``, or
        predicted when None."""
        clip = self._clip(clip)
        with _progress.reporting(self.progress, clip=clip.index):
            frames = self.pack.reconstruct_clip(
                keyframe, next_keyframe, clip.clip_text, clip.frame_count, self._seed(clip)
            )
        return self._frames(frames, clip.index)

    def _frames(self, frames: Iterable[np.ndarray], index: int) -> Iterator[np.ndarray]:
        """``frames`` fitted; a pack that makes them lazily reports its steps while they are
        drawn, under the same clip."""
        it = iter(frames)
        while True:
            with _progress.reporting(self.progress, clip=index):
                frame = next(it, None)
            if frame is None:
                return
            yield self._fit(frame)
