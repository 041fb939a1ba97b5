"""Errors that help: each message says what went wrong, where and what to do about it.

- a grant naming a component the ScriptSystem was not given is the host's ScriptError, and the
  script is not blamed;
- `world.get` of an unknown component lists the known ones and says where they come from;
- a PermissionDenied says the script, line, callback, entity, operation, target and the grant
  that is missing;
- tracebacks hold only the script's own frames;
- a time-limit error says the budget, how long the call ran and how far the tick got;
- a failed hot reload reaches the console.
"""

from __future__ import annotations

import os
import re
from dataclasses import make_dataclass
from pathlib import Path

import esper
import pytest

from engine_scripting import (
    PermissionDenied,
    Permissions,
    ResourceLimitExceeded,
    Script,
    ScriptEngine,
    ScriptError,
    ScriptManager,
    ScriptResourceLimits,
    ScriptRuntimeError,
    ScriptSystem,
    WorldApi,
)
from tests.ecs.conftest import Loader
from tests.ecs.support import ALL, COMPONENTS, Health, Position, console_texts

KNOWN = "known components: Position, Velocity, Health, Label"


# -- grants naming components the system does not know -------------------------------------------
def test_an_unknown_component_in_a_grant_fails_the_system_s_construction(
        engine: ScriptEngine, world: str) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    manager.load("mover", "function on_update(self) end",
                 permissions=Permissions(read={"Positon"}))
    with pytest.raises(ScriptError) as caught:
        ScriptSystem(manager, components=COMPONENTS)
    message = str(caught.value)
    assert "script 'mover'" in message and "'Positon'" in message and KNOWN in message
    assert "ScriptSystem(components=[...])" in message
    assert not isinstance(caught.value, PermissionDenied)
    status = manager.status("mover")
    assert status.enabled and status.error_count == 0 and status.last_error is None
    ScriptSystem(manager, components=[*COMPONENTS, make_dataclass("Positon", [("x", float)])])
    manager.close()


