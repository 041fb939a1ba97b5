"""Several scripts per entity: ``Script("a", "b")`` gives the entity one instance of each, with
its own ``self``, its own grants and its own share of events."""

from __future__ import annotations

import esper
import pytest

from engine_scripting import (
    PermissionDenied,
    Permissions,
    Script,
    ScriptManager,
    ScriptSystem,
)
from tests.ecs.support import ALL, Health, Position, console_texts

# Records every callback with the entity and its own `self` counter
RECORDER = """
log = {}
function on_start(self) self.n = 0 log[#log + 1] = "start " .. self.entity end
function on_update(self) self.n = self.n + 1 end
function on_event(self, name, payload, sender)
  log[#log + 1] = string.format("%s %d %s from %s", name, self.entity, tostring(payload.v),
    tostring(sender))
end
function on_destroy(self) log[#log + 1] = "destroy " .. self.entity end
function entries() return log end
function count(self) return self.n end
"""


def _log(manager: ScriptManager, name: str) -> list[str]:
    record = manager.running(name)
    assert record is not None
    entries = record.context.call("entries")
    return list(entries) if isinstance(entries, list) else []


def test_the_component_keeps_one_name_working_and_names_several() -> None:
    one, two = Script("a"), Script("a", "b")
    assert one.name == "a" and one.names == ("a",)
    assert two.names == ("a", "b")
    assert one == Script("a") and hash(one) == hash(Script("a")) and two != Script("b", "a")
    with pytest.raises(ValueError, match=r"read \.names"):
        _ = two.name


