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
    WorldApi,
)
from engine_scripting.bench.hostile import CATALOGUE
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


def _run(engine: ScriptEngine, world: str, hostile: bool,
         ticks: int) -> list[tuple[Position, Velocity, Health]]:
    esper.switch_world(world)
    manager = ScriptManager(engine, initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager, components=COMPONENTS))
    for name, (source, grants) in GOOD.items():
        # wall-clock limits: room for a loaded machine's pauses, so only hostile scripts stop
        manager.load(name, source, permissions=grants, limits=ScriptResourceLimits(
            max_memory_mb=16, max_execution_time_ms=2000))
    good = [esper.create_entity(Position(float(i), 0.0), Velocity(3.0 + i, 1.0), Health(0),
                                Script("mover" if i % 2 else "pinger")) for i in range(6)]
    if hostile:
        for entry in CATALOGUE:
            manager.load(entry.name, entry.source, permissions=entry.grants)
            esper.create_entity(Position(0.0, 0.0), Script(entry.name))
    for _ in range(ticks):
        esper.process(0.1)
    state = [(esper.component_for_entity(e, Position), esper.component_for_entity(e, Velocity),
              esper.component_for_entity(e, Health)) for e in good]
    for name in GOOD:
        assert manager.status(name).enabled, name
    # each hostile script ends as the catalogue expects; a slow leak needs more ticks than
    # these (tests/hardening/test_hostile.py waits for it)
    settled = [entry for entry in CATALOGUE if entry.settle_ticks(engine.limits) <= ticks]
    if hostile:
        for entry in settled:
            assert entry.problems(manager.status(entry.name)) == ()
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
