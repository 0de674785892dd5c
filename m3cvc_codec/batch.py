"""Coding, checking and evaluating a whole corpus: ``m3v-batch`` from Python.

    from m3cvc_codec.batch import encode_batch
    report = encode_batch(["videos/"], "out/", {"target_bpp": 0.005}, workers=4)
    report.failed  # the failed inputs' records, each with its one-line error

How a run goes (:func:`encode_batch`):

- the inputs are expanded to (source, output name) pairs (:mod:`.batch_inputs`: files, folders,
  globs, list files, URLs); names only, nothing is opened yet;
- an input whose output is there, recorded ``ok`` by an earlier run's manifest with the same
  settings, bytes and SHA-256, is skipped (recorded ``skipped``); anything else is coded, an
  output that does not match being replaced;
- the inputs to code go to a pool of workers, each holding the pack once
  (:class:`BatchWorker`: the pack cache of :func:`m3cvc_codec.packs.load_pack` keeps it for the
  worker's life) and the other models the options name (CLIP and the flow of ``scorer="clip"``,
  the VLM of ``describe="vlm"``: :meth:`BatchWorker.shared_models`): Ray actors when Ray is
  installed (embedded on this machine's cores by default, a cluster with ``address``), else this
  process, one input after the other;
- a worker codes into memory with :func:`m3cvc_codec.encoder.encode`, the very call
  ``m3v-encode`` makes (same options, same bytes: the output is a deterministic function of the
  input and the options) and sends the bytes back; this process writes each output atomically
  and then its manifest line (:mod:`.batch_manifest`).  So only one process ever writes OUTDIR,
  workers on other machines need no shared disk for it, and a run killed with ``kill -9`` leaves
  whole outputs, each with a whole line or none (an output without its line is coded again:
  the same bytes).  With ``texts_dir`` each input has its own sidecar (:func:`sidecar_path`),
  read here and sent with the input.

An input that fails (unreadable, no video stream, a bad option for it, a worker that died on
it) is recorded with its one-line error and the run goes on; :attr:`BatchReport.failed` says
which.  :func:`verify_outputs` checks OUTDIR against its manifests; :func:`evaluate_batch`
decodes each output and measures it against its input (bpp, PSNR, MS-SSIM, and the paper's
LPIPS and CLIP-sim where asked for and available).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import io
import json
import logging
import math
import os
import re
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .batch_inputs import BatchInput, expand_inputs, local_copy
from .batch_manifest import Manifest, done_records, latest_records, new_run_id, run_lock
from .errors import CodecError

__all__ = [
    "BatchError",
    "BatchReport",
    "BatchWorker",
    "EvalReport",
    "VerifyReport",
    "encode_batch",
    "evaluate_batch",
    "ray_available",
    "settings_digest",
    "sidecar_path",
    "verify_outputs",
]

log = logging.getLogger("m3cvc_codec")

#: What the line says when Ray is not installed and the run goes on in this process.
NO_RAY_LINE = 'Ray is not installed (pip install -e ".[batch]"): coding in this process, one input at a time'

Say = Callable[[str], None]

#: CPUs a worker takes unless told: the lite pack's ONNX sessions run 2 threads (fixed, so the
#: streams do not depend on the machine), so one worker keeps 2 cores busy (on 2 cores, a second
#: worker measured no faster: docs/benchmarks.md).
DEFAULT_CPUS_PER_WORKER = 2.0


class BatchError(CodecError):
    """A run could not start: the workers could not load the pack, Ray could not start or be
    reached, an option is wrong for every input."""


def ray_available() -> bool:
    """Whether Ray imports here."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def settings_digest(encode_options: Mapping[str, Any]) -> str:
    """A digest of the encode options and the encoder's version (an output coded under other
    settings is coded again); a local pack config and a texts sidecar count by their contents.
    Runtime options that change only speed and memory (CPU offload, attention slicing:
    :data:`~m3cvc_codec.packs.config.SPEED_ONLY_OPTIONS`) do not count: turning them on to
    finish a run on a smaller GPU keeps what is done."""
    from .encoder import ENCODER_NAME
    from .packs.config import SPEED_ONLY_OPTIONS, RuntimeOptions

    runtime = encode_options.get("options")
    if isinstance(runtime, RuntimeOptions):
        kept = {f.name: getattr(runtime, f.name) for f in dataclasses.fields(runtime)}
        encode_options = {**encode_options, "options": {k: v for k, v in kept.items() if k not in SPEED_ONLY_OPTIONS}}
    settings = {key: repr(value) for key, value in sorted(encode_options.items())}
    for key in ("pack_config", "texts"):  # files whose contents shape the stream
        named = encode_options.get(key)
        if isinstance(named, (str, os.PathLike)) and os.path.isfile(named):
            settings[f"{key}_sha256"] = hashlib.sha256(Path(named).read_bytes()).hexdigest()
    settings["encoder"] = ENCODER_NAME
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


# ============================================================================ the worker


def _peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


