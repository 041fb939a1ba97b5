"""Per-instance params: ``Script(name, params={...})`` gives every instance it starts the plain
data as the read-only ``self.params``, checked and frozen when the component is made, converted
into Lua once, when the instance starts."""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Mapping
from dataclasses import astuple
from typing import Any

import esper
import pytest

import engine_scripting.ecs._system as system_module
from engine_scripting import Console, Permissions, Script, ScriptManager, ScriptSystem
from tests.ecs.conftest import Loader
from tests.ecs.support import console_texts

READER = """
function on_start(self)
  local p = self.params
  local keys = {}
  for k in pairs(p) do keys[#keys + 1] = k end
  table.sort(keys)
  print(p.speed, p.name, p.lines and #p.lines, p.lines and p.lines[2],
        p.nested and p.nested.deep and p.nested.deep.k, table.concat(keys, ","))
end
"""


def _printed(entity: int) -> list[str]:
    """What ``entity``'s instances printed (and errors recorded for it), oldest first."""
    [(_, console)] = esper.get_component(Console)
    return [message.text for message in console.messages if message.entity == entity]


def test_an_instance_reads_its_params(spawn_scripted: Loader, system: ScriptSystem) -> None:
    plain = spawn_scripted("npc", READER)   # loads it, with an instance without params
    entity = esper.create_entity(Script("npc", params={
        "speed": 40, "name": "Mira", "lines": ["Hello!", "Lovely weather."],
        "nested": {"deep": {"k": 1.5}}}))
    esper.process(0.1)
    assert _printed(entity) == ["40\tMira\t2\tLovely weather.\t1.5\tlines,name,nested,speed"]
    assert _printed(plain) == ["nil\tnil\tnil\tnil\tnil\t"]


