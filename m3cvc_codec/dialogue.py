"""Descriptions by dialogue with a vision-language model (paper section II-B, Fig. 2).

For every keyframe a multi-round dialogue: with the default prompts and 4 turns, (1) objects
and background, (2) what differs from the previous keyframe (its image and its D^F are given),
(3) small details, (4) a summary, whose reply is D^F.  Then for the clip: the primary motion,
given D^F; the reply is D^C.  ``turns=2``: (1) objects, background and differences, (2) the
summary; ``turns=1``: everything in one step (the paper's ablation).  The questions come from a
prompts file (:mod:`.prompts`); the first keyframe, which has no previous one, skips the
"differences" turn (or the bracketed part of a turn that mentions it).

Decoding is greedy with a budget of new tokens per turn, so the same frames and prompts give
the same texts.  The prompts used go into the stream's PRMT chunk:
:meth:`DialogueDescriptions.prompts_record`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .descriptions import ClipSpan, DescriptionProvider
from .errors import CodecError
from .models.vlm import sample_indices
from .prompts import CLIP_PLACEHOLDERS, KEYFRAME_PLACEHOLDERS, Prompts, expand_turn, load_prompts

if TYPE_CHECKING:
    from .packs.config import RuntimeOptions

__all__ = [
    "DEFAULT_FRAMES",
    "DEFAULT_MAX_NEW_TOKENS",
    "TURN_COUNTS",
    "ChatModel",
    "DialogueDescriptions",
]

log = logging.getLogger("m3cvc_codec")

#: New tokens each turn may generate (a summary of at most 60 words fits with room to spare).
DEFAULT_MAX_NEW_TOKENS = 128
#: Frames sampled from a clip for the clip dialogue (first and last included).
DEFAULT_FRAMES = 8
#: The turn counts of the paper's ablation (the prompts file may define others).
TURN_COUNTS = (1, 2, 4)


def _check_positive(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CodecError(f"{name} must be a positive integer, got {value!r}")


class ChatModel(Protocol):
    """What the dialogue needs of a model (:class:`.models.vlm.VisionLanguageModel` is one)."""

    model_id: str
    clip_input: str

    def chat(self, messages: list[dict[str, Any]], max_new_tokens: int) -> str: ...


class DialogueDescriptions(DescriptionProvider):
    """D^F and D^C of every clip from a dialogue with ``model``.

    ``prompts``: a :class:`.prompts.Prompts` (None: the shipped default); ``turns``: which of
    its keyframe dialogues (1, 2 or 4 in the default file); ``max_new_tokens``: the budget of
    every turn; ``frames``: how many frames of a clip the model sees (sampled evenly, first and
    last included; as a video where the model takes video input, else as images).
    """

    needs_frames = True

    def __init__(
        self,
        model: ChatModel,
        prompts: Prompts | None = None,
        *,
        turns: int = 4,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        frames: int = DEFAULT_FRAMES,
    ) -> None:
        _check_positive(max_new_tokens, "max_new_tokens")
        _check_positive(frames, "frames")
        self.model = model
        self.prompts = prompts if prompts is not None else load_prompts()
        self.turns = turns
        self.keyframe_turns = self.prompts.keyframe_turns(turns)
        self.max_new_tokens = max_new_tokens
        self.frames = frames
        #: (dialogue, turn index, seconds) of every model call, in order: "keyframe" or "clip".
        self.timings: list[tuple[str, int, float]] = []
        #: The last keyframe and clip dialogues, images left out: [(role, text), ...].
        self.last_dialogue: dict[str, list[tuple[str, str]]] = {}

    @classmethod
    def from_options(
        cls,
        model: str | None = None,
        prompts: str | Path | Prompts | None = None,
        *,
        turns: int = 4,
        max_new_tokens: int | None = None,
        frames: int | None = None,
        options: RuntimeOptions | None = None,
    ) -> DialogueDescriptions:
        """The dialogue with a :class:`.models.vlm.VisionLanguageModel`: ``model`` an id or a
        folder (None: Qwen/Qwen2-VL-7B-Instruct), ``prompts`` a prompts file path or a Prompts
        (None: the shipped default), ``max_new_tokens`` and ``frames`` None for the defaults,
        ``options`` the device, dtype and models folder.  The prompts and the turn count are
        checked before the model loads, so a bad prompts file fails fast."""
        from .models.vlm import DEFAULT_VLM, VisionLanguageModel

        checked = prompts if isinstance(prompts, Prompts) else load_prompts(prompts)
        checked.keyframe_turns(turns)
        budget = DEFAULT_MAX_NEW_TOKENS if max_new_tokens is None else max_new_tokens
        count = DEFAULT_FRAMES if frames is None else frames
        _check_positive(budget, "max_new_tokens")
        _check_positive(count, "frames")
        vlm = VisionLanguageModel(model or DEFAULT_VLM, options)
        return cls(vlm, checked, turns=turns, max_new_tokens=budget, frames=count)

    # -- the dialogue -------------------------------------------------------------------------

    def _run(
        self,
        kind: str,
        turns: tuple[str, ...],
        values: Mapping[str, Any],
        media: Mapping[str, dict[str, Any]],
        placeholders: Mapping[str, str],
    ) -> str:
        """Send ``turns`` one after the other, each with the replies so far; the last reply."""
        messages: list[dict[str, Any]] = []
        if self.prompts.system is not None:
            messages.append({"role": "system", "content": self.prompts.system})
        transcript: list[tuple[str, str]] = []
        reply = ""
        for index, turn in enumerate(turns):
            segments = expand_turn(turn, values, placeholders)
            if segments is None:
                continue  # needs the previous keyframe, and this is the first
            content = [{"type": "text", "text": v} if k == "text" else media[v] for k, v in segments]
            messages.append({"role": "user", "content": content})
            start = time.perf_counter()
            reply = self.model.chat(messages, self.max_new_tokens)
            self.timings.append((kind, index, time.perf_counter() - start))
            messages.append({"role": "assistant", "content": reply})
            shown = "".join(v if k == "text" else f"<{v}>" for k, v in segments)
            transcript += [("user", shown), ("assistant", reply)]
            log.debug("%s turn %d: %r -> %r", kind, index + 1, shown, reply)
        self.last_dialogue[kind] = transcript
        return reply

    def describe_keyframe(
        self,
        span: ClipSpan,
        keyframe: np.ndarray,
        previous_keyframe: np.ndarray | None,
        previous_text: str | None,
    ) -> str:
        first = previous_keyframe is None
        values: dict[str, Any] = {
            "keyframe": True,
            "previous_keyframe": None if first else True,
            "previous_text": None if first else (previous_text or ""),
        }
        media: dict[str, dict[str, Any]] = {"keyframe": {"type": "image", "image": keyframe}}
        if not first:
            media["previous_keyframe"] = {"type": "image", "image": previous_keyframe}
        return self._run("keyframe", self.keyframe_turns, values, media, KEYFRAME_PLACEHOLDERS)

    def describe_clip(self, span: ClipSpan, frames: np.ndarray | None, keyframe_text: str) -> str:
        if frames is None or len(frames) == 0:
            raise CodecError(f"clip {span.index}: the dialogue needs the clip's frames")
        frames = np.asarray(frames)
        index = sample_indices(len(frames), self.frames)
        video = {
            "type": "video",
            "video": frames[index],
            "fps": float(span.fps),
            "frames_indices": index.tolist(),
            "total_num_frames": len(frames),
        }
        values: dict[str, Any] = {"clip": True, "keyframe": True, "keyframe_text": keyframe_text}
        media: dict[str, dict[str, Any]] = {
            "clip": video,
            "keyframe": {"type": "image", "image": frames[0]},
        }
        return self._run("clip", self.prompts.clip, values, media, CLIP_PLACEHOLDERS)

    # -- what the stream records --------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """How the dialogue ran: the PRMT map's ``settings``."""
        return {
            "max_new_tokens": self.max_new_tokens,
            "greedy": True,
            "clip_input": getattr(self.model, "clip_input", "frames"),
            "frames": self.frames,
        }

    def metadata(self) -> Mapping[str, Any]:
        """Nothing: the prompts go into the stream's PRMT chunk (:meth:`prompts_record`)."""
        return {}

    def prompts_record(self) -> dict[str, Any]:
        """The PRMT map for the Writer (``Writer(..., prompts=provider.prompts_record())``)."""
        return self.prompts.record(self.turns, model=getattr(self.model, "model_id", None), settings=self.settings())
