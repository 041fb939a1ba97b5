"""Benchmarks of world.query and world.nearest, each beside its hand-written twin.

- "query movers": one system script (on one manager entity, read and write scope "any") moves
  every entity through ``world.query("Position", "Velocity")`` and ``world.set``, as the
  movers scene's hand-written Processor (``PlainMovers``) does;
- "nearest": one system script makes ``LOOKUPS`` ``world.nearest`` calls per tick over a static
  world of Position entities; its twins are a Processor making the same lookups on a
  SpatialIndex of its own (the same code, without the scripting layer) and a brute-force scan
  of the world per lookup (what a game without an index would write);
- the index refresh: what the first lookup of a tick costs when every position moved.

Figures are per entity per frame (query movers), per lookup (nearest) and per entity (the
refresh), medians of interleaved rounds (see report.py).
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import esper

from engine_scripting.bench.scenes import LIMITS, PlainMovers
from engine_scripting.bench.timing import interleaved
from engine_scripting.demo.scenes import Position, Velocity
from engine_scripting.ecs import Script, ScriptSystem, WorldApi
from engine_scripting.ecs._schema import build_schemas
from engine_scripting.ecs._spatial import SpatialIndex, spatial_config
from engine_scripting.engine import ScriptEngine
from engine_scripting.manager import ScriptManager
from engine_scripting.permissions import Permissions

LOOKUPS = 1000      # world.nearest calls per tick in the nearest scene
RADIUS = 50.0
SIDE = 1000.0       # the nearest scene's entities lie in a SIDE x SIDE square
GRANTS = Permissions(read={"Position", "Velocity"}, write={"Position", "Velocity"}, scope="any")

QUERY_MOVERS = """
    function on_update(self, dt)
      for e, p, v in world.query("Position", "Velocity") do
        local x = p.x + v.x * dt
        if x < 0 or x > 100 then
          v.x = -v.x
          world.set(e, "Velocity", v)
        end
        p.x, p.y = x, p.y + v.y * dt
        world.set(e, "Position", p)
      end
    end"""

# the lookup points: a linear congruential sequence, the same in Lua and in Python
NEAREST = f"""
    local seed = 1
    function on_update(self, dt)
      local found = 0
      seed = 1
      for _ = 1, {LOOKUPS} do
        seed = (seed * 1103515245 + 12345) % 2147483648
        local x = seed % 1000
        seed = (seed * 1103515245 + 12345) % 2147483648
        if world.nearest(x, seed % 1000, {RADIUS}) then found = found + 1 end
      end
    end"""

_worlds = itertools.count()


def _points() -> list[tuple[float, float]]:
    seed, points = 1, []
    for _ in range(LOOKUPS):
        seed = (seed * 1103515245 + 12345) % 2147483648
        x = seed % 1000
        seed = (seed * 1103515245 + 12345) % 2147483648
        points.append((float(x), float(seed % 1000)))
    return points


class PlainNearest(esper.Processor):
    """The nearest scene's lookups on a SpatialIndex of its own, from Python (its grid
    is checked once per tick, as the system's is)."""

    def __init__(self, system: ScriptSystem) -> None:
        config = spatial_config(system.schemas, ("Position", "x", "y"))
        assert config is not None
        self.tick = 0
        self.index = SpatialIndex(config, lambda: self.tick)
        self.points = _points()

    def process(self, dt: float) -> None:
        self.tick += 1
        nearest = self.index.nearest
        for x, y in self.points:
            nearest(x, y, RADIUS, None, None)


