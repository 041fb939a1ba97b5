"""The batch cache: one fetch per component and batch, buffered writes, same results as
writing straight through to the esper world."""

from __future__ import annotations

import esper

from engine_scripting import Permissions, ScriptManager
from tests.ecs.conftest import Loader
from tests.ecs.support import Health, Position, Velocity, console_texts

ANY = Permissions(read={"Position", "Velocity", "Health"}, write={"Position", "Health"},
                  scope="any")


def test_writes_reach_the_world_before_the_next_script_runs(spawn_scripted: Loader,
                                                            manager: ScriptManager) -> None:
    target = esper.create_entity(Position(1.0, 1.0))
    spawn_scripted("writer", f"""
        function on_update(self) world.set({target}, "Position", {{x = 7}}) end""",
        permissions=ANY)
    spawn_scripted("reader", f"""
        function on_update(self) print(world.get({target}, "Position").x) end""",
        permissions=ANY)
    esper.process(0.1)
    assert console_texts() == ["7.0"]


def test_instance_writes_are_visible_to_later_instances_and_scripts(
    spawn_scripted: Loader, manager: ScriptManager,
) -> None:
    source = """
        function on_update(self)
          local total = 0
          for _, e in ipairs(ALL) do total = total + world.get(e, "Position").x end
          world.set(self.entity, "Position", {x = total + 1})
        end"""
    entities = [spawn_scripted("summer", source, Position(0.0, 0.0), permissions=ANY)
                for _ in range(3)]
    record = manager.running("summer")
    assert record is not None
    record.context.execute("ALL = {" + ",".join(map(str, entities)) + "}")
    esper.process(0.1)
    # each instance sees the writes of the ones before it in the same batch
    assert [esper.component_for_entity(e, Position).x for e in entities] == [1.0, 2.0, 4.0]


def test_writes_before_a_time_limit_stop_are_applied(spawn_scripted: Loader,
                                                     manager: ScriptManager) -> None:
    source = """
        function on_update(self)
          world.set(self.entity, "Position", {x = 5})
          if self.entity == LOOPER then while true do end end
        end"""
    first = spawn_scripted("partial", source, Position(0.0, 0.0), permissions=ANY)
    second = spawn_scripted("partial", source, Position(0.0, 0.0), permissions=ANY)
    record = manager.running("partial")
    assert record is not None
    record.context.execute(f"LOOPER = {second}")
    esper.process(0.1)
    assert esper.component_for_entity(first, Position).x == 5.0
    assert esper.component_for_entity(second, Position).x == 5.0
    assert manager.status("partial").last_error is not None


def test_instances_without_a_component(spawn_scripted: Loader) -> None:
    source = """
        function on_update(self)
          print(world.has(self.entity, "Velocity"), world.get(self.entity, "Velocity"),
                pcall(world.set, self.entity, "Health", {value = 1}))
        end"""
    with_parts = spawn_scripted("partial", source, Velocity(1.0, 2.0), Health(3),
                                permissions=Permissions(read={"Velocity", "Health"},
                                                        write={"Health"}))
    spawn_scripted("partial", source)
    esper.process(0.1)
    texts = console_texts()
    assert texts[0].startswith("true\ttable:") and texts[0].endswith("true")
    assert texts[1].startswith("false\tnil\tfalse") and "has no Health component" in texts[1]
    assert esper.component_for_entity(with_parts, Health).value == 1
