"""The R-D benchmark's distortion metrics (m3cvc_codec/metrics.py): PSNR on RGB and BT.601
luma, MS-SSIM (Wang et al. 2003) on luma, and the paper's LPIPS (on a random-weight AlexNet
saved to a temporary folder: nothing is downloaded) and CLIP-sim (on the tiny CLIP of
tools/make_tiny_models.py)."""

from __future__ import annotations

import math
from itertools import pairwise

import cv2  # a core dependency (opencv-python-headless): a missing one fails, never skips
import numpy as np
import pytest

from m3cvc_codec import metrics as M


def scene(seed: int = 2026) -> np.ndarray:
    """A deterministic 512x320 RGB frame with structure at several scales."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (20, 32, 3), dtype=np.uint8)
    img = cv2.resize(base, (512, 320), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    img += rng.normal(0, 6, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def noisy(img: np.ndarray, sigma: float, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def test_identical_frames():
    a = scene()
    assert M.psnr_rgb(a, a) == math.inf
    assert M.psnr_y(a, a) == math.inf
    assert M.ms_ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_psnr_known_value_and_luma_weights():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a.copy()
    b[..., 0] += 10  # red +10 everywhere: RGB MSE = 100/3, luma error = 2.99
    assert M.psnr_rgb(a, b) == pytest.approx(10 * math.log10(255**2 / (100 / 3)))
    assert M.psnr_y(a, b) == pytest.approx(10 * math.log10(255**2 / 2.99**2))
    assert M.luma(np.array([[[255, 255, 255]]], np.uint8))[0, 0] == pytest.approx(255.0)
    assert M.luma(np.array([[[0, 0, 255]]], np.uint8))[0, 0] == pytest.approx(0.114 * 255)


def test_luma_metrics_blind_to_luma_preserving_colour_change():
    a = np.full((200, 200, 3), 120, np.uint8).astype(np.float64)
    # shift R up and B down so that 0.299 dR + 0.114 dB = 0 -> luma unchanged
    b = a.copy()
    b[..., 0] += 11.4
    b[..., 2] -= 29.9
    assert M.psnr_y(a, b) == math.inf
    assert M.ms_ssim(a, b) == pytest.approx(1.0)
    assert M.psnr_rgb(a, b) < 30


def test_more_noise_lowers_everything_monotonically():
    a = scene()
    sigmas = [1, 3, 8, 20, 50]
    p, py, s = zip(*[(M.psnr_rgb(a, d), M.psnr_y(a, d), M.ms_ssim(a, d)) for d in (noisy(a, x) for x in sigmas)])
    assert all(x > y for x, y in pairwise(p))
    assert all(x > y for x, y in pairwise(py))
    assert all(x > y for x, y in pairwise(s))
    assert 0 < s[-1] < s[0] < 1


def test_more_blur_lowers_ms_ssim():
    a = scene()
    values = [M.ms_ssim(a, cv2.GaussianBlur(a, (k, k), 0)) for k in (3, 7, 15, 31)]
    assert all(x > y for x, y in pairwise(values))


def test_ms_ssim_matches_reference_implementation():
    # 0.9644119 is pytorch-msssim 1.0.0's ms_ssim(data_range=255, win_size=11, win_sigma=1.5,
    # K=(0.01, 0.03)) on the same BT.601 luma planes; it agrees to ~1e-6 on noise, JPEG and
    # blur of Kodak frames too (checked once by hand, it is not a test dependency).
    a = scene()
    assert M.ms_ssim(a, noisy(a, 15)) == pytest.approx(0.9644119, abs=1e-5)


def test_ms_ssim_symmetric_and_mostly_insensitive_to_small_brightness_shift():
    a = scene()
    b = noisy(a, 10)
    assert M.ms_ssim(a, b) == pytest.approx(M.ms_ssim(b, a), abs=1e-12)
    shifted = np.clip(a.astype(np.int16) + 5, 0, 255).astype(np.uint8)
    # a uniform +5 moves only the luminance term, which enters at the coarsest scale
    assert M.ms_ssim(a, shifted) > 0.999
    assert M.psnr_y(a, shifted) < 35


def test_ms_ssim_refuses_too_small_or_mismatched_frames():
    with pytest.raises(ValueError, match="needs at least"):
        M.ms_ssim(np.zeros((100, 200, 3), np.uint8), np.zeros((100, 200, 3), np.uint8))
    with pytest.raises(ValueError, match="differ in shape"):
        M.psnr_rgb(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))


# --------------------------------------------------------------------------- LPIPS


def _lpips_frames(n=3, h=64, w=96, seed=3):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, h // 8, w // 8, 3), dtype=np.uint8)
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in base])


@pytest.fixture(scope="module")
def lpips_weights(tmp_path_factory):
    """A folder with a random-weight AlexNet trunk under torchvision's file name and random
    non-negative LPIPS heads (the real heads are non-negative too): nothing downloaded."""
    torch = pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("lpips-weights")
    torch.manual_seed(0)
    trunk = {f"features.{k}": v for k, v in M.alexnet_features().state_dict().items()}
    trunk["classifier.1.weight"] = torch.zeros(4, 4)  # the real file has the classifier too: ignored
    torch.save(trunk, folder / M.LPIPS_BACKBONE_FILE)
    heads = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(M.LPIPS_CHANNELS)}
    torch.save(heads, folder / M.LPIPS_LINEAR_FILE)
    return folder


@pytest.fixture(scope="module")
def lpips_torch(lpips_weights):
    return M.Lpips(lpips_weights, backend="torch")


def test_lpips_identical_is_zero_and_grows_with_noise(lpips_torch):
    a = _lpips_frames()
    assert lpips_torch.backend == "torch"
    assert np.array_equal(lpips_torch(a, a), np.zeros(len(a)))
    values = [float(lpips_torch(a, noisy(a, s)).mean()) for s in (2, 8, 24, 64)]
    assert all(x < y for x, y in pairwise(values)), values
    assert values[0] > 0
    one = lpips_torch(a[0], noisy(a, 8)[0])  # a single frame is a batch of one
    assert one.shape == (1,) and one[0] == pytest.approx(lpips_torch(a, noisy(a, 8))[0], rel=1e-5)


def _reference_lpips(trunk: dict, heads: dict, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """LPIPS v0.1 written out step by step from the paper and lpips' forward, independently of
    metrics.py's module: [-1, 1], scaling layer, AlexNet convs from the state dict, unit norm
    over channels, squared difference, 1x1 head, spatial mean, sum over layers (numpy after the
    convolutions)."""
    import torch
    import torch.nn.functional as F

    def features(img):
        t = torch.from_numpy(img).permute(0, 3, 1, 2).double() / 127.5 - 1
        t = (t - torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)) / torch.tensor([0.458, 0.448, 0.450]).view(
            1, 3, 1, 1
        )
        out = []
        for index, stride, pad, pool in (
            (0, 4, 2, True),
            (3, 1, 2, True),
            (6, 1, 1, False),
            (8, 1, 1, False),
            (10, 1, 1, False),
        ):
            t = F.relu(
                F.conv2d(
                    t, trunk[f"features.{index}.weight"].double(), trunk[f"features.{index}.bias"].double(), stride, pad
                )
            )
            out.append(t.numpy())
            if pool:
                t = F.max_pool2d(t, 3, 2)
        return out

    total = np.zeros(len(x))
    for k, (f0, f1) in enumerate(zip(features(x), features(y))):
        f0 = f0 / (np.sqrt((f0**2).sum(axis=1, keepdims=True)) + 1e-10)
        f1 = f1 / (np.sqrt((f1**2).sum(axis=1, keepdims=True)) + 1e-10)
        w = heads[f"lin{k}.model.1.weight"].double().numpy().reshape(-1)
        total += np.einsum("nchw,c->nhw", (f0 - f1) ** 2, w).mean(axis=(1, 2))
    return total


def test_lpips_matches_reference_formulation(lpips_weights, lpips_torch):
    import torch

    trunk = torch.load(lpips_weights / M.LPIPS_BACKBONE_FILE, weights_only=True)
    heads = torch.load(lpips_weights / M.LPIPS_LINEAR_FILE, weights_only=True)
    a = _lpips_frames(seed=11)
    b = noisy(a, 20)
    expected = _reference_lpips(trunk, heads, a, b)
    assert lpips_torch(a, b) == pytest.approx(expected, rel=1e-4)


@pytest.mark.slow
def test_lpips_package_forward_agrees(lpips_weights, lpips_torch, monkeypatch):
    """The real ``lpips`` package's LPIPS class (scaling layer, normalisation, heads, averaging)
    against ours, with a stand-in torchvision whose alexnet().features is our plain-torch stack
    (torchvision does not import here) and a stand-in scipy.ndimage where scipy is missing (only
    lpips' trainer imports it)."""
    import importlib.util
    import sys
    import types

    if importlib.util.find_spec("lpips") is None:
        pytest.skip("the lpips package is not installed (pip install --no-deps lpips)")
    from torch import nn

    tv_models = types.ModuleType("torchvision.models")
    tv_models.alexnet = lambda pretrained=False, **_: types.SimpleNamespace(  # type: ignore[attr-defined]
        features=nn.Sequential(*M.alexnet_features(), nn.MaxPool2d(3, 2))
    )
    tv = types.ModuleType("torchvision")
    tv.models = tv_models  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.models", tv_models)
    if importlib.util.find_spec("scipy") is None:
        nd = types.ModuleType("scipy.ndimage")
        nd.zoom = None  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "scipy", types.ModuleType("scipy"))
        monkeypatch.setitem(sys.modules, "scipy.ndimage", nd)
    before = set(sys.modules)
    try:
        package = M.Lpips(lpips_weights, backend="auto")
        assert package.backend == "lpips"
        a = _lpips_frames(seed=5)
        b = noisy(a, 16)
        assert package(a, b) == pytest.approx(lpips_torch(a, b), rel=1e-5)
        assert np.array_equal(package(a, a), np.zeros(len(a)))
    finally:
        for name in set(sys.modules) - before:  # lpips imported against the stand-ins
            del sys.modules[name]


