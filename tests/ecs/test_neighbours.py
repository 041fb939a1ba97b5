"""Hostile scripts beside well-behaved ones: the good scripts' results do not change."""

from __future__ import annotations

import esper

from engine_scripting import (
    Permissions,
    Script,
    ScriptEngine,
    ScriptManager,
    ScriptResourceLimits,
    ScriptSystem,
)
from tests.ecs.support import COMPONENTS, Health, Position, Velocity

GOOD = {
    "mover": ("""
        function on_update(self, dt)
          local p, v = world.get(self.entity, "Position"), world.get(self.entity, "Velocity")
          local x, vx = p.x + v.x * dt, v.x
          if x < 0 or x > 10 then vx = -vx end
          world.set(self.entity, "Position", {x = x, y = p.y + v.y * dt})
          world.set(self.entity, "Velocity", {x = vx})
        end""", Permissions(read={"Position", "Velocity"}, write={"Position", "Velocity"})),
    "pinger": ("""
        function on_update(self) world.emit("tick", {from = self.entity}) end
        function on_event(self, name, payload)
          local h = world.get(self.entity, "Health")
          world.set(self.entity, "Health", {value = h.value + 1})
        end""", Permissions(read={"Health"}, write={"Health"}, emit={"tick"})),
}

HOSTILE = {
    "looper": "function on_update(self) while true do end end",
    "bomb": "function on_update(self) local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1e5) end end",
    "thief": "function on_update(self) pcall(world.set, 1, 'Position', {x = -1}) end",
    "crasher": "function on_update(self) error('every tick') end",
    "flooder": "function on_update(self) for i = 1, 1e5 do print(i) end end",
    "escaper": """function on_update(self)
        pcall(load, string.char(27) .. 'Lua')
        pcall(function() return getmetatable('').__index.dump end)
        local ok = pcall(function() return python.eval('1') end)
      end""",
    "spammer": "function on_update(self) pcall(world.emit, 'tick', {}) end",
    "recursor": "local function f() return f() + 1 end function on_update(self) f() end",
}


def _run(engine: ScriptEngine, world: str, hostile: bool, ticks: int) -> list[object]:
    esper.switch_world(world)
    manager = ScriptManager(engine)
    esper.add_processor(ScriptSystem(manager, components=COMPONENTS))
    for name, (source, grants) in GOOD.items():
        # wall-clock limits: room for a loaded machine's pauses, so only hostile scripts stop
        manager.load(name, source, permissions=grants, limits=ScriptResourceLimits(
            max_memory_mb=16, max_execution_time_ms=2000))
    good = [esper.create_entity(Position(float(i), 0.0), Velocity(3.0 + i, 1.0), Health(0),
                                Script("mover" if i % 2 else "pinger")) for i in range(6)]
    if hostile:
        for name, source in HOSTILE.items():
            manager.load(name, source, permissions=Permissions(read={"Position"}))
            esper.create_entity(Position(0.0, 0.0), Script(name))
    for _ in range(ticks):
        esper.process(0.1)
    state = [(esper.component_for_entity(e, Position), esper.component_for_entity(e, Velocity),
              esper.component_for_entity(e, Health)) for e in good]
    for name in manager.names():
        # flooding the console is allowed (the excess is dropped); everything else is stopped
        assert manager.status(name).enabled == (name in GOOD or name == "flooder"), name
    for name in manager.names():
        manager.unload(name)
    return state


def test_good_scripts_give_the_same_results_with_hostile_neighbours(
    engine: ScriptEngine, world: str,
) -> None:
    alone = _run(engine, f"{world}-alone", hostile=False, ticks=15)
    crowded = _run(engine, f"{world}-crowded", hostile=True, ticks=15)
    esper.switch_world(world)
    esper.delete_world(f"{world}-alone")
    esper.delete_world(f"{world}-crowded")
    assert crowded == alone
    assert any(position.x != float(i) for i, (position, _, _) in enumerate(alone))