class _Notices(logging.Handler):
    """The codec's log records while one input is coded (they go to its manifest record)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _captured_notices() -> Iterator[list[str]]:
    """The ``m3cvc_codec`` and ``m3cvc_format`` loggers' records, kept instead of shown."""
    handler = _Notices()
    saved = []
    for name in ("m3cvc_codec", "m3cvc_format"):
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.level, logger.propagate))
        logger.handlers = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:
        yield handler.messages
    finally:
        for logger, handlers, level, propagate in saved:
            logger.handlers = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def _one_line(err: BaseException, source: str, local: str | None = None) -> str:
    from m3cvc_format.cli import error_text

    text = error_text(err)
    if local is not None and local != source:
        text = text.replace(local, source)  # a URL's temporary copy is named by the URL
    return text if source in text else f"{source}: {text}"


class BatchWorker:
    """Codes (or evaluates) one input at a time with fixed options; one per Ray actor, or one
    in this process.  :meth:`ready` loads the pack, kept (the pack cache) for every input
    after, and the models the options name (the CLIP scorer's CLIP and flow, the dialogue's
    VLM), kept by the worker (:meth:`shared_models`)."""

    def __init__(self, encode_options: Mapping[str, Any], job: str = "encode") -> None:
        self.options = dict(encode_options)
        self.job = job
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        #: The models built so far, by what determines them (:meth:`_model_keys`).
        self.models: dict[tuple[str, ...], Any] = {}
        #: What loading them logged (RAFT unavailable, ...): told with the worker's first input.
        self.loading_notices: list[str] = []

    def _loaded(self) -> list[str]:
        told, self.loading_notices = self.loading_notices, []
        return told

    def ready(self) -> str:
        """For coding, load the pack and the models (checking the options; decoding loads the
        pack each stream names, on its first stream); the worker's name."""
        if self.job != "encode":
            with _captured_notices() as self.loading_notices:
                self.perceptual_metrics()
            return self.name
        if self.options.get("describe") == "vlm" or self.options.get("scorer", "pack") != "pack":
            from .models.hub import quiet_model_loading

            quiet_model_loading()
        with _captured_notices() as self.loading_notices:
            scorer = self._prepare()
            scorer_key, _ = self._model_keys(self.options)
            if scorer_key is not None:
                self.models[scorer_key] = scorer  # built once, by prepare's own checks
            self.shared_models(self.options)  # the VLM
        return self.name

    def _prepare(self) -> Any:
        """:func:`m3cvc_codec.encoder.prepare` on this worker's options (the pack loaded, the
        options checked, the keyframe scorer built): the scorer."""
        from . import encoder
        from .packs import DEFAULT_PACK

        wanted = inspect.signature(encoder.prepare).parameters
        args = {k: v for k, v in self.options.items() if k in wanted and k not in ("pack", "pack_config", "options")}
        _, _, scorer = encoder.prepare(
            self.options.get("pack", DEFAULT_PACK),
            self.options.get("pack_config"),
            self.options.get("options"),
            **args,
        )
        return scorer

    def _model_keys(self, options: Mapping[str, Any]) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
        """What determines the keyframe scorer's models and the VLM (None: not used): their
        names and the runtime options (device, dtype, models folder) they load with."""
        runtime = repr(options.get("options"))
        scorer = None
        if options.get("scorer", "pack") != "pack":
            names = (str(options["scorer"]), repr(options.get("clip_model")), repr(options.get("flow")))
            scorer = ("scorer", *names, runtime)
        vlm = ("vlm", repr(options.get("vlm")), runtime) if options.get("describe") == "vlm" else None
        return scorer, vlm

    def shared_models(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments that hand :func:`m3cvc_codec.encoder.encode` the models this
        worker keeps instead of the names it would load them by: the built keyframe scorer for
        ``scorer="clip"``, a fresh dialogue on the loaded VLM for ``describe="vlm"`` (the same
        texts, prompts record and bytes: only the loading is skipped).  Each is built on first
        use."""
        shared: dict[str, Any] = {}
        scorer_key, vlm_key = self._model_keys(options)
        if scorer_key is not None:
            if scorer_key not in self.models:
                self.models[scorer_key] = self._prepare()
            shared.update(scorer=self.models[scorer_key], clip_model=None, flow=None)
        if vlm_key is not None:
            from .descriptions import provider_for
            from .dialogue import DialogueDescriptions

            if vlm_key not in self.models:
                # All of m3v-encode's checks (prompts file, turns, a texts file given too).
                self.models[vlm_key] = provider_for(
                    options.get("texts"),
                    describe="vlm",
                    vlm=options.get("vlm"),
                    prompts=options.get("prompts"),
                    dialogue_turns=options.get("dialogue_turns", 4),
                    max_new_tokens=options.get("max_new_tokens"),
                    options=options.get("options"),
                )
            loaded = self.models[vlm_key]
            dialogue = DialogueDescriptions(
                loaded.model,
                loaded.prompts,
                turns=loaded.turns,
                max_new_tokens=loaded.max_new_tokens,
                frames=loaded.frames,
            )
            shared.update(texts=dialogue, describe=None, vlm=None, prompts=None, dialogue_turns=4, max_new_tokens=None)
        return shared

    def encode(self, source: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Code ``source`` into memory with this worker's options and ``overrides`` (an input's
        own texts): a record (:mod:`.batch_manifest`) with the stream's bytes under ``data``,
        or a failed one with its error."""
        from .encoder import encode

        started = time.perf_counter()
        record: dict[str, Any] = {"input": source, "worker": self.name}
        local = None
        options = {**self.options, **(overrides or {})}
        with _captured_notices() as notices:
            try:
                with local_copy(source) as local:
                    buffer = io.BytesIO()
                    options.update(self.shared_models(options))
                    report = encode(local, buffer, **options, progress=False)
            except Exception as err:  # any input's failure is its record's, never the run's
                record.update(status="failed", error=_one_line(err, source, local))
            else:
                data = buffer.getvalue()
                record.update(
                    status="ok",
                    data=data,
                    bytes=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                    bpp=report.bpp,
                    frames=report.frames,
                    clips=len(report.clips),
                    keyframes=[first for first, _ in report.clips],
                    duration_s=report.duration_s,
                )
        record.update(
            seconds=time.perf_counter() - started, notices=self._loaded() + notices, peak_rss_mb=_peak_rss_mb()
        )
        return record

    def perceptual_metrics(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The paper's metrics the options ask for (``lpips``, ``clip_sim``: :data:`PERCEPTUAL`),
        built on first use and kept: (name -> metric, name -> why it is unavailable here: the
        full extra missing, its weights not found)."""
        from . import metrics

        runtime = self.options.get("options")
        builders = {
            "lpips": (
                self.options.get("lpips_weights"),
                lambda: metrics.Lpips(self.options.get("lpips_weights"), runtime),
            ),
            "clip_sim": (
                self.options.get("clip_model"),
                lambda: metrics.ClipSimilarity(self.options.get("clip_model"), runtime),
            ),
        }
        ready: dict[str, Any] = {}
        unavailable: dict[str, str] = {}
        for name, (source, build) in builders.items():
            if not self.options.get(name):
                continue
            key = ("metric", name, repr(source), repr(runtime))
            if key not in self.models:
                try:
                    self.models[key] = (build(), None)
                except (CodecError, ImportError, OSError) as err:  # ModelError, MissingExtraError: CodecError
                    self.models[key] = (None, _first_line(err))
            metric, why = self.models[key]
            if metric is not None:
                ready[name] = metric
            else:
                unavailable[name] = why
        return ready, unavailable

    def evaluate(self, source: str, stream: bytes, fit: str = "crop") -> dict[str, Any]:
        """Decode ``stream`` and measure it against ``source`` read at the stream's size and
        rate: bpp and the mean per-frame PSNR (RGB and luma) and MS-SSIM (None where the frames
        are under 176 pixels a side, too small for its 5 scales), and LPIPS and CLIP-sim where
        asked for and available (``unavailable``: why not)."""
        started = time.perf_counter()
        record: dict[str, Any] = {"input": source, "worker": self.name}
        local = None
        with _captured_notices() as notices:
            try:
                perceptual, record["unavailable"] = self.perceptual_metrics()
                with local_copy(source) as local:
                    record.update(status="ok", **_measure(local, stream, fit, self.options, perceptual))
            except Exception as err:
                record.update(status="failed", error=_one_line(err, source, local))
        record.update(
            seconds=time.perf_counter() - started, notices=self._loaded() + notices, peak_rss_mb=_peak_rss_mb()
        )
        return record


#: The paper's perceptual metrics ``m3v-batch eval`` adds where asked for (section III-A), by
#: record field: :class:`m3cvc_codec.metrics.Lpips` (lower is better) and
#: :class:`m3cvc_codec.metrics.ClipSimilarity` (higher is better).
PERCEPTUAL = {"lpips": "LPIPS", "clip_sim": "CLIP-sim"}
#: Frame pairs the perceptual metrics take at a time.
PERCEPTUAL_BATCH = 8


def _measure(
    local: str, stream: bytes, fit: str, options: Mapping[str, Any], perceptual: Mapping[str, Any]
) -> dict[str, Any]:
    import numpy as np

    import m3cvc_format as m

    from . import metrics
    from .clip_decoder import ClipDecoder
    from .packs import PackError
    from .video_io import read_frames

    with m.Reader(stream) as reader:
        header = reader.header
        if options.get("pack") and header.pack_id != options["pack"]:
            raise PackError(f"stream was coded with pack {header.pack_id!r}, not {options['pack']!r}")
        decoder = ClipDecoder(header, pack_config=options.get("pack_config"), options=options.get("options"))
        decoded = (frame for _, frame in m.FrameSource(reader, decoder=decoder).frames(0, None))
        reference = read_frames(local, (header.width, header.height), header.fps, fit)
        psnr_rgb, psnr_y, ms_ssim = [], [], []
        scores: dict[str, list[float]] = {name: [] for name in perceptual}
        pending: list[tuple[Any, Any]] = []

        def score_pending() -> None:
            if pending:
                originals, frames = (np.stack(side) for side in zip(*pending))
                for name, metric in perceptual.items():
                    scores[name].extend(float(v) for v in metric(originals, frames))
                pending.clear()

        small = min(header.width, header.height) < 176
        for original, frame in zip(reference, decoded):
            y_original, y_frame = metrics.luma(original), metrics.luma(frame)
            psnr_rgb.append(metrics.psnr_rgb(original, frame))
            psnr_y.append(metrics.psnr(y_original, y_frame))
            if not small:
                ms_ssim.append(metrics.ms_ssim(y_original, y_frame))
            if perceptual:
                pending.append((original, frame))
                if len(pending) == PERCEPTUAL_BATCH:
                    score_pending()
        score_pending()
        frames = header.frame_count or reader.frame_count
    if not psnr_rgb:
        raise CodecError("no frame to compare")
    return {
        "bytes": len(stream),
        "bpp": len(stream) * 8 / (header.width * header.height * max(frames, 1)),
        "frames": len(psnr_rgb),
        "psnr_rgb": _mean(psnr_rgb),
        "psnr_y": _mean(psnr_y),
        "ms_ssim": _mean(ms_ssim) if ms_ssim else None,
        **{name: _mean(values) for name, values in scores.items()},
    }


def _mean(values: Sequence[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < len(values):
        return None if not finite else float("inf")  # identical frames somewhere: PSNR is inf
    return sum(finite) / len(finite)


# ============================================================================ pools


class _LocalPool:
    """One worker in this process, one input at a time."""

    workers = 1

    def __init__(self, worker_options: Mapping[str, Any], job: str) -> None:
        self.worker = BatchWorker(worker_options, job)
        self.names = [self.worker.ready()]

    def map(self, method: str, tasks: Iterable[tuple[Any, tuple[Any, ...]]]) -> Iterator[tuple[Any, dict[str, Any]]]:
        for key, args in tasks:
            yield key, getattr(self.worker, method)(*args)

    def close(self) -> None:
        pass


def _gpu_options(worker_options: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
    """The options a Ray worker runs with, and the GPUs it asks for: one when the pack is to run
    on ``cuda`` (Ray then shows the worker its GPU as ``cuda:0``, so ``cuda:N`` becomes ``cuda``)."""
    runtime = worker_options.get("options")
    if runtime is None or not str(runtime.device).startswith("cuda"):
        return dict(worker_options), 0.0
    return {**worker_options, "options": dataclasses.replace(runtime, device="cuda")}, 1.0


class _RayPool:
    """Ray actors, each a :class:`BatchWorker`, fed one input at a time (so a worker that dies
    loses one input, recorded as failed, and is replaced)."""

    def __init__(
        self,
        worker_options: Mapping[str, Any],
        *,
        address: str | None,
        workers: int | None,
        cpus_per_worker: float,
        tasks: int,
        say: Say,
        job: str,
    ) -> None:
        import ray

        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            try:
                warnings.filterwarnings("ignore", module=r"ray\.")  # its failures are reported below
                if address:
                    ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
                else:
                    # Workers asked for beyond the cores share them (Ray would wait for ever).
                    cores = max(os.cpu_count() or 1, math.ceil((workers or 0) * cpus_per_worker))
                    ray.init(
                        num_cpus=cores,
                        include_dashboard=False,
                        logging_level=logging.ERROR,
                        log_to_driver=False,
                    )
            except Exception as err:
                raise BatchError(
                    f"Ray did not start{f' at {address}' if address else ''}: {_first_line(err)}"
                ) from None
            self.started = True
        options, gpus = _gpu_options(worker_options)
        resources = ray.cluster_resources()
        if workers is None:
            if gpus:
                workers = int(resources.get("GPU", 0) // gpus)
                if workers < 1:
                    raise BatchError("the pack is to run on a GPU (--device cuda) and the Ray cluster has none")
            else:
                workers = max(1, int(resources.get("CPU", 1) // cpus_per_worker))
        self.workers = max(1, min(workers, tasks))
        remote: Any = ray.remote(BatchWorker)
        self.remote = remote.options(num_cpus=cpus_per_worker, num_gpus=gpus, max_restarts=0)
        self.worker_options = options
        self.job = job
        actors = [self.remote.remote(options, job) for _ in range(self.workers)]
        try:
            self.names = ray.get([actor.ready.remote() for actor in actors])
        except Exception as err:
            self.close()
            raise BatchError(f"the workers could not start: {_ray_error(err)}") from None
        self.idle = actors
        where = f"Ray at {address}" if address else "Ray on this machine"
        say(
            f"{self.workers} worker{'s' if self.workers > 1 else ''} on {where} ({cpus_per_worker:g} CPU{'s' if cpus_per_worker != 1 else ''}{f', {gpus:g} GPU' if gpus else ''} each)"
        )

    def map(self, method: str, tasks: Iterable[tuple[Any, tuple[Any, ...]]]) -> Iterator[tuple[Any, dict[str, Any]]]:
        ray = self.ray
        pending = iter(tasks)
        running: dict[Any, tuple[Any, Any, tuple[Any, ...]]] = {}
        exhausted = False
        while True:
            while self.idle and not exhausted:
                task = next(pending, None)
                if task is None:
                    exhausted = True
                    break
                key, args = task
                actor = self.idle.pop()
                running[getattr(actor, method).remote(*args)] = (key, actor, args)
            if not running:
                return
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                key, actor, args = running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as err:
                    result = {"status": "failed", "error": f"{args[0]}: the worker died ({_first_line(err)})"}
                    actor = self.remote.remote(self.worker_options, self.job)  # a new one in its place
                except ray.exceptions.RayError as err:
                    result = {"status": "failed", "error": f"{args[0]}: {_ray_error(err)}"}
                self.idle.append(actor)
                yield key, result

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _ray_error(err: BaseException) -> str:
    """The user's error inside a Ray task error (its cause), as one line."""
    cause = getattr(err, "cause", None)
    return _first_line(cause if isinstance(cause, BaseException) else err)


def _open_pool(
    worker_options: Mapping[str, Any],
    *,
    use_ray: bool | None,
    address: str | None,
    workers: int | None,
    cpus_per_worker: float,
    tasks: int,
    say: Say,
    job: str = "encode",
) -> _LocalPool | _RayPool:
    if use_ray is None:
        use_ray = ray_available() or address is not None
        if not use_ray:
            say(NO_RAY_LINE)
    if not use_ray:
        return _LocalPool(worker_options, job)
    if not ray_available():
        raise BatchError('Ray is not installed: pip install -e ".[batch]" (or run without --address)')
    return _RayPool(
        worker_options,
        address=address,
        workers=workers,
        cpus_per_worker=cpus_per_worker,
        tasks=tasks,
        say=say,
        job=job,
    )


# ============================================================================ progress


class _Progress:
    """The run's progress across every input: files done of all, clips, seconds of video coded
    per second, ETA.  A bar where stderr is a terminal, else one line per input; nothing when
    quiet."""

    def __init__(self, total: int, enabled: bool, say: Say) -> None:
        self.total = total
        self.enabled = enabled
        self.say = say
        self.started = time.perf_counter()
        self.done = self.failed = self.skipped = self.clips = 0
        self.video_s = 0.0
        self.bar = None
        if enabled and sys.stderr.isatty():
            with contextlib.suppress(ImportError):
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="file", desc="m3v-batch", dynamic_ncols=True, leave=False)

    def skip(self) -> None:
        self.skipped += 1
        if self.bar is not None:
            self.bar.update()

    def update(self, record: Mapping[str, Any]) -> None:
        self.done += 1
        if record.get("status") == "failed":
            self.failed += 1
        else:
            self.clips += record.get("clips") or 0
            self.video_s += record.get("duration_s") or 0.0
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(self._rates(), refresh=False)
            self.bar.update()
            return
        clips = record.get("clips") or 0
        if record.get("status") == "failed":
            what = record.get("error")
        elif record.get("psnr_rgb") is not None:
            what = f"{record['psnr_rgb']:.2f} dB"
        else:
            what = f"{clips} clip{'s' if clips != 1 else ''}"
        self.say(
            f"[{self.done + self.skipped}/{self.total}] {record.get('output') or record.get('input')}: {what}; {self._rates()}"
        )

    def _rates(self) -> str:
        elapsed = time.perf_counter() - self.started
        left = self.total - self.done - self.skipped
        eta = elapsed / self.done * left if self.done else math.nan
        rate = self.video_s / elapsed if elapsed > 0 else 0.0
        eta_text = f"ETA {_duration(eta)}" if math.isfinite(eta) else "ETA ?"
        return f"{self.clips} clips, {rate:.2f} s of video/s, {self.failed} failed, {eta_text}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


# ============================================================================ encode


@dataclass
class BatchReport:
    """What :func:`encode_batch` did: every input's record (:mod:`.batch_manifest`)."""

    run: str
    manifest: Path
    records: list[dict[str, Any]]
    seconds: float
    workers: int = 0
    parquet: Path | None = None

    def _with(self, status: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] == status]

    @property
    def encoded(self) -> list[dict[str, Any]]:
        return self._with("ok")

    @property
    def skipped(self) -> list[dict[str, Any]]:
        return self._with("skipped")

    @property
    def failed(self) -> list[dict[str, Any]]:
        return self._with("failed")

    @property
    def video_seconds(self) -> float:
        """Seconds of video coded by this run (skipped inputs not counted)."""
        return sum(r["duration_s"] or 0.0 for r in self.encoded)

    def summary(self) -> str:
        rate = self.video_seconds / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{len(self.encoded)} coded, {len(self.skipped)} skipped (done before), {len(self.failed)} failed "
            f"in {self.seconds:.1f} s ({self.video_seconds:.1f} s of video, {rate:.2f} s of video per second); "
            f"manifest {self.manifest}"
        )