def test_lpips_backend_choice(lpips_weights, monkeypatch):
    from m3cvc_codec.models import ModelError

    monkeypatch.setattr(M, "_lpips_package_imports", lambda: False)
    with pytest.raises(ModelError, match="needs the lpips package and torchvision"):
        M.Lpips(lpips_weights, backend="lpips")
    assert M.Lpips(lpips_weights).backend == "torch"
    # auto: an lpips that imports but does not build (say, a torchvision without pretrained=) -> torch

    def broken(self, trunk):
        raise TypeError("alexnet() got an unexpected keyword argument 'pretrained'")

    monkeypatch.setattr(M, "_lpips_package_imports", lambda: True)
    monkeypatch.setattr(M.Lpips, "_build_package_model", broken)
    assert M.Lpips(lpips_weights).backend == "torch"
    with pytest.raises(ModelError, match="backend 'vgg'"):
        M.Lpips(lpips_weights, backend="vgg")


def test_lpips_missing_weights_is_one_clear_line(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from m3cvc_codec.models import ModelNotFoundError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(M.LPIPS_WEIGHTS_ENV, raising=False)
    with pytest.raises(ModelNotFoundError) as err:
        M.Lpips(tmp_path)
    text = str(err.value)
    assert "\n" not in text and M.LPIPS_BACKBONE_FILE in text and "download" in text and str(tmp_path) in text
    # the trunk present, the heads missing (and not coming from an installed lpips)
    import torch

    torch.save(
        {f"features.{k}": v for k, v in M.alexnet_features().state_dict().items()}, tmp_path / M.LPIPS_BACKBONE_FILE
    )
    monkeypatch.setattr(M, "_lpips_package_weights", lambda: None)
    with pytest.raises(ModelNotFoundError, match=r"alex\.pth.*pip install --no-deps lpips"):
        M.Lpips(tmp_path)


def test_lpips_weights_found_in_models_folder_and_env(lpips_weights, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import shutil

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    models = tmp_path / "models"
    (models / "torchvision").mkdir(parents=True)
    (models / "lpips").mkdir()
    shutil.copy(lpips_weights / M.LPIPS_BACKBONE_FILE, models / "torchvision")
    shutil.copy(lpips_weights / M.LPIPS_LINEAR_FILE, models / "lpips")
    monkeypatch.delenv(M.LPIPS_WEIGHTS_ENV, raising=False)
    assert M.lpips_weight_files(models_dir=models) == (
        models / "torchvision" / M.LPIPS_BACKBONE_FILE,
        models / "lpips" / M.LPIPS_LINEAR_FILE,
    )
    monkeypatch.setenv(M.LPIPS_WEIGHTS_ENV, str(lpips_weights))
    assert M.lpips_weight_files()[0] == lpips_weights / M.LPIPS_BACKBONE_FILE


def test_lpips_linear_heads_from_installed_package():
    import importlib.util

    if importlib.util.find_spec("lpips") is None:
        pytest.skip("the lpips package is not installed")
    path = M._lpips_package_weights()
    assert path is not None and path.parts[-3:] == ("weights", "v0.1", "alex.pth")


def test_lpips_rejects_a_file_of_the_wrong_network(lpips_weights, tmp_path):
    torch = pytest.importorskip("torch")
    from m3cvc_codec.models import ModelError

    torch.save({"features.0.weight": torch.zeros(8, 3, 3, 3)}, tmp_path / M.LPIPS_BACKBONE_FILE)
    (tmp_path / M.LPIPS_LINEAR_FILE).write_bytes((lpips_weights / M.LPIPS_LINEAR_FILE).read_bytes())
    with pytest.raises(ModelError, match=r"features\.0\.weight has shape \(8, 3, 3, 3\)"):
        M.Lpips(tmp_path)


# --------------------------------------------------------------------------- CLIP-sim


@pytest.fixture(scope="module")
def clip_sim(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from conftest import _load_tool

    from m3cvc_codec.packs.config import RuntimeOptions

    root = tmp_path_factory.mktemp("tiny-clip-metrics")
    _load_tool("make_tiny_models").make_tiny_models(root, ["clip"])
    return M.ClipSimilarity(options=RuntimeOptions(models_dir=str(root)), batch=2)


@pytest.mark.slow
def test_clip_sim_is_the_cosine_of_clip_features(clip_sim):
    a = _lpips_frames(n=3, h=64, w=96, seed=21)
    b = np.ascontiguousarray(a[::-1])
    same = clip_sim(a, a)
    assert same == pytest.approx(np.ones(3), abs=1e-6)
    values = clip_sim(a, b)
    fa, fb = clip_sim.embedder.embed(a).astype(np.float64), clip_sim.embedder.embed(b).astype(np.float64)
    expected = [x @ y / np.linalg.norm(x) / np.linalg.norm(y) for x, y in zip(fa, fb)]
    assert values == pytest.approx(expected, abs=1e-9)
    assert values[0] < 0.999999 and values[1] == pytest.approx(1.0, abs=1e-6)  # the middle frame is itself
    with pytest.raises(ValueError, match="one shape"):
        clip_sim(a, b[:2])
