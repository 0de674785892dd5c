"""SDL window output through pygame (the optional ``play`` extra: ``pip install m3cvc[play]``).

The frame is scaled with :func:`.output.scale_frame` into the largest rectangle of its aspect
ratio that fits the window (black bars elsewhere); the window is resizable, ``f`` toggles
fullscreen, and ``t`` draws the clip number and description on a translucent band at the
bottom.  The title shows the file and the clip.  ``screenshot`` saves the window's surface
(exactly what was drawn) when playing stops.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .output import View, fit_rect, scale_frame
from .state import PlayerError

__all__ = ["SDLOutput", "default_scale", "import_pygame", "wrap_text"]

MISSING_PYGAME = (
    "pygame is not installed: install the player's extra with "
    "pip install 'm3cvc[play]', or play in the terminal with --terminal"
)


def import_pygame():
    """pygame, without its greeting; PlayerError with the install hint when it is missing."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame
    except ImportError as err:
        raise PlayerError(MISSING_PYGAME) from err
    return pygame


def default_scale(width: int, height: int, screen: tuple[int, int] | None = None) -> int:
    """An integer zoom for small streams (a window at least ~640 pixels wide, at most 4x),
    reduced until the window fits 90% of ``screen``."""
    scale = max(1, min(4, 640 // max(width, 1)))
    if screen and screen[0] > 0 and screen[1] > 0:
        while scale > 1 and (width * scale > 0.9 * screen[0] or height * scale > 0.9 * screen[1]):
            scale -= 1
    return scale


def wrap_text(text: str, width: int, measure) -> list[str]:
    """Words of ``text`` in lines no wider than ``width`` by ``measure(str) -> pixels``
    (a word wider than a line is cut)."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if measure(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        while measure(word) > width and len(word) > 1:
            cut = len(word)
            while cut > 1 and measure(word[:cut]) > width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    if line:
        lines.append(line)
    return lines


class SDLOutput:
    """A pygame window (see the module documentation).  ``scale``: window size as a factor
    of the stream's (default :func:`default_scale`)."""

    def __init__(self, name: str, *, scale: float | None = None, screenshot: str | Path | None = None) -> None:
        self.pygame = import_pygame()
        self.name = Path(name).name if name else "m3v-play"
        self.scale = scale
        self.screenshot = Path(screenshot) if screenshot else None
        self.screenshot_frame: int | None = None
        self.screen: Any = None  # the pygame display surface while the window is open
        self._frame: Any = None  # the frame on screen (RGB uint8)
        self._view: View | None = None
        self._fullscreen = False
        self._window_size = (0, 0)
        self._title: str | None = None
        self._fonts: dict[int, object] = {}

    # -------------------------------------------------------------- window

    def start(self, source, state=None) -> None:
        pg = self.pygame
        try:
            pg.display.init()
            driver = pg.display.get_driver()
            if driver in ("offscreen", "dummy") and os.environ.get("SDL_VIDEODRIVER") != driver:
                # SDL fell back to drawing nowhere: there is no display to open a window on
                raise pg.error("no display found")
            info = pg.display.Info()
            screen = (info.current_w, info.current_h) if info.current_w > 0 else None
            scale = self.scale or default_scale(source.width, source.height, screen)
            self._window_size = (max(1, round(source.width * scale)), max(1, round(source.height * scale)))
            self.screen = pg.display.set_mode(self._window_size, pg.RESIZABLE)
        except pg.error as err:
            pg.display.quit()
            raise PlayerError(f"cannot open a window ({err}): set DISPLAY, or use --terminal or --headless") from err
        try:
            pg.font.init()
        except Exception:  # pragma: no cover - a pygame built without SDL_ttf: no overlay text
            pass
        pg.key.set_repeat(350, 60)
        pg.display.set_caption(f"{self.name} - m3v-play")

    def stop(self) -> None:
        pg = self.pygame
        if self.screen is not None and self.screenshot is not None and self._frame is not None:
            pg.image.save(self.screen, str(self.screenshot))
            self.screenshot_frame = self._view.frame if self._view else None
        self.screen = None
        pg.display.quit()

    def _set_fullscreen(self, on: bool) -> None:
        pg = self.pygame
        if on == self._fullscreen:
            return
        if on:
            self._window_size = self.screen.get_size()
            self.screen = pg.display.set_mode((0, 0), pg.FULLSCREEN)
        else:
            self.screen = pg.display.set_mode(self._window_size, pg.RESIZABLE)
        self._fullscreen = on

    # -------------------------------------------------------------- drawing

    def _font(self, size: int):
        font = self._fonts.get(size)
        if font is None:
            font = self._fonts[size] = self.pygame.font.Font(None, size)
        return font

    def show(self, frame, view: View) -> None:
        if frame is not None:
            self._frame = frame
        self._view = view
        if self._frame is None or self.screen is None:
            return
        self._set_fullscreen(view.fullscreen)
        self._draw()
        title = f"{self.name} - clip {view.clip + 1}/{view.clip_count}{' (paused)' if view.paused else ''} - m3v-play"
        if title != self._title:
            self.pygame.display.set_caption(title)
            self._title = title

    def _draw(self) -> None:
        pg = self.pygame
        screen = self.screen
        assert self._view is not None  # show() sets it before drawing
        sw, sh = screen.get_size()
        h, w = self._frame.shape[:2]
        x, y, fw, fh = fit_rect(w, h, sw, sh)
        if (fw, fh) != (sw, sh):
            screen.fill((0, 0, 0))
        image = scale_frame(self._frame, fw, fh)
        screen.blit(pg.image.frombuffer(image.tobytes(), (fw, fh), "RGB"), (x, y))
        if self._view.overlay:
            self._draw_overlay(sw, sh)
        pg.display.flip()

    def _draw_overlay(self, sw: int, sh: int) -> None:
        pg = self.pygame
        view = self._view
        assert view is not None
        if not pg.font.get_init():
            return
        size = max(16, min(32, sh // 18))
        font = self._font(size)
        margin = max(6, size // 2)
        head = f"Clip {view.clip + 1}/{view.clip_count}   frame {view.frame + 1}/{view.frame_count}"
        if view.paused:
            head += "   [paused]"
        body = wrap_text(view.description or "(no description)", sw - 2 * margin, lambda s: font.size(s)[0])
        line_h = font.get_linesize()
        max_lines = max(1, (sh // 2) // line_h - 1)
        if len(body) > max_lines:
            body = body[:max_lines]
            body[-1] = body[-1][: max(len(body[-1]) - 1, 0)] + "\u2026"
        band_h = (len(body) + 1) * line_h + 2 * margin
        band = pg.Surface((sw, band_h), pg.SRCALPHA)
        band.fill((0, 0, 0, 160))
        self.screen.blit(band, (0, sh - band_h))
        ty = sh - band_h + margin
        self.screen.blit(font.render(head, True, (255, 220, 120)), (margin, ty))
        for line in body:
            ty += line_h
            self.screen.blit(font.render(line, True, (255, 255, 255)), (margin, ty))

    # -------------------------------------------------------------- events

    def _name(self, event) -> str | None:
        pg = self.pygame
        named = {
            pg.K_SPACE: "space",
            pg.K_LEFT: "left",
            pg.K_RIGHT: "right",
            pg.K_ESCAPE: "escape",
            pg.K_COMMA: ",",
            pg.K_PERIOD: ".",
            pg.K_LESS: ",",
            pg.K_GREATER: ".",
        }
        if event.key in named:
            return named[event.key]
        if event.unicode and event.unicode.isprintable():
            return event.unicode
        return pg.key.name(event.key) or None

    def poll(self, timeout: float) -> list[str]:
        pg = self.pygame
        events = pg.event.get()
        if not events and timeout > 0:
            if timeout < 0.001:
                time.sleep(timeout)
            else:
                event = pg.event.wait(max(1, int(timeout * 1000)))
                if event.type != pg.NOEVENT:
                    events = [event] + pg.event.get()
        keys: list[str] = []
        redraw = False
        for event in events:
            if event.type == pg.QUIT:
                keys.append("quit")
            elif event.type == pg.KEYDOWN:
                name = self._name(event)
                if name:
                    keys.append(name)
            elif event.type in (
                pg.VIDEORESIZE,
                pg.VIDEOEXPOSE,
                getattr(pg, "WINDOWSIZECHANGED", -1),
                getattr(pg, "WINDOWEXPOSED", -1),
            ):
                redraw = True
        if redraw and self._frame is not None and self.screen is not None:
            self.screen = pg.display.get_surface()
            self._draw()
        return keys
