"""Running a demo scene: the esper loop, the renderer when there is one, and the final report."""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import esper

from engine_scripting.demo.console_view import compress_console
from engine_scripting.demo.scenes import COMPONENTS, SCENES, SPATIAL, load_scripts
from engine_scripting.ecs import Console, ScriptSystem, WorldApi
from engine_scripting.engine import ScriptEngine, ScriptResourceLimits
from engine_scripting.manager import ScriptManager, ScriptStatus

if TYPE_CHECKING:
    from engine_scripting.demo.render import Renderer

DEMO_LIMITS = ScriptResourceLimits(max_memory_mb=16, max_execution_time_ms=25,
                                   max_recursion_depth=200)
FRAME_DT = 1 / 60
HEADLESS_FRAMES = 300


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What one scene run left behind: its scripts' stats and the console's last lines."""

    scene: str
    frames: int
    statuses: tuple[ScriptStatus, ...]
    console_tail: tuple[str, ...]


def pygame_available() -> bool:
    """Whether pygame-ce (the ``demo`` extra) is installed."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame  # noqa: F401
    except ImportError:
        return False
    return True


def has_display() -> bool:
    """Whether a window can be opened (a display server on Linux; assumed elsewhere)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def run_scene(name: str, *, frames: int | None, headless: bool, snapshot: str | None,
              engine: ScriptEngine, render: bool = True, seed: int = 7) -> DemoResult:
    """Run one scene for ``frames`` frames (None: until the window is closed).

    Renders with pygame-ce when it is installed and ``render`` or ``snapshot`` asks for it;
    ``headless`` renders off-screen (SDL's dummy driver). ``seed`` places the starting entities.
    """
    scene = SCENES[name]
    world = f"demo-{name}"
    previous = esper.current_world
    esper.switch_world(world)
    manager = ScriptManager(engine, initializers=[WorldApi()])
    renderer = _renderer(scene.name, headless) if render or snapshot else None
    try:
        load_scripts(manager, scene)
        system = ScriptSystem(manager, components=COMPONENTS, spatial=SPATIAL)
        for template, components, script in scene.templates:
            system.register_template(template, components=components, script=script)
        esper.add_processor(system)
        scene.populate(random.Random(seed))
        clock = _clock(renderer, headless)
        frame = 0
        while frames is None or frame < frames:
            esper.process(FRAME_DT)
            frame += 1
            if renderer is not None:
                renderer.draw(scene.name, frame, manager.statuses())
                if renderer.closed():
                    break
                if clock is not None:
                    clock()
        if snapshot and renderer is not None:
            renderer.save(snapshot)
        [(_, console)] = esper.get_component(Console)
        tail = tuple(f"{level:<8}{text}" for level, text in
                     compress_console(console.messages, 14))
        return DemoResult(scene.name, frame, manager.statuses(), tail)
    finally:
        for script in manager.names():
            manager.unload(script)
        if renderer is not None:
            renderer.close()
        esper.switch_world(previous)
        esper.delete_world(world)


def _renderer(title: str, headless: bool) -> Renderer | None:
    if headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        from engine_scripting.demo.render import Renderer
    except ImportError:
        return None
    return Renderer(f"engine-scripting demo: {title}")


def _clock(renderer: Renderer | None, headless: bool) -> Callable[[], None] | None:
    if renderer is None or headless:
        return None
    import pygame

    ticker = pygame.time.Clock()

    def wait() -> None:
        ticker.tick(60)

    return wait


def format_result(result: DemoResult) -> str:
    """The stats table and console tail of a finished scene, as text."""
    lines = [f"scene {result.scene}: {result.frames} frames", "",
             f"{'script':<10}{'instances':>10}{'calls':>7}{'avg ms':>9}{'max ms':>9}"
             f"{'memory KiB':>12}{'errors':>8}  status"]
    for status in result.statuses:
        state = "enabled" if status.enabled else f"DISABLED: {status.disabled_reason}"
        lines.append(f"{status.name:<10}{status.instances:>10}{status.calls:>7}"
                     f"{status.average_time_s * 1e3:>9.3f}{status.max_time_s * 1e3:>9.3f}"
                     f"{status.memory_used / 1024:>12.1f}{status.error_count:>8}  {state}")
    lines += ["", "console (last lines):", *(f"  {line}" for line in result.console_tail), ""]
    return "\n".join(lines)
