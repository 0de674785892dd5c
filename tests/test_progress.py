"""m3cvc_codec.progress: step reports reach the hook of the caller in scope (per thread), the
stderr display (a rewritten line on a terminal, one line per step elsewhere, muted on request),
the environment switch, and the diffusers callback."""

from __future__ import annotations

import io
import threading

import pytest

from m3cvc_codec import progress
from m3cvc_codec.progress import StderrLine, Step


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_steps_go_to_the_hook_in_scope_only():
    seen: list[Step] = []
    progress.step("keyframe", 1, 2)  # nobody listens: nothing happens
    assert not progress.active()
    with progress.reporting(seen.append, clip=3):
        assert progress.active()
        progress.step("keyframe", 1, 2)
        with progress.reporting(None):  # an inner quiet scope masks the outer hook
            assert not progress.active()
            progress.step("keyframe", 2, 2)
        progress.step("clip", 5, 30)
    progress.step("clip", 6, 30)
    assert seen == [Step("keyframe", 1, 2, 3), Step("clip", 5, 30, 3)]
    assert str(seen[0]) == "clip 3 keyframe: step 1/2" and str(Step("clip", 4, 9)) == "clip: step 4/9"


def test_each_thread_reports_to_its_own_hook():
    """A pack shared by two decoders in two threads (the player's prefetch thread and the main
    one) reports each step to the decoder that asked."""
    seen: dict[str, list[int]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    def work(name: str, clip: int) -> None:
        with progress.reporting(lambda e: seen[name].append(e.clip), clip=clip):
            for i in range(50):
                if i == 10:
                    barrier.wait()
                progress.step("clip", i + 1, 50)

    threads = [threading.Thread(target=work, args=(n, c)) for n, c in (("a", 1), ("b", 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": [1] * 50, "b": [2] * 50}


def test_stderr_line_on_a_terminal_and_elsewhere():
    tty = Tty()
    line = StderrLine("decoding", tty)
    line(Step("keyframe", 1, 2, 0))
    line(Step("keyframe", 2, 2, 0))  # done: the line is cleared
    assert tty.getvalue() == "\rdecoding: clip 0 keyframe: step 1/2\x1b[K\r\x1b[K"
    log = io.StringIO()
    line = StderrLine("decoding", log)
    line(Step("clip", 1, 2, 4))
    line(Step("clip", 2, 2, 4))
    assert log.getvalue().splitlines() == ["decoding: clip 4 clip: step 1/2", "decoding: clip 4 clip: step 2/2"]
    with progress.muted():
        line(Step("clip", 1, 2, 5))
    assert "clip 5" not in log.getvalue()
    line(Step("clip", 1, 2, 6))
    assert "clip 6" in log.getvalue()


@pytest.mark.parametrize(("value", "shown"), [("0", False), ("off", False), ("1", True), ("yes", True), ("", False)])
def test_default_hook_follows_the_environment(monkeypatch, value, shown):
    """Off and on as M3CVC_PROGRESS says; unset: only where stderr is a terminal (not here,
    under pytest's capture)."""
    monkeypatch.setenv(progress.ENV, value)
    assert isinstance(progress.default_hook(), StderrLine) is shown


def test_default_hook_on_a_terminal(monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    monkeypatch.setattr("sys.stderr", Tty())
    assert isinstance(progress.default_hook(), StderrLine)
    monkeypatch.setenv(progress.ENV, "0")
    assert progress.default_hook() is None


def test_pipeline_callback():
    assert progress.pipeline_callback("clip", 30) is None  # nobody listens: no callback at all
    seen: list[Step] = []

    class Pipe:
        num_timesteps = 4

    with progress.reporting(seen.append, clip=1):
        callback = progress.pipeline_callback("clip", 30)
        assert callback is not None
        assert callback(Pipe(), 0, 999, {"latents": object()}) == {}  # the latents are left alone
        callback(object(), 1, 998, {})  # a pipeline without num_timesteps: the steps asked for
    assert seen == [Step("clip", 1, 4, 1), Step("clip", 2, 30, 1)]
