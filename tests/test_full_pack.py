"""The full pack (m3cvc_codec.packs.full): registration, configuration, weights hash, options,
one-line errors, and m3v-encode -> m3v-info --verify -> m3v-decode end to end on the tiny
random-weight models of tools/make_tiny_models.py (SD 1.5 keyframe codec, LTX-Video clips)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, make_clips, make_header

import m3cvc_format as m
from m3cvc_codec import cli_decode, cli_encode, cli_play
from m3cvc_codec.models.hub import MissingExtraError, ModelError
from m3cvc_codec.packs import PackConfig, PackError, RuntimeOptions, available_packs, load_pack
from m3cvc_codec.packs.full import TRAINED_COMPONENTS, FullPack
from m3cvc_codec.scorers import PackScorer
from m3cvc_format import cli_info

SAMPLE = ROOT / "docs" / "sample" / "sample.webm"
KEYFRAME_TINY = "m3cvc/keyframe-tiny"  # tools/tiny_models/sd.py


def tiny_config(folder: Path, backend: str = "ltx") -> Path:
    """A pack config for the tiny models: the default one with our trained weights pointing at
    the tiny keyframe folder (found under --models), 2 diffusion steps everywhere, and the clip
    backend ``backend`` (sparsectrl: AnimateDiff on the tiny SD 1.5 parts, 8 frames at most)."""
    data = FullPack.default_config().to_dict()
    comps = data["components"]
    comps["keyframe_tokenizer_1/16"] = {"source": f"{KEYFRAME_TINY}/tokenizer_1-16"}
    comps["keyframe_tokenizer_1/8"] = {"source": f"{KEYFRAME_TINY}/tokenizer_1-8"}
    comps["keyframe_unet"] = {"source": f"{KEYFRAME_TINY}/unet"}
    data["settings"]["keyframe"]["steps"] = 2
    data["settings"]["clips"].update(steps=2, backend=backend)
    if backend == "sparsectrl":
        data["settings"]["clips"]["max_frames"] = 8
        for names in data["grids"].values():
            names.remove("video")
            names += ["motion_adapter", "sparse_controlnet"]
    path = folder / f"tiny-{backend}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def full_stream(path: Path, **header) -> Path:
    fields = dict(width=64, height=64, grid_h=4, grid_w=4, vocab_size=256, pack_id="full")
    fields.update(header)
    h = make_header(**fields)
    with open(path, "wb") as f:
        m.write(f, h, make_clips(h, 2))
    return path


def run(main, argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


# -- registration, configuration -----------------------------------------------------------


def test_import_loads_no_torch():
    code = "import sys, m3cvc_codec.packs.full; bad = {'torch', 'diffusers', 'transformers'} & set(sys.modules); assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_registered_as_pack_and_frame_decoder():
    assert "full" in available_packs()
    assert "full" in m.available_frame_decoders()
    pack = load_pack("full", cache=None)
    assert isinstance(pack, FullPack)
    assert [(g.name, g.downsample, g.vocab_size) for g in pack.grids] == [("1/16", 16, 256), ("1/8", 8, 256)]


def test_default_config_names_every_model():
    config = FullPack.default_config()
    assert config.pack_id == "full"
    sd = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    for part in ("vae", "unet", "text_encoder", "tokenizer", "scheduler"):
        assert (config.components[part].source, config.components[part].subfolder) == (sd, part)
    assert config.components["video"].source == "Lightricks/LTX-Video-0.9.5"
    assert set(TRAINED_COMPONENTS) <= set(config.components)
    assert "keyframe_tokenizer_1/16" in config.grids["1/16"] and "keyframe_tokenizer_1/8" not in config.grids["1/16"]
    assert config.settings["keyframe"]["steps"] == 25 and config.settings["clips"]["backend"] == "ltx"


def test_weights_hash_covers_the_grids_components(tmp_path):
    pack = FullPack()
    a, b = (pack.weights_hash(g) for g in pack.grids)
    assert len(a) == 32 and a != b
    data = FullPack.default_config().to_dict()
    data["components"]["vae"]["revision"] = "0123abc"
    other = FullPack(PackConfig.from_dict(data))
    assert other.weights_hash(pack.grids[0]) != a
    data = FullPack.default_config().to_dict()
    data["components"]["clip"]["source"] = "someone/else"  # selection only: not in the hash
    assert FullPack(PackConfig.from_dict(data)).weights_hash(pack.grids[0]) == a


def test_selection_defaults_reach_the_pack_scorer():
    assert dict(PackScorer(FullPack()).default_params) == {"lambda1": 3.0, "lambda2": 0.015, "threshold": 0.35}
    assert PackScorer(load_pack("lite")).default_params["lambda1"] == 10.0  # the lite pack keeps its own


@pytest.mark.parametrize(
    ("change", "options", "message"),
    [
        ({}, RuntimeOptions(dtype="float16"), "float16 needs a GPU"),
        ({"clips": {"backend": "sora"}}, None, "clip backend 'sora'"),
        ({"clips": "ltx"}, None, "settings.clips must be an object"),
        ({}, RuntimeOptions(attention_slicing="auto"), "attention slicing is not supported by the ltx clip backend"),
    ],
)
def test_refused_options(change, options, message):
    data = FullPack.default_config().to_dict()
    data["settings"].update(change)
    with pytest.raises(PackError, match=message):
        FullPack(PackConfig.from_dict(data), options)


def test_runtime_options_from_the_command_line(tmp_path, capsys):
    """--attention-slicing and --cpu-offload reach the full pack: slicing with the LTX backend
    is refused in one line before anything loads (m3v-encode and m3v-decode), the SparseCtrl
    backend takes it; CPU offload on the CPU device is accepted (nothing to move)."""
    ltx, sparse = tiny_config(tmp_path), tiny_config(tmp_path, "sparsectrl")
    argv = [SAMPLE, "-o", tmp_path / "a.m3v", "--pack", "full", "--pack-config", ltx, "-q"]
    code, _, err = run(cli_encode.main, [*argv, "--attention-slicing", "auto"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "attention slicing is not supported by the ltx clip backend" in err
    stream = full_stream(tmp_path / "s.m3v")
    code, _, err = run(cli_decode.main, [stream, "-o", tmp_path / "o.y4m", "--attention-slicing", "max"], capsys)
    assert code == 1 and "not supported by the ltx clip backend" in err and len(err.strip().splitlines()) == 1
    pack = FullPack(sparse, RuntimeOptions(attention_slicing=2, cpu_offload=True))
    assert pack.options.attention_slicing == 2 and pack.options.cpu_offload


def test_grid_list_must_cover_the_clip_model():
    data = FullPack.default_config().to_dict()
    data["settings"]["clips"]["backend"] = "sparsectrl"
    with pytest.raises(PackError, match="grid '1/16' does not list 'motion_adapter'"):
        FullPack(PackConfig.from_dict(data))


def test_unknown_grid_in_config():
    data = FullPack.default_config().to_dict()
    data["grids"]["1/4"] = ["vae"]
    with pytest.raises(PackError, match="grid '1/4'"):
        FullPack(PackConfig.from_dict(data))


# -- one-line errors ---------------------------------------------------------------------


def test_missing_trained_weights_is_one_line():
    pack = FullPack()
    frame = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(PackError, match=r"trained weights 'keyframe_tokenizer_1/16'.*tools/train_full.py") as info:
        pack.encode_keyframe(frame, pack.grids[0])
    assert "\n" not in str(info.value)


def test_missing_trained_weights_through_the_cli(tmp_path, capsys):
    """m3v-decode of a full-pack stream with the default config (no trained weights)."""
    stream = full_stream(tmp_path / "s.m3v")
    code, _, err = run(cli_decode.main, [stream, "-o", tmp_path / "out.y4m", "-q"], capsys)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "tools/train_full.py" in err


def test_missing_model_is_one_line(tmp_path):
    data = FullPack.default_config().to_dict()
    data["components"]["clip"]["source"] = "nobody/no-clip"
    pack = FullPack(PackConfig.from_dict(data), RuntimeOptions(models_dir=str(tmp_path)))
    with pytest.raises(ModelError, match="'nobody/no-clip' is not in the models folder") as info:
        pack.embed(np.zeros((1, 32, 32, 3), np.uint8))
    assert "\n" not in str(info.value)


def test_missing_models_through_the_cli(tmp_path, capsys):
    """m3v-encode --pack full with an empty models folder: one line naming the first model
    needed (CLIP, for keyframe selection) and how to get it."""
    empty = tmp_path / "models"
    empty.mkdir()
    argv = [SAMPLE, "-o", tmp_path / "a.m3v", "--pack", "full", "--pack-config", tiny_config(tmp_path)]
    code, _, err = run(cli_encode.main, [*argv, "--models", empty, "--size", "64x64", "-q"], capsys)
    last = err.strip().splitlines()[-1]  # before it, at most the flow backend's one logged line
    assert code == 1 and len(err.strip().splitlines()) <= 2
    assert "'openai/clip-vit-base-patch32' is not in the models folder" in last and "hf download" in last


def test_missing_extra(monkeypatch, tmp_path, capsys):
    """Without the full extra the pack (and a full-pack stream) gives one line naming it."""
    import importlib.util

    import m3cvc_codec.packs.full as full
    from m3cvc_codec.packs import DEFAULT_CACHE

    DEFAULT_CACHE.clear()  # a pack built by an earlier test would not be built again
    real = importlib.util.find_spec
    monkeypatch.setattr(full.importlib.util, "find_spec", lambda n, *a: None if n == "diffusers" else real(n, *a))
    with pytest.raises(MissingExtraError, match=r"needs diffusers \(the full extra\)"):
        FullPack()
    stream = full_stream(tmp_path / "s.m3v")
    code, _, err = run(cli_decode.main, [stream, "-o", tmp_path / "out.y4m", "-q"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "m3cvc[full]" in err


def _without_full_pack(monkeypatch):
    """This process as an install without the full pack: neither its ``m3cvc.packs`` nor its
    ``m3cvc.frame_decoders`` entry point (the codec's "*" decoder stays, as in an install of the
    codec without this pack)."""
    import m3cvc_codec.packs as packs
    from m3cvc_format import framedecoders

    real_packs, real_decoders = packs.entry_points, framedecoders._entry_points
    monkeypatch.setattr(packs, "entry_points", lambda **kw: [e for e in real_packs(**kw) if e.name != "full"])
    monkeypatch.setattr(framedecoders, "_entry_points", lambda: [e for e in real_decoders() if e.name != "full"])
    packs.DEFAULT_CACHE.clear()


def test_stream_of_an_uninstalled_full_pack(monkeypatch, tmp_path, capsys):
    """A full-pack stream opened where the full pack is not installed: one line naming the pack,
    from m3v-decode, m3v-play and the PyAV facade; m3v-info still reads it."""
    stream = full_stream(tmp_path / "s.m3v")
    _without_full_pack(monkeypatch)
    assert "full" not in available_packs() and "full" not in m.available_frame_decoders()
    for main, argv in (
        (cli_decode.main, [stream, "-o", tmp_path / "o.y4m", "-q"]),
        (cli_play.main, [stream, "--headless"]),
    ):
        code, _, err = run(main, argv, capsys)
        assert code == 1 and len(err.strip().splitlines()) == 1, err
        assert "pack 'full' is not installed" in err
    with m.open(str(stream)) as container, pytest.raises(m.DecoderNotFoundError) as info:
        next(iter(container.decode(video=0)))
    assert "\n" not in str(info.value) and "pack 'full' is not installed" in str(info.value)
    code, text, _ = run(cli_info.main, [stream], capsys)
    assert code == 0 and "full" in text


def test_missing_video_model_when_decoding(tiny_models, tmp_path, capsys):
    """A models folder without the clip model: m3v-decode and m3v-play stop with one line naming
    it and how to get it (the keyframe models are there)."""
    models = tmp_path / "models"
    models.mkdir()
    for org in tiny_models.iterdir():
        if org.is_dir() and org.name != "Lightricks":
            (models / org.name).symlink_to(org, target_is_directory=True)
    config = tiny_config(tmp_path)
    stream = full_stream(
        tmp_path / "s.m3v", pack_hash=FullPack(PackConfig.from_file(config)).weights_hash(FullPack.grids[0])
    )
    common = ["--pack-config", config, "--models", models]
    for main, argv in (
        (cli_decode.main, [stream, "-o", tmp_path / "o.y4m", "-q"]),
        (cli_play.main, [stream, "--headless"]),
    ):
        code, _, err = run(main, [*argv, *common], capsys)
        # one line: no loading bars of transformers or diffusers either (models.hub.quiet_model_loading)
        lines = err.replace("\r", "\n").strip().splitlines()
        assert code == 1 and len(lines) == 1, err
        assert "'Lightricks/LTX-Video-0.9.5' is not in the models folder" in err and "hf download" in err


def test_decoder_defaults_from_the_environment(tmp_path, monkeypatch):
    """M3CVC_PACK_CONFIG applies to streams of its own pack only, and M3CVC_DEVICE and
    M3CVC_DTYPE with it; M3CVC_MODELS fills any models folder not given; arguments win."""
    from m3cvc_codec.clip_decoder import environment_defaults

    config = tiny_config(tmp_path)
    assert environment_defaults("full", None, None) == (None, None)
    monkeypatch.setenv("M3CVC_PACK_CONFIG", str(config))
    monkeypatch.setenv("M3CVC_MODELS", str(tmp_path))
    monkeypatch.setenv("M3CVC_DTYPE", "bfloat16")
    found, options = environment_defaults("full", None, None)
    assert found == PackConfig.from_file(config)
    assert options == RuntimeOptions(models_dir=str(tmp_path), dtype="bfloat16")
    # a full config (and its dtype) is not for lite streams; the models folder is
    assert environment_defaults("lite", None, None) == (None, RuntimeOptions(models_dir=str(tmp_path)))
    given = RuntimeOptions(device="cpu", models_dir="mine")
    assert environment_defaults("full", None, given)[1] == RuntimeOptions(models_dir="mine", dtype="bfloat16")
    assert environment_defaults("full", "other.json", RuntimeOptions()) == (
        "other.json",
        RuntimeOptions(models_dir=str(tmp_path)),
    )
    # CPU offload and attention slicing too, with the config; given options keep their offload
    monkeypatch.setenv("M3CVC_CPU_OFFLOAD", "yes")
    monkeypatch.setenv("M3CVC_ATTENTION_SLICING", "max")
    found, options = environment_defaults("full", None, None)
    assert options == RuntimeOptions(
        models_dir=str(tmp_path), dtype="bfloat16", cpu_offload=True, attention_slicing="max"
    )
    assert environment_defaults("lite", None, None)[1] == RuntimeOptions(models_dir=str(tmp_path))
    assert environment_defaults("full", None, RuntimeOptions(attention_slicing=4))[1] == RuntimeOptions(
        models_dir=str(tmp_path), dtype="bfloat16", attention_slicing=4
    )
    monkeypatch.setenv("M3CVC_CPU_OFFLOAD", "maybe")
    with pytest.raises(PackError, match="M3CVC_CPU_OFFLOAD='maybe'"):
        environment_defaults("full", None, None)
    monkeypatch.setenv("M3CVC_CPU_OFFLOAD", "0")
    monkeypatch.setenv("M3CVC_ATTENTION_SLICING", "half")
    with pytest.raises(PackError, match="M3CVC_ATTENTION_SLICING"):
        environment_defaults("full", None, None)
    monkeypatch.setenv("M3CVC_PACK_CONFIG", str(tmp_path / "missing.json"))
    with pytest.raises(PackError):
        environment_defaults("full", None, None)


def test_stream_of_another_pack_config(tmp_path, tiny_models):
    """The weights hash in the header is checked: a stream coded with other weights is refused."""
    stream = full_stream(tmp_path / "s.m3v", pack_hash=bytes(range(32)))
    with m.Reader(stream) as reader, pytest.raises(PackError, match="decoding would give wrong frames"):
        from m3cvc_codec.clip_decoder import ClipDecoder

        ClipDecoder(reader.header, pack_config=tiny_config(tmp_path), options=RuntimeOptions(models_dir=tiny_models))


# -- end to end on the tiny models ---------------------------------------------------------


def _frames(folder: Path) -> np.ndarray:
    import cv2

    files = sorted(folder.glob("*.png"))
    return np.stack([cv2.imread(str(f))[:, :, ::-1] for f in files])


@pytest.mark.parametrize("backend", ["ltx", "sparsectrl"])
def test_encode_verify_decode_end_to_end(tiny_models, tmp_path, capsys, backend):
    """m3v-encode --pack full --pack-config tiny.json --models DIR -> m3v-info --verify ->
    m3v-decode on a short real clip: the frame count and size the stream says, and (LTX) the
    same bytes and frames every time (same input, config, seed, device), and the same frames
    through the PyAV facade; m3v-play plays it."""
    config = tiny_config(tmp_path, backend)
    common = ["--pack", "full", "--pack-config", config, "--models", tiny_models]
    encode = [SAMPLE, *common, "--size", "64x64", "--fps", "2", "--max-clip", "6", "-q"]
    first, again = tmp_path / "a.m3v", tmp_path / "b.m3v"
    assert run(cli_encode.main, [*encode, "-o", first], capsys)[0] == 0
    if backend == "ltx":
        assert run(cli_encode.main, [*encode, "-o", again], capsys)[0] == 0
        assert first.read_bytes() == again.read_bytes()

    code, text, _ = run(cli_info.main, ["--verify", first], capsys)
    assert code == 0 and "verify      ok" in text, text
    with m.Reader(first) as reader:
        header, total, clips = reader.header, reader.frame_count, reader.clip_count
    assert header.pack_id == "full" and (header.grid_h, header.grid_w) == (4, 4) and header.vocab_size == 256
    assert header.pack_hash == FullPack(PackConfig.from_file(config)).weights_hash(FullPack.grids[0])
    assert clips >= 2

    outs = []
    for name in ("x", "y") if backend == "ltx" else ("x",):
        out = tmp_path / name
        assert run(cli_decode.main, [first, "-o", out, *common, "-q"], capsys)[0] == 0
        outs.append(_frames(out))
    assert outs[0].shape == (total, 64, 64, 3)
    if backend != "ltx":
        return
    assert np.array_equal(outs[0], outs[1])
    # the PyAV facade and the player decode the same stream through the same pack
    from m3cvc_codec.clip_decoder import ClipDecoder

    decoder = ClipDecoder(header, pack_config=config, options=RuntimeOptions(models_dir=str(tiny_models)))
    with m.open(str(first), frame_decoder=decoder) as container:
        facade = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert np.array_equal(facade, outs[0])
    code, text, err = run(cli_play.main, [first, "--headless", "--speed", "1000", *common], capsys)
    assert code == 0, err


@pytest.mark.slow
def test_facade_player_and_decoder_report_progress(tiny_models, tmp_path, monkeypatch, capsys):
    """A full-pack stream decodes through the PyAV facade as a user calls it (the pack config and
    models from the environment, no frame decoder given), through the player's headless path and
    through m3cvc_codec.decode, each showing every diffusion step of each clip's keyframe and
    frames; quiet where stderr is no terminal, unless M3CVC_PROGRESS=1 asks."""
    import re

    from m3cvc_codec import decode
    from m3cvc_codec.progress import Step

    config = tiny_config(tmp_path)
    pack_hash = FullPack(PackConfig.from_file(config)).weights_hash(FullPack.grids[0])
    stream = full_stream(tmp_path / "s.m3v", pack_hash=pack_hash)
    with m.Reader(stream) as reader:
        header, total, clips = reader.header, reader.frame_count, set(range(reader.clip_count))
    monkeypatch.setenv("M3CVC_PACK_CONFIG", str(config))
    monkeypatch.setenv("M3CVC_MODELS", str(tiny_models))

    def steps(err: str, stage: str) -> dict[int, list[tuple[int, int]]]:
        found: dict[int, list[tuple[int, int]]] = {}
        for k, a, b in re.findall(rf"clip (\d+) {stage}: step (\d+)/(\d+)", err):
            found.setdefault(int(k), []).append((int(a), int(b)))
        return found

    def check(err: str) -> None:
        # every clip's keyframe: its 2 denoising steps; a clip whose frames the video model
        # makes (more than its keyframe, or interpolated towards the next one): its steps
        assert steps(err, "keyframe") == {k: [(1, 2), (2, 2)] for k in clips}, err
        made = steps(err, "clip")
        assert made and set(made) <= clips
        for run_steps in made.values():
            assert run_steps == [(i + 1, run_steps[0][1]) for i in range(len(run_steps))]

    monkeypatch.setenv("M3CVC_PROGRESS", "1")
    with m.open(str(stream)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert frames.shape == (total, 64, 64, 3)
    check(capsys.readouterr().err)
    monkeypatch.setenv("M3CVC_PROGRESS", "0")
    with m.open(str(stream)) as container:
        quiet = next(iter(container.decode(video=0))).to_ndarray(format="rgb24")
    assert np.array_equal(quiet, frames[0])  # progress changes nothing in the frames
    assert "step" not in capsys.readouterr().err
    monkeypatch.setenv("M3CVC_PROGRESS", "1")

    code, text, err = run(cli_play.main, [stream, "--headless", "--speed", "1000"], capsys)
    played = re.search(r"(\d+) frames shown, (\d+) dropped", text)
    assert code == 0 and played is not None and sum(map(int, played.groups())) == total, text + err
    check(err)

    monkeypatch.delenv("M3CVC_PROGRESS")
    events: list[Step] = []
    from m3cvc_codec.clip_decoder import ClipDecoder

    with m.open(str(stream), frame_decoder=ClipDecoder(header, progress=events.append)) as container:
        next(iter(container.decode(video=0)))
    assert [(e.stage, e.clip, e.step, e.steps) for e in events][:2] == [("keyframe", 0, 1, 2), ("keyframe", 0, 2, 2)]

    report = decode(stream, tmp_path / "out", progress=True)  # a tqdm bar, the steps as its postfix
    assert report.frames == total
    assert "clip 0 keyframe: step 1/2" in capsys.readouterr().err


def test_latency_bench_full_stages(tiny_models, tmp_path, capsys):
    """tools/bench/latency.py's keyframe and clips stages on the tiny models: one row per stage,
    with its time and peak memory."""
    from conftest import _load_tool

    bench = _load_tool("bench/latency")
    out = tmp_path / "rows.json"
    argv = ["--models", tiny_models, "--pack-config", tiny_config(tmp_path), "--stages", "keyframe,clips"]
    argv += ["--video", SAMPLE, "--size", "64x64", "--frames", "4", "--clip-frames", "3", "--no-doc", "--json", out]
    assert bench.main([str(a) for a in argv]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["stage"].split(" (")[0] for r in rows] == ["keyframe encode", "keyframe decode", "clip reconstruction"]
    assert all(r["ms"] > 0 and r["peak_mib"] > 0 for r in rows)
    assert "| keyframe decode (2 steps) |" in capsys.readouterr().out


def test_sparsectrl_shares_the_keyframe_codecs_sd_parts(tiny_models, tmp_path):
    """The SparseCtrl pipeline runs on the keyframe codec's own VAE, text encoder and tokenizer
    (one copy of each in memory), except with CPU offload, whose hooks move models around."""
    config = PackConfig.from_file(tiny_config(tmp_path, "sparsectrl"))
    pack = FullPack(config, RuntimeOptions(models_dir=str(tiny_models)))
    pipe, codec = pack.clip_backend().pipe, pack.keyframe_codec()
    assert pipe.vae is codec.vae and pipe.text_encoder is codec.text_encoder
    assert pipe.tokenizer is codec.text_tokenizer
    offloaded = FullPack(config, RuntimeOptions(models_dir=str(tiny_models), cpu_offload=True))
    assert offloaded.clip_backend().pipe.vae is not offloaded.keyframe_codec().vae


def test_keyframe_codec_through_the_pack(tiny_models, tmp_path):
    """encode/decode through FullPack on the tiny models: shapes, determinism, index reuse."""
    pack = FullPack(PackConfig.from_file(tiny_config(tmp_path)), RuntimeOptions(models_dir=str(tiny_models)))
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    grid = pack.grid("1/16")
    indices = pack.encode_keyframe(frame, grid)
    assert indices.shape == (4, 6) and indices.dtype == np.int64
    assert np.array_equal(pack.encode_keyframe_near(frame, grid, indices, 0.0), indices)
    other = (indices + 1) % 256
    assert np.array_equal(pack.encode_keyframe_near(frame, grid, other, 1e9), other)  # any cost: reuse all
    kept = pack.encode_keyframe_near(frame, grid, other, 0.0)
    assert np.array_equal(kept, indices) or (kept != indices).sum() < indices.size // 4  # only exact ties kept
    a = pack.decode_keyframe(indices, grid, "a red house", 7)
    assert a.shape == (64, 96, 3) and a.dtype == np.uint8
    assert np.array_equal(a, pack.decode_keyframe(indices, grid, "a red house", 7))
    with pytest.raises(ValueError, match="multiple of the grid's downsample"):
        pack.encode_keyframe(frame[:60], grid)
    with pytest.raises(ValueError, match="vocabulary"):
        pack.decode_keyframe(indices + 256, grid, "", 0)
    clip = list(pack.reconstruct_clip(a, a, "the camera pans", 3, 5))
    assert len(clip) == 3 and all(f.shape == a.shape and f.dtype == np.uint8 for f in clip)
    predicted = list(pack.reconstruct_clip(a, None, "the camera pans", 2, 5))
    assert len(predicted) == 2