def test_without_params_self_params_is_an_empty_read_only_table(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    entity = spawn_scripted("plain", """
        function on_start(self)
          print(type(self.params), next(self.params), #self.params, self.params.anything)
          print(pcall(function() self.params.x = 1 end))
        end""")
    esper.process(0.1)
    texts = _printed(entity)
    assert texts[0] == "table\tnil\t0\tnil"
    assert texts[1].startswith("false") and texts[1].endswith("params is read-only")
    assert manager.status("plain").error_count == 0


WRITES = {
    "assignment": "self.params.speed = 99",
    "new key": "self.params.extra = 1",
    "nested assignment": "self.params.nested.k = 99",
    "list element": "self.params.lines[1] = 'changed'",
    "rawset": "rawset(self.params, 'speed', 99)",
    "rawset nested": "rawset(self.params.nested, 'k', 99)",
    "setmetatable": "setmetatable(self.params, {})",
    "table.insert": "table.insert(self.params.lines, 'more')",
    "table.remove": "table.remove(self.params.lines)",
    "table.sort": "table.sort(self.params.lines)",
    "data through pairs": "local _, data = pairs(self.params) rawset(data, 'speed', 99)",
    "data through next": "local step = pairs(self.params) local k = step(self.params) "
                         "self.params[k] = 99",
}


@pytest.mark.parametrize("write", WRITES, ids=list(WRITES))
def test_no_route_writes_the_params(spawn_scripted: Loader, manager: ScriptManager,
                                    write: str) -> None:
    entity = esper.create_entity(Script("writer", params={
        "speed": 1, "lines": ["b", "a"], "nested": {"k": 1}}))
    spawn_scripted("writer", f"""
        function on_start(self)
          local ok = pcall(function() {WRITES[write]} end)
          local p = self.params
          print(ok, p.speed, p.nested.k, #p.lines, p.lines[1], p.lines[2], p.extra,
                getmetatable(p))
        end""")
    esper.process(0.1)
    assert _printed(entity) == ["false\t1\t1\t2\tb\ta\tnil\tparams"]
    assert manager.status("writer").enabled


def test_every_named_script_sees_the_same_params(spawn_scripted: Loader) -> None:
    reporter = "function on_start(self) print(self.params.mood, self.params.level) end"
    spawn_scripted("first", reporter)
    spawn_scripted("second", reporter)
    entity = esper.create_entity(Script("first", "second", params={"mood": "grumpy",
                                                                      "level": 3}))
    esper.process(0.1)
    assert _printed(entity) == ["grumpy\t3", "grumpy\t3"]


def test_instances_of_one_script_see_their_own_params(spawn_scripted: Loader) -> None:
    spawn_scripted("guard", "function on_start(self) print(self.params.post) end")
    north = esper.create_entity(Script("guard", params={"post": "north"}))
    south = esper.create_entity(Script("guard", params={"post": "south"}))
    esper.process(0.1)
    assert _printed(north) == ["north"]
    assert _printed(south) == ["south"]


def test_a_running_instance_keeps_its_params_when_the_component_is_replaced(
        spawn_scripted: Loader) -> None:
    entity = esper.create_entity(Script("npc", params={"line": "first"}))
    spawn_scripted("npc", """
        function on_start(self) print("start", self.params.line) end
        function on_update(self) print("update", self.params.line) end""")
    esper.process(0.1)
    esper.add_component(entity, Script("npc", params={"line": "second"}))   # replaces it
    esper.process(0.1)
    assert _printed(entity)[-1] == "update\tfirst"
    esper.remove_component(entity, Script)        # the instance ends ...
    esper.process(0.1)
    esper.add_component(entity, Script("npc", params={"line": "third"}))   # ... a new one starts
    esper.process(0.1)
    assert _printed(entity)[-2:] == ["start\tthird", "update\tthird"]


def test_params_survive_a_reload(spawn_scripted: Loader, manager: ScriptManager) -> None:
    entity = esper.create_entity(Script("npc", params={"line": "hi"}))
    spawn_scripted("npc", "function on_update(self) end")
    esper.process(0.1)
    manager.reload("npc", "function on_reload(self) print(self.params.line) end")
    esper.process(0.1)
    assert _printed(entity) == ["hi"]


def test_each_instance_s_params_cross_into_lua_once(spawn_scripted: Loader,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    handed: list[set[int]] = []
    real = system_module.started_params

    def spy(*args: Any) -> dict[int, Any] | None:
        started = real(*args)
        handed.append(set(started or ()))
        return started

    monkeypatch.setattr(system_module, "started_params", spy)
    first = esper.create_entity(Script("npc", params={"n": 1}))
    spawn_scripted("npc", "function on_update(self) print(self.params.n) end")
    esper.process(0.1)
    second = esper.create_entity(Script("npc", params={"n": 2}))   # a new sync
    esper.process(0.1)
    esper.process(0.1)                                             # no sync
    assert [found for found in handed if found] == [{first}, {second}]
    assert _printed(first) == ["1", "1", "1"] and _printed(second) == ["2", "2"]


def _nested(depth: int) -> list[object]:
    value: list[object] = [1]
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("params, error", [
    ({"f": print}, TypeError),
    ({"o": object()}, TypeError),
    ({"b": b"bytes"}, TypeError),
    ({"s": {1, 2}}, TypeError),
    ({1: "x"}, TypeError),
    ({"nested": {2: "x"}}, TypeError),
    ({"x": math.nan}, ValueError),
    ({"x": [1.0, math.inf]}, ValueError),
    ({"big": 2**63}, ValueError),
    ({"deep": _nested(20)}, ValueError),
    ({"many": list(range(20_000))}, ValueError),
    ({"text": "x" * (2 << 20)}, ValueError),
    (["speed", 1], TypeError),
    ("speed=1", TypeError),
])
def test_params_that_are_not_plain_data_are_refused_at_construction(params: object,
                                                                     error: type) -> None:
    with pytest.raises(error, match="params"):
        Script("npc", params=params)  # type: ignore[arg-type]


def test_a_cycle_is_refused() -> None:
    looped: dict[str, object] = {}
    looped["self"] = looped
    with pytest.raises(ValueError, match=r"params\['self'\]: params contain a reference cycle"):
        Script("npc", params=looped)
    shared = [1, 2]
    assert Script("npc", params={"a": shared, "b": shared}).params["b"] == (1, 2)  # not a cycle


def test_the_error_says_where_the_bad_value_is() -> None:
    with pytest.raises(TypeError, match=r"params\['lines'\]\[1\]: a value of type function"):
        Script("npc", params={"lines": ["ok", lambda: None]})


def test_the_component_holds_a_frozen_copy() -> None:
    given = {"lines": ["a"], "nested": {"k": 1}}
    link = Script("npc", params=given)
    given["lines"].append("b")   # the host's own value may change: the component's does not
    given["nested"]["k"] = 2     # type: ignore[index]
    assert link.params == {"lines": ("a",), "nested": {"k": 1}}
    assert isinstance(link.params, Mapping) and isinstance(link.params["nested"], Mapping)
    with pytest.raises(TypeError):
        link.params["lines"] = ()  # type: ignore[index]
    with pytest.raises(AttributeError):
        link.params = {}  # type: ignore[misc]
    assert Script("npc").params == {}


def test_the_component_stays_hashable_comparable_copyable_and_picklable() -> None:
    link = Script("a", "b", params={"speed": 2, "lines": ["hi", {"x": 1.5}]})
    same = Script("a", "b", params={"speed": 2, "lines": ["hi", {"x": 1.5}]})
    assert link == same and hash(link) == hash(same)
    assert link != Script("a", "b") and link != Script("a", "b", params={"speed": 3})
    assert {link, same} == {link}
    assert copy.deepcopy(link) == link and copy.copy(link) == link
    assert pickle.loads(pickle.dumps(link)) == link
    assert astuple(link) == (("a", "b"), {"speed": 2, "lines": ("hi", {"x": 1.5})})


def test_params_need_no_grant(spawn_scripted: Loader, manager: ScriptManager) -> None:
    entity = esper.create_entity(Script("bare", params={"n": 5}))
    spawn_scripted("bare", "function on_start(self) print(self.params.n) end",
                   permissions=Permissions())
    esper.process(0.1)
    assert _printed(entity) == ["5"]
    assert console_texts("error") == []
