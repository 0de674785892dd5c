"""The ``lite`` pack: a small CPU VQ keyframe codec that ships inside the package.

Per grid variant ("1/16" and "1/8") an ONNX encoder maps a frame to continuous latents
(d = 16 channels at 1/ds of the frame size), each latent vector becomes the index of its nearest
codeword (Euclidean, 256 codewords) in numpy, and an ONNX decoder maps the looked-up codewords
back to a frame.  Clips are reconstructed by DIS-flow warping between decoded keyframes
(:mod:`.reconstruct`); motion is scored by DIS flow on small grey frames (:mod:`.motion`).
Inference uses onnxruntime, OpenCV and numpy only, on the CPU: importing this module or using
the pack never imports torch.  Training, export and the measured quality: tools/train_lite.py
and docs/lite-pack.md.

Configuration: the pack's config is its weights manifest, ``weights/manifest.json`` (a format-1
manifest, :mod:`m3cvc_codec.packs.config`), naming the files of each variant in ``weights/<dir>/``
(``encoder.onnx``, ``decoder.onnx``, ``codebook.npy``, ``prior.npy``) with their SHA-256.  The
weights hash of a variant (written into stream headers) is
:func:`m3cvc_codec.packs.config.weights_hash` over those files: the SHA-256 of the UTF-8 text
made of one line ``"<name> <sha256 hex>\\n"`` per file, sorted by name, where ``name`` is the
path relative to the weights folder (e.g. ``ds16/decoder.onnx``).  Another weights folder (its
``manifest.json``) is another config: ``load_pack("lite", "path/to/weights")``.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from ..base import GridSpec, Pack, PackError
from ..config import PackConfig, RuntimeOptions
from . import motion as _motion
from .reconstruct import interpolate_clip, predict_clip

__all__ = ["EMBED_SIZE", "LitePack"]

#: embed() runs the 1/16 encoder on every frame area-resized to this size (width, height).
EMBED_SIZE = (128, 80)
_THREADS = 2


def _shipped_weights() -> Path:
    return Path(str(resources.files(__name__).joinpath("weights")))


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """n_out x n_in weights of a box-filter (area) resize along one axis."""
    edges = np.arange(n_out + 1, dtype=np.float64) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    pix = np.arange(n_in, dtype=np.float64)[None, :]
    overlap = np.clip(np.minimum(hi, pix + 1) - np.maximum(lo, pix), 0, None)
    return (overlap / overlap.sum(1, keepdims=True)).astype(np.float32)


class LitePack(Pack):
    """The CPU ``lite`` pack (see the module doc).  ``config``: a :class:`PackConfig`, or a
    weights folder / manifest file (default: the shipped weights); ``options`` must say
    device ``"cpu"`` (dtype None or float32); ``cpu_offload`` and ``attention_slicing`` are
    accepted and change nothing (its small ONNX models already run on the CPU, in one piece),
    so one command line serves both packs.  ``verify`` checks each file's SHA-256 against the config when it is
    first loaded."""

    pack_id = "lite"
    grids: Sequence[GridSpec] = (GridSpec("1/16", 16, 256), GridSpec("1/8", 8, 256))

    def __init__(
        self,
        config: PackConfig | str | Path | None = None,
        options: RuntimeOptions | None = None,
        *,
        weights_dir: str | Path | None = None,
        verify: bool = True,
    ):
        if weights_dir is not None:
            if config is not None:
                raise TypeError("LitePack: give config or weights_dir, not both")
            config = weights_dir
        if isinstance(config, (str, Path)):
            config = PackConfig.from_file(config)
        super().__init__(config, options)
        opts = self.options
        if opts.device != "cpu":
            raise PackError(
                f"lite pack runs on the CPU only (onnxruntime's CPU provider), not on device {opts.device!r}"
            )
        if opts.dtype not in (None, "float32"):
            raise PackError(f"lite pack computes in float32, not {opts.dtype}")
        self._root = self.config.root if self.config.root is not None else Path()
        self._verify = verify
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], object] = {}
        self._area: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._local = threading.local()  # one DIS flow object per thread (motion)
        variants = self.config.settings.get("variants")
        if not isinstance(variants, Mapping):
            raise PackError(f"lite pack: its config in {self._root} has no weights variants")
        self._variants = variants

    @classmethod
    def default_config(cls) -> PackConfig:
        """The shipped weights: ``weights/manifest.json`` beside this module."""
        return PackConfig.from_file(_shipped_weights() / "manifest.json")

    # -- weights -------------------------------------------------------------------------

    def _variant(self, grid: GridSpec | str):
        name = grid if isinstance(grid, str) else grid.name
        spec = next((g for g in self.grids if g.name == name), None)
        if spec is None or (not isinstance(grid, str) and grid != spec):
            have = ", ".join(f"{g.name} (downsample {g.downsample}, vocabulary {g.vocab_size})" for g in self.grids)
            raise PackError(f"lite pack has no grid variant {grid!r} (it has {have})")
        v = self._variants.get(name)
        if v is None:
            raise PackError(f"lite pack: no weights for grid {name} in {self._root}")
        return v

    def _read(self, v, fname: str) -> bytes:
        rel = f"{v['dir']}/{fname}"
        try:
            data = self._root.joinpath(v["dir"], fname).read_bytes()
        except OSError as exc:
            raise PackError(f"lite pack: weights file {rel} is missing: {exc}") from exc
        component = self.config.components.get(rel)
        want = component.sha256 if component is not None else None
        if self._verify and hashlib.sha256(data).hexdigest() != want:
            raise PackError(f"lite pack: weights file {rel} in {self._root} does not match its SHA-256 in the config")
        return data

    def _get(self, grid, what: str):
        v = self._variant(grid)
        key = (v["dir"], what)
        obj = self._cache.get(key)
        if obj is not None:
            return obj
        with self._lock:
            obj = self._cache.get(key)
            if obj is None:
                if what in ("encoder", "decoder"):
                    import onnxruntime as ort

                    so = ort.SessionOptions()
                    so.intra_op_num_threads = _THREADS
                    so.inter_op_num_threads = 1
                    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                    so.log_severity_level = 3
                    obj = ort.InferenceSession(
                        self._read(v, f"{what}.onnx"), sess_options=so, providers=["CPUExecutionProvider"]
                    )
                else:
                    arr = np.load(io.BytesIO(self._read(v, f"{what}.npy")), allow_pickle=False)
                    if what == "codebook":
                        arr = np.ascontiguousarray(arr, dtype=np.float32)
                        vocab = self._variant_grid(grid).vocab_size
                        if arr.shape[0] != vocab:
                            raise PackError(f"lite pack: codebook has {arr.shape[0]} entries, not {vocab}")
                        obj = (arr, (arr * arr).sum(1))
                    else:
                        obj = [int(c) for c in arr]
                self._cache[key] = obj
        return obj

    def weights_hash(self, grid: GridSpec) -> bytes:
        self._variant(grid)
        return super().weights_hash(grid)

    def prior(self, grid: GridSpec) -> Sequence[int]:
        return list(self._get(grid, "prior"))

    # -- codec ---------------------------------------------------------------------------

    @staticmethod
    def _check_frame(frame: np.ndarray, ds: int | None, what: str) -> np.ndarray:
        x = np.asarray(frame)
        if x.ndim != 3 or x.shape[2] != 3 or x.dtype != np.uint8:
            raise ValueError(f"lite pack: {what} must be a uint8 H x W x 3 RGB array, got {x.dtype} {x.shape}")
        h, w = x.shape[:2]
        if ds is not None and (h % ds or w % ds or h == 0 or w == 0):
            raise ValueError(
                f"lite pack: frame size {w}x{h} is not a multiple of the grid's downsample factor {ds} "
                f"in both dimensions (resize or crop it first, e.g. to 512x320)"
            )
        return x

    def _latents(self, frames_nhwc: np.ndarray, grid) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(frames_nhwc.transpose(0, 3, 1, 2), dtype=np.float32)
        if frames_nhwc.dtype == np.uint8:
            x *= np.float32(1 / 255)
        h, feat = self._get(grid, "encoder").run(None, {"frame": x})
        return h, feat

    def _distances(self, frame: np.ndarray, grid: GridSpec) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """Squared distance of every latent vector to every codeword (cells x 256) less the
        latent's own squared norm (constant per cell, so the argmin needs no more), that norm
        (cells x 1), and the grid's shape."""
        ds = self._variant_grid(grid).downsample
        x = self._check_frame(frame, ds, "a keyframe")
        h, _ = self._latents(x[None], grid)
        _, d, gh, gw = h.shape
        flat = h[0].reshape(d, gh * gw).T
        code, code_sq = self._get(grid, "codebook")
        dist = code_sq[None, :] - 2.0 * (flat @ code.T)
        return dist, np.einsum("ij,ij->i", flat, flat)[:, None], (gh, gw)

    def encode_keyframe(self, frame: np.ndarray, grid: GridSpec) -> np.ndarray:
        """RGB uint8 frame (H, W multiples of the downsample) -> int64 index map (H/ds x W/ds)."""
        dist, _, shape = self._distances(frame, grid)
        return dist.argmin(1).astype(np.int64).reshape(shape)

    def encode_keyframe_near(
        self, frame: np.ndarray, grid: GridSpec, reference: np.ndarray, tolerance: float
    ) -> np.ndarray:
        """Like :meth:`encode_keyframe`, but a cell keeps ``reference``'s index (the previous
        keyframe's map) where that codeword's squared distance to the latent is within a factor
        ``1 + tolerance`` of the nearest one's.  Static background, whose nearest codeword
        flickers between near ties, then repeats the previous map, which the TEMPORAL coder
        sends almost for free (docs/lite-pack.md, "Reusing the previous keyframe's indices")."""
        partial, norm, shape = self._distances(frame, grid)
        best = partial.argmin(1)
        dist = partial + norm
        ref = np.asarray(reference, dtype=np.int64).reshape(-1)
        vocab = self._variant_grid(grid).vocab_size
        if ref.size != best.size or ref.min(initial=0) < 0 or ref.max(initial=0) >= vocab:
            raise ValueError(
                f"lite pack: reference map of {ref.size} cells for a {shape[0]}x{shape[1]} grid, indices below {vocab}"
            )
        rows = np.arange(best.size)
        keep = dist[rows, ref] <= dist[rows, best] * np.float32(1 + tolerance)
        return np.where(keep, ref, best).astype(np.int64).reshape(shape)

    def decode_keyframe(self, indices: np.ndarray, grid: GridSpec, text: str = "", seed: int = 0) -> np.ndarray:
        """Index map -> RGB uint8 frame of (grid_h*ds) x (grid_w*ds).  ``text`` and ``seed`` are
        ignored: the lite decoder is deterministic."""
        idx = np.asarray(indices)
        if idx.ndim != 2 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"lite pack: an index map is a non-empty 2-D integer array, got {idx.dtype} {idx.shape}")
        vocab = self._variant_grid(grid).vocab_size
        if idx.min() < 0 or idx.max() >= vocab:
            raise ValueError(f"lite pack: index outside the vocabulary 0..{vocab - 1}")
        code, _ = self._get(grid, "codebook")
        zq = np.ascontiguousarray(code[idx.astype(np.int64)].transpose(2, 0, 1)[None])
        (y,) = self._get(grid, "decoder").run(None, {"latents": zq})
        y = np.clip(y[0].transpose(1, 2, 0) * 255.0 + 0.5, 0, 255)
        return y.astype(np.uint8)

    def _variant_grid(self, grid) -> GridSpec:
        self._variant(grid)
        name = grid if isinstance(grid, str) else grid.name
        return next(g for g in self.grids if g.name == name)

    # -- embeddings ----------------------------------------------------------------------

    def _resize(self, frames: np.ndarray) -> np.ndarray:
        """N x H x W x 3 uint8 -> N x 80 x 128 x 3 float32 in [0, 1] (area resize)."""
        n, h, w, _ = frames.shape
        ew, eh = EMBED_SIZE
        if h % eh == 0 and w % ew == 0 and (h // eh) * (w // ew) <= 256:
            # integer factors (512x320 -> 128x80): box sums in uint16, row blocks then columns
            fy, fx = h // eh, w // ew
            rows = np.ascontiguousarray(frames).reshape(n * eh, fy, w * 3)
            acc = rows[:, 0].astype(np.uint16)
            for k in range(1, fy):
                acc += rows[:, k]
            acc = acc.reshape(n * eh, ew, fx * 3)
            out = acc[:, :, 0:3].copy()
            for k in range(1, fx):
                out += acc[:, :, 3 * k : 3 * k + 3]
            return (out.astype(np.float32) * np.float32(1 / (255 * fy * fx))).reshape(n, eh, ew, 3)
        x = frames.astype(np.float32) * np.float32(1 / 255)
        mats = self._area.get((h, w))
        if mats is None:
            mats = self._area[(h, w)] = (_area_matrix(h, eh), _area_matrix(w, ew))
        ay, ax = mats
        x = np.einsum("oh,nhwc->nowc", ay, x, optimize=True)
        return np.einsum("pw,nowc->nopc", ax, x, optimize=True)

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """Frames (N x H x W x 3 uint8, any size) -> N x 640 float32, L2-normalised: the 1/16
        encoder's deepest features (128 channels) on the frame area-resized to 128x80, averaged
        over the whole frame and over each quadrant, concatenated (a few ms a frame on 2 cores)."""
        x = np.asarray(frames)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4:
            raise ValueError(f"lite pack: embed takes N x H x W x 3 uint8 frames, got {x.shape}")
        self._check_frame(x[0] if len(x) else np.zeros((1, 1, 3), np.uint8), None, "a frame")
        out = []
        for s in range(0, len(x), 16):
            small = self._resize(x[s : s + 16])
            _, f = self._latents(small, "1/16")
            ys = (0, f.shape[2] // 2, f.shape[2])
            xs = (0, f.shape[3] // 2, f.shape[3])
            parts = [f.mean((2, 3))] + [
                f[:, :, ys[i] : ys[i + 1], xs[j] : xs[j + 1]].mean((2, 3)) for i in range(2) for j in range(2)
            ]
            e = np.concatenate(parts, 1)
            out.append(e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12))
        if not out:
            return np.zeros((0, 5 * 128), np.float32)
        return np.concatenate(out).astype(np.float32)

    # -- clips ---------------------------------------------------------------------------

    def reconstruct_clip(
        self, first: np.ndarray, last: np.ndarray | None, clip_text: str, frame_count: int, seed: int
    ) -> Iterable[np.ndarray]:
        """DIS-flow interpolation from ``first`` towards ``last``, or ``first`` held when
        ``last`` is None (:mod:`.reconstruct`).  ``clip_text`` and ``seed`` are ignored: the
        lite reconstruction is deterministic."""
        if last is None:
            return predict_clip(first, frame_count)
        return interpolate_clip(first, last, frame_count)

    # -- motion --------------------------------------------------------------------------

    def motion_features(self, frames: np.ndarray) -> list[np.ndarray]:
        """Small grey copies (longer side at most 160 px) that know their scale (:mod:`.motion`)."""
        return _motion.motion_features(frames)

    def motion(self, before: Sequence[np.ndarray], after: Sequence[np.ndarray]) -> np.ndarray:
        """Mean DIS flow magnitude (preset fast) from ``before[i]`` to ``after[i]``, in frame
        pixels; mean absolute difference / 255 where a side is under 16 (:mod:`.motion`)."""
        dis = getattr(self._local, "dis", None)
        if dis is None:
            dis = self._local.dis = _motion._dis()
        return _motion.motion(before, after, dis)
