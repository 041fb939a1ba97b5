"""Save and load: ``manager.save_state()`` turns every instance's ``on_save`` result (or its plain
fields) into JSON data, and ``manager.load_state(state, entity_map)`` hands it back before the
instances' next ``on_update`` (``on_load``, or merged into ``self``), in this world or a fresh
one. Bad data from scripts is a typed error that names the script, the entity and the path; bad
input from the host is refused whole, before anything changes.

The scenarios that could hang (a time limit in on_save, data that explodes when walked) run in a
child process with a timeout.
"""

from __future__ import annotations

import copy
import itertools
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import esper
import pytest
import structlog

from engine_scripting import (
    Console,
    ResourceLimitExceeded,
    SaveDataError,
    Script,
    ScriptEngine,
    ScriptManager,
    ScriptResourceLimits,
    ScriptRuntimeError,
    ScriptSystem,
    WorldApi,
)
from engine_scripting.manager import LoadedState, SavesState
from tests.ecs.conftest import Loader
from tests.ecs.support import ALL, COMPONENTS, Health, Label, Position, console_texts

_ROOT = Path(__file__).resolve().parents[2]
_worlds = itertools.count()


@contextmanager
def _fresh_world(engine: ScriptEngine) -> Iterator[tuple[ScriptManager, ScriptSystem]]:
    """A new esper world with a new manager and system (the game after a restart)."""
    previous = esper.current_world
    name = f"save-load-{next(_worlds)}"
    esper.switch_world(name)
    manager = ScriptManager(engine, initializers=[WorldApi()])
    system = ScriptSystem(manager, components=COMPONENTS, console_maxlen=10_000)
    esper.add_processor(system)
    try:
        yield manager, system
    finally:
        manager.close()
        esper.switch_world(previous)
        esper.delete_world(name)


def _round_trip(state: object) -> Any:
    return json.loads(json.dumps(state, allow_nan=False))


# -- the whole scene: save, load into a fresh world, same behaviour ------------------------------
WALKER = """
-- no on_save/on_load: its plain fields are saved and merged back
function on_start(self)
  self.steps = 0
  self.trail = {}                                     -- a list of {x, y} lists
  self.heading = {dx = 1, dy = 0.5}
  self.turn = function(v) return -1.5 * v end         -- not data: on_start makes it again
end
function on_update(self, dt)
  local p = world.get(self.entity, "Position")
  self.steps = self.steps + 1
  if p.x > 6 then self.heading.dx = self.turn(1) elseif p.x < 0 then self.heading.dx = 1 end
  world.set(self.entity, "Position", {x = p.x + self.heading.dx, y = p.y + self.heading.dy * dt})
  if self.steps % 3 == 0 then self.trail[#self.trail + 1] = {p.x, p.y} end
  if #self.trail > 4 then table.remove(self.trail, 1) end
  print(world.get(self.entity, "Label").text, "step", self.steps, #self.trail)
end
"""

GUARD = """
-- on_save/on_load: its target is an entity id, translated with the entity map
function on_start(self) self.state, self.timer = "patrol", 0 end
function watch(self, entity) self.target = entity end      -- the host calls it once
function on_update(self, dt)
  if not self.target then return end
  local me, it = world.get(self.entity, "Position"), world.get(self.target, "Position")
  self.timer = self.timer + dt
  local state = math.abs(me.x - it.x) < 3 and "chase" or "patrol"
  if state ~= self.state then
    print(world.get(self.entity, "Label").text, self.state, "->", state,
          string.format("%.2f", self.timer))
    self.state = state
  end
  if state == "chase" then
    local hp = world.get(self.entity, "Health")
    world.set(self.entity, "Health", {value = hp.value - 1})
    world.set(self.entity, "Position", {x = me.x + (it.x > me.x and 0.5 or -0.5)})
  end
end
function on_save(self) return {state = self.state, timer = self.timer, target = self.target} end
function on_load(self, data, entities)
  self.state, self.timer = data.state, data.timer
  self.target = entities[data.target] or data.target
end
"""


def _scene_components(entity: int) -> tuple[object, ...]:
    return tuple(copy.deepcopy(component) for component in esper.components_for_entity(entity)
                 if not isinstance(component, Script))


