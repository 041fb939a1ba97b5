"""The batch cache: one fetch per component and batch, buffered writes, same results as
writing straight through to the esper world."""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass

import esper

from engine_scripting import Permissions, Script, ScriptManager, ScriptSystem
from tests.conftest import ROOMY_LIMITS
from tests.ecs.conftest import Loader
from tests.ecs.support import Fragile, Health, Position, Velocity, console_texts

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


def _positions(entities: list[int]) -> list[tuple[float, float]]:
    return [(p.x, p.y) for p in (esper.component_for_entity(e, Position) for e in entities)]


def test_every_or_some_instances_writing_lands_on_the_right_entities(
    spawn_scripted: Loader, manager: ScriptManager,
) -> None:
    # more instances than one chunk of the fetch and write-back (4,096), so that runs of
    # slots and lists of slots both cross chunk borders
    source = """
        function on_update(self)
          local p = world.get(self.entity, "Position")
          if MODE == "all" or self.entity % 3 == 0 then
            world.set(self.entity, "Position", {x = p.x + self.entity})
          end
          if self.entity % 1000 == 7 then world.set(self.entity, "Health", {value = 7}) end
        end"""
    entities = [spawn_scripted("writer", source, Position(1.0, float(i)), Health(1),
                               limits=ROOMY_LIMITS) for i in range(5000)]
    esper.process(0.1)   # MODE is nil: every third instance writes
    expected = [(1.0 + e if e % 3 == 0 else 1.0, float(i)) for i, e in enumerate(entities)]
    assert _positions(entities) == expected
    assert [e for e in entities if esper.component_for_entity(e, Health).value == 7] == [
        e for e in entities if e % 1000 == 7]
    record = manager.running("writer")
    assert record is not None
    record.context.execute('MODE = "all"')
    esper.process(0.1)
    expected = [(x + e, y) for (x, y), e in zip(expected, entities, strict=True)]
    assert _positions(entities) == expected


def test_replaced_and_removed_components_are_seen_next_tick(spawn_scripted: Loader) -> None:
    source = """
        function on_update(self)
          local p = world.get(self.entity, "Position")
          if p then world.set(self.entity, "Position", {x = p.x + 1}) end
          print(self.entity, p and p.x)
        end"""
    first = spawn_scripted("mover", source, Position(0.0, 0.0))
    second = spawn_scripted("mover", source, Position(10.0, 0.0))
    esper.process(0.1)
    replacement = Position(100.0, 0.0)
    esper.add_component(first, replacement)   # a new object: the kept one must not be used
    esper.remove_component(second, Position)
    esper.process(0.1)
    assert replacement.x == 101.0
    assert not esper.has_component(second, Position)
    esper.add_component(second, Position(50.0, 0.0))
    esper.process(0.1)
    assert esper.component_for_entity(first, Position).x == 102.0
    assert esper.component_for_entity(second, Position).x == 51.0
    assert console_texts()[-2:] == [f"{first}\t101.0", f"{second}\t50.0"]


def test_components_with_many_fields_take_the_generic_accessors(manager: ScriptManager) -> None:
    names = [f"f{i}" for i in range(70)]   # more than the generated accessors handle
    wide = make_dataclass("Wide", [(name, float, field(default=0.0)) for name in names])
    esper.add_processor(ScriptSystem(manager, components=[wide]))
    manager.load("wide", """
        function on_update(self)
          local w = world.get(self.entity, "Wide")
          world.set(self.entity, "Wide", {f0 = w.f69 + 1, f69 = w.f0 + 2})
          print(w.f35, pcall(world.set, self.entity, "Wide", {f70 = 1}))
        end""", permissions=Permissions(read={"Wide"}, write={"Wide"}))
    entity = esper.create_entity(wide(f35=3.5), Script("wide"))
    esper.process(0.1)
    esper.process(0.1)
    component = esper.component_for_entity(entity, wide)
    assert (component.f0, component.f69) == (3.0, 3.0)
    texts = console_texts()
    assert texts[0].startswith("3.5\tfalse\t") and "has no field 'f70'" in texts[0]


def test_values_changed_by_the_host_between_ticks_are_read_again(spawn_scripted: Loader) -> None:
    # batch.lua keeps its columns between batches and the host sends only the columns whose
    # values are other Python objects than last time: a change must never be missed
    source = """
        function on_update(self)
          local p = world.get(self.entity, "Position")
          print(p.x, p.y)
          world.set(self.entity, "Position", {x = p.x + 1})
        end"""
    entities = [spawn_scripted("counter", source, Position(0.0, 0.0)) for _ in range(3)]
    esper.process(0.1)
    esper.component_for_entity(entities[1], Position).x = 100.0
    esper.component_for_entity(entities[2], Position).y = -0.0
    esper.process(0.1)
    esper.process(0.1)
    assert console_texts()[3:] == ["1.0\t0.0", "100.0\t0.0", "1.0\t-0.0",
                                   "2.0\t0.0", "101.0\t0.0", "2.0\t-0.0"]


def test_a_failed_write_back_leaves_the_scripts_reading_the_worlds_value(
    manager: ScriptManager,
) -> None:
    esper.add_processor(ScriptSystem(manager, components=[Fragile]))
    manager.load("adder", """
        function on_update(self)
          local v = world.get(self.entity, "Fragile").value
          print(v)
          world.set(self.entity, "Fragile", {value = v + 1})
        end""", permissions=Permissions(read={"Fragile"}, write={"Fragile"}))
    component = Fragile()
    esper.create_entity(component, Script("adder"))
    esper.process(0.1)                                  # reads 0, writes 1
    object.__setattr__(component, "locked", True)
    esper.process(0.1)                                  # reads 1, the write of 2 fails
    object.__setattr__(component, "locked", False)
    esper.process(0.1)                                  # must read 1 again, not 2
    assert [float(text) for text in console_texts("info")] == [0.0, 1.0, 1.0]
    assert component.value == 2.0


@dataclass
class Tag:
    """A component without fields a script can see."""


def test_components_without_fields(manager: ScriptManager) -> None:
    esper.add_processor(ScriptSystem(manager, components=[Tag]))
    manager.load("tagged", """
        function on_update(self)
          print(world.has(self.entity, "Tag"), next(world.get(self.entity, "Tag")))
        end""", permissions=Permissions(read={"Tag"}))
    esper.create_entity(Tag(), Script("tagged"))
    esper.process(0.1)
    esper.process(0.1)
    assert console_texts() == ["true\tnil", "true\tnil"]
    assert manager.status("tagged").error_count == 0