def test_an_unknown_component_in_a_later_script_s_grant_fails_the_tick_before_it_starts(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    mover = spawn_scripted("mover", """
        function on_update(self)
          local p = world.get(self.entity, "Position")
          world.set(self.entity, "Position", {x = p.x + 1})
        end""", Position(0.0, 0.0))
    esper.process(0.1)
    spawn_scripted("typo", "function on_update(self) end",
                   permissions=Permissions(write={"Position": None, "Helth": {"value"}}))
    system.send("ping")
    with pytest.raises(ScriptError, match=rf"script 'typo': Permissions\(write=\.\.\.\) names "
                                          rf"component 'Helth'.*\({KNOWN}\)"):
        esper.process(0.1)
    assert esper.component_for_entity(mover, Position).x == 1.0   # nothing of the tick ran
    status = manager.status("typo")
    assert status.enabled and status.error_count == 0 and status.last_error is None
    assert not isinstance(manager.status("mover").last_error, PermissionDenied)
    manager.unload("typo")   # the game fixes its mistake: the next tick runs as usual
    esper.process(0.1)
    assert esper.component_for_entity(mover, Position).x == 2.0


def test_an_unknown_field_in_a_field_grant_is_the_host_s_error_too(
        engine: ScriptEngine, world: str) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    manager.load("medic", "", permissions=Permissions(write={"Health": {"valeu"}}))
    with pytest.raises(ScriptError, match=r"names field 'valeu' of Health, which scripts cannot "
                                          r"see \(Health's visible fields: value, alive\)"):
        ScriptSystem(manager, components=COMPONENTS)
    manager.close()


def test_the_known_components_are_capped(engine: ScriptEngine, world: str) -> None:
    many = [make_dataclass(f"C{i:02}", [("v", float)]) for i in range(25)]
    manager = ScriptManager(engine, initializers=[WorldApi()])
    manager.load("s", "", permissions=Permissions(read={"Nope"}))
    with pytest.raises(ScriptError, match=r"\(known components: C00, C01, .*, C19 and 5 more\)"):
        ScriptSystem(manager, components=many)
    manager.close()


def test_the_spatial_component_must_be_known(engine: ScriptEngine, world: str) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    with pytest.raises(ValueError, match="'Positon' is not one of the system's components "
                                         r"\(known: Position, Velocity, Health, Label\)"):
        ScriptSystem(manager, components=COMPONENTS, spatial=("Positon", "x", "y"))


# -- unknown components in Lua -------------------------------------------------------------------
def test_world_get_of_an_unknown_component_lists_the_known_ones(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    spawn_scripted("reader", """
        function on_update(self)
          world.get(self.entity, "Positon")
        end""", Position(0.0, 0.0))
    esper.process(0.1)
    error = manager.status("reader").last_error
    assert isinstance(error, ScriptRuntimeError) and error.line == 3
    assert str(error) == (
        "reader:3: world.get: unknown component 'Positon' (known: Position, Velocity, Health, "
        "Label); a component scripts use must be given to ScriptSystem(components=[...])")
    assert manager.status("reader").enabled   # a script's mistake it may catch: not a violation


def test_the_known_components_in_lua_are_capped(engine: ScriptEngine, world: str) -> None:
    many = [make_dataclass(f"C{i:02}", [("v", float)]) for i in range(25)]
    manager = ScriptManager(engine, initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager, components=many))
    manager.load("s", "function on_update(self) print(select(2, pcall(world.has, "
                      "self.entity, 'Nope'))) end", permissions=Permissions(read={"C00"}))
    esper.create_entity(Script("s"))
    esper.process(0.1)
    [text] = console_texts()
    assert "(known: C00, C01, C02, C03, C04, C05, C06, C07, C08, C09, C10, C11, C12, C13, C14, " \
           "C15, C16, C17, C18, C19 and 5 more)" in text
    manager.close()


# -- PermissionDenied ----------------------------------------------------------------------------
GRANTS = Permissions(read={"Position", "Health"}, write={"Position": None, "Health": {"value"}},
                     emit={"ping"})

DENIALS = {
    "get, another entity": (
        "world.get(OTHER, 'Position')",
        'world.get(OTHER, "Position") denied: this script may only read its own entity; '
        'missing grant: read_scope="any"'),
    "has, another entity": (
        "world.has(OTHER, 'Position')",
        'world.has(OTHER, "Position") denied: this script may only read its own entity; '
        'missing grant: read_scope="any"'),
    "set, another entity": (
        "world.set(OTHER, 'Position', {x = 1})",
        'world.set(OTHER, "Position") denied: this script may only write its own entity; '
        'missing grant: write_scope="any"'),
    "destroy, another entity": (
        "world.destroy(OTHER)",
        'world.destroy(OTHER) denied: this script may only write its own entity; missing grant: '
        'write_scope="any"'),
    "an unreadable component": (
        "world.get(E, 'Velocity')",
        "world.get(E, \"Velocity\") denied: component 'Velocity' is not readable by this script; "
        'missing grant: read={"Velocity"}'),
    "an unwritable component": (
        "world.set(E, 'Velocity', {x = 1})",
        "world.set(E, \"Velocity\") denied: component 'Velocity' is not writable by this script; "
        'missing grant: write={"Velocity"}'),
    "a field outside the grant": (
        "world.set(E, 'Health', {alive = false})",
        "world.set(E, \"Health\") denied: field 'alive' of Health is not writable by this "
        'script; missing grant: write={"Health": {"alive"}}'),
    "spawn from a table": (
        "world.spawn({Position = {x = 1, y = 1}})",
        'world.spawn({...}) denied: world.spawn is not granted to this script; missing grant: '
        'spawn=True'),
    "a template": (
        "world.spawn('bullet')",
        "world.spawn(\"bullet\") denied: template 'bullet' is not granted to this script; "
        'missing grant: templates={"bullet"}'),
    "destroy": (
        "world.destroy(E)",
        "world.destroy denied: world.destroy is not granted to this script; missing grant: "
        "destroy=True"),
    "an event": (
        "world.emit('secret')",
        "world.emit(\"secret\") denied: event 'secret' is not granted to this script; "
        'missing grant: emit={"secret"}'),
    "an event's target": (
        "world.emit('ping', {}, OTHER)",
        'world.emit("ping", ..., OTHER) denied: this script may only send it to its own '
        'entity; missing grant: emit={"ping": "any"}'),
    "a query": (
        "for e in world.query('Velocity') do end",
        "world.query(\"Velocity\") denied: component 'Velocity' is not readable by this script; "
        'missing grant: read={"Velocity"}'),
}


@pytest.mark.parametrize("case", DENIALS, ids=list(DENIALS))
def test_a_denial_says_where_what_and_which_grant_is_missing(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem,
        case: str) -> None:
    call, expected = DENIALS[case]
    grants = GRANTS if "destroy(OTHER)" not in call else Permissions(
        read={"Position"}, write={"Position"}, destroy=True)
    system.register_template("bullet", components=[Position(0.0, 0.0)])
    other = esper.create_entity(Position(7.0, 7.0))
    entity = spawn_scripted("ship_ai", f"""
        local function act(E, OTHER)
          {call}
        end
        function on_update(self)
          pcall(act, self.entity, {other})
        end""", Position(0.0, 0.0), Health(), permissions=grants)
    esper.process(0.1)
    status = manager.status("ship_ai")
    error = status.last_error
    assert isinstance(error, PermissionDenied)
    wanted = (f"ship_ai:3: in on_update (entity {entity}): "
              + expected.replace("OTHER", str(other)).replace("(E", f"({entity}"))
    assert str(error) == wanted
    assert (error.line, error.callback, error.entity) == (3, "on_update", entity)
    assert not status.enabled and "security violation" in (status.disabled_reason or "")


def test_spawning_a_script_names_the_grant_the_spawner_lacks(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    manager.load("admin", "", permissions=Permissions(read={"Position", "Health"},
                                                      write={"Health": {"value", "alive"}}))
    entity = spawn_scripted("spawner", """
        function on_update(self)
          world.spawn({script = "admin"})
        end""", permissions=Permissions(spawn=True, read={"Position", "Health"},
                                        write={"Health": {"value"}}))
    esper.process(0.1)
    error = manager.status("spawner").last_error
    assert isinstance(error, PermissionDenied)
    assert str(error) == (
        f"spawner:3: in on_update (entity {entity}): world.spawn({{script = \"admin\"}}) "
        "denied: script 'admin' has grants this script lacks; missing grant: "
        'write={"Health": {"alive"}}')


@pytest.mark.parametrize("missing, grants", [
    ('read_scope="any"', Permissions(read={"Position"}, read_scope="any")),
    ('emit={"ping": "any"}', Permissions(emit={"ping": "any"})),
    ("destroy=True", Permissions(destroy=True)),
    ('templates={"bullet"}', Permissions(templates={"bullet"})),
    ('write={"Position": None}', Permissions(write={"Position": None})),
])
def test_permissions_missing_names_the_first_grant_not_covered(missing: str,
                                                               grants: Permissions) -> None:
    spawner = Permissions(read={"Position"}, write={"Position": {"x"}}, emit={"ping"},
                          spawn=True)
    assert spawner.missing(grants) == missing and not spawner.covers(grants)
    assert grants.missing(grants) is None and grants.covers(grants)


@pytest.mark.parametrize("callback, source", [
    ("on_start", "function on_start(self) world.get(OTHER, 'Position') end"),
    ("on_event", "function on_event(self) world.get(OTHER, 'Position') end"),
    ("on_destroy", "function on_destroy(self) world.get(OTHER, 'Position') end"),
])
def test_a_denial_names_the_callback_that_ran(spawn_scripted: Loader, manager: ScriptManager,
                                              system: ScriptSystem, callback: str,
                                              source: str) -> None:
    other = esper.create_entity(Position(1.0, 1.0))
    entity = spawn_scripted("cb", source.replace("OTHER", str(other)), Position(0.0, 0.0),
                            permissions=GRANTS)
    esper.process(0.1)
    if callback == "on_event":
        system.send("ping")
    if callback == "on_destroy":
        esper.delete_entity(entity, immediate=True)
    esper.process(0.1)
    error = manager.status("cb").last_error
    assert isinstance(error, PermissionDenied) and error.callback == callback
    assert str(error).startswith(f"cb:1: in {callback} (entity {entity}): world.get({other}, ")


def test_a_denial_in_a_host_call_names_the_function(spawn_scripted: Loader,
                                                    manager: ScriptManager,
                                                    system: ScriptSystem) -> None:
    entity = spawn_scripted("shop", """
        function steal(self, victim)
          world.set(victim, "Position", {x = 0})
        end""", Position(0.0, 0.0), permissions=GRANTS)
    victim = esper.create_entity(Position(5.0, 5.0))
    esper.process(0.1)
    with pytest.raises(PermissionDenied, match=rf"^shop:3: in steal \(entity {entity}\): "
                                               rf'world.set\({victim}, "Position"\) denied'):
        system.call("shop", entity, "steal", victim)


# -- tracebacks ----------------------------------------------------------------------------------
_OWN_FRAME = re.compile(r"^\t(?:tb:\d+: in (?:function <tb:\d+>|(?:upvalue|local|method|field|"
                        r"global|function|metamethod) '[^'?]+'|function)"
                        r"|\[C\]: in (?:function|global|method|field) '[^'?]+')$")

TRACEBACKS = {
    "a callback": ("function on_update(self)\n  local t = nil\n  t.x = 1\nend", 3),
    "a nested function": ("local function inner() error('deep') end\n"
                          "local function outer() inner() end\n"
                          "function on_update(self) outer() end", 1),
    "a world API check": ("local function get(e) local p = world.get(e, 42) return p end\n"
                          "function on_update(self)\n  get(self.entity)\nend", 1),
    "a caught and raised error": ("function on_update(self)\n"
                                  "  local ok, e = pcall(error, 'again')\n  error(e, 0)\nend",
                                  None),
    "an xpcall re-raise": ("function on_update(self)\n"
                           "  local ok, e = xpcall(function() error('x') end, function(m) "
                           "return m end)\n  error(e, 0)\nend", 2),
    "a method": ("local Obj = {}\nObj.__index = Obj\nfunction Obj:go() error('m') end\n"
                 "function on_update(self) setmetatable({}, Obj):go() end", 3),
    "a function a library called": ("local function boom(c) error('g ' .. c) end\n"
                                    "function on_update(self)\n"
                                    "  string.gsub('ab', '%w', boom)\nend", 1),
    "a metamethod": ("function on_update(self)\n  local t = setmetatable({}, {__index = "
                     "function() error('idx') end})\n  return t.x\nend", 2),
}


@pytest.mark.parametrize("case", TRACEBACKS, ids=list(TRACEBACKS))
def test_tracebacks_hold_only_the_script_s_frames(spawn_scripted: Loader,
                                                  manager: ScriptManager, case: str) -> None:
    source, line = TRACEBACKS[case]
    spawn_scripted("tb", source, Position(0.0, 0.0))
    esper.process(0.1)
    error = manager.status("tb").last_error
    assert isinstance(error, ScriptRuntimeError) and error.line == line
    assert error.traceback is not None and error.traceback.startswith("stack traceback:")
    frames = error.traceback.split("\n")[1:]
    assert frames and [f for f in frames if not _OWN_FRAME.match(f)] == [], frames
    assert any(f.startswith("\ttb:") for f in frames), frames


def test_a_library_s_frame_shows_once(spawn_scripted: Loader, manager: ScriptManager) -> None:
    spawn_scripted("tb", TRACEBACKS["a function a library called"][0], Position(0.0, 0.0))
    esper.process(0.1)
    error = manager.status("tb").last_error
    assert error is not None and error.traceback is not None
    assert error.traceback.split("\n")[1:] == [
        "\t[C]: in global 'error'", "\ttb:1: in function", "\t[C]: in function 'string.gsub'",
        "\ttb:3: in function <tb:2>"]


def test_a_load_error_s_traceback_holds_only_the_script_s_frames(
        manager: ScriptManager) -> None:
    with pytest.raises(ScriptRuntimeError) as caught:
        manager.load("boot", "local function f() error('no') end\nf()")
    assert caught.value.traceback == ("stack traceback:\n\t[C]: in global 'error'\n"
                                      "\tboot:1: in local 'f'\n\tboot:2: in main chunk")


# -- time limits ---------------------------------------------------------------------------------
_TIME = r"time limit exceeded \(budget 50 ms, stopped after \d+ ms\)"

SLOW_FOURTH = """
count = 0
function on_update(self)
  count = count + 1
  if count == 4 then while true do end end
end
"""


def test_a_time_limit_error_says_budget_elapsed_and_instances_reached(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    entities = [spawn_scripted("slow", SLOW_FOURTH) for _ in range(10)]
    esper.process(0.016)
    error = manager.status("slow").last_error
    assert isinstance(error, ResourceLimitExceeded) and error.limit_type == "time"
    assert error.entity == entities[3] and error.callback == "on_update"
    assert re.fullmatch(rf"slow: {_TIME} \(4 of 10 instances reached\)", str(error)), str(error)


@pytest.mark.parametrize("callback", ["on_start", "on_event"])
def test_a_time_limit_in_other_callbacks_of_a_tick_says_the_same(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem,
        callback: str) -> None:
    source = f"n = 0\nfunction {callback}(self) n = n + 1 if n == 2 then while true do end end end"
    entities = [spawn_scripted("slow", source) for _ in range(3)]
    if callback == "on_event":
        esper.process(0.1)
        system.send("ping")
    esper.process(0.1)
    error = manager.status("slow").last_error
    assert isinstance(error, ResourceLimitExceeded)
    assert (error.entity, error.callback) == (entities[1], callback)
    assert re.fullmatch(rf"slow: {_TIME} \(2 of 3 instances reached\)", str(error)), str(error)


def test_a_time_limit_in_a_task_says_the_task_and_its_entity(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    source = ("function on_start(self) if self.entity == E then task.spawn(function() "
              "task.wait(0.05) while true do end end) end end function on_update(self) end")
    entities = [spawn_scripted("slow", source) for _ in range(3)]
    manager.reload("slow", source.replace("E", str(entities[1])))
    for _ in range(3):
        esper.process(0.04)
    error = manager.status("slow").last_error
    assert isinstance(error, ResourceLimitExceeded)
    assert (error.entity, error.callback) == (entities[1], "task")
    assert re.fullmatch(rf"slow: {_TIME} \(in task of entity {entities[1]}\)", str(error)), \
        str(error)


def test_a_time_limit_in_on_reload_says_the_same(spawn_scripted: Loader,
                                                 manager: ScriptManager) -> None:
    entities = [spawn_scripted("slow", "function on_update(self) end") for _ in range(3)]
    esper.process(0.1)
    manager.reload("slow", "n = 0\nfunction on_reload(self) n = n + 1 "
                           "if n == 3 then while true do end end end")
    esper.process(0.1)
    error = manager.status("slow").last_error
    assert isinstance(error, ResourceLimitExceeded)
    assert (error.entity, error.callback) == (entities[2], "on_reload")
    assert re.fullmatch(rf"slow: {_TIME} \(3 of 3 instances reached\)", str(error)), str(error)


def test_a_time_limit_in_a_host_call_says_budget_and_elapsed(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    entity = spawn_scripted("slow", "function spin(self) while true do end end")
    esper.process(0.1)
    with pytest.raises(ResourceLimitExceeded, match=rf"^slow: {_TIME}$") as caught:
        system.call("slow", entity, "spin")
    assert (caught.value.entity, caught.value.callback) == (entity, "spin")


def test_a_script_disabled_for_failing_ticks_says_the_budget(spawn_scripted: Loader,
                                                             manager: ScriptManager) -> None:
    spawn_scripted("stuck", "function on_update(self) while true do end end")
    for _ in range(10):
        esper.process(0.1)
    reason = manager.status("stuck").disabled_reason or ""
    assert re.fullmatch(rf"failed 10 ticks in a row: stuck: {_TIME} \(1 of 1 instances "
                        r"reached\)", reason), reason


def test_a_time_limit_in_the_instance_list_update_says_so(world: str) -> None:
    tight = ScriptEngine(ScriptResourceLimits(max_memory_mb=64, max_execution_time_ms=1))
    manager = ScriptManager(tight, initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager, components=COMPONENTS))
    manager.load("crowd", "")
    for _ in range(200_000):
        esper.create_entity(Script("crowd"))
    esper.process(0.1)
    error = manager.status("crowd").last_error
    assert isinstance(error, ResourceLimitExceeded) and error.limit_type == "time"
    assert re.fullmatch(r"crowd: time limit exceeded \(budget 1 ms, stopped after \d+ ms\) "
                        r"\(while updating the list of 200000 instances, before any callback "
                        r"ran\)", str(error)), str(error)
    manager.close()
    tight.close()


# -- hot reload ----------------------------------------------------------------------------------
def _write(path: Path, text: str, stamp: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(stamp, stamp))


@pytest.mark.parametrize("broken, shown", [
    ("function on_update(self)\n  x = = 1\nend",
     "ScriptCompileError: hot reload failed, the old version runs on: npc:2: unexpected "
     "symbol near '='"),
    ("local speed = 1\nerror('no speed')",
     "ScriptRuntimeError: hot reload failed, the old version runs on: npc:2: no speed"),
])
def test_a_failed_hot_reload_reaches_the_console(engine: ScriptEngine, world: str,
                                                 tmp_path: Path, broken: str,
                                                 shown: str) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager, components=COMPONENTS, hot_reload_interval_s=0))
    script = tmp_path / "npc.lua"
    _write(script, "function on_update(self) print('old') end", 1_000_000_000)
    manager.load("npc", path=script, permissions=ALL)
    esper.create_entity(Script("npc"))
    esper.process(0.1)
    _write(script, broken, 2_000_000_000)
    esper.process(0.1)
    esper.process(0.1)   # the same file version is not tried again
    assert console_texts("error") == [shown]
    assert console_texts("info") == ["old", "old", "old"]
    manager.close()