def _observe(labelled: dict[int, str], ticks: int) -> tuple[list[object], list[str]]:
    """Run ``ticks`` ticks; what each showed (positions and health by label) and the console
    lines they printed."""
    consoles = esper.get_component(Console)
    printed = len(consoles[0][1].messages) if consoles else 0
    seen: list[object] = []
    for _ in range(ticks):
        esper.process(0.25)
        seen.append(sorted(
            (label, esper.component_for_entity(entity, Position).x,
             esper.component_for_entity(entity, Position).y,
             esper.try_component(entity, Health) and esper.component_for_entity(entity,
                                                                                Health).value)
            for entity, label in labelled.items()))
    [(_, console)] = esper.get_component(Console)
    return seen, [message.text for message in list(console.messages)[printed:]]


def _load_scene(manager: ScriptManager) -> None:
    manager.load("walker", WALKER, permissions=ALL)
    manager.load("guard", GUARD, permissions=ALL)


def test_a_saved_scene_behaves_the_same_in_a_fresh_world(roomy_engine: ScriptEngine) -> None:
    with _fresh_world(roomy_engine) as (manager, system):
        _load_scene(manager)
        walker = esper.create_entity(Position(0.0, 0.0), Label("w1"), Script("walker"))
        other = esper.create_entity(Position(4.0, 1.0), Label("w2"), Script("walker"))
        guard = esper.create_entity(Position(9.0, 0.0), Health(100), Label("g1"),
                                    Script("guard"))
        esper.process(0.25)
        system.call("guard", guard, "watch", walker)
        for _ in range(4):
            esper.process(0.25)
        saved = {entity: _scene_components(entity) for entity in (walker, other, guard)}
        state = _round_trip(manager.save_state())
        expected = _observe({walker: "w1", other: "w2", guard: "g1"}, 12)

    with _fresh_world(roomy_engine) as (manager, system):
        _load_scene(manager)
        for _ in range(7):
            esper.create_entity()               # the new ids differ from the saved ones
        new_walker = esper.create_entity(*saved[walker], Script("walker"))
        new_other = esper.create_entity(*saved[other], Script("walker"))
        new_guard = esper.create_entity(*saved[guard], Script("guard"))
        mapping = {walker: new_walker, other: new_other, guard: new_guard}
        assert all(old != new for old, new in mapping.items())
        loaded = manager.load_state(state, entity_map=mapping)
        assert loaded == LoadedState(scripts=("walker", "guard"), skipped=())
        observed = _observe({new_walker: "w1", new_other: "w2", new_guard: "g1"}, 12)

    assert observed == expected
    assert any("->" in line for line in expected[1])          # the guard changed state
    assert expected[0][0] != expected[0][-1]                   # and things moved


# -- what is saved ------------------------------------------------------------------------------
def test_the_default_saves_the_plain_fields_of_self(spawn_scripted: Loader,
                                                    manager: ScriptManager) -> None:
    entity = spawn_scripted("plain", """
        function on_start(self)
          self.hp, self.name, self.ok, self.ratio = 7, "Ana", true, 0.5
          self.bag = {"sword", {gold = 3, gems = {}}}
          self.fn, self.co = print, coroutine.create(print)     -- not data: left out
          self.cfg = config                                     -- a read-only view: left out
          self.obj = setmetatable({x = 1}, {})                  -- an object: left out
        end""", Position(0.0, 0.0))
    esper.process(0.1)
    state = manager.save_state()
    assert state["format"] == "engine-scripting-save" and state["version"] == 1
    assert state["scripts"]["plain"] == {"instances": {str(entity): {
        "hp": 7, "name": "Ana", "ok": True, "ratio": 0.5,
        "bag": ["sword", {"gold": 3, "gems": {}}]}}}
    assert _round_trip(state) == state


def test_on_save_gives_the_data_and_every_json_type_round_trips(spawn_scripted: Loader,
                                                                manager: ScriptManager) -> None:
    entity = spawn_scripted("typed", """
        function on_save(self)
          return {i = 1, f = 1.0, neg = -0.25, big = math.maxinteger, s = "héllo\\0",
                  yes = true, no = false, list = {1, "a", {x = {}}}, empty = {}}
        end
        function on_load(self, data)
          print(math.type(data.i), math.type(data.f), data.neg, data.big == math.maxinteger,
                data.s == "héllo\\0", data.yes, data.no, #data.list, data.list[3].x ~= nil,
                next(data.empty))
        end""", Position(0.0, 0.0))
    esper.process(0.1)
    state = manager.save_state()
    data = state["scripts"]["typed"]["instances"][str(entity)]
    assert data == {"i": 1, "f": 1.0, "neg": -0.25, "big": 2**63 - 1, "s": "héllo\0",
                    "yes": True, "no": False, "list": [1, "a", {"x": {}}], "empty": {}}
    assert type(data["f"]) is float and type(data["i"]) is int
    assert _round_trip(state) == state
    manager.load_state(_round_trip(state))
    esper.process(0.1)
    assert console_texts("info") == ["integer\tfloat\t-0.25\ttrue\ttrue\ttrue\tfalse\t3\ttrue\tnil"]