@pytest.mark.parametrize(("names", "error"), [
    ((), ValueError), (("a", "a"), ValueError), (("a", "b", "a"), ValueError),
    (("",), ValueError), ((1,), TypeError), (("a", None), TypeError), ((b"a",), TypeError),
])
def test_bad_names_are_refused(names: tuple[object, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        Script(*names)  # type: ignore[arg-type]


def test_each_script_gets_its_own_instance_on_the_entity(
        manager: ScriptManager, system: ScriptSystem) -> None:
    for name in ("a", "b"):
        manager.load(name, RECORDER)
    both = esper.create_entity(Script("a", "b"))
    only_b = esper.create_entity(Script("b"))
    for _ in range(3):
        esper.process(0.016)
    assert _log(manager, "a") == [f"start {both}"]
    assert _log(manager, "b") == [f"start {both}", f"start {only_b}"]
    assert manager.status("a").instances == 1 and manager.status("b").instances == 2
    # each instance has its own `self`: both counted three updates
    assert system.call("a", both, "count") == 3 and system.call("b", both, "count") == 3


def test_each_script_keeps_its_own_grants(manager: ScriptManager, system: ScriptSystem) -> None:
    manager.load("healer", """
        function on_update(self)
          local h = world.get(self.entity, "Health")
          world.set(self.entity, "Health", {value = h.value + 1})
        end""", permissions=Permissions(read={"Health"}, write={"Health"}))
    manager.load("reader", """
        function on_update(self)
          world.set(self.entity, "Health", {value = 0})   -- granted to its neighbour only
        end""", permissions=Permissions(read={"Health"}))
    entity = esper.create_entity(Health(10), Script("healer", "reader"))
    esper.process(0.016)
    esper.process(0.016)
    assert isinstance(manager.status("reader").last_error, PermissionDenied)
    assert not manager.status("reader").enabled and manager.status("healer").enabled
    assert esper.component_for_entity(entity, Health).value == 12


def test_an_event_sent_to_the_entity_reaches_each_of_its_scripts(
        manager: ScriptManager, system: ScriptSystem) -> None:
    manager.load("sender", """
        function on_update(self)
          if target then world.emit("ping", {v = 1}, target) world.emit("hit", {v = 2}) end
        end""", permissions=ALL)
    for name in ("a", "b"):
        manager.load(name, RECORDER)
    manager.load("deaf", "function on_update(self) end")   # no on_event: nothing to deliver
    sender = esper.create_entity(Script("sender"))
    both = esper.create_entity(Script("a", "deaf", "b"))
    other = esper.create_entity(Script("a"))
    esper.process(0.016)
    sending = manager.running("sender")
    assert sending is not None
    sending.context.execute(f"target = {both}")
    esper.process(0.016)   # emitted
    esper.process(0.016)   # delivered
    assert _log(manager, "a")[2:] == [f"ping {both} 1 from {sender}", f"hit {both} 2 from {sender}",
                                     f"hit {other} 2 from {sender}"]
    assert _log(manager, "b")[1:] == [f"ping {both} 1 from {sender}", f"hit {both} 2 from {sender}"]
    assert manager.status("deaf").error_count == 0


def test_the_host_s_targeted_event_reaches_each_script_of_the_entity(
        manager: ScriptManager, system: ScriptSystem) -> None:
    for name in ("a", "b"):
        manager.load(name, RECORDER)
    both = esper.create_entity(Script("b", "a"))
    esper.create_entity(Script("a"))
    esper.process(0.016)
    system.send("ping", {"v": 7}, both)
    esper.process(0.016)
    assert _log(manager, "a")[2:] == [f"ping {both} 7 from nil"]
    assert _log(manager, "b")[1:] == [f"ping {both} 7 from nil"]


def test_dropping_one_script_ends_only_its_instance(
        manager: ScriptManager, system: ScriptSystem) -> None:
    for name in ("a", "b"):
        manager.load(name, RECORDER)
    entity = esper.create_entity(Script("a", "b"))
    esper.process(0.016)
    esper.process(0.016)
    esper.add_component(entity, Script("b"))   # replaces the component: "a" goes
    esper.process(0.016)
    assert _log(manager, "a") == [f"start {entity}", f"destroy {entity}"]
    assert _log(manager, "b") == [f"start {entity}"]
    assert system.call("b", entity, "count") == 3   # b's instance kept its `self`
    esper.add_component(entity, Script("b", "a"))  # "a" comes back as a new instance
    esper.process(0.016)
    assert _log(manager, "a")[-1] == f"start {entity}"
    assert system.call("a", entity, "count") == 1


def test_an_unknown_name_is_reported_once_and_the_others_run(
        manager: ScriptManager, system: ScriptSystem) -> None:
    manager.load("a", RECORDER)
    entity = esper.create_entity(Script("missing", "a"))
    for _ in range(3):
        esper.process(0.016)
    assert _log(manager, "a") == [f"start {entity}"]
    assert manager.status("a").error_count == 0


def test_a_spawner_may_attach_several_scripts(manager: ScriptManager,
                                              system: ScriptSystem) -> None:
    for name in ("a", "b"):
        manager.load(name, RECORDER)
    manager.load("spawner", """
        made = {}
        function on_update(self)
          if #made == 0 then made[1] = world.spawn({Position = {x = 1, y = 2},
                                                    script = {"a", "b"}}) end
        end
        function spawned() return made[1] end
        function try(self, spec) return pcall(world.spawn, spec) end""", permissions=ALL)
    spawner = esper.create_entity(Script("spawner"))
    esper.process(0.016)
    record = manager.running("spawner")
    assert record is not None
    child = record.context.call("spawned")
    assert isinstance(child, int)
    assert esper.component_for_entity(child, Script).names == ("a", "b")
    esper.process(0.016)
    assert _log(manager, "a") == [f"start {child}"] and _log(manager, "b") == [f"start {child}"]
    for spec, message in (
        ({"script": ["a", "a"]}, "twice"), ({"script": []}, "script"),
        ({"script": ["a", 1]}, "script"), ({"script": ["a", "nope"]}, "nope"),
    ):
        ok, error = system.call("spawner", spawner, "try", spec)
        assert ok is False and message in error, (spec, error)


def test_a_spawned_script_list_needs_every_script_s_grants_within_the_spawner_s(
        manager: ScriptManager, system: ScriptSystem) -> None:
    manager.load("weak", "function on_update(self) end")
    manager.load("strong", "function on_update(self) end", permissions=ALL)
    manager.load("spawner", """
        function on_update(self) world.spawn({script = {"weak", "strong"}}) end""",
                 permissions=Permissions(spawn=True))
    esper.create_entity(Script("spawner"))
    esper.process(0.016)
    assert isinstance(manager.status("spawner").last_error, PermissionDenied)
    assert not esper.get_component(Script)[1:]   # nothing spawned: only the spawner's entity


def test_instances_of_every_script_follow_entity_order(manager: ScriptManager,
                                                       system: ScriptSystem) -> None:
    manager.load("a", "seen = {} function on_update(self) seen[#seen + 1] = self.entity end "
                      "function order() local o = seen seen = {} return o end")
    manager.load("b", "function on_update(self) end")
    entities = [esper.create_entity(Script(*(("a", "b") if i % 2 else ("b", "a"))))
                for i in range(6)]
    esper.process(0.016)
    record = manager.running("a")
    assert record is not None
    assert record.context.call("order") == entities
    assert manager.status("b").instances == 6
    assert not console_texts("error")


def test_a_host_processor_reading_one_name_fails_loudly_with_several() -> None:
    # code written for one script per entity (link.name) must not silently miss the others
    esper.switch_world("multi-name")
    try:
        entity = esper.create_entity(Position(0.0, 0.0), Script("a", "b"))
        with pytest.raises(ValueError):
            _ = esper.component_for_entity(entity, Script).name
    finally:
        esper.switch_world("default")
        esper.delete_world("multi-name")
