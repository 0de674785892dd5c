"""m3v-play: key handling (a pure state machine), the decode + timing loop on a fake clock (and
once on the real one, asserting what it did, not how long it took), the command line's errors, the terminal renderer, the SDL window under Xvfb
(a screenshot compared with the decoded frame; keys sent with xdotool, the window read back
with xwd) and the terminal mode under tmux.

The streams are coded with the fake pack (tests/fake_pack.py).  Processes started here run a
small launcher that installs the fake pack, then calls ``m3cvc_codec.cli_play.main``.  Tests
that need Xvfb, xdotool, xwd, tmux or pygame skip with the reason when one is missing, and fail
instead under CI (which installs them: apt xvfb x11-apps xdotool tmux, pip pygame).
"""

from __future__ import annotations

import io
import math
import os
import re
import select
import shlex
import shutil
import struct
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from fake_pack import install, moving_square, write_video

import m3cvc_format as m
from m3cvc_codec import cli_play
from m3cvc_codec.player import (
    Action,
    HeadlessOutput,
    Player,
    PlayerState,
    PrefetchSource,
    Timeline,
    View,
    action_for_key,
    apply_action,
    clip_at,
    fit_rect,
    open_player_source,
    scale_frame,
)
from m3cvc_codec.player.terminal import TerminalOutput, parse_keys, render_halfblock

TESTS = Path(__file__).resolve().parent
FRAMES, WIDTH, HEIGHT, INTERVAL = 32, 128, 80, 8
STARTS = (0, 8, 16, 24)
TEXTS = {
    "clips": [
        {
            "index": k,
            "keyframe": f"Keyframe {k}: a white square on a plain background.",
            "clip": f"Clip {k}: the square slides to the right.",
        }
        for k in range(4)
    ]
}

LAUNCHER = """\
import sys
import pytest
from fake_pack import install
install(pytest.MonkeyPatch())
from m3cvc_codec.cli_play import main
sys.exit(main(sys.argv[1:]))
"""


def need(ok: bool, reason: str) -> None:
    """Skip when ``ok`` is false, except under CI, where the tools must be installed."""
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI installs it)")
        pytest.skip(reason)


def have_pygame() -> bool:
    try:
        import pygame  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- streams


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> Path:
    """32 frames of 128x80 at 8 fps, 4 clips of 8 frames (a scene cut at 16), with texts."""
    from m3cvc_codec import encode

    folder = tmp_path_factory.mktemp("player")
    video = write_video(folder / "square.mp4", moving_square(FRAMES, WIDTH, HEIGHT, cut_at=16), fps=8)
    out = folder / "square.m3v"
    with pytest.MonkeyPatch.context() as mp:
        install(mp)
        encode(video, out, pack="test.fake", size=(WIDTH, HEIGHT), interval=INTERVAL, texts=TEXTS)
    return out