def test_on_save_returning_nothing_saves_null_and_on_load_gets_nil(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    entity = spawn_scripted("empty", """
        function on_save(self) end
        function on_load(self, data) print("loaded", data) end""", Position(0.0, 0.0))
    esper.process(0.1)
    state = manager.save_state()
    assert state["scripts"]["empty"]["instances"] == {str(entity): None}
    manager.load_state(state)
    esper.process(0.1)
    assert console_texts("info") == ["loaded\tnil"]


def test_the_latest_on_save_is_used(spawn_scripted: Loader, manager: ScriptManager) -> None:
    entity = spawn_scripted("fickle", """
        function on_save(self) return "v1" end
        function on_update(self) function on_save(s) return "v2" end end""", Position(0.0, 0.0))
    esper.process(0.1)
    assert manager.save_state()["scripts"]["fickle"]["instances"] == {str(entity): "v2"}
    manager.reload("fickle", "function on_save(self) return 'v3' end")
    assert manager.save_state()["scripts"]["fickle"]["instances"] == {str(entity): "v3"}


def test_an_entity_the_system_has_not_run_yet_is_not_saved(spawn_scripted: Loader,
                                                           manager: ScriptManager) -> None:
    first = spawn_scripted("later", "function on_start(self) self.n = 1 end", Position(0.0, 0.0))
    esper.process(0.1)
    spawn_scripted("later", "", Position(0.0, 0.0))  # no tick since: no instance yet
    assert manager.save_state()["scripts"]["later"] == {"instances": {str(first): {"n": 1}}}


def test_a_disabled_script_is_not_saved_and_runs_no_code(spawn_scripted: Loader,
                                                         manager: ScriptManager) -> None:
    spawn_scripted("paused", "function on_save(self) error('must not run') end",
                   Position(0.0, 0.0))
    spawn_scripted("running", "function on_start(self) self.n = 1 end", Position(0.0, 0.0))
    esper.process(0.1)
    manager.disable("paused")
    with structlog.testing.capture_logs() as logs:
        state = manager.save_state()
    assert list(state["scripts"]) == ["running"] and state["disabled"] == ["paused"]
    [warning] = [log for log in logs if log["event"] == "state.script_not_saved"]
    assert warning["script"] == "paused" and warning["log_level"] == "warning"


def test_the_initializer_keeps_the_instances_part() -> None:
    assert isinstance(WorldApi(), SavesState) and WorldApi().state_key == "instances"


# -- what is loaded -----------------------------------------------------------------------------
def test_load_restores_a_checkpoint_in_the_same_world(spawn_scripted: Loader,
                                                      manager: ScriptManager) -> None:
    entity = spawn_scripted("counter", """
        function on_start(self) self.n = 0 end
        function on_update(self) self.n = self.n + 1 print(self.n) end""", Position(0.0, 0.0))
    esper.process(0.1)
    esper.process(0.1)
    checkpoint = manager.save_state()
    esper.process(0.1)
    assert manager.load_state(checkpoint) == LoadedState(scripts=("counter",), skipped=())
    esper.process(0.1)                          # the data arrives before this tick's on_update
    assert console_texts("info") == ["1", "2", "3", "3"]
    assert manager.save_state()["scripts"]["counter"]["instances"] == {str(entity): {"n": 3}}


def test_the_merge_never_overwrites_entity_or_params(spawn_scripted: Loader,
                                                     manager: ScriptManager) -> None:
    entity = spawn_scripted("merged", """
        function on_start(self) self.kept = "from on_start" end
        function on_update(self)
          print(self.entity, type(self.params), self.kept, self.n, self.bag[2])
        end""", Position(0.0, 0.0))
    esper.process(0.1)
    manager.load_state({"format": "engine-scripting-save", "version": 1, "scripts": {
        "merged": {"instances": {str(entity): {
            "entity": 999, "params": {"evil": True}, "n": 5, "bag": ["a", "b"]}}}}})
    esper.process(0.1)
    assert console_texts("info")[-1] == f"{entity}\ttable\tfrom on_start\t5\tb"


def test_on_load_gets_a_read_only_entity_map(spawn_scripted: Loader, manager: ScriptManager,
                                             system: ScriptSystem) -> None:
    entity = spawn_scripted("mapped", """
        function on_load(self, data, entities)
          print(entities[data.friend], entities[12345], entities[data.me] == self.entity)
          entities[1] = 2
        end
        function on_update(self) print("updated") end""", Position(0.0, 0.0))
    manager.load_state(
        {"format": "engine-scripting-save", "version": 1,
         "scripts": {"mapped": {"instances": {"70": {"friend": 71, "me": 70}}}}},
        entity_map={"70": entity, 71: 42})
    esper.process(0.1)
    assert console_texts("info") == ["42\tnil\ttrue", "updated"]   # it still ran its update
    error = manager.status("mapped").last_error
    assert isinstance(error, ScriptRuntimeError) and error.callback == "on_load"
    assert error.entity == entity and "entity_map is read-only" in str(error)


def test_a_failing_on_load_is_a_callback_error_and_the_instance_runs_on(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    entity = spawn_scripted("fragile", """
        function on_load(self, data) error("cannot take " .. data.what) end
        function on_update(self) print("still here") end""", Position(0.0, 0.0))
    listy = spawn_scripted("listy", "function on_update(self) print('listy runs') end",
                           Position(0.0, 0.0))
    state = {"format": "engine-scripting-save", "version": 1, "scripts": {
        "fragile": {"instances": {str(entity): {"what": "this"}}},
        "listy": {"instances": {str(listy): [1, 2]}}}}   # a list, and no on_load to take it
    manager.load_state(state)
    esper.process(0.1)
    assert console_texts("info") == ["still here", "listy runs"]
    fragile = manager.status("fragile").last_error
    assert fragile is not None and fragile.callback == "on_load" and fragile.entity == entity
    assert "cannot take this" in str(fragile) and fragile.line == 2
    listy_error = manager.status("listy").last_error
    assert listy_error is not None and listy_error.callback == "on_load"
    assert "no on_load(self, data) to take the saved list" in str(listy_error)


def test_data_for_an_entity_without_an_instance_is_dropped_with_a_warning(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    entity = spawn_scripted("someone", "function on_load(self, d) print('got', d.n) end",
                            Position(0.0, 0.0))
    manager.load_state({"format": "engine-scripting-save", "version": 1, "scripts": {
        "someone": {"instances": {str(entity): {"n": 1}, "4000": {"n": 2}, "4001": {"n": 3}}}}})
    with structlog.testing.capture_logs() as logs:
        esper.process(0.1)
        esper.process(0.1)                      # delivered once: nothing more next tick
    assert console_texts("info") == ["got\t1"]
    [dropped] = [log for log in logs if log["event"] == "save.data_dropped"]
    assert dropped["script"] == "someone" and dropped["entities"] == [4000, 4001]
    assert dropped["count"] == 2


def test_data_not_delivered_yet_is_saved_as_it_was_loaded(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    entity = spawn_scripted("waiting", "function on_save(self) return 'live' end",
                            Position(0.0, 0.0))
    esper.process(0.1)
    state = {"format": "engine-scripting-save", "version": 1, "scripts": {
        "waiting": {"instances": {str(entity): "loaded", "555": [1]}}}, "disabled": []}
    manager.load_state(state)
    assert manager.save_state() == state
    esper.process(0.1)
    assert manager.save_state()["scripts"]["waiting"]["instances"] == {str(entity): "live"}


def test_scripts_of_the_state_that_are_not_loaded_are_skipped(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    entity = spawn_scripted("here", "function on_load(self, d) print('here', d) end",
                            Position(0.0, 0.0))
    with structlog.testing.capture_logs() as logs:
        loaded = manager.load_state({"format": "engine-scripting-save", "version": 1, "scripts": {
            "gone": {"instances": {"1": {"n": 1}}}, "here": {"instances": {str(entity): 5}}}})
    assert loaded == LoadedState(scripts=("here",), skipped=("gone",))
    [skipped] = [log for log in logs if log["event"] == "state.script_skipped"]
    assert skipped["script"] == "gone"
    esper.process(0.1)
    assert console_texts("info") == ["here\t5"]


def test_load_state_into_a_script_larger_than_its_memory_changes_nothing(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    keep = spawn_scripted("keep", "function on_load(self, d) print('keep', d) end",
                          Position(0.0, 0.0))
    small = spawn_scripted("small", """
        hog = {} for i = 1, 13 do hog[i] = string.rep("x", 1024 * 1024 - 1) .. i end
        function on_load(self, d) print('small', #d) end""", Position(0.0, 0.0),
        limits=ScriptResourceLimits(max_memory_mb=16, max_execution_time_ms=200))
    manager.load_state({"format": "engine-scripting-save", "version": 1, "scripts": {
        "keep": {"instances": {str(keep): "first"}}}})
    megabyte = "y" * ((1 << 20) - 1)
    too_big = {"format": "engine-scripting-save", "version": 1, "scripts": {
        "keep": {"instances": {str(keep): "second"}},
        "small": {"instances": {str(small): [megabyte + str(i) for i in range(3)]}}}}
    with pytest.raises(ResourceLimitExceeded) as raised:   # within the share, past the memory
        manager.load_state(too_big)
    assert raised.value.limit_type == "memory" and raised.value.script == "small"
    esper.process(0.1)
    assert console_texts("info") == ["keep\tfirst"]   # the earlier load's, not the failed one's
    estimate = {"format": "engine-scripting-save", "version": 1, "scripts": {
        "small": {"instances": {str(entity): [megabyte + str(i) for i in range(7)]
                                for entity in (small, 900, 901)}}}}
    with pytest.raises(ResourceLimitExceeded, match="1/4 of its memory limit"):
        manager.load_state(estimate)        # refused by its size before any conversion


# -- bad data from scripts ----------------------------------------------------------------------
@pytest.mark.parametrize(("source", "path", "problem"), [
    ("return {inventory = {1, 2, {fn = function() end}}}", "on_save(self).inventory[3].fn",
     "a function"),
    ("return {co = coroutine.create(print)}", "on_save(self).co", "a thread"),
    ("local t = {} t.me = t return {a = {t}}", "on_save(self).a[1].me", "a reference cycle"),
    ("return {x = 0/0}", "on_save(self).x", "NaN"),
    ("return {x = {1/0}}", "on_save(self).x[1]", "inf"),
    ("return {y = -math.huge}", "on_save(self).y", "-inf"),
    ("return {1, 2, x = 3}", "on_save(self)", "both string and integer keys"),
    ("return {list = {[1] = 1, [3] = 3}}", "on_save(self).list", "a list with holes"),
    ("return {[1.5] = 1}", "on_save(self)[1.5]", "a float key"),
    ("return {[true] = 1}", "on_save(self)[<boolean>]", "a boolean key"),
    ("return {[0] = 1}", "on_save(self)[0]", "an integer key below 1"),
    ("return {[setmetatable({}, {__tostring = error})] = 1}", "on_save(self)[<table>]",
     "a table key"),
    ("local t = {} for i = 1, 40 do t = {t} end return t", "on_save(self)" + "[1]" * 32,
     "nested deeper than 32"),
    ("local t = {} for i = 1, 50001 do t[i] = i end return t", "on_save(self)[50001]",
     "more than 50000 table entries"),
    ("return {s = string.rep('x', 1024 * 1024 + 1)}", "on_save(self).s", "longer than 1048576"),
    ("return {['bad key'] = '\\xff'}", 'on_save(self)["bad key"]', "not valid UTF-8"),
    ("return {c = config}", "on_save(self).c", "a table with a metatable"),
    ("return {kept = self.params}", "on_save(self).kept", "a table with a metatable"),
])
def test_save_data_that_is_not_json_is_a_typed_error(
        spawn_scripted: Loader, manager: ScriptManager, source: str, path: str,
        problem: str) -> None:
    spawn_scripted("fine", "function on_start(self) self.n = 1 end", Position(0.0, 0.0))
    entity = spawn_scripted("bad", f"function on_save(self) {source} end", Position(0.0, 0.0))
    esper.process(0.1)
    with pytest.raises(SaveDataError) as raised:
        manager.save_state()                # one bad script: no state at all
    error = raised.value
    assert (error.script, error.entity, error.callback, error.path) == (
        "bad", entity, "on_save", path)
    assert problem in str(error) and path in str(error)
    esper.process(0.1)                      # the game goes on
    assert manager.status("bad").enabled and manager.status("bad").error_count == 0


def test_the_default_refuses_nested_values_that_are_not_data(spawn_scripted: Loader,
                                                            manager: ScriptManager) -> None:
    entity = spawn_scripted("nested", """
        function on_start(self) self.inventory = {1, 2, {fn = print}} end""", Position(0.0, 0.0))
    esper.process(0.1)
    with pytest.raises(SaveDataError) as raised:
        manager.save_state()
    assert (raised.value.path, raised.value.entity, raised.value.callback) == (
        "self.inventory[3].fn", entity, None)


def test_one_on_save_cannot_change_what_another_returned(spawn_scripted: Loader,
                                                        manager: ScriptManager) -> None:
    first = spawn_scripted("sneaky", """
        local previous = nil
        function on_save(self)
          if previous then previous.fn = print; previous.n = -1 end   -- too late: saved already
          previous = {n = self.entity}
          return previous
        end""", Position(0.0, 0.0))
    second = spawn_scripted("sneaky", "", Position(0.0, 0.0))
    esper.process(0.1)
    assert manager.save_state()["scripts"]["sneaky"]["instances"] == {
        str(first): {"n": first}, str(second): {"n": second}}


@pytest.mark.parametrize(("source", "error_type", "text"), [
    ("function on_save(self)\n  error('boom')\nend", ScriptRuntimeError, "boom"),
    ("function on_save(self) coroutine.yield(1) end", ScriptRuntimeError,
     "attempt to yield from outside a coroutine"),
    ("function on_save(self) return world.get(self.entity, 'Position') end",
     ScriptRuntimeError, "only available inside callbacks"),
    ("function on_save(self) world.set(self.entity, 'Position', {x = 1}) end",
     ScriptRuntimeError, "only available inside callbacks"),
    ("function on_save(self) local t = {} for i = 1, 1e8 do t[i] = i end end",
     ResourceLimitExceeded, "memory limit exceeded"),
    ("local function f(n) return f(n + 1) + 1 end function on_save(self) return f(1) end",
     ResourceLimitExceeded, "recursion limit exceeded"),
])
def test_a_failing_on_save_is_a_typed_error_naming_script_and_entity(
        spawn_scripted: Loader, manager: ScriptManager, source: str,
        error_type: type[Exception], text: str) -> None:
    entity = spawn_scripted("failing", source, Position(1.0, 2.0))
    esper.process(0.1)
    with pytest.raises(error_type, match=text) as raised:
        manager.save_state()
    error: Any = raised.value
    assert (error.script, error.entity, error.callback) == ("failing", entity, "on_save")
    assert esper.component_for_entity(entity, Position) == Position(1.0, 2.0)
    if isinstance(error, ScriptRuntimeError) and "boom" in text:
        assert error.line == 2
    esper.process(0.1)
    assert manager.status("failing").enabled


# -- bad input from the host --------------------------------------------------------------------
def _state(instances: object, script: str = "target") -> dict[str, Any]:
    return {"format": "engine-scripting-save", "version": 1,
            "scripts": {"keep": {"instances": {"1": "first"}}, script: {"instances": instances}}}


@pytest.mark.parametrize(("state", "error_type", "text"), [
    ([], TypeError, "a state is a mapping"),
    ({**_state({}), "extra": 1}, ValueError, "unknown keys: 'extra'"),
    ({**_state({}), "format": "other"}, ValueError, "not a state of save_state"),
    ({**_state({}), "version": 2}, ValueError, "reads save format version 1"),
    ({**_state({}), "version": True}, ValueError, "reads save format version 1"),
    ({**_state({}), "scripts": [1]}, TypeError, r"state\['scripts'\] must be a mapping"),
    ({**_state({}), "disabled": "x"}, TypeError, "list of script names"),
    (_state({}) | {"scripts": {"": {}}}, TypeError, "non-empty str"),
    (_state({}) | {"scripts": {"target": []}}, TypeError, "must be a mapping of parts"),
    (_state({}) | {"scripts": {"target": {"tasks": {}}}}, ValueError,
     "no initializer keeps this part"),
    (_state([1]), TypeError, "expected a mapping of entity ids"),
    (_state({"x": 1}), TypeError, r"\['x'\]: an entity id is an int"),
    (_state({"01": 1}), TypeError, r"\['01'\]: an entity id"),
    (_state({"-1": 1}), TypeError, r"\['-1'\]: an entity id"),
    (_state({-1: 1}), ValueError, "outside 0..2"),
    (_state({True: 1}), TypeError, "an entity id"),
    (_state({str(2**63): 1}), ValueError, "outside 0..2"),
    (_state({"1": 1, 1: 2}), ValueError, "would both load into entity 1"),
    (_state({"2": {"a": [1, float("nan")]}}), ValueError,
     r"\['target'\]\['instances'\]\['2'\]\['a'\]\[1\]: nan is not JSON data"),
    (_state({"2": {"a": float("inf")}}), ValueError, "inf is not JSON data"),
    (_state({"2": {"a": {1, 2}}}), TypeError, r"\['a'\]: a set is not JSON data"),
    (_state({"2": (1, 2)}), TypeError, "a tuple is not JSON data"),
    (_state({"2": {1: "x"}}), TypeError, "a int key"),
    (_state({"2": b"bytes"}), TypeError, "a bytes is not JSON data"),
    (_state({"2": "\ud800"}), ValueError, "lone surrogate"),
    (_state({"2": 2**63}), ValueError, "does not fit in 64 bits"),
    (_state({"2": "x" * ((1 << 20) + 1)}), ValueError, "longer than 1048576"),
    (_state({"2": ["x" * (1 << 20)] * 9}), ValueError, "more than 8388608 bytes"),
    (_state({"2": [0] * 50_001}), ValueError, "more than 50000 table entries"),
    (_state({"2": json.loads("[" * 40 + "]" * 40)}), ValueError, "nested deeper than 32"),
])
def test_a_bad_state_is_refused_whole(spawn_scripted: Loader, manager: ScriptManager,
                                      state: object, error_type: type[Exception],
                                      text: str) -> None:
    _two_loaders(spawn_scripted, manager)
    with pytest.raises(error_type, match=text):
        manager.load_state(state)
    esper.process(0.1)
    assert console_texts("info") == ["keep\tearlier", "target\tearlier"]   # what was pending before


def _two_loaders(spawn_scripted: Loader, manager: ScriptManager) -> None:
    """Two scripts on entities 1 and 2, each with data from an earlier, good load pending."""
    for name in ("keep", "target"):
        spawn_scripted(name, f"function on_load(self, d) print('{name}', d) end",
                       Position(0.0, 0.0))
    manager.load_state({"format": "engine-scripting-save", "version": 1, "scripts": {
        "keep": {"instances": {"1": "earlier"}}, "target": {"instances": {"2": "earlier"}}}})


def test_a_cycle_in_the_state_is_refused(spawn_scripted: Loader,
                                         manager: ScriptManager) -> None:
    _two_loaders(spawn_scripted, manager)
    looped: list[object] = []
    looped.append({"again": looped})
    with pytest.raises(ValueError, match=r"\['2'\]\[0\]\['again'\]: a reference cycle"):
        manager.load_state(_state({"2": looped}))
    esper.process(0.1)
    assert console_texts("info") == ["keep\tearlier", "target\tearlier"]


@pytest.mark.parametrize(("entity_map", "error_type", "text"), [
    ([(1, 2)], TypeError, "entity_map must be a mapping"),
    ({"x": 2}, TypeError, "an id is an int or its decimal string"),
    ({"02": 2}, TypeError, "an id is an int"),
    ({True: 2}, TypeError, "an id is an int"),
    ({-1: 2}, ValueError, "outside 0..2"),
    ({1: "2"}, TypeError, r"entity_map\[1\]: an id is an int, not '2'"),
    ({1: None}, TypeError, "an id is an int"),
    ({1: 2**63}, ValueError, "outside 0..2"),
    ({1: 5, "1": 6}, ValueError, "maps entity 1 twice"),
    ({1: 2}, ValueError, "would both load into entity 2"),    # saved 1 and 2 collide
])
def test_a_bad_entity_map_is_refused_whole(spawn_scripted: Loader, manager: ScriptManager,
                                           entity_map: object, error_type: type[Exception],
                                           text: str) -> None:
    _two_loaders(spawn_scripted, manager)
    with pytest.raises(error_type, match=text):
        manager.load_state(_state({"1": "a", "2": "b"}), entity_map=entity_map)  # type: ignore[arg-type]
    esper.process(0.1)
    assert console_texts("info") == ["keep\tearlier", "target\tearlier"]


# -- limits that could hang: in a child process --------------------------------------------------
_CHILD = """
import json, logging, time
from dataclasses import dataclass
import esper, structlog
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
from engine_scripting import (Permissions, Script, ScriptEngine, ScriptError, ScriptManager,
                              ScriptResourceLimits, ScriptSystem, WorldApi)

@dataclass
class Position:
    x: float

engine = ScriptEngine(ScriptResourceLimits(max_memory_mb=32, max_execution_time_ms=100))
manager = ScriptManager(engine, initializers=[WorldApi()])
esper.add_processor(ScriptSystem(manager, components=[Position]))
ROOMY = ScriptResourceLimits(max_memory_mb=64, max_execution_time_ms=5000)   # the caps stop them
SOURCES = {
    "spin": "function on_save(self) while true do end end",
    "spin_in_pcall": "function on_save(self) while true do pcall(error, 1) end end",
    "explode": "function on_save(self) local t = {} for i = 1, 28 do t = {t, t} end return {t} end",
    "long_keys": '''function on_save(self)
        local t = {} for i = 1, 9 do t[string.rep("k", 1048570) .. i] = 1 end return t end''',
}
for name, source in SOURCES.items():
    manager.load(name, source, limits=None if name.startswith("spin") else ROOMY)
    esper.create_entity(Position(0.0), Script(name))
manager.load("many", "function on_start(self) self.v = {} for i = 1, 2000 do self.v[i] = i end end",
             limits=ROOMY)
for _ in range(50):
    esper.create_entity(Position(0.0), Script("many"))
# the first tick stops in the second on_start: the third instance has not started
manager.load("late", "local started = 0 function on_start(self) started = started + 1 "
             "if started == 2 then while true do end end self.n = started end")
late = [esper.create_entity(Position(0.0), Script("late")) for _ in range(3)]
esper.process(0.1)
results = {}
for name in list(SOURCES):
    others = [other for other in SOURCES if other != name]
    for other in others:
        manager.disable(other)
    manager.enable(name)
    started = time.perf_counter()
    try:
        manager.save_state()
        results[name] = ["saved"]
    except ScriptError as error:
        results[name] = [type(error).__name__, str(error), error.entity, error.callback]
    results[name].append(time.perf_counter() - started)
for name in SOURCES:
    manager.disable(name)
started = time.perf_counter()
state = manager.save_state()
results["many"] = [len(state["scripts"]["many"]["instances"]), time.perf_counter() - started]
results["late"] = [late, state["scripts"]["late"]["instances"]]
esper.process(0.1)
results["ticks_on"] = manager.status("many").calls
print(json.dumps(results))
"""


def test_on_save_limits_stop_a_save_that_would_hang() -> None:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(_CHILD)], capture_output=True,
                          text=True, timeout=180, cwd=_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.splitlines()[-1])
    for name in ("spin", "spin_in_pcall"):
        kind, message, entity, callback, elapsed = results[name]
        assert kind == "ResourceLimitExceeded" and "time limit exceeded" in message
        assert "saving entity" in message and callback == "on_save" and entity is not None
        assert elapsed < 2.0                    # 100 ms budget, generously
    kind, message, _, callback, elapsed = results["explode"]
    assert kind == "SaveDataError" and "more than 50000 table entries" in message
    assert elapsed < 2.0
    kind, message, _, _, elapsed = results["long_keys"]
    assert kind == "SaveDataError" and "more than 8388608 bytes" in message
    count, elapsed = results["many"]
    assert count == 50 and elapsed < 5.0
    assert results["ticks_on"] == 2
    late, saved = results["late"]          # the stopped on_start ran; the next one did not
    assert saved == {str(late[0]): {"n": 1}, str(late[1]): {}}


def test_on_save_returning_self_saves_what_the_default_would(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    source = "function on_start(self) self.n, self.f = 3, print end"
    plain = spawn_scripted("plain", source, Position(0.0, 0.0))
    itself = spawn_scripted("itself", source + " function on_save(self) return self end",
                            Position(0.0, 0.0))
    esper.process(0.1)
    scripts = manager.save_state()["scripts"]
    assert scripts["plain"]["instances"][str(plain)] == {"n": 3}
    assert scripts["itself"]["instances"][str(itself)] == {"n": 3}