def _quiet(_: str) -> None:
    pass


_TEMPORARY = re.compile(r"\A\.(.+)\.\d+\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9_-]+)?\Z")


def _remove_stale_temporaries(folders: Iterable[Path]) -> None:
    """The temporary files of atomic writes whose process was killed (kill -9 of a run)."""
    from m3cvc_format.atomic import remove_stale_temporaries

    for folder in folders:
        with contextlib.suppress(OSError):
            targets = {match.group(1) for name in os.listdir(folder) if (match := _TEMPORARY.match(name))}
            for target in targets:
                remove_stale_temporaries(folder / target)


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _already_done(item: BatchInput, path: Path, record: Mapping[str, Any] | None, settings: str) -> bool:
    """Whether ``path`` is the output an earlier run recorded for ``item`` under ``settings``."""
    if record is None or record.get("input") != item.source or record.get("settings") != settings:
        return False
    try:
        if path.stat().st_size != record.get("bytes"):
            return False
    except OSError:
        return False
    return _sha256(path) == record.get("sha256")


def encode_batch(
    inputs: Iterable[str],
    outdir: str | os.PathLike[str],
    encode_options: Mapping[str, Any] | None = None,
    *,
    workers: int | None = None,
    cpus_per_worker: float = DEFAULT_CPUS_PER_WORKER,
    address: str | None = None,
    use_ray: bool | None = None,
    texts_dir: str | os.PathLike[str] | None = None,
    texts_optional: bool = False,
    progress: bool = False,
    say: Say | None = None,
) -> BatchReport:
    """Code every video ``inputs`` name (files, folders, globs, list files, URLs:
    :mod:`.batch_inputs`) into ``outdir``, one ``.m3v`` each, with the keyword arguments of
    :func:`m3cvc_codec.encoder.encode` in ``encode_options``, skipping those an earlier run
    finished (see the module documentation).

    ``use_ray`` None: Ray where it is installed (embedded with this machine's cores, or the
    cluster at ``address``: ``auto``, ``ray://host:10001``), else in this process with a line
    saying so; False: in this process.  ``workers`` (default: as many as the CPUs (GPUs with
    ``device="cuda"``) allow) each take ``cpus_per_worker`` CPUs.  ``texts_dir``: each input's
    own description sidecar, ``TEXTS_DIR/NAME.json`` for the output ``NAME.m3v``
    (:func:`sidecar_path`); an input without one fails, or with ``texts_optional`` is coded
    without texts.  ``progress``: show progress; ``say``: where lines for the user go (default:
    nowhere).  BatchError when the run cannot start; an input's failure is in its record."""
    say = say or _quiet
    options = dict(encode_options or {})
    options.pop("progress", None)
    if texts_dir is not None:
        _check_texts_dir(texts_dir, options)
    if cpus_per_worker <= 0:
        raise BatchError(f"cpus per worker {cpus_per_worker:g} must be more than 0")
    if workers is not None and workers < 1:
        raise BatchError(f"workers {workers} must be 1 or more")
    out = Path(outdir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BatchError(f"{out}: cannot make the output folder ({err.strerror})") from None
    started = time.perf_counter()
    run_settings = settings_digest(options)
    with run_lock(out):
        items = list(expand_inputs(inputs))
        done = done_records(out)
        manifest = Manifest(out, new_run_id(out))
        bar = _Progress(len(items), progress, say)
        pool: _LocalPool | _RayPool | None = None
        try:
            _remove_stale_temporaries({(out / item.output).parent for item in items} | {out})
            owners: dict[str, str] = {}
            todo: list[tuple[tuple[BatchInput, str], tuple[str, dict[str, Any] | None]]] = []
            for item in items:
                path = out / item.output
                owner = owners.setdefault(item.output, item.source)
                settings, own_texts = run_settings, None
                if texts_dir is not None:
                    own_texts = _own_texts(item, Path(texts_dir), texts_optional, options)
                    settings = settings_digest(
                        {**options, "texts": own_texts["texts"], "describe": own_texts["describe"]}
                    )
                failure, overrides = None, None
                if owner != item.source:
                    failure = f"{item.source}: its output {item.output} is also {owner}'s"
                elif _already_done(item, path, done.get(item.output), settings):
                    manifest.add({**done[item.output], "status": "skipped", "finished": None})
                    bar.skip()
                    continue
                elif own_texts is not None:
                    failure, overrides = _load_own_texts(item, own_texts)
                if failure is None:
                    todo.append(((item, settings), (item.source, overrides)))
                    continue
                record = {"input": item.source, "output": item.output, "status": "failed", "error": failure}
                manifest.add({**record, "settings": settings})
                bar.update(manifest.records[-1])
            if todo:
                pool = _open_pool(
                    options,
                    use_ray=use_ray,
                    address=address,
                    workers=workers,
                    cpus_per_worker=cpus_per_worker,
                    tasks=len(todo),
                    say=say,
                )
                for (item, settings), result in pool.map("encode", todo):
                    _finish(out, item, result, settings, manifest, say, progress)
                    bar.update(manifest.records[-1])
        finally:
            bar.close()
            if pool is not None:
                pool.close()
            parquet = manifest.close()
    return BatchReport(
        run=manifest.run,
        manifest=manifest.path,
        records=manifest.records,
        seconds=time.perf_counter() - started,
        workers=pool.workers if pool is not None else 0,
        parquet=parquet,
    )


def sidecar_path(texts_dir: str | os.PathLike[str], item: BatchInput) -> Path:
    """Where ``--texts-dir`` has the description sidecar of ``item``: ``TEXTS_DIR/NAME.json``
    for the output ``OUTDIR/NAME.m3v`` (``videos/x/a.mp4`` below the folder ``videos`` ->
    ``TEXTS_DIR/x/a.json``)."""
    return Path(texts_dir) / f"{item.name}.json"


def _check_texts_dir(texts_dir: str | os.PathLike[str], options: Mapping[str, Any]) -> None:
    if options.get("texts") is not None:
        raise BatchError("give one texts sidecar for every input (--texts) or a folder of them (--texts-dir), not both")
    if options.get("describe") not in (None, "sidecar"):
        raise BatchError(f"describe {options['describe']!r} takes no texts sidecars (--texts-dir)")
    if not os.path.isdir(texts_dir):
        raise BatchError(f"{texts_dir}: no such folder (--texts-dir)")


def _own_texts(item: BatchInput, texts_dir: Path, optional: bool, options: Mapping[str, Any]) -> dict[str, Any]:
    """The encode options an input's own sidecar sets: its path (its contents count in the
    settings digest); a missing one is None, which codes the input without texts when
    ``optional`` and fails it otherwise."""
    path = sidecar_path(texts_dir, item)
    if path.is_file():
        return {"texts": str(path), "describe": options.get("describe")}
    return {"texts": None, "describe": None, "missing": None if optional else str(path)}


def _load_own_texts(item: BatchInput, own: Mapping[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """(an error, or None) and the overrides a worker codes ``item`` with: its sidecar read and
    checked here (the worker needs no access to it; the same texts and bytes as ``m3v-encode
    --texts`` with it)."""
    from .descriptions import load_sidecar

    if own.get("missing"):
        return f"{item.source}: no texts sidecar {own['missing']} (--texts-optional codes it without texts)", None
    overrides = {"texts": own["texts"], "describe": own["describe"]}
    if own["texts"] is not None:
        try:
            overrides["texts"] = load_sidecar(own["texts"])
        except CodecError as err:
            return _one_line(err, item.source), None
    return None, overrides


def _finish(
    out: Path, item: BatchInput, result: dict[str, Any], settings: str, manifest: Manifest, say: Say, progress: bool
) -> None:
    """Write one worker's output atomically, then its manifest line."""
    from m3cvc_format.atomic import atomic_file

    data = result.pop("data", None)
    result.update(input=item.source, output=item.output, settings=settings)
    if result.get("status") == "ok" and data is not None:
        path = out / item.output
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_file(path) as f:
                f.write(data)
        except OSError as err:
            result.update(status="failed", error=f"{path}: cannot write ({err.strerror or err})")
    if progress:
        for notice in result.get("notices") or ():
            say(f"{item.source}: {notice}")
    manifest.add(result)


# ============================================================================ verify


@dataclass
class VerifyReport:
    """One row per output: ``output``, ``status`` (``ok``; ``unrecorded``: valid, in no
    manifest; ``missing``, ``differs``, ``damaged``: bad), ``error``, ``bytes``, ``bpp``,
    ``clips``, ``frames``."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def bad(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] not in ("ok", "unrecorded")]


def verify_outputs(outdir: str | os.PathLike[str]) -> VerifyReport:
    """Check every output in ``outdir`` and every output its manifests record: there, the bytes
    and SHA-256 the manifest has, and a valid stream (every CRC, every payload decodes:
    ``m3v-info --verify``).  Reads only; the pack is not needed."""
    from m3cvc_format.summary import summarize, verify

    out = Path(outdir)
    if not out.is_dir():
        raise CodecError(f"{out}: no such folder")
    recorded = done_records(out)
    found = {p.relative_to(out).as_posix() for p in out.rglob("*.m3v") if p.is_file()}
    report = VerifyReport()
    for name in sorted(found | set(recorded)):
        path = out / name
        record = recorded.get(name)
        row: dict[str, Any] = {"output": name, "status": "ok", "error": None}
        if name not in found:
            row.update(status="missing", error=f"{path}: recorded by the manifest, not there")
        else:
            try:
                summary = summarize(str(path))
                verify(summary)
                row.update(bytes=summary.total_bytes, bpp=summary.bpp, clips=len(summary.clips), frames=summary.frames)
                if record is None:
                    row["status"] = "unrecorded"
                elif record.get("sha256") != _sha256(path):
                    row.update(status="differs", error=f"{path}: not the bytes the manifest records")
            except (ValueError, OSError) as err:
                row.update(status="damaged", error=_one_line(err, str(path)))
        report.rows.append(row)
    return report


# ============================================================================ evaluate


@dataclass
class EvalReport:
    """One record per input (``status``, ``error``, ``bytes``, ``bpp``, ``frames``,
    ``psnr_rgb``, ``psnr_y``, ``ms_ssim``, ``lpips``, ``clip_sim``), where they were written,
    the R-D plot, and why a perceptual metric asked for was left out (``unavailable``)."""

    records: list[dict[str, Any]]
    path: Path
    plot: Path | None = None
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] == "failed"]


EVAL_FIELDS = (
    "input",
    "output",
    "status",
    "error",
    "bytes",
    "bpp",
    "frames",
    "psnr_rgb",
    "psnr_y",
    "ms_ssim",
    *PERCEPTUAL,
)


def evaluate_batch(
    inputs: Iterable[str],
    outdir: str | os.PathLike[str],
    *,
    fit: str = "crop",
    pack: str | None = None,
    pack_config: Any = None,
    options: Any = None,
    lpips: bool = False,
    lpips_weights: str | os.PathLike[str] | None = None,
    clip_sim: bool = False,
    clip_model: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = DEFAULT_CPUS_PER_WORKER,
    address: str | None = None,
    use_ray: bool | None = None,
    plot: bool = True,
    progress: bool = False,
    say: Say | None = None,
) -> EvalReport:
    """Decode the output of each of ``inputs`` found in ``outdir`` and measure it against its
    input read as the encoder did (``fit``: ``crop`` or ``pad``, as m3v-encode ``--pad``), on the
    same pool as :func:`encode_batch`; ``pack``: refuse a stream of another pack (that input's
    failure).  ``lpips`` (weights in ``lpips_weights``, else where
    :func:`m3cvc_codec.metrics.lpips_weight_files` looks) and ``clip_sim`` (CLIP ``clip_model``,
    default ViT-B/32) add the paper's metrics where they can be built (the full extra, local
    weights), else say in one line why not and go on without them.  Writes
    ``OUTDIR/eval-RUN.jsonl`` and, where matplotlib imports and ``plot``, the R-D plot
    ``OUTDIR/eval-RUN.png`` (each metric against bpp)."""
    say = say or _quiet
    out = Path(outdir)
    if not out.is_dir():
        raise CodecError(f"{out}: no such folder")
    items = list(expand_inputs(inputs))
    run = new_run_id(out)
    records: list[dict[str, Any]] = []
    todo: list[BatchInput] = []
    coded = latest_records(out)
    for item in items:
        path = out / item.output
        if path.is_file():
            todo.append(item)
            continue
        error = f"{path}: No such file"
        if coded.get(item.output, {}).get("status") == "failed":
            error = f"{path}: not coded ({coded[item.output]['error']})"
        records.append({"input": item.source, "output": item.output, "status": "failed", "error": error})
    # Each stream is read as it goes to a worker, not all at once.
    tasks = ((item, (item.source, (out / item.output).read_bytes(), fit)) for item in todo)
    bar = _Progress(len(items), progress, say)
    for record in records:
        bar.update(record)
    pool = None
    unavailable: dict[str, str] = {}
    try:
        if todo:
            worker_options = {"pack": pack, "pack_config": pack_config, "options": options}
            worker_options.update(lpips=lpips, lpips_weights=lpips_weights, clip_sim=clip_sim, clip_model=clip_model)
            pool = _open_pool(
                worker_options,
                use_ray=use_ray,
                address=address,
                workers=workers,
                cpus_per_worker=cpus_per_worker,
                tasks=len(todo),
                say=say,
                job="evaluate",
            )
            for item, result in pool.map("evaluate", tasks):
                for name, why in (result.pop("unavailable", None) or {}).items():
                    if name not in unavailable:  # once a run, not once an input
                        unavailable[name] = why
                        say(f"{PERCEPTUAL[name]} left out: {why}")
                result.update(input=item.source, output=item.output)
                records.append(result)
                bar.update(result)
    finally:
        bar.close()
        if pool is not None:
            pool.close()
    from m3cvc_format.atomic import atomic_file

    path = out / f"eval-{run}.jsonl"
    with atomic_file(path) as f:
        for record in records:
            row = {name: record.get(name) for name in EVAL_FIELDS}
            f.write((json.dumps(row, default=str) + "\n").encode())
    report = EvalReport(records, path, unavailable=unavailable)
    if plot:
        report.plot = _rd_plot([r for r in records if r["status"] == "ok"], out / f"eval-{run}.png")
    return report


def _rd_plot(records: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """PSNR and MS-SSIM (and LPIPS, CLIP-sim where measured) against bpp, one point per input;
    None where matplotlib is missing."""
    if not records:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    panels = [("psnr_rgb", "PSNR (RGB, dB)"), ("ms_ssim", "MS-SSIM (luma)")]
    panels += [(key, label) for key, label in PERCEPTUAL.items() if any(r.get(key) is not None for r in records)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        points = [(r["bpp"], r[key]) for r in records if r.get(key) is not None and math.isfinite(r[key])]
        if points:
            ax.scatter(*zip(*points), s=14)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.suptitle(f"m3v-batch eval: {len(records)} videos")
    fig.tight_layout()
    from m3cvc_format.atomic import atomic_file

    with atomic_file(path) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path
