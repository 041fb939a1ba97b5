"""Component tables: world.get returns one table per instance and component, refreshed by every
get, that holds only the component's fields."""

from __future__ import annotations

import esper

from engine_scripting import Permissions, ScriptManager
from tests.ecs.conftest import Loader
from tests.ecs.support import Health, Position, console_texts

ANY = Permissions(read={"Position", "Health"}, write={"Position", "Health"}, scope="any")


def test_get_returns_the_same_table_refreshed_from_the_world(spawn_scripted: Loader) -> None:
    entity = spawn_scripted("refresh", """
        function on_update(self)
          local p = world.get(self.entity, "Position")
          p.x = 50                                    -- not written: the next get refreshes it
          local again = world.get(self.entity, "Position")
          print(rawequal(p, again), p.x, KEPT == nil or rawequal(KEPT, p))
          KEPT = p
        end""", Position(1.0, 2.0))
    esper.process(0.1)
    esper.component_for_entity(entity, Position).x = 3.0   # the host changes it between ticks
    esper.process(0.1)
    assert console_texts() == ["true\t1.0\ttrue", "true\t3.0\ttrue"]
    assert esper.component_for_entity(entity, Position) == Position(3.0, 2.0)


def test_the_changed_table_passed_back_updates_the_component(spawn_scripted: Loader) -> None:
    entity = spawn_scripted("stepper", """
        function on_update(self)
          local p = world.get(self.entity, "Position")
          p.x = p.x + 1
          world.set(self.entity, "Position", p)
          p.y = nil                                  -- a missing field keeps its value
          p.x = p.x + 1
          world.set(self.entity, "Position", p)
          p.y = 7                                    -- a removed field may come back
          print(world.get(self.entity, "Position").y, p.y)
        end""", Position(0.0, 5.0))
    for _ in range(3):
        esper.process(0.1)
    assert esper.component_for_entity(entity, Position) == Position(6.0, 5.0)
    assert console_texts() == ["5.0\t5.0"] * 3


def test_a_component_table_holds_only_fields(spawn_scripted: Loader) -> None:
    entity = spawn_scripted("sealed", """
        function on_update(self)
          local p = world.get(self.entity, "Position")
          print(pcall(function() p.z = 1 end))
          print(pcall(function() p[1] = 1 end))
          print(pcall(setmetatable, p, {}))
          print(getmetatable(p))
          local keys = {}
          for k in pairs(p) do keys[#keys + 1] = k end
          table.sort(keys)
          print(table.concat(keys, ","))
        end""", Position(1.0, 2.0))
    esper.process(0.1)
    texts = console_texts()
    assert texts[0].startswith("false\t") and "Position has no field 'z'" in texts[0]
    assert texts[1].startswith("false\t") and "Position has no field '1'" in texts[1]
    assert texts[2].startswith("false\t") and "protected metatable" in texts[2]
    assert texts[3] == "component table"
    assert texts[4] == "x,y"
    assert esper.component_for_entity(entity, Position) == Position(1.0, 2.0)


def test_values_put_in_a_component_table_are_checked_by_set(spawn_scripted: Loader) -> None:
    entity = spawn_scripted("checked", """
        function on_update(self)
          local p = world.get(self.entity, "Position")
          p.x = "far"
          print(pcall(world.set, self.entity, "Position", p))
          p = world.get(self.entity, "Position")
          p.y = 0/0
          print(pcall(world.set, self.entity, "Position", p))
          local h = world.get(self.entity, "Health")
          h.value = 1.5
          print(pcall(world.set, self.entity, "Health", h))
          p = world.get(self.entity, "Position")
          rawset(p, "z", {})                          -- forced past the metatable: ignored
          p.x = 4
          print(pcall(world.set, self.entity, "Position", p))
        end""", Position(1.0, 2.0), Health(5, True), permissions=ANY)
    esper.process(0.1)
    texts = console_texts()
    assert texts[0].startswith("false\t") and "must be a number" in texts[0]
    assert texts[1].startswith("false\t") and "must be a finite number" in texts[1]
    assert texts[2].startswith("false\t") and "must be an integer" in texts[2]
    assert texts[3] == "true"
    assert esper.component_for_entity(entity, Position) == Position(4.0, 2.0)
    assert esper.component_for_entity(entity, Health) == Health(5, True)


def test_tables_never_follow_another_entity(spawn_scripted: Loader,
                                           manager: ScriptManager) -> None:
    source = """
        function on_update(self)
          local p = world.get(self.entity, "Position")
          if self.entity == SECOND and KEPT == nil then KEPT = p end
          if self.entity == THIRD then print(p.x, KEPT.x, rawequal(KEPT, p)) end
        end"""
    first = spawn_scripted("pair", source, Position(1.0, 0.0), permissions=ANY)
    second = spawn_scripted("pair", source, Position(2.0, 0.0), permissions=ANY)
    third = spawn_scripted("pair", source, Position(3.0, 0.0), permissions=ANY)
    record = manager.running("pair")
    assert record is not None
    record.context.execute(f"SECOND, THIRD = {second}, {third}")
    esper.process(0.1)
    # the first instance goes: the others move to lower slots, the third to the second's; the
    # table kept from before is no longer refreshed and still holds the second entity's values
    esper.delete_entity(first, immediate=True)
    esper.process(0.1)
    assert console_texts() == ["3.0\t2.0\tfalse", "3.0\t2.0\tfalse"]
    assert esper.component_for_entity(second, Position).x == 2.0
    assert esper.component_for_entity(third, Position).x == 3.0
