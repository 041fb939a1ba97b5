"""ECS benchmark scenes: scripted entities in a fresh esper world, and their plain-Python twin.

Scenes: "empty" (``on_update`` does nothing), "movers" (Position += Velocity * dt with a wall
bounce, through world.get/set: the table world.get returned is changed and passed back, as the
hand-written Processor changes the component) and "logic" (steering toward a target with a
small state machine, writing fresh tables). Each runs sandboxed, under a trusted engine (no
sandbox: the baseline of the security tax), or, for movers, as a hand-written esper Processor.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from types import MappingProxyType

import esper

from engine_scripting.demo.scenes import Position, Velocity
from engine_scripting.ecs import Script, ScriptSystem, WorldApi
from engine_scripting.engine import ScriptEngine, ScriptResourceLimits
from engine_scripting.manager import ScriptManager
from engine_scripting.permissions import Permissions

LIMITS = ScriptResourceLimits(max_memory_mb=256, max_execution_time_ms=10_000)
GRANTS = Permissions(read={"Position", "Velocity", "Target"}, write={"Position", "Velocity"})
SCENES = ("empty", "movers", "logic")


@dataclass(slots=True)
class Target:
    x: float = 50.0
    y: float = 50.0


SCRIPTS = MappingProxyType({
    "empty": "function on_update(self, dt) end",
    "movers": """
        function on_update(self, dt)
          local p = world.get(self.entity, "Position")
          local v = world.get(self.entity, "Velocity")
          local x = p.x + v.x * dt
          if x < 0 or x > 100 then world.set(self.entity, "Velocity", {x = -v.x}) end
          p.x, p.y = x, p.y + v.y * dt
          world.set(self.entity, "Position", p)
        end""",
    "logic": """
        local sqrt, cos, sin = math.sqrt, math.cos, math.sin
        function on_start(self) self.state, self.timer = "seek", 0 end
        function on_update(self, dt)
          local p = world.get(self.entity, "Position")
          local v = world.get(self.entity, "Velocity")
          local t = world.get(self.entity, "Target")
          local dx, dy = t.x - p.x, t.y - p.y
          local dist = sqrt(dx * dx + dy * dy)
          local vx, vy = v.x, v.y
          if self.state == "seek" then
            vx = vx + (dx / (dist + 1e-9) * 20 - vx) * 0.1
            vy = vy + (dy / (dist + 1e-9) * 20 - vy) * 0.1
            if dist < 5 then self.state, self.timer = "rest", 0.5 end
          elseif self.state == "rest" then
            vx, vy = vx * 0.9, vy * 0.9
            self.timer = self.timer - dt
            if self.timer <= 0 then self.state, self.timer = "wander", 1 end
          else
            local angle = (self.entity * 0.618 + self.timer) * 6.283
            vx, vy = vx + cos(angle), vy + sin(angle)
            self.timer = self.timer - dt
            if self.timer <= 0 then self.state = "seek" end
          end
          world.set(self.entity, "Velocity", {x = vx, y = vy})
          world.set(self.entity, "Position", {x = p.x + vx * dt, y = p.y + vy * dt})
        end""",
})

_worlds = itertools.count()


class PlainMovers(esper.Processor):
    """The movers scene written by hand as an esper Processor."""

    def process(self, dt: float) -> None:
        for _, (position, velocity) in esper.get_components(Position, Velocity):
            x = position.x + velocity.x * dt
            if x < 0 or x > 100:
                velocity.x = -velocity.x
            position.x = x
            position.y += velocity.y * dt


def build_scene(scene: str, count: int, engine: ScriptEngine | None,
                profiling: bool = True) -> str:
    """Create a world holding ``count`` entities of ``scene``; return the world's name.

    ``engine`` None builds the hand-written twin (movers only). ``profiling`` is passed to the
    ScriptSystem. The world is left current; one frame has already run, so every instance has
    started.
    """
    name = f"bench-{scene}-{count}-{next(_worlds)}"
    esper.switch_world(name)
    if engine is None:
        if scene != "movers":
            raise ValueError("only the movers scene has a plain-Python twin")
        esper.add_processor(PlainMovers())
    else:
        manager = ScriptManager(engine, initializers=[WorldApi()])
        manager.load(scene, SCRIPTS[scene], permissions=GRANTS)
        esper.add_processor(ScriptSystem(manager, components=[Position, Velocity, Target],
                                         profiling=profiling))
    for index in range(count):
        parts: list[object] = [Position(float(index % 100), float(index % 37)),
                               Velocity(1.0 + index % 3, 0.5), Target()]
        if engine is not None:
            parts.append(Script(scene))
        esper.create_entity(*parts)
    esper.process(0.016)
    return name


def drop_scene(name: str) -> None:
    """Delete a world made by build_scene (its scripts' contexts go with it)."""
    esper.switch_world("default")
    esper.delete_world(name)
