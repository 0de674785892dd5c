"""m3v-encode with the paper's models (the full extra) end to end, on the tiny random-weight
models of tools/make_tiny_models.py: the VLM dialogue writes the texts and its prompts go in the
stream, CLIP + flow choose the keyframes, and every way of lacking a model is one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from fake_pack import moving_square, write_video

import m3cvc_format as m
from m3cvc_codec import cli_encode
from m3cvc_format import cli_edit, cli_info

SMALL = ["--size", "128x80", "--fps", "8", "-q"]


@pytest.fixture
def video(tmp_path):
    frames = np.concatenate([moving_square(12, 128, 80, step=1), moving_square(12, 128, 80, step=3, cut_at=0)])
    return write_video(tmp_path / "in.mp4", frames, fps=8)


def run(main, argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_describe_vlm_end_to_end(tiny_models, video, tmp_path, capsys):
    """--describe vlm --models DIR: the dialogue's texts in every clip, its prompts in the
    stream, the stream verifies, and the same input gives the same bytes."""
    out = tmp_path / "a.m3v"
    argv = [video, "-o", out, "--describe", "vlm", "--models", tiny_models, "--max-new-tokens", "6", *SMALL]
    assert run(cli_encode.main, argv, capsys)[0] == 0
    with m.Reader(out) as reader:
        prompts = reader.prompts
        clips = [reader.clip(k).decode(reader.header) for k in range(reader.clip_count)]
        assert reader.header.version_minor == 2
    assert prompts is not None and prompts["turns"] == 4 and len(prompts["keyframe"]) == 4
    assert prompts["model"] == "Qwen/Qwen2-VL-7B-Instruct" and prompts["settings"]["max_new_tokens"] == 6
    assert len(clips) >= 2 and any(c.keyframe_text for c in clips) and any(c.clip_text for c in clips)

    code, text, _ = run(cli_info.main, ["--verify", out], capsys)
    assert code == 0, text
    code, text, _ = run(cli_info.main, ["--prompts", out], capsys)
    assert code == 0 and prompts["keyframe"][0].splitlines()[0] in text

    again = tmp_path / "b.m3v"
    assert run(cli_encode.main, [video, "-o", again, *argv[3:]], capsys)[0] == 0
    assert again.read_bytes() == out.read_bytes()


@pytest.mark.parametrize("turns", [1, 2])
def test_dialogue_turns_are_recorded(tiny_models, video, tmp_path, capsys, turns):
    out = tmp_path / "t.m3v"
    argv = [video, "-o", out, "--describe", "vlm", "--models", tiny_models, "--dialogue-turns", turns]
    assert run(cli_encode.main, [*argv, "--max-new-tokens", "3", "--interval", "12", *SMALL], capsys)[0] == 0
    with m.Reader(out) as reader:
        assert reader.prompts["turns"] == turns and len(reader.prompts["keyframe"]) == turns


def test_own_prompts_file(tiny_models, video, tmp_path, capsys):
    """--print-prompts gives the default file; an edited copy is what the stream records."""
    code, text, _ = run(cli_encode.main, ["--print-prompts"], capsys)
    assert code == 0
    data = json.loads(text)
    edited = json.loads(text)
    edited["name"] = "my-prompts"
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps(edited))
    out = tmp_path / "p.m3v"
    argv = [video, "-o", out, "--describe", "vlm", "--models", tiny_models, "--prompts", mine]
    assert run(cli_encode.main, [*argv, "--max-new-tokens", "2", "--interval", "12", *SMALL], capsys)[0] == 0
    with m.Reader(out) as reader:
        assert reader.prompts["name"] == "my-prompts" != data.get("name")


def test_edit_keeps_the_prompts(tiny_models, video, tmp_path, capsys):
    """m3v-info --texts --json out, m3v-edit --texts in: texts changed, prompts and maps kept."""
    out = tmp_path / "v.m3v"
    argv = [video, "-o", out, "--describe", "vlm", "--models", tiny_models, "--max-new-tokens", "2"]
    assert run(cli_encode.main, [*argv, "--interval", "12", *SMALL], capsys)[0] == 0
    code, text, _ = run(cli_info.main, ["--texts", "--json", out], capsys)
    assert code == 0
    texts = json.loads(text)
    texts["clips"][0]["keyframe_text"] = "a red square on black"
    sidecar = tmp_path / "texts.json"
    sidecar.write_text(json.dumps(texts))
    edited = tmp_path / "e.m3v"
    assert run(cli_edit.main, [out, "--texts", sidecar, "-o", edited], capsys)[0] == 0
    with m.Reader(out) as before, m.Reader(edited) as after:
        assert after.prompts == before.prompts
        assert after.clip(0).decode(after.header).keyframe_text == "a red square on black"
        for k in range(before.clip_count):
            assert np.array_equal(
                before.clip(k).decode(before.header).index_map, after.clip(k).decode(after.header).index_map
            )


def test_clip_scorer_end_to_end(tiny_models, video, tmp_path, capsys):
    """--scorer clip: selection by CLIP features + optical flow, recorded in the metadata;
    deterministic; --lambda2 0 is the semantic-only ablation."""
    out = tmp_path / "c.m3v"
    argv = [video, "-o", out, "--scorer", "clip", "--models", tiny_models, *SMALL]
    assert run(cli_encode.main, argv, capsys)[0] == 0
    with m.Reader(out) as reader:
        selection = reader.header.metadata["keyframe_selection"]
    assert selection["scorer"]["name"] == "clip"
    assert selection["scorer"]["clip_model"] == "openai/clip-vit-base-patch32"
    again = tmp_path / "c2.m3v"
    assert run(cli_encode.main, [video, "-o", again, *argv[3:]], capsys)[0] == 0
    assert again.read_bytes() == out.read_bytes()
    ablation = tmp_path / "s.m3v"
    assert run(cli_encode.main, [video, "-o", ablation, *argv[3:], "--lambda2", "0"], capsys)[0] == 0
    with m.Reader(ablation) as reader:
        assert reader.header.metadata["keyframe_selection"]["lambda2"] == 0.0


def test_missing_model_is_one_line(tmp_path, video, capsys):
    empty = tmp_path / "models"
    empty.mkdir()
    for extra in (["--describe", "vlm"], ["--scorer", "clip"]):
        code, _, err = run(
            cli_encode.main, [video, "-o", tmp_path / "x.m3v", *extra, "--models", empty, *SMALL], capsys
        )
        assert code == 1 and len(err.strip().splitlines()) == 1, err
        assert ("Qwen/Qwen2-VL-7B-Instruct" if extra[1] == "vlm" else "openai/clip-vit-base-patch32") in err
        assert "--local-dir" in err
        assert not (tmp_path / "x.m3v").exists()


def test_dialogue_options_need_describe_vlm(video, tmp_path, capsys):
    code, _, err = run(cli_encode.main, [video, "-o", tmp_path / "x.m3v", "--dialogue-turns", "2", *SMALL], capsys)
    assert code == 1 and "describe 'vlm'" in err


@pytest.mark.slow
def test_without_the_full_extra_one_line(tmp_path, video):
    """Where transformers is not installed, --describe vlm and --scorer clip say so in one line
    and the lite path works as before."""
    script = (
        "import sys; sys.modules['transformers'] = None\n"
        "from m3cvc_codec.cli_encode import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    for extra in (["--describe", "vlm"], ["--scorer", "clip"], []):
        out = tmp_path / "x.m3v"
        done = subprocess.run(
            [sys.executable, "-c", script, str(video), "-o", str(out), *extra, *SMALL],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if extra:
            assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
            assert "full extra" in done.stderr and "transformers" in done.stderr
        else:
            assert done.returncode == 0, done.stderr
            assert out.exists()


def test_prompts_can_be_left_out_and_count_in_the_rate(tiny_models, video, tmp_path, capsys):
    """--no-record-prompts writes a 1.1 stream without PRMT; with a target rate the prompts'
    bytes are part of what the threshold search budgets for, with the clip scorer too."""
    out = tmp_path / "n.m3v"
    argv = [video, "-o", out, "--describe", "vlm", "--models", tiny_models, "--max-new-tokens", "2", *SMALL]
    assert run(cli_encode.main, [*argv, "--no-record-prompts"], capsys)[0] == 0
    with m.Reader(out) as reader:
        assert reader.prompts is None and reader.header.version_minor == 1
    code, text, _ = run(cli_info.main, [out], capsys)
    assert code == 0 and "\nprompts " not in text and "), prompts " not in text

    rated = tmp_path / "r.m3v"
    argv = [video, "-o", rated, "--scorer", "clip", "--models", tiny_models, "--target-bpp", "0.05", *SMALL[:-1]]
    code, _, err = run(cli_encode.main, [*argv, "--describe", "vlm", "--max-new-tokens", "2"], capsys)
    assert code == 0, err
    code, text, _ = run(cli_info.main, ["--json", rated], capsys)
    info = json.loads(text)
    assert info["prompts_bytes"] > 1000 and info["framing_bytes"] < info["total_bytes"] - info["prompts_bytes"]
    assert "target_bpp" in info["metadata"]["keyframe_selection"]
