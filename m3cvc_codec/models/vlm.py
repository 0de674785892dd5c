"""The vision-language model of the description dialogue (paper section II-B): Qwen-VL through
transformers' ``AutoModelForImageTextToText``.

Families: Qwen2-VL, Qwen2.5-VL and Qwen3-VL (default ``Qwen/Qwen2-VL-7B-Instruct``; the paper
names Qwen-VL-Instruct-7B).  :meth:`VisionLanguageModel.chat` runs one dialogue turn: the
messages so far in, the reply out, decoded greedily (``do_sample=False``) within a budget of new
tokens, so the same input gives the same text.

The processor is built here from its parts -- the tokenizer (with its chat template), the image
processor, and the video processor only where it loads -- never through ``AutoProcessor``, which
fails outright where the video processor cannot be built (it needs torchvision, which does not
import on CPU-only machines with a CUDA build of it, or is absent).  Without a video processor a
clip goes to the model as sampled frames (a series of images); with one, as a video.
:attr:`VisionLanguageModel.clip_input` says which.

Everything heavy is imported when a model is built, never when this module is imported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .hub import ModelError, load_model, require_full, torch_device, torch_dtype

if TYPE_CHECKING:
    from ..packs.config import RuntimeOptions

__all__ = ["DEFAULT_VLM", "FAMILIES", "VisionLanguageModel", "sample_frames", "sample_indices"]

log = logging.getLogger("m3cvc_codec")

DEFAULT_VLM = "Qwen/Qwen2-VL-7B-Instruct"

#: config.model_type -> the transformers processor class of that family.
FAMILIES: dict[str, str] = {
    "qwen2_vl": "Qwen2VLProcessor",
    "qwen2_5_vl": "Qwen2_5_VLProcessor",
    "qwen3_vl": "Qwen3VLProcessor",
    "qwen3_vl_moe": "Qwen3VLProcessor",
}

WHAT = "vision-language model"


def sample_indices(n: int, count: int) -> np.ndarray:
    """Indices of ``count`` frames spread evenly over ``n``, first and last included; all
    ``n`` when there are no more than ``count``."""
    if count <= 0:
        raise ValueError(f"frame count must be positive, got {count}")
    if n <= count:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, count)).astype(int))


def sample_frames(frames: np.ndarray, count: int) -> np.ndarray:
    """``count`` frames spread evenly over ``frames`` (N x H x W x 3), first and last included;
    all of them when there are no more than ``count``."""
    if len(frames) <= count and count > 0:
        return frames
    return frames[sample_indices(len(frames), count)]


def _rgb(frame: Any, where: str) -> np.ndarray:
    a = np.asarray(frame)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ModelError(f"{where}: expected an H x W x 3 uint8 RGB image, got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


def _processor_without_video(base: type) -> type:
    """``base`` (a Qwen-VL processor class) taking ``video_processor=None``: transformers checks
    every part's class, and None is no video processor's."""

    class _Processor(base):  # type: ignore[valid-type, misc]
        def check_argument_for_proper_class(self, argument_name, argument):
            if argument is None and argument_name == "video_processor":
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

    _Processor.__name__ = _Processor.__qualname__ = base.__name__
    return _Processor


def _torchvision_imports() -> str | None:
    """None when torchvision imports (so a video processor can be built), else why not."""
    try:
        import torchvision  # noqa: F401
    except Exception as err:  # ImportError, or OSError/RuntimeError from its compiled part
        return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}".rstrip(": ")
    return None


class VisionLanguageModel:
    """A Qwen-VL chat model: ``chat(messages, max_new_tokens) -> reply``.

    ``model_id`` is an id (``Qwen/Qwen2.5-VL-7B-Instruct``) or a folder, found as every model is
    (:func:`.hub.load_model`: ``options.models_dir``, ``HF_HUB_OFFLINE``).  ``options`` gives the
    device and dtype (default float32 on the CPU, bfloat16 on a GPU).  ``video``: False forces
    clips in as sampled frames even where a video processor loads.
    """

    def __init__(
        self, model_id: str = DEFAULT_VLM, options: RuntimeOptions | None = None, *, video: bool = True
    ) -> None:
        require_full("the vision-language dialogue (--describe vlm)")
        import transformers
        from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        self.model_id = model_id
        models_dir = options.models_dir if options is not None else None
        self.device = torch_device(options)
        default_dtype = "bfloat16" if self.device.type == "cuda" else "float32"
        self.dtype = torch_dtype(options, default=default_dtype)

        def load(loader: Any, **kw: Any) -> Any:
            return load_model(loader, model_id, what=WHAT, models_dir=models_dir, **kw)

        config = load(AutoConfig.from_pretrained)
        self.family = str(getattr(config, "model_type", ""))
        if self.family not in FAMILIES:
            raise ModelError(
                f"{WHAT} {model_id!r} is a {self.family or 'model of unknown type'!r}: "
                f"the dialogue supports Qwen2-VL, Qwen2.5-VL and Qwen3-VL"
            )
        tokenizer = load(AutoTokenizer.from_pretrained)
        image_processor = load(AutoImageProcessor.from_pretrained)
        processor_class = getattr(transformers, FAMILIES[self.family])
        video_processor = None
        self.video_unavailable: str | None = "not asked for" if not video else None
        if video:
            self.video_unavailable = _torchvision_imports()
            if self.video_unavailable is None:
                try:
                    from transformers import AutoVideoProcessor

                    video_processor = load(AutoVideoProcessor.from_pretrained)
                except Exception as err:  # a missing or unloadable video processor: frames instead
                    self.video_unavailable = (
                        str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                    )
        chat_template = self._chat_template(processor_class, load, tokenizer)

        def build(with_video: Any) -> Any:
            cls = processor_class if with_video is not None else _processor_without_video(processor_class)
            return cls(
                image_processor=image_processor,
                tokenizer=tokenizer,
                video_processor=with_video,
                chat_template=chat_template,
            )

        self.processor = build(None)
        #: "video" when clips go in as video input, "frames" when as a series of images.
        self.clip_input = "frames"
        if video_processor is not None:
            trouble = _video_trouble(lambda: build(video_processor))
            if trouble is None:
                self.processor = build(video_processor)
                self.clip_input = "video"
            else:
                self.video_unavailable = f"the video processor fails ({trouble})"
        if video and self.clip_input == "frames":
            log.info("%s: clips go in as sampled frames (no video input: %s)", model_id, self.video_unavailable)

        model = load(AutoModelForImageTextToText.from_pretrained, dtype=self.dtype)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.generate_calls = 0

    @staticmethod
    def _chat_template(processor_class: Any, load: Any, tokenizer: Any) -> str:
        """The processor's chat template (chat_template.jinja / .json) where the model has one,
        else the tokenizer's; ModelError when neither does."""
        try:
            processor_dict, _ = load(processor_class.get_processor_dict)
            template = processor_dict.get("chat_template")
        except ModelError:
            template = None
        template = template or getattr(tokenizer, "chat_template", None)
        if isinstance(template, Mapping):
            template = template.get("default")
        if not isinstance(template, str) or not template:
            raise ModelError(f"{WHAT}: the tokenizer and processor have no chat template")
        return template

    def settings(self) -> dict[str, Any]:
        """What the dialogue records about how this model ran."""
        return {"clip_input": self.clip_input, "family": self.family}

    def chat(self, messages: Sequence[Mapping[str, Any]], max_new_tokens: int) -> str:
        """The model's reply to ``messages``: a list of ``{"role": "system"|"user"|"assistant",
        "content": str | list of items}``, items ``{"type": "text", "text": str}``,
        ``{"type": "image", "image": H x W x 3 uint8}`` or ``{"type": "video", "video": N x H x W
        x 3 uint8}``, optionally with ``fps`` (the source's rate), ``frames_indices`` (the frames'
        places in the source) and ``total_num_frames`` (the source's length), which give the
        model the frames' times; a video goes in as a series of images when :attr:`clip_input`
        is "frames".  Greedy decoding, at most ``max_new_tokens`` new tokens; surrounding white
        space stripped."""
        import torch

        if max_new_tokens <= 0:
            raise ModelError(f"max_new_tokens must be positive, got {max_new_tokens}")
        images: list[np.ndarray] = []
        videos: list[tuple[np.ndarray, dict[str, Any] | None]] = []
        conversation = []
        for message in messages:
            content = message["content"]
            if isinstance(content, str):
                conversation.append({"role": message["role"], "content": content})
                continue
            items: list[dict[str, Any]] = []
            for item in content:
                kind = item.get("type")
                if kind == "text":
                    items.append({"type": "text", "text": str(item["text"])})
                elif kind == "image":
                    images.append(_rgb(item["image"], "image"))
                    items.append({"type": "image"})
                elif kind == "video":
                    clip = np.asarray(item["video"])
                    if clip.ndim != 4 or len(clip) == 0:
                        raise ModelError(f"video: expected N x H x W x 3 frames, got shape {clip.shape}")
                    if self.clip_input == "video":
                        stacked = np.stack([_rgb(f, "video frame") for f in clip])
                        videos.append((stacked, _metadata(item, stacked)))
                        items.append({"type": "video"})
                    else:
                        for frame in clip:
                            images.append(_rgb(frame, "video frame"))
                            items.append({"type": "image"})
                else:
                    raise ModelError(f"message item of unknown type {kind!r} (text, image, video)")
            conversation.append({"role": message["role"], "content": items})
        text = self.processor.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        kwargs = _video_kwargs(videos) if videos else {}
        inputs = self.processor(text=[text], images=images or None, return_tensors="pt", **kwargs)
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        if "pixel_values_videos" in inputs and inputs["pixel_values_videos"].is_floating_point():
            inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(self.dtype)
        prompt_length = inputs["input_ids"].shape[1]
        with torch.inference_mode():
            output = self.model.generate(
                **inputs,
                max_new_tokens=int(max_new_tokens),
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        self.generate_calls += 1
        reply = self.tokenizer.decode(output[0, prompt_length:], skip_special_tokens=True)
        return reply.strip()


def _video_trouble(build: Callable[[], Any]) -> str | None:
    """None when the processor ``build()`` makes takes a video the way
    :meth:`VisionLanguageModel.chat` gives one (tried once on a tiny clip, without the model),
    else why not.  Then clips go in as frames, decided before any text is written, so a
    stream's record says how its texts were made."""
    try:
        processor = build()
        clip = np.zeros((2, 64, 64, 3), np.uint8)
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "?"}]}]
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        processor(text=[text], return_tensors="pt", **_video_kwargs([(clip, None)]))
    except Exception as err:  # whatever the processor raises, the frames path remains
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return f"{type(err).__name__}: {first}".rstrip(": ")
    return None


