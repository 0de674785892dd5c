"""Terminal output: frames as true-colour half blocks.

Each character cell shows two pixels: the upper half block U+2580 ("▀") drawn with the top
pixel as its 24-bit foreground colour (``ESC[38;2;R;G;Bm``) and the bottom pixel as its
background (``ESC[48;2;R;G;Bm``).  A frame is scaled to fit the terminal (the last line is
kept for the status line), each redraw starts from the cursor's home position, and colour
escapes are written only where the colour changes.  The terminal is switched to the alternate
screen with the cursor hidden and stdin in raw mode; :meth:`TerminalOutput.stop` restores it.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import sys
import time
from typing import Any

from .. import progress
from .output import View, fit_rect, scale_frame

__all__ = ["UPPER_HALF", "TerminalOutput", "parse_keys", "render_halfblock"]

UPPER_HALF = "\u2580"
ESC = "\x1b"
_ENTER = f"{ESC}[?1049h{ESC}[?25l{ESC}[0m{ESC}[2J"
_LEAVE = f"{ESC}[0m{ESC}[?25h{ESC}[?1049l"

_SEQUENCES = {
    "\x1b[A": "up",
    "\x1b[B": "down",
    "\x1b[C": "right",
    "\x1b[D": "left",
    "\x1bOA": "up",
    "\x1bOB": "down",
    "\x1bOC": "right",
    "\x1bOD": "left",
}


def parse_keys(data: bytes) -> list[str]:
    """Key names in bytes read from a raw-mode terminal: arrow escape sequences become
    "left", "right", "up", "down"; a lone Esc "escape"; space "space"; Ctrl-C "quit"; other
    printable characters themselves.  Unknown escape sequences are skipped."""
    text = data.decode("utf-8", "replace")
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == ESC:
            seq = text[i : i + 3]
            if seq in _SEQUENCES:
                out.append(_SEQUENCES[seq])
                i += 3
                continue
            if i + 1 < len(text) and text[i + 1] in "[O":
                j = i + 2  # CSI / SS3: parameters, then a final byte in @..~
                while j < len(text) and not ("@" <= text[j] <= "~"):
                    j += 1
                i = j + 1
                continue
            out.append("escape")
            i += 1
            continue
        if c == "\x03":
            out.append("quit")
        elif c == " ":
            out.append("space")
        elif c in "\r\n":
            out.append("enter")
        elif c.isprintable():
            out.append(c)
        i += 1
    return out


def render_halfblock(rgb, cols: int, rows: int, *, top: int = 1, left: int = 1) -> str:
    """Escape sequences that draw ``rgb`` (H x W x 3 uint8) scaled into ``cols x rows``
    cells (2 pixels a cell, aspect ratio kept, centred), with the area's top-left cell at
    ``(top, left)`` (1-based).  Cells outside the picture are not written."""
    import numpy as np

    cols, rows = max(int(cols), 1), max(int(rows), 1)
    h, w = rgb.shape[:2]
    x, y, pw, ph = fit_rect(w, h, cols, rows * 2)
    ph = max(2, ph - ph % 2)
    y = ((rows * 2 - ph) // 2) // 2  # in cells
    img = scale_frame(rgb, pw, ph)
    tops = img[0::2].astype(np.int32)
    bottoms = img[1::2].astype(np.int32)
    # one int a pixel, so that "same colour as the previous cell" is a cheap comparison
    tkey = ((tops[..., 0] << 16) | (tops[..., 1] << 8) | tops[..., 2]).tolist()
    bkey = ((bottoms[..., 0] << 16) | (bottoms[..., 1] << 8) | bottoms[..., 2]).tolist()
    parts: list[str] = []
    for r in range(len(tkey)):
        parts.append(f"{ESC}[{top + y + r};{left + x}H")
        pf = pb = -1
        for f, b in zip(tkey[r], bkey[r]):
            if f != pf and b != pb:
                parts.append(
                    f"{ESC}[38;2;{f >> 16};{(f >> 8) & 255};{f & 255};48;2;{b >> 16};{(b >> 8) & 255};{b & 255}m"
                )
            elif f != pf:
                parts.append(f"{ESC}[38;2;{f >> 16};{(f >> 8) & 255};{f & 255}m")
            elif b != pb:
                parts.append(f"{ESC}[48;2;{b >> 16};{(b >> 8) & 255};{b & 255}m")
            pf, pb = f, b
            parts.append(UPPER_HALF)
        parts.append(f"{ESC}[0m")
    return "".join(parts)


def _fit_text(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "\u2026"


class TerminalOutput:
    """Draws frames in the terminal and reads keys from it (see the module documentation).

    ``stdin`` / ``stdout`` default to the process's; ``size`` fixes the terminal size
    (columns, lines) instead of asking :func:`shutil.get_terminal_size` at each frame."""

    def __init__(self, name: str = "", *, stdin=None, stdout=None, size: tuple[int, int] | None = None) -> None:
        self.name = name
        self._in = stdin if stdin is not None else sys.stdin
        self._out = stdout if stdout is not None else sys.stdout
        self._size = size
        self._saved: list[Any] | None = None  # termios attributes to restore
        self._fd: int | None = None
        self._frame = None
        self._view: View | None = None
        self._drawn_size: tuple[int, int] | None = None
        self._started = False
        self._quiet = contextlib.ExitStack()  # the decoder's progress line, muted while we draw

    # -------------------------------------------------------------- terminal state

    def _terminal_size(self) -> tuple[int, int]:
        if self._size is not None:
            return self._size
        size = shutil.get_terminal_size((80, 24))
        return max(size.columns, 1), max(size.lines, 2)

    def _write(self, text: str) -> None:
        buffer = getattr(self._out, "buffer", None)
        if buffer is not None:
            buffer.write(text.encode("utf-8"))
            buffer.flush()
        else:
            self._out.write(text)
            self._out.flush()

    def start(self, source=None, state=None) -> None:
        try:
            fd = self._in.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None
        if fd is not None and os.isatty(fd):
            import termios
            import tty

            self._saved = termios.tcgetattr(fd)
            tty.setraw(fd, termios.TCSANOW)
            self._fd = fd
        self._quiet.enter_context(progress.muted())  # a stderr line would land inside the picture
        self._write(_ENTER)
        self._started = True

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            self._write(_LEAVE)
        finally:
            if self._saved is not None and self._fd is not None:
                import termios

                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
                self._saved = None
            self._quiet.close()

    # -------------------------------------------------------------- drawing

    def show(self, frame, view: View) -> None:
        if frame is not None:
            self._frame = frame
        self._view = view
        if self._frame is None:
            return
        cols, lines = self._terminal_size()
        out = []
        if self._drawn_size != (cols, lines):
            out.append(f"{ESC}[0m{ESC}[2J")  # resized: clear what the old picture left
            self._drawn_size = (cols, lines)
        out.append(f"{ESC}[H")
        out.append(render_halfblock(self._frame, cols, lines - 1))
        out.append(f"{ESC}[{lines};1H{ESC}[0m{ESC}[2K")
        if view.overlay:
            out.append(f"{ESC}[7m{_fit_text(view.status(), cols).ljust(cols)}{ESC}[0m")
        elif view.paused:
            out.append(_fit_text(f"[paused] {view.frame + 1}/{view.frame_count}", cols))
        self._write("".join(out))

    # -------------------------------------------------------------- keys

    def poll(self, timeout: float) -> list[str]:
        if self._fd is None:
            if timeout > 0:
                time.sleep(timeout)
            return self._check_resize()
        ready, _, _ = select.select([self._fd], [], [], max(timeout, 0))
        if not ready:
            return self._check_resize()
        try:
            data = os.read(self._fd, 1024)
        except OSError:
            return []
        if not data:  # the terminal went away
            return ["quit"]
        return parse_keys(data)

    def _check_resize(self) -> list[str]:
        if (
            self._frame is not None
            and self._view is not None
            and self._size is None
            and self._terminal_size() != self._drawn_size
        ):
            self.show(None, self._view)
        return []
