"""Atomic writes leave no temporary files behind: removed on SIGTERM, and a later write to
the same path removes those of a killed process (issue 13)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from m3cvc_format import atomic
from m3cvc_format.atomic import AtomicFile, atomic_file

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals and PIDs as POSIX has them")

# A writer that stops half-way through a stream, says so, and waits to be killed.
_WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from conftest import make_header, make_clips
    import m3cvc_format as m
    header = make_header()
    writer = m.Writer({out!r}, header)
    for clip in make_clips(header, 3):
        writer.write_clip(clip)
    writer.flush()
    print("ready", flush=True)
    time.sleep(60)
    """
)


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _start_writer(out: Path) -> subprocess.Popen[str]:
    code = _WRITER.format(tests=str(Path(__file__).parent), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_sigterm_removes_the_temporary_file(tmp_path):
    out = tmp_path / "a.m3v"
    proc = _start_writer(out)
    assert len(_hidden(tmp_path)) == 1  # the stream being written
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM  # it still dies of the signal
    assert _hidden(tmp_path) == [] and not out.exists()


def test_a_write_removes_the_temporaries_a_killed_writer_left(tmp_path):
    out = tmp_path / "a.m3v"
    proc = _start_writer(out)
    proc.kill()  # SIGKILL: nothing can clean up
    proc.wait(timeout=30)
    left = _hidden(tmp_path)
    assert len(left) == 1 and left[0].startswith(".a.m3v.")
    other = tmp_path / ".b.m3v.1.abcdefgh.tmp"  # another path's: not ours to remove
    other.write_bytes(b"x")
    with atomic_file(out) as f:
        f.write(b"new")
    assert out.read_bytes() == b"new"
    assert _hidden(tmp_path) == [other.name]


def test_temporaries_of_running_writers_are_kept(tmp_path):
    out = tmp_path / "a.m3v"
    running = tmp_path / f".a.m3v.{os.getppid()}.abcdefgh.tmp"  # a process that runs
    running.write_bytes(b"x")
    unrelated = [tmp_path / ".a.m3v.notes", tmp_path / ".a.m3v.5.tmp", tmp_path / ".a.m3v.b.12.abcdefgh.tmp"]
    for path in unrelated:
        path.write_bytes(b"x")
    mine = AtomicFile(out)  # this process's write in progress
    assert atomic.remove_stale_temporaries(out) == []
    with atomic_file(out) as f:
        f.write(b"new")
    assert mine.temp.exists() and running.exists() and all(p.exists() for p in unrelated)
    mine.discard()
    assert not mine.temp.exists()


def test_a_finished_process_s_temporary_is_stale(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(done.stdout)
    time.sleep(0.05)
    stale = tmp_path / f".a.m3v.{pid}.abcd_f12.tmp.y4m"
    stale.write_bytes(b"x")
    assert atomic.remove_stale_temporaries(tmp_path / "a.m3v") == [stale]