def _metadata(item: Mapping[str, Any], frames: np.ndarray) -> dict[str, Any] | None:
    """transformers' video metadata for a video item that says where its frames come from:
    ``fps`` (of the source) and optionally ``frames_indices`` (in the source) and
    ``total_num_frames``; None when it gives no rate."""
    fps = item.get("fps")
    if fps is None:
        return None
    indices = [int(i) for i in item.get("frames_indices", range(len(frames)))]
    if len(indices) != len(frames):
        raise ModelError(f"video: {len(frames)} frames but {len(indices)} frame indices")
    return {
        "fps": float(fps),
        "frames_indices": indices,
        "total_num_frames": int(item.get("total_num_frames", max(indices) + 1)),
        "height": int(frames.shape[1]),
        "width": int(frames.shape[2]),
    }


def _video_kwargs(videos: Sequence[tuple[np.ndarray, dict[str, Any] | None]]) -> dict[str, Any]:
    """The processor's video arguments: the frames as given (the dialogue has sampled them, so
    no second sampling), an even count (Qwen-VL packs a video two frames at a time: an odd
    count repeats its last frame), and each video's metadata (its frame times)."""
    clips, metadata = [], []
    for frames, meta in videos:
        if len(frames) % 2:
            frames = np.concatenate([frames, frames[-1:]])
            if meta is not None:
                meta = {**meta, "frames_indices": [*meta["frames_indices"], meta["frames_indices"][-1]]}
        clips.append(frames)
        metadata.append(meta or {"total_num_frames": len(frames), "frames_indices": list(range(len(frames)))})
    return {"videos": clips, "do_sample_frames": False, "video_metadata": metadata}
