"""Hostile arguments get a clear Lua error the script can catch; the world is left untouched."""

from __future__ import annotations

import esper
import pytest

from engine_scripting import Console, ScriptManager
from tests.ecs.conftest import Loader
from tests.ecs.support import Health, Label, Position, console_texts

CASES = {
    "unknown component": ("world.set(E, 'Mana', {x = 1})", "unknown component 'Mana'"),
    "unknown field": ("world.set(E, 'Position', {z = 1})", "Position has no field 'z'"),
    "non-string field name": ("world.set(E, 'Position', {[1] = 1})", "has no field '1'"),
    "string in a float": ("world.set(E, 'Position', {x = 'far'})", "must be a number"),
    "float in an int": ("world.set(E, 'Health', {value = 1.5})", "must be an integer"),
    "number in a bool": ("world.set(E, 'Health', {alive = 1})", "must be a boolean"),
    "table in a str": ("world.set(E, 'Label', {text = {}})", "must be a string"),
    "NaN": ("world.set(E, 'Position', {x = 0/0})", "must be a finite number"),
    "inf": ("world.set(E, 'Position', {y = math.huge})", "must be a finite number"),
    "-inf": ("world.set(E, 'Position', {y = -math.huge})", "must be a finite number"),
    "invalid UTF-8": ("world.set(E, 'Label', {text = '\\xff'})", "not valid UTF-8"),
    "oversized text": ("world.set(E, 'Label', {text = ('x'):rep(5000)})", "longer than"),
    "fields not a table": ("world.set(E, 'Position', 5)", "must be a table"),
    "fields nil": ("world.set(E, 'Position')", "must be a table"),
    "entity not a number": ("world.get('me', 'Position')", "entity id expected"),
    "entity a float": ("world.get(1.5, 'Position')", "entity id expected"),
    "component not a string": ("world.get(E, 42)", "component name expected"),
    "unknown entity (get)": ("world.get(99999, 'Position')", "unknown entity 99999"),
    "unknown entity (set)": ("world.set(99999, 'Position', {x = 1})", "unknown entity 99999"),
    "unknown entity (has)": ("world.has(99999, 'Position')", "unknown entity 99999"),
    "unknown entity (destroy)": ("world.destroy(99999)", "unknown entity 99999"),
    "unknown event target": ("world.emit('ping', {}, 99999)", "unknown entity 99999"),
    "missing component on set": ("world.set(E, 'Velocity', {x = 1})", "has no Velocity"),
    "spawn not a table": ("world.spawn(42)", "table or template name expected"),
    "spawn unknown script": ("world.spawn({script = 'nobody'})", "no script named"),
    "payload not a table": ("world.emit('ping', 'x')", "table or nil expected"),
    "payload with a function": ("world.emit('ping', {f = print})", "cannot hold a function"),
    "payload too deep": ("local t = {} local c = t for i = 1, 20 do c.n = {} c = c.n end "
                         "world.emit('ping', t)", "nested deeper"),
    "payload too large": ("local t = {} for i = 1, 5000 do t[i] = i end world.emit('ping', t)",
                          "more than 1024 items"),
    "payload NaN": ("world.emit('ping', {x = 0/0})", "NaN"),
    "event name not a string": ("world.emit(5)", "event name expected"),
    "resource entity is off limits": ("world.destroy(R)", "unknown entity"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_arguments_raise_catchable_errors_and_change_nothing(
    spawn_scripted: Loader, manager: ScriptManager, case: str,
) -> None:
    call, expected = CASES[case]
    entity = spawn_scripted("checker", f"""
        function on_update(self)
          local E, R = self.entity, RESOURCE
          local ok, err = pcall(function() {call} end)
          print(ok, err)
        end""", Position(1.0, 2.0), Health(5, True), Label("same"))
    esper.process(0.1)  # creates the resource entity
    [(resource, _)] = esper.get_component(Console)
    record = manager.running("checker")
    assert record is not None
    record.context.execute(f"RESOURCE = {resource}")
    esper.process(0.1)
    text = console_texts()[-1]
    assert text.startswith("false\t"), text
    assert expected in text, text
    assert esper.component_for_entity(entity, Position) == Position(1.0, 2.0)
    assert esper.component_for_entity(entity, Health) == Health(5, True)
    assert esper.component_for_entity(entity, Label) == Label("same")
    status = manager.status("checker")
    assert status.enabled and status.error_count == 0


def test_a_lying_metatable_cannot_split_check_and_write(spawn_scripted: Loader) -> None:
    entity = spawn_scripted("liar", """
        function on_update(self)
          local calls = 0
          local fields = setmetatable({}, {__index = function()
            calls = calls + 1
            return calls == 1 and 1.0 or "not a number"
          end, __pairs = function() error("pairs must not be used") end})
          print(pcall(world.set, self.entity, "Position", fields))
        end""", Position(1.0, 2.0))
    esper.process(0.1)
    assert esper.component_for_entity(entity, Position) == Position(1.0, 2.0)
    assert console_texts() == ["true"]


def test_a_failed_write_applies_no_field(spawn_scripted: Loader) -> None:
    entity = spawn_scripted("half", """
        function on_update(self)
          print(pcall(world.set, self.entity, "Position", {x = 5, y = 0/0}))
        end""", Position(1.0, 2.0))
    esper.process(0.1)
    assert esper.component_for_entity(entity, Position) == Position(1.0, 2.0)
