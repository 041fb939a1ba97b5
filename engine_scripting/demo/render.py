"""Drawing demo frames with pygame-ce: entities, the per-script stats table, the console tail.

Imported only when pygame-ce is available (the ``demo`` extra).
"""

from __future__ import annotations

from typing import Any

import esper
import pygame

from engine_scripting.demo.console_view import compress_console
from engine_scripting.demo.scenes import Appearance, Position
from engine_scripting.ecs import Console, Script
from engine_scripting.manager import ScriptStatus

WIDTH, HEIGHT = 1100, 680
FIELD = 640                  # the square playing field, world units 0..100
PANEL_X = FIELD + 16
BACKGROUND = (14, 16, 24)
TEXT = (220, 224, 232)
DIM = (140, 146, 160)
BAD = (255, 96, 96)
GOOD = (120, 220, 140)


class Renderer:
    """One window (or an off-screen surface when headless) and the fonts to fill it."""

    def __init__(self, title: str) -> None:
        pygame.display.init()   # no pygame.init(): the demo needs no audio device
        pygame.font.init()
        pygame.display.set_caption(title)
        self.screen: Any = pygame.display.set_mode((WIDTH, HEIGHT))
        self.font: Any = pygame.font.Font(None, 20)
        self.small: Any = pygame.font.Font(None, 17)
        self.mono: Any = pygame.font.SysFont("dejavusansmono,couriernew,monospace", 14)

    def closed(self) -> bool:
        """Whether the user asked to close the window (or pressed Escape / N)."""
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                return True
            if event.type == pygame.KEYDOWN and event.key in (pygame.K_ESCAPE, pygame.K_n):
                return True
        return False

    def draw(self, scene: str, tick: int, statuses: tuple[ScriptStatus, ...]) -> None:
        """Draw one frame of the current esper world."""
        screen = self.screen
        screen.fill(BACKGROUND)
        pygame.draw.rect(screen, (24, 28, 40), (0, 0, FIELD, FIELD))
        scale = FIELD / 100.0
        disabled = {status.name for status in statuses if not status.enabled}
        for entity, (position, look) in esper.get_components(Position, Appearance):
            x, y = int(position.x * scale), int(FIELD - position.y * scale)
            colour = (max(0, min(255, look.r)), max(0, min(255, look.g)),
                      max(0, min(255, look.b)))
            radius = max(1, int(look.size * 2.2))
            pygame.draw.circle(screen, colour, (x, y), radius)
            link = esper.try_component(entity, Script)
            stopped = [name for name in link.names if name in disabled] if link else []
            if stopped:
                cross = radius + 5
                pygame.draw.line(screen, BAD, (x - cross, y - cross), (x + cross, y + cross), 2)
                pygame.draw.line(screen, BAD, (x - cross, y + cross), (x + cross, y - cross), 2)
                self._text("+".join(stopped), (x - 18, y + cross + 2), BAD, small=True)
        entities = len(esper.get_component(Position))
        self._text(f"scene: {scene}    tick {tick}    entities {entities}", (8, FIELD + 8), TEXT)
        self._stats(statuses)
        self._console()
        pygame.display.flip()

    def save(self, path: str) -> None:
        """Write the last frame as a PNG."""
        pygame.image.save(self.screen, path)

    def close(self) -> None:
        """Shut pygame down."""
        pygame.quit()

    def _stats(self, statuses: tuple[ScriptStatus, ...]) -> None:
        y = 10
        header = (f"{'script':<10}{'inst':>5}{'calls':>6}{'avg ms':>8}{'max ms':>8}"
                  f"{'KiB':>6}{'err':>5}")
        self._text(header, (PANEL_X, y), DIM, mono=True)
        for status in statuses:
            y += 20
            row = (f"{status.name[:10]:<10}{status.instances:>5}{status.calls:>6}"
                   f"{status.average_time_s * 1e3:>8.2f}{status.max_time_s * 1e3:>8.2f}"
                   f"{status.memory_used // 1024:>6}{status.error_count:>5}")
            self._text(row, (PANEL_X, y), TEXT if status.enabled else BAD, mono=True)
            if not status.enabled:
                y += 17
                reason = (status.disabled_reason or "disabled")[:62]
                self._text(f"  DISABLED: {reason}", (PANEL_X, y), BAD, small=True)

    def _console(self) -> None:
        consoles = esper.get_component(Console)
        if not consoles:
            return
        lines = compress_console(consoles[0][1].messages, 12)
        y = HEIGHT - 14 * 17 - 8
        self._text("console", (PANEL_X, y), DIM)
        for level, text in lines:
            y += 17
            colour = BAD if level == "error" else (DIM if level == "warning" else TEXT)
            self._text(text[:70], (PANEL_X, y), colour, small=True)

    def _text(self, text: str, at: tuple[int, int], colour: tuple[int, int, int],
              mono: bool = False, small: bool = False) -> None:
        font = self.mono if mono else (self.small if small else self.font)
        self.screen.blit(font.render(text, True, colour), at)
