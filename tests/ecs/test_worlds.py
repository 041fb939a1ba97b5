"""Worlds: everything works under esper.switch_world, and two worlds share nothing."""

from __future__ import annotations

import esper

from engine_scripting import Console, Script, ScriptEngine, ScriptManager, ScriptSystem, WorldApi
from tests.ecs.support import ALL, COMPONENTS, Position

COUNTER = """
local ticks = 0
function on_update(self)
  ticks = ticks + 1
  local p = world.get(self.entity, "Position")
  world.set(self.entity, "Position", {x = p.x + 1, y = ticks})
  print(esper_world_marker or "none", ticks)
end
"""


def test_two_worlds_with_their_own_systems_share_nothing(engine: ScriptEngine,
                                                         world: str) -> None:
    setups = {}
    for name in ("left", "right"):
        esper.switch_world(f"{world}-{name}")
        manager = ScriptManager(engine, initializers=[WorldApi()])
        esper.add_processor(ScriptSystem(manager, components=COMPONENTS))
        manager.load("counter", COUNTER, permissions=ALL)
        entities = [esper.create_entity(Position(0.0, 0.0), Script("counter"))
                    for _ in range(2 if name == "left" else 1)]
        setups[name] = (manager, entities)
    for _ in range(3):
        for name in ("left", "right"):
            esper.switch_world(f"{world}-{name}")
            esper.process(0.1)
    esper.switch_world(f"{world}-left")
    left = [esper.component_for_entity(e, Position) for e in setups["left"][1]]
    [(_, left_console)] = esper.get_component(Console)
    esper.switch_world(f"{world}-right")
    right = [esper.component_for_entity(e, Position) for e in setups["right"][1]]
    [(_, right_console)] = esper.get_component(Console)
    # entity ids restart per world: entity 1 exists in both, each with its own instance
    assert setups["left"][1][0] == setups["right"][1][0]
    assert [p.x for p in left] == [3.0, 3.0] and [p.y for p in left] == [5.0, 6.0]
    assert [p.x for p in right] == [3.0] and [p.y for p in right] == [3.0]
    assert len(left_console.messages) == 6 and len(right_console.messages) == 3
    assert left_console is not right_console
    for name in ("left", "right"):
        esper.switch_world(f"{world}-{name}")
        setups[name][0].unload("counter")
    esper.switch_world(world)
    esper.delete_world(f"{world}-left")
    esper.delete_world(f"{world}-right")
