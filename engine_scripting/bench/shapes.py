"""Game shapes beyond steady movers (issue 17): a broadcast event every tick, reading entities
that run no script, and one script in a growing world. Each is a ratio of worlds timed side by
side in this process (``timing.interleaved``):

- ``broadcast``: receivers with an empty ``on_event`` get one host broadcast per tick, against the
  same world without it; the difference per receiving instance, in bare lupa calls;
- ``foreign read``: every instance reads the Position of an entity that runs no script (its own
  such entity, or one shared by all: a player), against reading its own;
- ``growth``: one scripted mover among 1,000 or 10,000 entities it never touches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

import esper

from engine_scripting.bench.scenes import LIMITS, drop_scene
from engine_scripting.bench.timing import build_bare_calls, interleaved
from engine_scripting.demo.scenes import Position
from engine_scripting.ecs import Script, ScriptSystem, WorldApi
from engine_scripting.engine import ScriptEngine
from engine_scripting.manager import ScriptManager
from engine_scripting.permissions import Permissions

RECEIVERS = 1000
SMALL_WORLD, BIG_WORLD = 1000, 10000
SOURCES = MappingProxyType({
    "receiver": "function on_event(self, name, payload) end\nfunction on_update(self, dt) end",
    "own": "function on_update(self, dt) local p = world.get(self.entity, 'Position') end",
    "foreign": "function on_update(self, dt) local p = world.get(self.params.other, 'Position')"
               " end",
    "mover": "function on_update(self, dt)\n  local p = world.get(self.entity, 'Position')\n"
             "  world.set(self.entity, 'Position', {x = p.x + dt, y = p.y})\nend",
})
_READ_ANY = Permissions(read={"Position"}, write={"Position"}, read_scope="any")


@dataclass(frozen=True, slots=True)
class ShapeFigures:
    """What ``measure`` found (microseconds)."""

    receivers: int
    broadcast_us: float        # frame with one broadcast per tick, per receiving instance
    quiet_us: float            # the same world without it, per instance
    own_read_us: float         # per instance reading its own Position
    foreign_read_us: float     # per instance reading another entity's (one each)
    shared_read_us: float      # per instance reading the same other entity
    small_world_us: float      # one scripted mover among SMALL_WORLD entities, per frame
    big_world_us: float        # ... among BIG_WORLD
    bare_call_us: float


class Broadcaster(esper.Processor):
    """Sends the scripts one broadcast event from the host every tick."""

    def __init__(self, system: ScriptSystem) -> None:
        self.system = system

    def process(self, dt: float) -> None:
        self.system.send("ping", {"dt": dt})


def build_shape(shape: str, engine: ScriptEngine, count: int, extra: int = 0,
                broadcast: bool = False) -> str:
    """A world of ``count`` entities running script ``shape`` (SOURCES), ``extra`` entities with
    only a Position, and a Broadcaster when ``broadcast``; after two ticks. Returns its name."""
    name = f"bench-shape-{shape}-{count}-{extra}-{broadcast}-{time.perf_counter_ns()}"
    esper.switch_world(name)
    manager = ScriptManager(engine, initializers=[WorldApi()])
    manager.load(shape, SOURCES[shape], permissions=_READ_ANY)
    system = ScriptSystem(manager, components=[Position], hot_reload_interval_s=None)
    esper.add_processor(system)
    if broadcast:
        esper.add_processor(Broadcaster(system), priority=10)
    plain = [esper.create_entity(Position(float(i), 0.0)) for i in range(max(extra, 1))]
    for index in range(count):
        params = {"other": plain[index % len(plain)]} if shape == "foreign" else None
        esper.create_entity(Position(float(index), 1.0), Script(shape, params=params))
    esper.process(0.016)
    esper.process(0.016)
    return name


def measure(rounds: int, progress: Callable[[str], None],
            receivers: int = RECEIVERS) -> ShapeFigures:
    """Every shape, interleaved in this process."""
    progress(f"game shapes: a broadcast to {receivers} instances, foreign reads, one script in "
             f"worlds of {SMALL_WORLD} and {BIG_WORLD} entities")
    engine = ScriptEngine(LIMITS)
    worlds = {
        "broadcast": build_shape("receiver", engine, receivers, broadcast=True),
        "quiet": build_shape("receiver", engine, receivers),
        "own": build_shape("own", engine, receivers, extra=receivers),
        "foreign": build_shape("foreign", engine, receivers, extra=receivers),
        "shared": build_shape("foreign", engine, receivers, extra=1),
        "small": build_shape("mover", engine, 1, extra=SMALL_WORLD),
        "big": build_shape("mover", engine, 1, extra=BIG_WORLD),
        "bare": build_bare_calls(receivers),
    }
    per = {key: 1 if key in ("small", "big") else receivers for key in worlds}
    try:
        us = interleaved(worlds, per, rounds, frames=5)
    finally:
        for name in worlds.values():
            drop_scene(name)
        engine.close()
    return ShapeFigures(receivers=receivers, broadcast_us=us["broadcast"], quiet_us=us["quiet"],
                        own_read_us=us["own"], foreign_read_us=us["foreign"],
                        shared_read_us=us["shared"],
                        small_world_us=us["small"], big_world_us=us["big"],
                        bare_call_us=us["bare"])


def targets(figures: ShapeFigures) -> list[tuple[str, float, float, str]]:
    """The rows of the targets table: (figure, measured, target, detail)."""
    event_us = figures.broadcast_us - figures.quiet_us
    return [
        ("broadcast", event_us / figures.bare_call_us, 2.0,
         f"one broadcast per tick, extra cost per receiving instance ({figures.receivers:,}) "
         "vs one bare lupa call"),
        ("foreign read", figures.foreign_read_us / figures.own_read_us, 1.5,
         "each instance reads a Position of an entity that runs no script, vs its own"),
        ("shared read", figures.shared_read_us / figures.own_read_us, 1.5,
         "each instance reads the Position of one entity that runs no script, vs its own"),
        ("growth", figures.big_world_us / figures.small_world_us, 1.2,
         f"one scripted mover among {BIG_WORLD:,} vs {SMALL_WORLD:,} entities it never touches"),
    ]


def describe(figures: ShapeFigures) -> list[str]:
    """The figures as report lines."""
    return [
        f"broadcast to {figures.receivers} instances: {figures.broadcast_us:.3f} us per "
        f"instance per frame with one event per tick, {figures.quiet_us:.3f} without; a bare "
        f"lupa call {figures.bare_call_us:.3f}",
        f"reading a Position: {figures.own_read_us:.3f} us per instance its own, "
        f"{figures.foreign_read_us:.3f} another entity's, {figures.shared_read_us:.3f} one "
        "entity's shared by all",
        f"one scripted mover: {figures.small_world_us:.1f} us per frame among {SMALL_WORLD} "
        f"entities, {figures.big_world_us:.1f} among {BIG_WORLD}",
    ]
