"""ECS benchmark scenes: scripted entities in a fresh esper world, and their plain-Python twin.

Used by benchmarks/test_ecs.py and benchmarks/ecs_ratios.py.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from types import MappingProxyType

import esper

from engine_scripting import (
    Permissions,
    Script,
    ScriptEngine,
    ScriptManager,
    ScriptResourceLimits,
    ScriptSystem,
)

LIMITS = ScriptResourceLimits(max_memory_mb=256, max_execution_time_ms=10_000)
GRANTS = Permissions(read={"Position", "Velocity"}, write={"Position", "Velocity"})
_worlds = itertools.count()


@dataclass
class Position:
    x: float
    y: float


@dataclass
class Velocity:
    x: float = 0.0
    y: float = 0.0


SCRIPTS = MappingProxyType({
    "empty": "function on_update(self, dt) end",
    "movers": """
        function on_update(self, dt)
          local p = world.get(self.entity, "Position")
          local v = world.get(self.entity, "Velocity")
          local x, vx = p.x + v.x * dt, v.x
          if x < 0 or x > 100 then vx = -vx end
          world.set(self.entity, "Position", {x = x, y = p.y + v.y * dt})
          if vx ~= v.x then world.set(self.entity, "Velocity", {x = vx}) end
        end""",
})


class PlainMovers(esper.Processor):
    """The movers scene written by hand as an esper Processor."""

    def process(self, dt: float) -> None:
        for _, (position, velocity) in esper.get_components(Position, Velocity):
            x = position.x + velocity.x * dt
            if x < 0 or x > 100:
                velocity.x = -velocity.x
            position.x = x
            position.y += velocity.y * dt


def build_scene(kind: str, count: int, engine: ScriptEngine | None) -> str:
    """Create a world holding ``count`` entities of scene ``kind``; return the world's name.

    ``kind`` is "plain" (PlainMovers) or a key of SCRIPTS (needs ``engine``).
    """
    name = f"bench-{kind}-{count}-{next(_worlds)}"
    esper.switch_world(name)
    if kind == "plain":
        esper.add_processor(PlainMovers())
    else:
        assert engine is not None
        manager = ScriptManager(engine)
        manager.load(kind, SCRIPTS[kind], permissions=GRANTS)
        esper.add_processor(ScriptSystem(manager, components=[Position, Velocity]))
    for index in range(count):
        parts: list[object] = [Position(float(index % 100), 0.0), Velocity(1.0, 0.5)]
        if kind != "plain":
            parts.append(Script(kind))
        esper.create_entity(*parts)
    esper.process(0.016)  # starts the instances
    return name
