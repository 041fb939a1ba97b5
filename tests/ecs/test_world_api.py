"""The world API: callbacks, get/set/has/spawn/destroy/emit and print, on real esper worlds."""

from __future__ import annotations

import esper
import structlog.testing

from engine_scripting import Script, ScriptManager, ScriptSystem
from tests.ecs.conftest import Loader
from tests.ecs.support import ALL, Health, Label, Position, Velocity, console_texts


def test_on_start_runs_once_before_the_first_update(spawn_scripted: Loader) -> None:
    entity = spawn_scripted("lifecycle", """
        function on_start(self) print("start", self.entity, self.updates) end
        function on_update(self, dt)
          self.updates = (self.updates or 0) + 1
          print("update", self.updates, dt)
        end""", Position(0.0, 0.0))
    esper.process(0.25)
    esper.process(0.25)
    assert console_texts() == [f"start\t{entity}\tnil", "update\t1\t0.25", "update\t2\t0.25"]


def test_every_callback_is_optional(spawn_scripted: Loader, manager: ScriptManager) -> None:
    entity = spawn_scripted("empty", "local x = 1", Position(0.0, 0.0))
    esper.process(0.1)
    esper.delete_entity(entity)
    esper.process(0.1)
    assert manager.status("empty").error_count == 0


def test_self_is_per_instance_and_file_locals_are_per_script(spawn_scripted: Loader) -> None:
    source = """
        local shared = 0
        function on_update(self, dt)
          shared = shared + 1
          self.mine = (self.mine or 0) + 1
          world.set(self.entity, "Health", {value = shared * 100 + self.mine})
        end"""
    first = spawn_scripted("a", source, Health())
    second = spawn_scripted("a", source, Health())
    other = spawn_scripted("b", source, Health())
    esper.process(0.1)
    esper.process(0.1)
    # script a: two instances share `shared` (4 updates in total); b has its own
    assert esper.component_for_entity(first, Health).value == 302
    assert esper.component_for_entity(second, Health).value == 402
    assert esper.component_for_entity(other, Health).value == 202


def test_on_destroy_runs_when_the_entity_or_the_link_goes(spawn_scripted: Loader) -> None:
    source = """function on_destroy(self) print("destroyed", self.entity) end"""
    deleted = spawn_scripted("watcher", source, Position(0.0, 0.0))
    unlinked = spawn_scripted("watcher", source, Position(0.0, 0.0))
    esper.process(0.1)
    esper.delete_entity(deleted)
    esper.remove_component(unlinked, Script)
    esper.process(0.1)
    assert sorted(console_texts()) == [f"destroyed\t{deleted}", f"destroyed\t{unlinked}"]


def test_get_changes_nothing_and_set_updates_part_of_a_component(spawn_scripted: Loader) -> None:
    entity = spawn_scripted("mover", """
        function on_update(self, dt)
          local p = world.get(self.entity, "Position")
          p.x = 999                                   -- not passed to world.set: no effect
          local v = world.get(self.entity, "Velocity")
          world.set(self.entity, "Position", {x = p.y + v.x * dt})
          print(world.get(self.entity, "Label"), world.has(self.entity, "Label"),
                world.has(self.entity, "Velocity"))
        end""", Position(1.0, 2.0), Velocity(4.0, 0.0))
    esper.process(0.5)
    assert esper.component_for_entity(entity, Position) == Position(4.0, 2.0)
    assert console_texts() == ["nil\tfalse\ttrue"]


def test_all_field_kinds_round_trip(spawn_scripted: Loader) -> None:
    entity = spawn_scripted("kinds", """
        function on_update(self)
          local h, l = world.get(self.entity, "Health"), world.get(self.entity, "Label")
          print(math.type(h.value), h.alive, l.text)
          world.set(self.entity, "Health", {value = h.value - 1, alive = false})
          world.set(self.entity, "Label", {text = l.text .. "é"})
          world.set(self.entity, "Position", {x = 3})   -- integers are accepted for floats
        end""", Health(10, True), Label("hi"), Position(0.0, 0.0))
    esper.process(0.1)
    assert esper.component_for_entity(entity, Health) == Health(9, False)
    assert esper.component_for_entity(entity, Label) == Label("hié")
    position = esper.component_for_entity(entity, Position)
    assert position.x == 3.0 and type(position.x) is float
    assert console_texts() == ["integer\ttrue\thi"]


def test_spawn_creates_an_entity_running_a_script(spawn_scripted: Loader,
                                                  manager: ScriptManager) -> None:
    manager.load("child", """function on_start(self) print("child", self.entity) end""")
    spawner = spawn_scripted("spawner", """
        function on_update(self)
          if not self.done then
            self.done = true
            self.child = world.spawn({Position = {x = 1, y = 2}, Velocity = {}, script = "child"})
            print("spawned", self.child)
          end
        end""")
    esper.process(0.1)
    esper.process(0.1)
    [(child, _)] = [(e, s) for e, s in esper.get_component(Script) if s.name == "child"]
    assert child != spawner
    assert esper.component_for_entity(child, Position) == Position(1.0, 2.0)
    assert esper.component_for_entity(child, Velocity) == Velocity()
    assert console_texts() == [f"spawned\t{child}", f"child\t{child}"]


