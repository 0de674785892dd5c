"""m3v-batch (m3cvc_codec.batch): a corpus of short clips cut from the shared media plus one
broken file, coded in this process (fast) and on a local Ray with 2 CPUs (slow): the same bytes
as m3v-encode, every failure recorded, a rerun that does nothing, a run killed with kill -9 and
restarted that completes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import need_media

from m3cvc_codec import batch, cli_batch, cli_encode
from m3cvc_codec.batch_inputs import BatchInput, expand_inputs, local_copy
from m3cvc_codec.batch_manifest import FIELDS, Manifest, RunLockedError, done_records, read_records, run_lock

# Small and short: the lite pack codes 128x80 in a fraction of a second a clip.
ENCODE_OPTIONS = ["--size", "128x80", "--fps", "8", "--max-clip", "4"]
SOURCES = ("decord_flipping_a_pancake.mkv", "mmaction2_test_makeup.avi", "mmaction2_test_pool.mp4")
SOURCES += ("sam2_01_dog.mp4", "sam2_02_cups.mp4")


def cut(source: Path, target: Path, frames: int, size=(160, 96), rate: int = 8) -> None:
    """The first ``frames`` frames of ``source``, scaled to ``size``, as H.264 in ``target``."""
    import av

    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for n, frame in enumerate(src.decode(video=0)):
            if n == frames:
                break
            scaled = frame.reformat(width=size[0], height=size[1], format="yuv420p")
            scaled.pts, scaled.time_base = n, Fraction(1, rate)
            out.mux(stream.encode(scaled))
        out.mux(stream.encode())


def make_corpus(folder: Path, frames: int) -> Path:
    folder.mkdir(parents=True)
    for name in SOURCES:
        cut(need_media("videos", name), folder / f"{Path(name).stem}.mp4", frames)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not a video" * 50)
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("batch") / "corpus", frames=12)


@pytest.fixture(scope="module")
def references(corpus, tmp_path_factory) -> dict[str, bytes]:
    """What m3v-encode writes for each good clip, by output name."""
    folder = tmp_path_factory.mktemp("references")
    found = {}
    for clip in sorted(corpus.glob("*.mp4")):
        if clip.stem == "broken":
            continue
        target = folder / f"{clip.stem}.m3v"
        assert cli_encode.main([str(clip), "-o", str(target), *ENCODE_OPTIONS, "-q"]) == 0
        found[target.name] = target.read_bytes()
    return found


@pytest.fixture(scope="module")
def coded(corpus, tmp_path_factory) -> tuple[Path, int]:
    """The corpus coded once in this process: (OUTDIR, exit status)."""
    out = tmp_path_factory.mktemp("coded") / "out"
    status = cli_batch.main(["encode", str(corpus), "-o", str(out), *ENCODE_OPTIONS, "--no-ray", "-q"])
    return out, status


def manifests(out: Path) -> list[list[dict]]:
    paths = sorted(out.glob("manifest-*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name))
    return [list(read_records(p)) for p in paths]


def outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.glob("*.m3v")}


def leftovers(out: Path) -> list[str]:
    """Temporary files of atomic writes left in OUTDIR."""
    return [p.name for p in out.iterdir() if p.name.endswith(".tmp") or ".tmp." in p.name]


# ============================================================================ in this process


def test_in_process_run_codes_the_same_bytes_as_m3v_encode_and_records_the_broken_file(coded, references):
    out, status = coded
    assert status == 1  # one input failed
    assert outputs(out) == references
    (records,) = manifests(out)
    by_output = {r["output"]: r for r in records}
    assert sorted(by_output) == sorted([*references, "broken.m3v"])
    broken = by_output["broken.m3v"]
    assert broken["status"] == "failed"
    assert "broken.mp4" in broken["error"] and "\n" not in broken["error"]
    for name, data in references.items():
        record = by_output[name]
        assert record["status"] == "ok" and record["error"] is None
        assert record["bytes"] == len(data)
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        assert record["frames"] == 12 and record["clips"] == len(record["keyframes"]) >= 3
        assert record["bpp"] == pytest.approx(len(data) * 8 / (128 * 80 * 12))


@pytest.mark.slow
def test_rerun_skips_done_outputs_and_recodes_only_what_does_not_match(corpus, references, tmp_path):
    out = tmp_path / "out"
    args = ["encode", str(corpus), "-o", str(out), *ENCODE_OPTIONS, "--no-ray", "-q"]
    assert cli_batch.main(args) == 1
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.m3v")}

    assert cli_batch.main(args) == 1  # the broken file fails again; nothing else is touched
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.m3v")} == stamps
    rerun = manifests(out)[-1]
    assert sorted(r["status"] for r in rerun) == ["failed"] + ["skipped"] * len(references)

    damaged, removed = sorted(references)[:2]
    (out / damaged).write_bytes(b"x" + references[damaged][1:])
    (out / removed).unlink()
    assert cli_batch.main(args) == 1
    assert outputs(out) == references
    third = {r["output"]: r["status"] for r in manifests(out)[-1]}
    assert third[damaged] == third[removed] == "ok"
    assert [name for name, status in third.items() if status == "skipped"] == sorted(
        set(references) - {damaged, removed}
    )


def test_other_options_recode_the_outputs(corpus, tmp_path):
    clip = corpus / "sam2_01_dog.mp4"
    out = tmp_path / "out"
    assert cli_batch.main(["encode", str(clip), "-o", str(out), *ENCODE_OPTIONS, "--no-ray", "-q"]) == 0
    first = (out / "sam2_01_dog.m3v").read_bytes()
    assert (
        cli_batch.main(["encode", str(clip), "-o", str(out), *ENCODE_OPTIONS, "--mode", "prediction", "--no-ray", "-q"])
        == 0
    )
    assert manifests(out)[-1][0]["status"] == "ok"  # coded again, not skipped
    assert (out / "sam2_01_dog.m3v").read_bytes() != first


@pytest.mark.slow
def test_verify_finds_outputs_that_differ_are_damaged_or_missing(corpus, references, tmp_path, capsys):
    out = tmp_path / "out"
    cli_batch.main(["encode", str(corpus), "-o", str(out), *ENCODE_OPTIONS, "--no-ray", "-q"])
    capsys.readouterr()
    assert cli_batch.main(["verify", str(out)]) == 0
    table = capsys.readouterr().out
    assert all(name in table for name in references) and "broken.m3v" not in table

    names = sorted(references)
    data = bytearray(references[names[0]])
    data[len(data) // 2] ^= 0xFF
    (out / names[0]).write_bytes(bytes(data))
    (out / names[1]).unlink()
    (out / "stray.m3v").write_bytes(references[names[2]])  # valid, in no manifest
    assert cli_batch.main(["verify", str(out), "-q"]) == 1
    bad = capsys.readouterr().out
    assert names[0] in bad and names[1] in bad and "stray.m3v" not in bad
    rows = {r["output"]: r["status"] for r in batch.verify_outputs(out).rows}
    assert rows[names[0]] in ("damaged", "differs") and rows[names[1]] == "missing"
    assert rows["stray.m3v"] == "unrecorded" and rows[names[2]] == "ok"


def test_eval_measures_each_output_against_its_input(coded, corpus, references, capsys):
    out, _ = coded
    capsys.readouterr()
    assert cli_batch.main(["eval", str(corpus), str(out), "--no-ray", "--no-plot"]) == 1  # broken: not coded
    table = capsys.readouterr().out
    assert "PSNR" in table and "not coded" in table
    (path,) = out.glob("eval-*.jsonl")
    rows = {r["output"]: r for r in map(json.loads, path.read_text().splitlines())}
    for name, data in references.items():
        row = rows[name]
        assert row["status"] == "ok" and row["frames"] == 12
        assert 5 < row["psnr_rgb"] < 60 and 5 < row["psnr_y"] < 60
        assert row["ms_ssim"] is None  # 128x80 is under MS-SSIM's 176 pixels a side
        assert row["bpp"] == pytest.approx(len(data) * 8 / (128 * 80 * 12))
    path.unlink()


def test_without_ray_the_same_command_runs_in_this_process_and_says_so(corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(batch, "ray_available", lambda: False)
    clip = str(corpus / "sam2_02_cups.mp4")
    assert cli_batch.main(["encode", clip, "-o", str(tmp_path / "out"), *ENCODE_OPTIONS]) == 0
    err = capsys.readouterr().err
    assert batch.NO_RAY_LINE in err and "1 coded, 0 skipped" in err
    assert "[1/1] sam2_02_cups.m3v:" in err and "s of video/s" in err and "ETA" in err  # progress
    assert cli_batch.main(["encode", clip, "-o", str(tmp_path / "out2"), "--address", "auto"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("m3v-batch: ") and "Ray is not installed" in err and len(err.splitlines()) == 1


def test_a_url_input_is_copied_to_the_worker_and_coded_alike(corpus, references, tmp_path):
    clip = corpus / "sam2_01_dog.mp4"
    report = batch.encode_batch([clip.as_uri()], tmp_path / "out", _encode_kwargs(), use_ray=False)
    assert [r["status"] for r in report.records] == ["ok"]
    assert (tmp_path / "out" / "sam2_01_dog.m3v").read_bytes() == references["sam2_01_dog.m3v"]
    missing = batch.encode_batch(
        [(tmp_path / "nothing.mp4").as_uri()], tmp_path / "out2", _encode_kwargs(), use_ray=False
    )
    (record,) = missing.failed
    assert "nothing.mp4" in record["error"] and "file://" in record["error"]


def _encode_kwargs() -> dict:
    parser = cli_encode._parser()
    return cli_encode.encode_kwargs(parser.parse_args(["x", "-o", "y", *ENCODE_OPTIONS]))


def test_two_inputs_with_one_output_name_fail_the_second(corpus, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(corpus / "sam2_01_dog.mp4", other / "sam2_01_dog.mkv")
    report = batch.encode_batch(
        [str(corpus / "sam2_01_dog.mp4"), str(other / "sam2_01_dog.mkv")],
        tmp_path / "out",
        _encode_kwargs(),
        use_ray=False,
    )
    first, second = sorted(report.records, key=lambda r: r["input"] != str(corpus / "sam2_01_dog.mp4"))
    assert first["status"] == "ok" and second["status"] == "failed"
    assert "also" in second["error"] and str(corpus / "sam2_01_dog.mp4") in second["error"]


def test_a_second_run_into_the_same_folder_is_refused(corpus, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    with run_lock(out):
        with pytest.raises(RunLockedError):
            batch.encode_batch([str(corpus / "broken.mp4")], out, {}, use_ray=False)
        assert cli_batch.main(["encode", str(corpus / "broken.mp4"), "-o", str(out), "--no-ray"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"m3v-batch: {out}: another m3v-batch run is writing here"


# ============================================================================ inputs and manifest


def test_inputs_from_folders_globs_list_files_and_urls(tmp_path):
    root = tmp_path / "videos"
    (root / "a" / "b").mkdir(parents=True)
    for name in ("x.mp4", "a/y.MKV", "a/b/z.webm", "a/notes.json", "a/b/.keep"):
        (root / name).write_bytes(b"")
    listed = tmp_path / "list.txt"
    listed.write_text("# the corpus\nvideos/x.mp4\n\nhttps://example.org/v/clip.mov\n  videos/a/y.MKV  \n")

    folder = list(expand_inputs([str(root)]))
    assert [(Path(i.source).relative_to(root).as_posix(), i.name) for i in folder] == [
        ("x.mp4", "x"),
        ("a/y.MKV", "a/y"),
        ("a/b/z.webm", "a/b/z"),
    ]
    assert all(os.path.isabs(i.source) for i in folder)
    assert [i.name for i in expand_inputs([str(root / "**" / "*.webm")])] == ["z"]
    from_list = list(expand_inputs([str(listed), str(root / "x.mp4")]))  # x.mp4 a second time: once
    assert from_list == [
        BatchInput(str(root / "x.mp4"), "x"),
        BatchInput("https://example.org/v/clip.mov", "clip"),
        BatchInput(str(root / "a" / "y.MKV"), "y"),
    ]
    assert [i.output for i in expand_inputs([f"@{listed}"])] == ["x.m3v", "clip.m3v", "y.m3v"]
    assert list(expand_inputs([str(tmp_path / "absent.mp4")])) == [BatchInput(str(tmp_path / "absent.mp4"), "absent")]


def test_a_remote_folder_lists_its_videos_and_local_copy_reads_them(tmp_path):
    pytest.importorskip("fsspec")
    (tmp_path / "r" / "s").mkdir(parents=True)
    (tmp_path / "r" / "s" / "one.mp4").write_bytes(b"video bytes")
    (tmp_path / "r" / "readme.txt").write_bytes(b"")
    found = list(expand_inputs([f"{tmp_path.as_uri()}/r/"]))
    assert [i.name for i in found] == ["s/one"]
    with local_copy(found[0].source) as local:
        assert Path(local).read_bytes() == b"video bytes"
    assert not Path(local).exists()  # the copy is gone


def test_a_manifest_line_cut_short_by_a_kill_is_skipped(tmp_path):
    manifest = Manifest(tmp_path, "run1")
    manifest.add({"input": "/v/a.mp4", "output": "a.m3v", "status": "ok", "bytes": 3, "sha256": "00"})
    manifest.add({"input": "/v/b.mp4", "output": "b.m3v", "status": "failed", "error": "b: bad"})
    manifest.close()
    with open(manifest.path, "a") as f:
        f.write('{"run": "run1", "input": "/v/c.mp4", "output": "c.m3')
    records = list(read_records(manifest.path))
    assert [r["output"] for r in records] == ["a.m3v", "b.m3v"]
    assert list(done_records(tmp_path)) == ["a.m3v"]
    assert records[0]["run"] == "run1" and records[0]["finished"]


def test_the_run_manifest_goes_to_parquet_where_pyarrow_is_installed(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    manifest = Manifest(tmp_path, "run1")
    manifest.add({"input": "/v/a.mp4", "output": "a.m3v", "status": "ok", "bytes": 3, "keyframes": [0, 4]})
    manifest.add({"input": "/v/b.mp4", "output": "b.m3v", "status": "failed", "error": "b: bad", "notices": []})
    table = pq.read_table(manifest.close())
    assert table.column_names == list(FIELDS)
    assert table.column("output").to_pylist() == ["a.m3v", "b.m3v"]
    assert table.column("keyframes").to_pylist() == [[0, 4], None]
    assert table.column("error").to_pylist() == [None, "b: bad"]


def test_a_gpu_pack_asks_ray_for_a_gpu_per_worker():
    from m3cvc_codec.packs import RuntimeOptions

    options, gpus = batch._gpu_options({"options": RuntimeOptions(device="cuda:1")})
    assert gpus == 1.0 and options["options"].device == "cuda"
    options, gpus = batch._gpu_options({"options": RuntimeOptions()})
    assert gpus == 0.0 and options["options"].device == "cpu"


# ============================================================================ on Ray


def _descendants(pid: int) -> list[int]:
    try:
        import psutil
    except ImportError:
        return []
    with contextlib.suppress(psutil.Error):
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    return []


@pytest.mark.slow
def test_ray_run_killed_partway_then_restarted_completes(tmp_path):
    pytest.importorskip("ray")
    corpus = make_corpus(tmp_path / "corpus", frames=48)  # long enough to be killed between two clips
    wanted = {}
    for clip in sorted(corpus.glob("*.mp4")):
        if clip.stem != "broken":
            target = tmp_path / "ref" / f"{clip.stem}.m3v"
            target.parent.mkdir(exist_ok=True)
            assert cli_encode.main([str(clip), "-o", str(target), *ENCODE_OPTIONS, "-q"]) == 0
            wanted[target.name] = target.read_bytes()
    out = tmp_path / "out"
    command = [sys.executable, "-m", "m3cvc_codec.cli_batch", "encode", str(corpus), "-o", str(out)]
    command += [*ENCODE_OPTIONS, "--workers", "2", "-q"]
    env = {**os.environ, "RAY_DEDUP_LOGS": "0"}

    started = time.monotonic()
    first = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    spawned: set[int] = set()
    done_first: list[dict] = []
    while time.monotonic() - started < 90 and first.poll() is None:
        spawned.update(_descendants(first.pid))
        done_first = [r for records in manifests(out) for r in records if r["status"] == "ok"] if out.exists() else []
        if done_first:
            break
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert 1 <= len(done_first) < len(wanted), "the run was not killed partway"

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    try:
        assert second.returncode == 1, second.stderr  # the broken file
        assert outputs(out) == wanted  # every output valid, the bytes of m3v-encode
        assert not leftovers(out)
        rerun = manifests(out)[-1]
        assert sorted(r["output"] for r in rerun) == sorted([*wanted, "broken.m3v"])  # each once
        statuses = {r["output"]: r["status"] for r in rerun}
        assert statuses.pop("broken.m3v") == "failed"
        skipped = {name for name, status in statuses.items() if status == "skipped"}
        assert {r["output"] for r in done_first} <= skipped  # what the killed run finished is kept
        assert set(statuses.values()) <= {"ok", "skipped"}
        assert batch.verify_outputs(out).bad == []
    finally:
        for pid in spawned:  # Ray's agents of the killed run can outlive it for a minute
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


# ============================================================================ models and texts per input


@pytest.mark.slow
def test_clip_scorer_and_vlm_load_once_per_worker_with_the_bytes_of_m3v_encode(
    corpus, tiny_models, tmp_path, monkeypatch
):
    from collections import Counter

    from m3cvc_codec.models.clip import ClipEmbedder
    from m3cvc_codec.models.flow import FlowMagnitude
    from m3cvc_codec.models.vlm import VisionLanguageModel

    loads: Counter[str] = Counter()
    for model in (ClipEmbedder, FlowMagnitude, VisionLanguageModel):

        def counting(self, *args, _load=model.__init__, _name=model.__name__, **kwargs):
            loads[_name] += 1
            _load(self, *args, **kwargs)

        monkeypatch.setattr(model, "__init__", counting)
    clips = [corpus / "sam2_01_dog.mp4", corpus / "sam2_02_cups.mp4"]
    models = ["--scorer", "clip", "--flow", "dis", "--describe", "vlm", "--models", str(tiny_models)]
    models += ["--dialogue-turns", "1", "--max-new-tokens", "3"]
    (tmp_path / "ref").mkdir()
    wanted = {}
    for clip in clips:
        target = tmp_path / "ref" / f"{clip.stem}.m3v"
        assert cli_encode.main([str(clip), "-o", str(target), *ENCODE_OPTIONS, *models, "-q"]) == 0
        wanted[target.name] = target.read_bytes()
    assert loads == {"ClipEmbedder": 2, "FlowMagnitude": 2, "VisionLanguageModel": 2}  # once per m3v-encode

    loads.clear()
    out = tmp_path / "out"
    argv = ["encode", *map(str, clips), "-o", str(out), *ENCODE_OPTIONS, *models, "--no-ray", "-q"]
    assert cli_batch.main(argv) == 0
    assert loads == {"ClipEmbedder": 1, "FlowMagnitude": 1, "VisionLanguageModel": 1}  # once for both inputs
    assert outputs(out) == wanted
    assert all(r["status"] == "ok" for r in manifests(out)[-1])


def write_sidecar(path: Path, keyframe: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ranges = [{"start": 0, "end": 0.75, "keyframe": keyframe, "clip": "It moves."}]
    path.write_text(json.dumps({"ranges": ranges + [{"start": 0.75, "end": 9, "keyframe": "Later."}]}))
    return path


def test_texts_dir_gives_each_input_its_own_sidecar(corpus, tmp_path, capsys):
    clips = [corpus / "sam2_01_dog.mp4", corpus / "sam2_02_cups.mp4", corpus / "mmaction2_test_pool.mp4"]
    texts = tmp_path / "texts"
    dog = write_sidecar(texts / "sam2_01_dog.json", "A dog on a lawn.")
    cups = write_sidecar(texts / "sam2_02_cups.json", "Cups on a table.")
    (tmp_path / "ref").mkdir()
    wanted = {}
    for clip, sidecar in zip(clips, (dog, cups, None)):
        target = tmp_path / "ref" / f"{clip.stem}.m3v"
        extra = ["--texts", str(sidecar)] if sidecar else []
        assert cli_encode.main([str(clip), "-o", str(target), *ENCODE_OPTIONS, *extra, "-q"]) == 0
        wanted[target.name] = target.read_bytes()
    assert wanted["sam2_01_dog.m3v"] != wanted["sam2_02_cups.m3v"]

    out = tmp_path / "out"
    argv = ["encode", *map(str, clips), "-o", str(out), *ENCODE_OPTIONS, "--texts-dir", str(texts), "--no-ray"]
    assert cli_batch.main(argv) == 1  # the pool clip has no sidecar: its failure, one line
    err = capsys.readouterr().err
    missing = f"no texts sidecar {texts / 'mmaction2_test_pool.json'}"
    assert f"failed: {clips[2]}: {missing}" in err
    assert outputs(out) == {name: wanted[name] for name in ("sam2_01_dog.m3v", "sam2_02_cups.m3v")}

    assert cli_batch.main([*argv, "--texts-optional", "-q"]) == 0  # coded without texts, as m3v-encode
    assert outputs(out) == wanted
    assert sorted(r["status"] for r in manifests(out)[-1]) == ["ok", "skipped", "skipped"]

    write_sidecar(cups, "Three cups on a table.")  # a changed sidecar: that input is coded again
    assert cli_batch.main([*argv, "--texts-optional", "-q"]) == 0
    statuses = {r["output"]: r["status"] for r in manifests(out)[-1]}
    assert statuses == {"sam2_01_dog.m3v": "skipped", "sam2_02_cups.m3v": "ok", "mmaction2_test_pool.m3v": "skipped"}
    assert (out / "sam2_02_cups.m3v").read_bytes() != wanted["sam2_02_cups.m3v"]


def test_texts_dir_names_sidecars_by_output_path_and_reports_bad_ones(corpus, tmp_path, capsys):
    videos = tmp_path / "videos"
    (videos / "garden").mkdir(parents=True)
    shutil.copy(corpus / "sam2_01_dog.mp4", videos / "garden" / "dog.mp4")
    item = next(expand_inputs([str(videos)]))
    assert batch.sidecar_path(tmp_path / "texts", item) == tmp_path / "texts" / "garden" / "dog.json"
    (tmp_path / "texts" / "garden").mkdir(parents=True)
    (tmp_path / "texts" / "garden" / "dog.json").write_text('{"clips": [], "extra": 1}')
    report = batch.encode_batch([str(videos)], tmp_path / "out", _encode_kwargs(), texts_dir=tmp_path / "texts")
    (record,) = report.failed
    assert record["error"].startswith(str(videos / "garden" / "dog.mp4")) and "unknown key 'extra'" in record["error"]

    base = ["encode", str(videos), "-o", str(tmp_path / "out"), "--no-ray", "--texts-dir"]
    assert cli_batch.main([*base, str(tmp_path / "texts"), "--texts", "x.json"]) == 1
    assert cli_batch.main([*base, str(tmp_path / "nowhere")]) == 1
    assert cli_batch.main(["encode", str(videos), "-o", str(tmp_path / "out"), "--texts-optional"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert "not both" in lines[0] and "no such folder" in lines[1] and "--texts-dir" in lines[2]


@pytest.mark.slow
def test_eval_adds_lpips_and_clip_sim_where_available(coded, corpus, tiny_models, tmp_path, monkeypatch, capsys):
    torch = pytest.importorskip("torch")
    import m3cvc_format as m
    from m3cvc_codec import metrics
    from m3cvc_codec.clip_decoder import ClipDecoder
    from m3cvc_codec.packs.config import RuntimeOptions
    from m3cvc_codec.video_io import read_frames

    weights = tmp_path / "lpips"  # random weights under the real file names: nothing downloaded
    weights.mkdir()
    torch.manual_seed(0)
    trunk = {f"features.{k}": v for k, v in metrics.alexnet_features().state_dict().items()}
    torch.save(trunk, weights / metrics.LPIPS_BACKBONE_FILE)
    heads = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(metrics.LPIPS_CHANNELS)}
    torch.save(heads, weights / metrics.LPIPS_LINEAR_FILE)
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(coded[0] / "sam2_01_dog.m3v", out)
    clip = corpus / "sam2_01_dog.mp4"
    runtime = RuntimeOptions(models_dir=str(tiny_models))

    report = batch.evaluate_batch(
        [str(clip)], out, options=runtime, lpips_weights=weights, lpips=True, clip_sim=True, use_ray=False, plot=False
    )
    (record,) = report.records
    assert report.unavailable == {}
    with m.Reader(out / "sam2_01_dog.m3v") as reader:  # the same measures, all frames at once
        decoder = ClipDecoder(reader.header)
        decoded = np.stack([frame for _, frame in m.FrameSource(reader, decoder=decoder).frames(0, None)])
    originals = np.stack(list(read_frames(str(clip), (128, 80), reader.header.fps, "crop")))
    assert len(decoded) == len(originals) == record["frames"] == 12  # over two batches of frames
    assert record["lpips"] == pytest.approx(metrics.Lpips(weights)(originals, decoded).mean(), rel=1e-6)
    assert record["clip_sim"] == pytest.approx(metrics.ClipSimilarity(None, runtime)(originals, decoded).mean())
    assert record["lpips"] > 0 and record["clip_sim"] < 1
    report.path.unlink()

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no AlexNet anywhere: LPIPS left out
    monkeypatch.delenv(metrics.LPIPS_WEIGHTS_ENV, raising=False)
    argv = ["eval", str(clip), str(out), "--no-ray", "--no-plot", "--models", str(tiny_models)]
    assert cli_batch.main([*argv, "--lpips-weights", str(tmp_path / "empty"), "--clip-sim"]) == 0
    captured = capsys.readouterr()
    (line,) = [text for text in captured.err.splitlines() if "LPIPS" in text]
    assert line.startswith("m3v-batch: LPIPS left out: ") and metrics.LPIPS_BACKBONE_FILE in line
    header = captured.out.splitlines()[0]
    assert "CLIP-sim" in header and "LPIPS" not in header
    (path,) = out.glob("eval-*.jsonl")
    (row,) = map(json.loads, path.read_text().splitlines())
    assert row["lpips"] is None and row["clip_sim"] == pytest.approx(record["clip_sim"])


def test_runs_in_one_second_get_their_own_ids(tmp_path):
    from m3cvc_codec.batch_manifest import new_run_id

    first = new_run_id(tmp_path)
    (tmp_path / f"eval-{first}.jsonl").write_text("")
    second = new_run_id(tmp_path)
    (tmp_path / f"manifest-{second}.jsonl").write_text("")
    third = new_run_id(tmp_path)
    assert len({first, second, third}) == 3  # none adds to or replaces another run's files