@pytest.fixture(scope="module")
def decoded(stream) -> list[np.ndarray]:
    """Every frame of the stream, decoded through m3cvc_format.open."""
    from m3cvc_codec.clip_decoder import ClipDecoder

    with pytest.MonkeyPatch.context() as mp:
        install(mp)
        with m.Reader(stream) as r:
            decoder = ClipDecoder(r.header)
        with m.open(stream, frame_decoder=decoder) as c:
            return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def launcher(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("launch")
    shutil.copy(TESTS / "fake_pack.py", folder)  # beside the script: on its sys.path
    path = folder / "play.py"
    path.write_text(LAUNCHER)
    return path


def test_stream_layout(stream, decoded):
    with m.Reader(stream) as r:
        assert [e.first_frame for e in r.index] == list(STARTS)
        assert r.frame_count == FRAMES
    assert len(decoded) == FRAMES and decoded[0].shape == (HEIGHT, WIDTH, 3)


# --------------------------------------------------------------------------- keys (pure)


TL = Timeline(FRAMES, STARTS)


def test_key_names_map_to_actions():
    assert action_for_key("space") is Action.PAUSE and action_for_key(" ") is Action.PAUSE
    assert action_for_key("left") is Action.PREV_CLIP and action_for_key("right") is Action.NEXT_CLIP
    assert action_for_key(",") is Action.STEP_BACK and action_for_key(".") is Action.STEP_FORWARD
    assert action_for_key("f") is Action.FULLSCREEN and action_for_key("t") is Action.OVERLAY
    assert action_for_key("q") is Action.QUIT and action_for_key("escape") is Action.QUIT
    assert action_for_key("x") is None


def test_clip_at():
    assert [clip_at(STARTS, n) for n in (0, 7, 8, 15, 16, 31)] == [0, 0, 1, 1, 2, 3]


@pytest.mark.parametrize(
    "shown, action, target",
    [
        (10, Action.NEXT_CLIP, 16),
        (8, Action.NEXT_CLIP, 16),
        (0, Action.NEXT_CLIP, 8),
        (26, Action.NEXT_CLIP, None),  # the last clip: nothing to go to
        (10, Action.PREV_CLIP, 0),  # the clip before the one on screen
        (16, Action.PREV_CLIP, 8),
        (26, Action.PREV_CLIP, 16),
        (3, Action.PREV_CLIP, 0),  # first clip: its start
    ],
)
def test_seek_to_clip_starts(shown, action, target):
    before = PlayerState(shown=shown, position=shown + 1)
    after = apply_action(before, action, TL)
    assert after.request == target
    assert not after.paused
    assert before.request is None  # pure: the old state is unchanged


def test_steps_pause_and_stay_in_range():
    s = apply_action(PlayerState(shown=5, position=6), Action.STEP_FORWARD, TL)
    assert s.paused and s.request == 6
    s = apply_action(PlayerState(shown=5, position=6, paused=True), Action.STEP_BACK, TL)
    assert s.paused and s.request == 4
    assert apply_action(PlayerState(shown=31, position=32), Action.STEP_FORWARD, TL).request is None
    assert apply_action(PlayerState(shown=0, position=1), Action.STEP_BACK, TL).request is None
    # keys pressed before the player caught up chain on the pending request
    s = PlayerState(shown=5, position=6, paused=True)
    for a in (Action.STEP_FORWARD, Action.STEP_FORWARD, Action.STEP_BACK):
        s = apply_action(s, a, TL)
    assert s.request == 6
    assert apply_action(PlayerState(shown=9, request=17), Action.NEXT_CLIP, TL).request == 24


def test_toggles_and_quit():
    s = PlayerState(shown=3)
    for action, name in ((Action.PAUSE, "paused"), (Action.OVERLAY, "overlay"), (Action.FULLSCREEN, "fullscreen")):
        on = apply_action(s, action, TL)
        assert getattr(on, name) and not getattr(apply_action(on, action, TL), name)
    assert apply_action(s, Action.QUIT, TL).quit


# --------------------------------------------------------------------------- the loop, fake clock


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += max(dt, 0.0)


class FakeSource:
    """Frames whose pixels are their number; each costs ``cost`` seconds of the fake clock."""

    def __init__(self, clock: FakeClock, count: int = 40, fps: int = 8, starts=(0, 10, 20, 30), cost: float = 0.0):
        self.clock, self.cost = clock, cost
        self.fps, self.frame_count, self.width, self.height = Fraction(fps), count, 6, 4
        self.clip_starts = tuple(starts)
        self.calls: list[int] = []

    def frame(self, n: int):
        self.calls.append(n)
        self.clock.t += self.cost
        return np.full((4, 6, 3), n % 256, np.uint8)

    def description(self, k: int) -> str:
        return f"clip {k} text"

    def close(self) -> None:
        pass


class TimedOutput(HeadlessOutput):
    def __init__(self, clock: FakeClock, **kw) -> None:
        super().__init__(sleep=clock.sleep, **kw)
        self.clock = clock
        self.times: list[float] = []

    def show(self, frame, view) -> None:
        if frame is not None:
            self.times.append(self.clock())
        super().show(frame, view)


def play(cost=0.0, speed=1.0, count=40, **kw):
    clock = FakeClock()
    source = FakeSource(clock, count=count, cost=cost)
    output = TimedOutput(clock, keys=kw.pop("keys", None))
    stats = Player(source, output, speed=speed, clock=clock, **kw).run()
    return stats, output, source


def test_all_frames_on_time_when_decoding_is_fast():
    stats, out, _ = play()
    assert out.shown == list(range(40))
    assert (stats.shown, stats.dropped) == (40, 0)
    assert stats.wall == pytest.approx(40 / 8)  # the last frame stays up for its slot
    assert stats.late_max == 0
    assert np.allclose(np.diff(out.times), 1 / 8)
    stats, out, _ = play(speed=2.5)
    assert stats.shown == 40 and stats.wall == pytest.approx(40 / 20)


@pytest.mark.parametrize("periods", [0.6, 1.5, 2.5, 7.0])
def test_slow_source_drops_and_keeps_the_clock(periods):
    period = 1 / 8
    stats, out, source = play(cost=periods * period)
    assert stats.shown + stats.dropped == 40
    if periods < 1:
        assert stats.dropped == 0
    else:
        assert stats.dropped > 0
        # about one frame in ceil(cost / period) is shown
        assert stats.shown <= 40 / math.floor(periods) + 2
    assert source.calls[1:] == out.shown[1:]  # no frame decoded only to be thrown away
    t0 = out.times[0]
    # from the second paced frame on (the first has no decode time to go by), every frame is
    # shown inside its own slot
    for n, t in zip(out.shown[2:], out.times[2:]):
        assert t0 + n * period - 1e-9 <= t < t0 + (n + 1) * period
    assert stats.late_max < periods * period
    assert stats.wall == pytest.approx(40 * period + periods * period, abs=period)
    assert out.shown == sorted(out.shown)


def test_limit_loop_and_start():
    stats, out, _ = play(limit=10)
    assert out.shown == list(range(10)) and stats.wall == pytest.approx(10 / 8)
    stats, out, _ = play(count=8, loop=True, limit=20)
    assert out.shown == list(range(8)) * 2 + [0, 1, 2, 3]
    assert np.allclose(np.diff(out.times), 1 / 8)  # looping keeps the cadence
    stats, out, _ = play(start=35)
    assert out.shown == [35, 36, 37, 38, 39]


def test_keys_drive_the_loop():
    keys = {2: ["space", ".", ".", ",", "left", "right", "t", "space"]}
    stats, out, _ = play(keys=keys)
    # the second "." arrives before the first step is drawn: it chains on it (3 is skipped)
    assert out.shown == [0, 1, 2, 4, 3, 0, 10] + list(range(11, 40))
    paused = [v for v in out.views if v.paused]
    assert paused and {v.frame for v in paused} == {2, 3, 4, 0, 10}
    overlay = [v for v in out.views if v.overlay]
    assert overlay[0].description == "clip 1 text" and overlay[-1].frame == 39
    # keys that do not interrupt playback; the second comes during the last frame's slot
    stats, out, _ = play(count=8, loop=True, limit=12, keys={7: ["t", "t"]})
    assert out.shown == list(range(8)) + [0, 1, 2, 3]
    assert np.allclose(np.diff(out.times), 1 / 8)
    stats, out, _ = play(keys={5: ["q"]})
    assert out.shown == list(range(6)) and stats.wall < 1


def test_keep_open_pauses_on_the_last_frame():
    clock = FakeClock()

    class QuitWhenPaused(TimedOutput):
        def poll(self, timeout):
            if self.views and self.views[-1].paused:
                return ["q"]
            return super().poll(timeout)

    out = QuitWhenPaused(clock)
    Player(FakeSource(clock, count=5), out, clock=clock, keep_open=True).run()
    assert out.shown == [0, 1, 2, 3, 4] and out.views[-1].paused and out.views[-1].frame == 4


# --------------------------------------------------------------------------- the loop, real clock


def test_headless_cli_plays_and_prints_one_summary_line(stream, fake_pack, capsys):
    code = cli_play.main([str(stream), "--headless", "--frames", "16", "--start", "0.5", "--speed", "8"])
    out = capsys.readouterr().out
    assert code == 0, out
    found = re.search(r"^m3v-play: (\d+) frames shown, (\d+) dropped, ([\d.]+) s, ([\d.]+) fps", out)
    assert found, out
    shown, dropped = int(found[1]), int(found[2])
    # the real clock: how many are dropped depends on the machine's load, not their sum
    # (pacing itself is checked on the fake clock above)
    assert shown + dropped == 16 and shown >= 1
    assert out.count("\n") == 1  # one line


def test_cli_pack_flags_reach_the_decoder(stream, fake_pack, tmp_path, capsys, monkeypatch):
    import m3cvc_codec.packs as registry

    calls = []
    load = registry.load_pack

    def recording_load_pack(pack_id, config=None, options=None, **kw):
        calls.append((pack_id, config, options))
        return load(pack_id, config, options, **kw)

    monkeypatch.setattr(registry, "load_pack", recording_load_pack)
    config = tmp_path / "pack.json"
    argv = [str(stream), "--headless", "--frames", "1", "--no-prefetch"]
    flags = ["--pack-config", str(config), "--models", str(tmp_path), "--device", "cuda:1"]
    assert cli_play.main(argv + flags) == 0, capsys.readouterr().err
    assert calls, "the pack was never loaded"
    pack_id, given, options = calls[-1]
    assert pack_id == "test.fake" and str(given) == str(config)
    assert options.device == "cuda:1" and str(options.models_dir) == str(tmp_path)
    # --pack refuses a stream coded with another pack, before any decoding
    calls.clear()
    assert cli_play.main([*argv, "--pack", "lite"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'test.fake'" in err and "'lite'" in err
    assert not calls


def test_headless_real_clock_slow_source_drops_in_order():
    class Slow:
        fps, frame_count, width, height, clip_starts = Fraction(30), 30, 8, 8, (0, 10, 20)

        def frame(self, n):
            time.sleep(0.05)  # 1.5 frame periods
            return np.zeros((8, 8, 3), np.uint8)

        def description(self, k):
            return ""

        def close(self):
            pass

    out = HeadlessOutput()
    stats = Player(Slow(), out).run()  # time.monotonic and time.sleep
    # every decode takes 1.5 frame periods or more, however loaded the machine: frames are dropped
    assert stats.shown + stats.dropped == 30
    assert stats.dropped > 0 and stats.shown == len(out.shown) >= 1
    assert out.shown == sorted(set(out.shown)) and out.shown[0] == 0


def test_m3v_source_seeks_to_clip_starts_and_decodes_forward(stream, decoded, fake_pack):
    source = open_player_source(stream)
    try:
        assert source.clip_starts == STARTS and source.frame_count == FRAMES and source.fps == 8
        for n in (0, 1, 2, 13, 12, 20, 31, 8):  # forward, backward, across clips
            assert np.array_equal(source.frame(n), decoded[n]), n
        assert source.description(2) == f"{TEXTS['clips'][2]['keyframe']} {TEXTS['clips'][2]['clip']}"
    finally:
        source.close()


def test_prefetch_source_decodes_ahead_in_order_and_repositions():
    class Counting:
        fps, frame_count, width, height, clip_starts = Fraction(30), 40, 6, 4, (0, 10, 20, 30)

        def __init__(self):
            self.calls = []

        def frame(self, n):
            if n == 33:
                raise ValueError("clip 3 is damaged")
            self.calls.append(n)
            return np.full((4, 6, 3), n, np.uint8)

        def description(self, k):
            return f"clip {k}"

        def close(self):
            self.closed = True

    inner = Counting()
    source = PrefetchSource(inner, ahead=5, start=2)
    try:
        for n in [2, 3, 4, 5, 7, 9, 4, 25, 26, 11]:
            assert int(source.frame(n)[0, 0, 0]) == n
        deadline = time.monotonic() + 5
        while 16 not in inner.calls:  # decodes `ahead` frames from the next one the player wants ...
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.05)
        last = len(inner.calls) - 1 - inner.calls[::-1].index(11)
        assert inner.calls[last:] == list(range(11, 17))  # ... in order, and no further
        # forward in the clip being decoded: waits; backwards or a later clip: repositions
        assert source.repositions == 3
        assert source.description(2) == "clip 2"
        with pytest.raises(ValueError, match="damaged"):
            source.frame(33)
        assert int(source.frame(31)[0, 0, 0]) == 31  # the error does not stick
        with pytest.raises(IndexError):
            source.frame(40)
    finally:
        source.close()
    assert inner.closed


@pytest.fixture
def fake_pack(monkeypatch):
    return install(monkeypatch)


# --------------------------------------------------------------------------- command line errors


def test_usage_errors_exit_2(stream, capsys):
    assert cli_play.main([]) == 2
    assert cli_play.main([str(stream), "--terminal", "--headless"]) == 2
    assert cli_play.main([str(stream), "--speed", "0"]) == 2
    assert cli_play.main([str(stream), "--frames", "0"]) == 2
    assert cli_play.main(["-"]) == 2
    assert cli_play.main([str(stream), "--headless", "--screenshot", "x.png"]) == 2
    capsys.readouterr()


def test_errors_are_one_line_exit_1(stream, tmp_path, capsys, monkeypatch):
    assert cli_play.main([str(tmp_path / "missing.m3v"), "--headless"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.m3v" in err and "No such file" in err

    bad = tmp_path / "bad.m3v"
    bad.write_bytes(b"not a stream at all")
    assert cli_play.main([str(bad), "--headless"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("m3v-play: ") and "bad.m3v" in err

    # no fake pack installed here: the stream's pack cannot be had
    assert cli_play.main([str(stream), "--headless"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'test.fake'" in err and "not installed" in err

    install(monkeypatch)
    assert cli_play.main([str(stream), "--headless", "--start", "9"]) == 1
    assert "past the end" in capsys.readouterr().err

    monkeypatch.setitem(sys.modules, "pygame", None)  # import pygame raises ImportError
    assert cli_play.main([str(stream)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'm3cvc[play]'" in err and "--terminal" in err


# --------------------------------------------------------------------------- terminal renderer


def test_render_halfblock_colours():
    img = np.zeros((2, 2, 3), np.uint8)
    img[0] = (255, 0, 0)
    img[1] = (0, 0, 255)
    text = render_halfblock(img, 2, 1)
    assert text.count("\u2580") == 2
    assert "\x1b[38;2;255;0;0;48;2;0;0;255m" in text
    assert text.count("38;2;") == 1  # no escape repeated for a cell of the same colours
    # scaled to fit, aspect kept: 128x80 in 80x23 cells is 74x46 pixels, centred
    frame = np.zeros((80, 128, 3), np.uint8)
    text = render_halfblock(frame, 80, 23)
    assert text.count("\u2580") == 74 * 23 and "\x1b[1;4H" in text


def test_parse_keys():
    assert parse_keys(b"\x1b[D\x1b[C q,.tf\x1bOD\x03") == [
        "left",
        "right",
        "space",
        "q",
        ",",
        ".",
        "t",
        "f",
        "left",
        "quit",
    ]
    assert parse_keys(b"\x1b") == ["escape"]
    assert parse_keys(b"\x1b[1;5Cq") == ["q"]  # unknown sequences are skipped


def test_terminal_output_hides_and_restores_the_cursor():
    out = io.StringIO()
    term = TerminalOutput("x", stdin=io.StringIO(), stdout=out, size=(80, 12))
    term.start()
    view = View(
        frame=3,
        frame_count=10,
        clip=1,
        clip_count=2,
        fps=8.0,
        paused=False,
        overlay=True,
        fullscreen=False,
        description="a dog on grass",
    )
    term.show(np.full((20, 32, 3), 200, np.uint8), view)
    term.stop()
    text = out.getvalue()
    assert text.startswith("\x1b[?1049h\x1b[?25l") and text.endswith("\x1b[?25h\x1b[?1049l")
    assert "\x1b[H" in text and "clip 2/2" in text and "a dog on grass" in text


# --------------------------------------------------------------------------- SDL window under Xvfb


@pytest.fixture(scope="module")
def xdisplay():
    need(shutil.which("Xvfb") is not None, "Xvfb is not installed (apt-get install xvfb)")
    need(have_pygame(), "pygame is not installed (pip install 'm3cvc[play]')")
    read, write = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], 15)
        number = os.read(read, 64).decode().strip() if ready else ""
        if not number:
            pytest.fail("Xvfb did not start")
        yield f":{number}"
    finally:
        os.close(read)
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def x_env(display: str) -> dict:
    return {**os.environ, "DISPLAY": display, "SDL_VIDEODRIVER": "x11", "SDL_AUDIODRIVER": "dummy"}


def psnr(a, b) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)


def test_window_without_a_display_is_an_error(stream, launcher, tmp_path):
    need(have_pygame(), "pygame is not installed (pip install 'm3cvc[play]')")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    run = subprocess.run(
        [sys.executable, str(launcher), str(stream)], env=env, capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 1
    assert "cannot open a window" in run.stderr and "--terminal" in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("m3v-play: ")


@pytest.mark.slow
def test_window_screenshot_matches_decoded_frame(stream, decoded, launcher, xdisplay, tmp_path):
    import cv2

    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [sys.executable, str(launcher), str(stream), "--frames", "6", "--start", "1", "--screenshot", str(shot)],
        env=x_env(xdisplay),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    n = int(re.search(r"screenshot of frame (\d+)", run.stdout)[1])
    assert 8 <= n < 14
    image = cv2.cvtColor(cv2.imread(str(shot)), cv2.COLOR_BGR2RGB)
    assert image.shape == (HEIGHT * 4, WIDTH * 4, 3)  # small streams get an integer zoom
    expected = scale_frame(decoded[n], WIDTH * 4, HEIGHT * 4)
    assert psnr(image, expected) > 40
    assert np.array_equal(image, expected)
    # and at the stream's own size, the decoded frame itself
    run = subprocess.run(
        [sys.executable, str(launcher), str(stream), "--frames", "1", "--scale", "1", "--screenshot", str(shot)],
        env=x_env(xdisplay),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    assert np.array_equal(cv2.cvtColor(cv2.imread(str(shot)), cv2.COLOR_BGR2RGB), decoded[0])


def read_xwd(data: bytes) -> np.ndarray:
    """RGB pixels of an xwd dump (a true-colour ZPixmap of 24 or 32 bits a pixel)."""
    fields = struct.unpack(">25I", data[:100])
    header_size, version, pixmap_format = fields[0], fields[1], fields[2]
    width, height, byte_order, bits_per_pixel, bytes_per_line = fields[4], fields[5], fields[7], fields[11], fields[12]
    masks, ncolors = fields[14:17], fields[19]
    assert version == 7 and pixmap_format == 2 and bits_per_pixel in (24, 32), fields
    size = bits_per_pixel // 8
    rows = np.frombuffer(data, np.uint8, count=height * bytes_per_line, offset=header_size + 12 * ncolors)
    cells = rows.reshape(height, bytes_per_line)[:, : width * size].reshape(height, width, size).astype(np.uint32)
    order = range(size) if byte_order == 0 else range(size - 1, -1, -1)  # LSBFirst: byte 0 is lowest
    pixels = sum(cells[..., i] << (8 * shift) for shift, i in enumerate(order))
    return np.dstack([((pixels & k) >> ((k & -k).bit_length() - 1)).astype(np.uint8) for k in masks])


@pytest.mark.slow
def test_window_keys_with_xdotool(stream, decoded, launcher, xdisplay, tmp_path):
    need(shutil.which("xdotool") is not None, "xdotool is not installed (apt-get install xdotool)")
    need(shutil.which("xwd") is not None, "xwd is not installed (apt-get install x11-apps)")
    env = x_env(xdisplay)
    proc = subprocess.Popen(
        [sys.executable, str(launcher), str(stream), "--pause"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def x(*args: str) -> str:
        return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, timeout=15).stdout.strip()

    def grab() -> np.ndarray | None:
        """The window's pixels as the screen shows them (read from the root window, so that a
        window re-created by a fullscreen switch is followed; cut to the part on screen)."""
        found = x("search", "--pid", str(proc.pid)).split()
        if not found:
            return None
        geometry = dict(
            line.split("=", 1) for line in x("getwindowgeometry", "--shell", found[-1]).splitlines() if "=" in line
        )
        dump = subprocess.run(["xwd", "-silent", "-root"], env=env, capture_output=True, timeout=15)
        if dump.returncode != 0 or not geometry:
            return None
        left, top, w, h = (int(geometry[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
        grab.size = (w, h)
        return read_xwd(dump.stdout)[top : top + h, left : left + w]

    def wait_for(check, what: str) -> np.ndarray:
        deadline = time.monotonic() + 10
        while True:
            image = grab()
            if image is not None and check(image):
                return image
            if time.monotonic() > deadline:
                pytest.fail(f"the window never showed {what}")
            time.sleep(0.05)

    def showing(n: int, size=(WIDTH * 4, HEIGHT * 4)):
        x0, y0, w, h = fit_rect(WIDTH, HEIGHT, *size)
        canvas = np.zeros((size[1], size[0], 3), np.uint8)  # black bars around the picture
        canvas[y0 : y0 + h, x0 : x0 + w] = scale_frame(decoded[n], w, h)

        def check(image):
            return grab.size == size and np.array_equal(image, canvas[: image.shape[0], : image.shape[1]])

        return check

    def focus() -> None:
        x("windowfocus", "--sync", x("search", "--pid", str(proc.pid)).split()[-1])

    try:
        window = x("search", "--sync", "--pid", str(proc.pid)).splitlines()[0]
        x("windowfocus", "--sync", window)
        wait_for(showing(0), "frame 0")
        assert "clip 1/4 (paused)" in x("getwindowname", window)
        x("key", "period")
        wait_for(showing(1), "frame 1 after '.'")
        x("key", "Right")
        wait_for(showing(8), "clip 2's first frame after Right")
        assert "clip 2/4" in x("getwindowname", window)
        x("key", "Left")
        wait_for(showing(0), "clip 1's first frame after Left")
        x("key", "Right", "Right", "comma")
        wait_for(showing(15), "frame 15 after Right Right ','")
        x("key", "t")
        overlay = wait_for(lambda im: not showing(15)(im), "the overlay after t")
        plain = scale_frame(decoded[15], WIDTH * 4, HEIGHT * 4)
        assert np.array_equal(overlay[:100], plain[:100])  # the band is at the bottom
        assert overlay[-10:].mean() < plain[-10:].mean()  # dark and translucent
        x("key", "t", "f")
        wait_for(showing(15, (1280, 720)), "frame 15 fullscreen after f")
        focus()  # SDL may re-create the window; with no window manager, nothing focuses it
        x("key", "f")
        wait_for(showing(15), "frame 15 in the window again")
        focus()
        x("key", "space")
        wait_for(lambda im: not showing(15)(im), "playback after space")
        x("key", "q")
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- terminal under tmux


def test_terminal_mode_in_tmux(stream, launcher, tmp_path):
    need(shutil.which("tmux") is not None, "tmux is not installed (apt-get install tmux)")
    env = {**os.environ, "TMUX_TMPDIR": str(tmp_path)}
    env.pop("TMUX", None)
    rc = tmp_path / "rc"
    socket = f"m3vplay{os.getpid()}"

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-L", socket, *args], env=env, capture_output=True, text=True, timeout=15).stdout

    q = shlex.quote
    command = (
        f"{q(sys.executable)} {q(str(launcher))} --terminal --loop {q(str(stream))}; echo $? > {q(str(rc))}; sleep 30"
    )
    subprocess.run(
        ["tmux", "-L", socket, "-f", "/dev/null", "new-session", "-d", "-x", "80", "-y", "24", command],
        env=env,
        check=True,
        timeout=15,
    )
    try:
        deadline = time.monotonic() + 15
        while "\u2580" not in (screen := tmux("capture-pane", "-e", "-p")):
            assert time.monotonic() < deadline, "no half blocks on the terminal"
            time.sleep(0.1)
        assert re.search(r"\x1b\[(?:\d+;)*38;2;\d+;\d+;\d+", screen)  # a true-colour foreground
        assert re.search(r"48;2;\d+;\d+;\d+", screen)
        assert screen.count("\u2580") >= 23 * 70  # the picture fills the terminal's width
        tmux("send-keys", "t")
        deadline = time.monotonic() + 10
        while not re.search(r"clip \d/4 +frame \d+/32", tmux("capture-pane", "-p")):
            assert time.monotonic() < deadline, "no status line after t"
            time.sleep(0.1)
        tmux("send-keys", "Right")
        tmux("send-keys", "q")
        deadline = time.monotonic() + 10
        while not rc.exists() or not rc.read_text().strip():
            assert time.monotonic() < deadline, "m3v-play did not quit on q"
            time.sleep(0.1)
        assert rc.read_text().strip() == "0"
        # the terminal is back: cursor shown, main screen (the picture is gone)
        assert "\u2580" not in tmux("capture-pane", "-p")
    finally:
        tmux("kill-server")