class BruteNearest(esper.Processor):
    """The nearest scene's first LOOKUPS // 100 lookups as scans of every entity (all of
    them would take seconds per frame)."""

    def __init__(self) -> None:
        self.points = _points()[:LOOKUPS // 100]

    def process(self, dt: float) -> None:
        holders = esper.get_component(Position)
        limit = RADIUS * RADIUS
        for x, y in self.points:
            best, best_distance = None, limit
            for entity, position in holders:
                dx, dy = position.x - x, position.y - y
                distance = dx * dx + dy * dy
                if distance < best_distance or (distance == best_distance and best is not None
                                                 and entity < best):
                    best, best_distance = entity, distance


def build_query_movers(count: int, engine: ScriptEngine | None) -> str:
    """A world of ``count`` movers run by one system script (``engine``) or, with None, by the
    hand-written Processor; returns its name, left current after one frame."""
    name = f"bench-query-{count}-{next(_worlds)}"
    esper.switch_world(name)
    if engine is None:
        esper.add_processor(PlainMovers())
    else:
        manager = ScriptManager(engine, initializers=[WorldApi()])
        manager.load("system", QUERY_MOVERS, permissions=GRANTS)
        esper.add_processor(ScriptSystem(manager, components=[Position, Velocity]))
        esper.create_entity(Script("system"))
    for index in range(count):
        esper.create_entity(Position(float(index % 100), float(index % 37)),
                            Velocity(1.0 + index % 3, 0.5))
    esper.process(0.016)
    return name


def build_nearest(count: int, engine: ScriptEngine, variant: str) -> str:
    """A static world of ``count`` Position entities whose lookups run as ``variant``:
    "scripted", "plain" (the index from Python) or "brute"."""
    name = f"bench-nearest-{variant}-{count}-{next(_worlds)}"
    esper.switch_world(name)
    manager = ScriptManager(engine, initializers=[WorldApi()])
    system = ScriptSystem(manager, components=[Position, Velocity],
                          spatial=("Position", "x", "y"))
    if variant == "scripted":
        manager.load("nearest", NEAREST, permissions=GRANTS)
        esper.add_processor(system)
        esper.create_entity(Script("nearest"))
    elif variant == "plain":
        esper.add_processor(PlainNearest(system))
    else:
        esper.add_processor(BruteNearest())
    seed = 7
    for _ in range(count):
        seed = (seed * 1103515245 + 12345) % 2147483648
        x = seed / 2147483648 * SIDE
        seed = (seed * 1103515245 + 12345) % 2147483648
        esper.create_entity(Position(x, seed / 2147483648 * SIDE))
    esper.process(0.016)
    return name


@dataclass(frozen=True, slots=True)
class QueryFigures:
    """What ``measure`` found (microseconds)."""

    entities: int
    query_us: float            # query movers, scripted, per entity per frame
    query_plain_us: float      # the hand-written Processor, per entity per frame
    nearest_us: float          # one world.nearest from a script
    nearest_plain_us: float    # the same lookup on the index, from Python
    nearest_brute_us: float    # the same lookup as a scan of every entity
    refresh_us: float          # re-indexing, per entity, after every position moved


def _refresh_us(count: int, rounds: int) -> float:
    """Re-indexing after every position moved, per entity."""
    esper.switch_world(f"bench-refresh-{count}-{next(_worlds)}")
    world = esper.current_world
    for number in range(count):
        esper.create_entity(Position(float(number % 997), float(number % 991)))
    config = spatial_config(build_schemas((Position, Velocity)), ("Position", "x", "y"))
    assert config is not None
    tick = [0]
    index = SpatialIndex(config, lambda: tick[0])
    positions = [position for _, position in esper.get_component(Position)]
    samples = []
    for _ in range(rounds):
        for position in positions:
            position.x += 0.5
        tick[0] += 1
        started = time.perf_counter()
        index.grid()
        samples.append(time.perf_counter() - started)
    esper.switch_world("default")
    esper.delete_world(world)
    return statistics.median(samples) / count * 1e6


def measure(count: int, rounds: int, progress: Callable[[str], None]) -> QueryFigures:
    """Query movers and nearest at ``count`` entities, each beside its twins, interleaved."""
    engine = ScriptEngine(LIMITS)
    try:
        progress(f"world.query movers at {count} entities")
        # two copies of each, built in alternating order (see report.measure_scenes)
        worlds = {(variant, copy): build_query_movers(count, engine if variant == "scripted"
                                                      else None)
                  for copy in range(2)
                  for variant in (("scripted", "plain") if copy == 0 else ("plain", "scripted"))}
        per_copy = interleaved(worlds, dict.fromkeys(worlds, count), rounds)
        movers = {variant: statistics.fmean(per_copy[variant, copy] for copy in range(2))
                  for variant in ("scripted", "plain")}
        progress(f"world.nearest over {count} entities")
        lookups = {variant: build_nearest(count, engine, variant)
                   for variant in ("scripted", "plain", "brute")}
        nearest = interleaved(lookups, {"scripted": LOOKUPS, "plain": LOOKUPS,
                                         "brute": LOOKUPS // 100}, max(3, rounds // 3))
        for name in (*worlds.values(), *lookups.values()):
            esper.switch_world("default")
            esper.delete_world(name)
        return QueryFigures(
            entities=count, query_us=movers["scripted"], query_plain_us=movers["plain"],
            nearest_us=nearest["scripted"], nearest_plain_us=nearest["plain"],
            nearest_brute_us=nearest["brute"], refresh_us=_refresh_us(count, rounds))
    finally:
        engine.close()


def targets(figures: QueryFigures) -> list[tuple[str, float, float, str]]:
    """The rows of the targets table: (figure, measured, target, detail)."""
    count = f"{figures.entities:,}"
    return [
        ("query system", figures.query_us / figures.query_plain_us, 3.0,
         f"world.query movers at {count} entities vs the hand-written Processor"),
        ("nearest", figures.nearest_us / figures.nearest_plain_us, 3.0,
         f"one world.nearest over {count} entities vs the same lookup from Python"),
    ]


def describe(figures: QueryFigures) -> list[str]:
    """The figures as report lines."""
    return [
        f"world.query movers, {figures.entities} entities: {figures.query_us:.3f} us per entity "
        f"(hand-written Processor {figures.query_plain_us:.3f}: "
        f"{figures.query_us / figures.query_plain_us:.1f}x)",
        f"world.nearest over {figures.entities} entities: {figures.nearest_us:.2f} us per lookup "
        f"(the index from Python {figures.nearest_plain_us:.2f}, a scan of the world "
        f"{figures.nearest_brute_us:.0f}); re-indexing after all moved: "
        f"{figures.refresh_us:.3f} us per entity",
    ]
