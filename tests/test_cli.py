"""The one CLI runner (m3cvc_format/cli.py): what every m3v-* command does with errors,
closed pipes, interrupts and usage mistakes, checked on the installed scripts."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import shutil
import subprocess

import av
import numpy as np
import pytest
from conftest import VECTORS, make_header, make_stream

import m3cvc_format as m
from m3cvc_format import cli, mkv
from m3cvc_format.errors import ChecksumError


def script(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (pip install -e .)")
    return path


def one_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def long_stream(tmp_path_factory):
    """A stream whose ``m3v-info --texts`` output is far larger than a pipe's buffer."""
    path = tmp_path_factory.mktemp("cli") / "long.m3v"
    path.write_bytes(make_stream(make_header(), 3000))
    return path


@pytest.fixture(scope="module")
def muxed(tmp_path_factory):
    """A Matroska file made by m3v-mux from a conformance vector."""
    out = tmp_path_factory.mktemp("mkv") / "minimal.mkv"
    done = subprocess.run(
        [script("m3v-mux"), str(VECTORS / "minimal.m3v"), "-o", str(out), "--no-preview", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("prog", ["m3v-info", "m3v-mux", "m3v-demux", "m3v-edit"])
def test_missing_file_is_one_line_naming_it_once(prog, tmp_path):
    missing = tmp_path / "x.m3v"
    argv = [script(prog), str(missing)] + ([] if prog == "m3v-info" else ["-o", str(tmp_path / "out")])
    if prog == "m3v-edit":
        argv += ["--clip", "0", "--clip-text", "x"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    line = one_line(done)
    assert line == f"{prog}: {missing}: No such file or directory"
    assert line.count("x.m3v") == 1


def test_damage_names_file_once_with_offset(tmp_path):
    bad = tmp_path / "bad.m3v"
    bad.write_bytes((VECTORS / "crc-mismatch.m3v").read_bytes())
    done = subprocess.run([script("m3v-info"), str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    line = one_line(done)
    assert line.startswith(f"m3v-info: {bad}: ") and "CRC" in line and "at byte" in line
    assert line.count("bad.m3v") == 1


def test_piped_into_head_is_silent_with_status_141(long_stream):
    done = subprocess.run(
        [
            "bash",
            "-c",
            f'"{script("m3v-info")}" --texts "{long_stream}" | head -1; echo "status ${{PIPESTATUS[0]}}" >&2',
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.split() == ["file", str(long_stream)]
    assert done.stderr == "status 141\n"  # no "Broken pipe", no "Exception ignored ..."


def test_closed_stdout_mid_output_is_silent(long_stream):
    proc = subprocess.Popen(
        [script("m3v-info"), "--texts", str(long_stream)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"file")
    proc.stdout.close()
    assert proc.wait(timeout=60) == 141
    assert proc.stderr.read() == b""
    proc.stderr.close()


def test_matroska_from_m3v_mux_is_read_directly(muxed, tmp_path):
    """The source opener reads the .m3v attached to an .mkv made by m3v-mux, everywhere."""
    direct = subprocess.run([script("m3v-info"), "--json", str(muxed)], capture_output=True, text=True, timeout=60)
    plain = subprocess.run(
        [script("m3v-info"), "--json", str(VECTORS / "minimal.m3v")], capture_output=True, text=True, timeout=60
    )
    assert direct.returncode == 0 and direct.stderr == ""
    assert json.loads(direct.stdout) == json.loads(plain.stdout)
    again = tmp_path / "again.mkv"  # m3v-mux of the .mkv attaches the .m3v, not the .mkv
    done = subprocess.run([script("m3v-mux"), str(muxed), "-o", str(again), "--no-preview", "-q"], capture_output=True)
    assert done.returncode == 0 and done.stderr == b""
    assert mkv.extract_m3v(again) == (VECTORS / "minimal.m3v").read_bytes()


def test_other_matroska_is_one_line_saying_so(tmp_path):
    video = tmp_path / "video.mkv"
    with av.open(str(video), "w") as out:
        stream = out.add_stream("ffv1", rate=8)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    done = subprocess.run([script("m3v-info"), str(video)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    line = one_line(done)
    assert line.startswith(f"m3v-info: {video}: ") and "Matroska" in line and line.count("video.mkv") == 1


def test_matroska_read_as_m3v_gets_the_demux_hint(muxed, capsys):
    """Where a Matroska file is read as .m3v bytes (sniff_mkv=False, as for format="m3v"),
    the runner says what the file is and how to take the stream out of it."""

    def body(args):
        m.Reader(args.input, sniff_mkv=False)

    assert cli.run("m3v-test", _parser(), body, [str(muxed)]) == 1
    assert capsys.readouterr().err == (
        f"m3v-test: {muxed}: this is a Matroska file; `m3v-demux {muxed} -o OUT.m3v` takes the .m3v out of it\n"
    )


def test_usage_errors_exit_2():
    for argv in (["m3v-info"], ["m3v-mux", "x.m3v"], ["m3v-demux", "x.mkv"], ["m3v-info", "x.m3v", "--bogus"]):
        done = subprocess.run([script(argv[0]), *argv[1:]], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, argv
        assert "usage:" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([script("m3v-mux"), "x.m3v", "-o", "y.mkv", "--crf", "99"], capture_output=True, text=True)
    assert done.returncode == 2 and "--crf must be 0-51" in done.stderr


# ------------------------------------------------------------------ run() in-process


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="m3v-test")
    p.add_argument("input")
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def test_run_statuses_and_messages(capsys):
    def raising(err):
        def body(args):
            raise err

        return body

    assert cli.run("m3v-test", _parser(), lambda args: None, ["a.m3v"]) == 0
    assert cli.run("m3v-test", _parser(), lambda args: 3, ["a.m3v"]) == 3
    assert cli.run("m3v-test", _parser(), lambda args: 0, ["--help"]) == 0
    assert cli.run("m3v-test", _parser(), lambda args: 0, []) == 2
    capsys.readouterr()
    assert cli.run("m3v-test", _parser(), raising(ChecksumError("CRC-32C mismatch", 40)), ["a.m3v"]) == 1
    assert capsys.readouterr().err == "m3v-test: a.m3v: CRC-32C mismatch (at byte 40)\n"
    missing = FileNotFoundError(errno.ENOENT, "No such file or directory", "a.m3v")
    assert cli.run("m3v-test", _parser(), raising(missing), ["a.m3v"]) == 1
    assert capsys.readouterr().err == "m3v-test: a.m3v: No such file or directory\n"
    # an error that names the output file is not prefixed with the input's name
    denied = PermissionError(errno.EACCES, "Permission denied", "out.mkv")
    assert cli.run("m3v-test", _parser(), raising(denied), ["a.m3v"]) == 1
    assert capsys.readouterr().err == "m3v-test: out.mkv: Permission denied\n"
    assert cli.run("m3v-test", _parser(), raising(ValueError("a.m3v: odd\nmore")), ["a.m3v"]) == 1
    assert capsys.readouterr().err == "m3v-test: a.m3v: odd\n"
    assert cli.run("m3v-test", _parser(), raising(ValueError("bad")), ["-"]) == 1
    assert capsys.readouterr().err == "m3v-test: <stdin>: bad\n"

    class Custom(Exception):
        pass

    assert cli.run("m3v-test", _parser(), raising(Custom("mine")), ["a.m3v"], known=(Custom,)) == 1
    assert capsys.readouterr().err == "m3v-test: a.m3v: mine\n"
    with pytest.raises(Custom):  # not declared known: a bug, with its traceback
        cli.run("m3v-test", _parser(), raising(Custom("mine")), ["a.m3v"])
    assert cli.run("m3v-test", _parser(), raising(KeyboardInterrupt()), ["a.m3v"]) == 130
    assert cli.run("m3v-test", _parser(), raising(BrokenPipeError(errno.EPIPE, "Broken pipe")), ["a.m3v"]) == 141
    assert capsys.readouterr().err == ""

    def usage(args):
        _parser().error("--crf must be 0-51")

    assert cli.run("m3v-test", _parser(), usage, ["a.m3v"]) == 2
    assert "--crf must be 0-51" in capsys.readouterr().err


def test_run_logs_as_prog_and_quiet(capsys):
    def body(args):
        logging.getLogger("m3cvc_format.test").info("told")
        logging.getLogger("m3cvc_codec.test").warning("warned")

    assert cli.run("m3v-test", _parser(), body, ["a.m3v"]) == 0
    assert capsys.readouterr().err == "m3v-test: told\nm3v-test: warned\n"
    assert cli.run("m3v-test", _parser(), body, ["a.m3v", "-q"]) == 0
    assert capsys.readouterr().err == "m3v-test: warned\n"
