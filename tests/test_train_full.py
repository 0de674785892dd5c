"""tools/train_full.py and m3cvc_codec.packs.full.training on tiny models: one step of each
stage, the pack config it writes (loaded and used by the keyframe codec), LoRA, checkpoints and
an interrupted run resumed to the same weights."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from m3cvc_codec.packs.config import PackConfig, RuntimeOptions

pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


def _tool(rel: str, name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / rel)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TRAIN = _tool("train_full.py", "m3cvc_train_full_test")
SD = _tool("tiny_models/sd.py", "m3cvc_tiny_sd_train_test")

TINY = ["--size", "64x64", "--tokenizer-channels", "16", "--code-dim", "8", "--blocks", "1", "--batch", "2"]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    import cv2

    folder = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    lines = []
    for i in range(3):
        yy, xx = np.mgrid[0:64, 0:80]
        img = np.stack([xx * 3 + i * 40, yy * 4, (xx + yy) * 2], -1) % 256 + rng.integers(0, 30, (64, 80, 3))
        cv2.imwrite(str(folder / f"{i}.png"), np.clip(img, 0, 255).astype(np.uint8))
        lines.append(json.dumps({"image": f"{i}.png", "text": f"frame {i}: a cat on a sofa"}))
    (folder / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_one_step_of_each_stage_writes_a_usable_pack_config(tiny_models, pairs, tmp_path, capsys):
    from m3cvc_codec.packs.full.keyframe import KeyframeCodec, folder_digest

    out = tmp_path / "run"
    args = ["--pairs", str(pairs), "--models", str(tiny_models), "--out", str(out), "--grids", "1/16"]
    assert TRAIN.main([*args, "--steps1", "1", "--steps2", "1", "--no-progress", *TINY]) == 0
    for folder in ("keyframe_tokenizer_1-16", "keyframe_unet_1-16"):
        assert (out / folder / "diffusion_pytorch_model.safetensors").is_file()
    assert (out / "checkpoints" / "stage1_1-16" / "step_1.safetensors").is_file()
    assert (out / "checkpoints" / "stage2_1-16" / "step_1.safetensors").is_file()
    rows = list(csv.DictReader((out / "loss.csv").open()))
    assert [(r["stage"], r["grid"], r["step"]) for r in rows] == [("1", "1/16", "1"), ("2", "1/16", "1")]
    assert all(np.isfinite(float(r["loss"])) for r in rows)

    config = PackConfig.from_file(out / "pack-config.json")
    assert config.pack_id == "full"
    comp = config.components["keyframe_tokenizer_1/16"]
    assert comp.source == "./keyframe_tokenizer_1-16" and comp.sha256 == folder_digest(out / "keyframe_tokenizer_1-16")
    assert {"keyframe_tokenizer_1/16", "keyframe_unet_1/16", "vae", "unet"} <= set(config.grids["1/16"])
    assert config.components["vae"].subfolder == "vae"
    # the coding size is the stream's (m3v-encode --size), not a config setting; the training
    # size is recorded beside the trained weights
    assert "size" not in config.settings["keyframe"]
    for folder in ("keyframe_tokenizer_1-16", "keyframe_unet_1-16"):
        assert json.loads((out / folder / "train_state.json").read_text())["size"] == [64, 64]
    codec = KeyframeCodec.from_config(config, RuntimeOptions(models_dir=str(tiny_models)))
    data = config.to_dict()
    data["settings"]["keyframe"]["steps"] = 2
    codec = KeyframeCodec.from_config(PackConfig.from_dict(data, root=out), RuntimeOptions(models_dir=str(tiny_models)))
    frame = np.full((64, 64, 3), 90, np.uint8)
    idx = codec.encode(frame, "1/16")
    assert idx.shape == (4, 4)
    assert codec.decode(idx, "1/16", "a cat", seed=1).shape == (64, 64, 3)

    # rerun with --resume: both stages are done, nothing is trained again
    capsys.readouterr()
    assert TRAIN.main([*args, "--steps1", "1", "--steps2", "1", "--no-progress", "--resume", *TINY]) == 0
    assert capsys.readouterr().out.count("already trained") == 2
    # without --resume, existing checkpoints are not overwritten
    with pytest.raises(SystemExit, match="--resume"):
        TRAIN.main([*args, "--steps1", "2", "--steps2", "1", "--no-progress", *TINY])


def test_stage_loops_resume_to_the_same_weights(tiny_models, tmp_path):
    from m3cvc_codec.packs.full.training import Stage1Config, Stage2Config, run_stage1, run_stage2

    torch.manual_seed(0)
    latents = torch.randn(3, 4, 8, 8)
    cfg1 = Stage1Config(grid="1/16", steps=2, batch=2, channels=16, code_dim=8, blocks=1, checkpoint_every=1)
    full = run_stage1(latents, cfg1, tmp_path / "a1", resume=False)
    # an interrupted run: its checkpoint of step 2 is lost, then it resumes from step 1's
    run_stage1(latents, cfg1, tmp_path / "b1", resume=False)
    (tmp_path / "b1" / "step_2.safetensors").unlink()
    rows: list[dict] = []
    resumed = run_stage1(latents, cfg1, tmp_path / "b1", resume=True, log=rows.append)
    assert [r["step"] for r in rows] == [2]
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert full.codebook.shape == (256, 8)

    states = torch.randn(1, 77, SD.TEXT_WIDTH)

    def encode_text(prompts):
        return states.expand(len(prompts), -1, -1) * torch.tensor([0.0 if p == "" else 1.0 for p in prompts]).view(
            -1, 1, 1
        )

    abar = torch.linspace(0.99, 0.01, 1000)
    texts = ["a", "b", "c"]
    cfg2 = Stage2Config(grid="1/16", steps=2, batch=2, checkpoint_every=1, text_drop=0.5)

    def unet():
        torch.manual_seed(1)
        return SD.tiny_unet()

    a = run_stage2(unet(), full, latents, texts, encode_text, abar, cfg2, tmp_path / "a2", resume=False)
    run_stage2(unet(), full, latents, texts, encode_text, abar, cfg2, tmp_path / "b2", resume=False)
    (tmp_path / "b2" / "step_2.safetensors").unlink()
    b = run_stage2(unet(), full, latents, texts, encode_text, abar, cfg2, tmp_path / "b2", resume=True)
    assert a.config.in_channels == 8
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    base = unet()
    assert not torch.equal(a.conv_in.weight[:, :4], base.conv_in.weight)  # trained

    # LoRA: adapters trained, then fused into a plain UNet
    cfg_lora = Stage2Config(grid="1/16", steps=1, batch=2, mode="lora", lora_rank=4)
    lora = run_stage2(unet(), full, latents, texts, encode_text, abar, cfg_lora, tmp_path / "c2", resume=False)
    assert not any("lora" in n for n in lora.state_dict())
    assert lora.config.in_channels == 8
    lora.save_pretrained(tmp_path / "lora-unet")
    from diffusers import UNet2DConditionModel

    assert UNet2DConditionModel.from_pretrained(tmp_path / "lora-unet").config.in_channels == 8


def test_pairs_from_videos_with_sidecars(tiny_models, tmp_path):
    """Step 0: keyframes by the semantic criterion (tiny CLIP), texts from a sidecar per video."""
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from fake_pack import write_video

    frames = [np.full((64, 64, 3), 40 if i < 6 else 200, np.uint8) for i in range(12)]
    video = Path(write_video(tmp_path / "v.mp4", frames, fps=8))
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "v.json").write_text(
        json.dumps({"ranges": [{"start": 0, "end": 100, "keyframe": "a dark room", "clip": "still"}]})
    )
    args = TRAIN.build_parser().parse_args(
        ["--videos", str(video), "--texts-dir", str(texts), "--out", str(tmp_path / "o"), "--size", "64x64"]
    )
    args.models = str(tiny_models)
    out = TRAIN.make_pairs(args, RuntimeOptions(models_dir=str(tiny_models)), tmp_path / "o" / "pairs")
    pairs = TRAIN.read_pairs(out)
    assert pairs and pairs[0][0].name == "v_00000.png" and pairs[0][1] == "a dark room"
    assert all(p.is_file() for p, _ in pairs)