def test_spawn_requires_fields_without_defaults(spawn_scripted: Loader) -> None:
    spawn_scripted("spawner", """
        function on_update(self)
          print(pcall(world.spawn, {Position = {x = 1}}))
        end""")
    esper.process(0.1)
    [text] = console_texts()
    assert text.startswith("false") and "Position.y is required" in text
    assert len(esper.get_component(Position)) == 0


def test_destroy_deletes_the_entity(spawn_scripted: Loader) -> None:
    victim = esper.create_entity(Position(0.0, 0.0))
    spawn_scripted("killer", f"function on_update(self) world.destroy({victim}) end")
    esper.process(0.1)
    esper.process(0.1)
    assert not esper.entity_exists(victim)


def test_events_are_delivered_next_tick_as_copies(spawn_scripted: Loader) -> None:
    receiver_source = """
        function on_event(self, name, payload)
          payload.n = payload.n + 1          -- a copy per receiver
          print(name, payload.n, payload.tags[1], self.entity)
        end"""
    first = spawn_scripted("receiver", receiver_source)
    second = spawn_scripted("receiver", receiver_source)
    spawn_scripted("sender", f"""
        function on_update(self)
          if not self.sent then
            self.sent = true
            world.emit("ping", {{n = 1, tags = {{"a"}}}}, {first})
            world.emit("hit", {{n = 10, tags = {{"b"}}}})
          end
        end""")
    esper.process(0.1)
    assert console_texts() == []
    esper.process(0.1)
    assert sorted(console_texts()) == sorted([
        f"ping\t2\ta\t{first}", f"hit\t11\tb\t{first}", f"hit\t11\tb\t{second}",
    ])


def test_print_goes_to_the_console_with_its_origin(spawn_scripted: Loader,
                                                   system: ScriptSystem) -> None:
    entity = spawn_scripted("talker", "function on_update(self) print('hello', 1, nil, true) end")
    esper.process(0.1)
    [message] = system.console.messages
    assert (message.script, message.entity, message.text, message.level, message.tick) == (
        "talker", entity, "hello\t1\tnil\ttrue", "info", 1)


def test_world_is_unavailable_outside_callbacks(manager: ScriptManager,
                                                system: ScriptSystem) -> None:
    manager.load("top", """
        ok, err = pcall(world.get, 1, "Position")
        function on_update(self) print(ok, err) end""", permissions=ALL)
    esper.create_entity(Script("top"))
    esper.process(0.1)
    [text] = console_texts()
    assert text.startswith("false") and "only available inside callbacks" in text


def test_unknown_script_names_are_skipped(system: ScriptSystem) -> None:
    entity = esper.create_entity(Script("nobody"), Position(1.0, 2.0))
    with structlog.testing.capture_logs() as logs:
        esper.process(0.1)
        esper.process(0.1)
    unknown = [log for log in logs if log["event"] == "script.unknown"]
    assert unknown == [{"event": "script.unknown", "script": "nobody", "entities": 1,
                        "log_level": "warning"}]     # once, not every tick
    assert esper.component_for_entity(entity, Position) == Position(1.0, 2.0)
    assert console_texts() == []


def test_integral_floats_name_entities_everywhere(spawn_scripted: Loader) -> None:
    other = esper.create_entity(Position(3.0, 4.0))
    spawn_scripted("floaty", f"""
        function on_update(self)
          print(world.get(self.entity + 0.0, "Position").x, world.get({other}.0, "Position").x,
                world.has({other}.0, "Position"), pcall(world.get, 1.5, "Position"))
        end""", Position(1.0, 2.0))
    esper.process(0.1)
    [text] = console_texts()
    assert text.startswith("1.0\t3.0\ttrue\tfalse") and "entity id expected" in text


def test_fields_holding_other_types_read_as_nil(spawn_scripted: Loader) -> None:
    odd = Position(1.0, 2.0)
    odd.x = "not a number"  # type: ignore[assignment]  # a game bug: no Python object leaks
    entity = spawn_scripted("reader", """
        function on_update(self)
          local p = world.get(self.entity, "Position")
          print(type(p.x), p.y)
          local h = world.get(self.entity, "Health")
          print(math.type(h.value), h.alive)
        end""", odd, Health(2**70, True))  # type: ignore[arg-type]
    esper.process(0.1)
    assert console_texts() == ["nil\t2.0", "nil\ttrue"]
    assert esper.component_for_entity(entity, Position).x == "not a number"


def test_switching_an_entity_to_another_script(spawn_scripted: Loader,
                                               manager: ScriptManager) -> None:
    manager.load("second", "function on_start(self) print('second starts') end")
    entity = spawn_scripted("first", "function on_destroy(self) print('first ends') end")
    esper.process(0.1)
    esper.add_component(entity, Script("second"))  # replaces the link
    esper.process(0.1)
    assert sorted(console_texts()) == ["first ends", "second starts"]
