"""``system.call``: the host runs a script instance's function between ticks, with the world API
under the script's permissions and limits; its results come back as plain data and its errors as
typed ScriptErrors, recorded like a tick's."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import esper
import pytest

from engine_scripting import (
    EventQueue,
    PermissionDenied,
    Permissions,
    Script,
    ScriptArgumentError,
    ScriptEngine,
    ScriptError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptSystem,
    WorldApi,
)
from tests.ecs.conftest import Loader
from tests.ecs.support import COMPONENTS, Health, Label, Position, console_texts

SHOP = """
function on_start(self) self.sold = 0 end
function sell(self, amount)
  local h = world.get(self.entity, "Health")
  world.set(self.entity, "Health", {value = h.value - amount})
  self.sold = self.sold + amount
  world.emit("hit", {amount = amount})
  print("sold", amount)
  return self.sold, h.value - amount
end
function sold(self) return self.sold end
function echo(self, ...) return ... end
function value() return {1, "two", {three = 3.5, flag = true}, print} end
function via(self) return value() end
function nothing(self) end
function fail(self, message)
  world.set(self.entity, "Health", {value = 1})
  error(message)
end
function cheat(self) world.set(self.entity, "Position", {x = 0}) end
function sneaky(self) pcall(world.set, self.entity, "Position", {x = 0}) return "caught" end
function chatter(self) for i = 1, 30 do print(i) end end
"""
SHOP_GRANTS = Permissions(read={"Health"}, write={"Health"}, emit={"hit"})


@pytest.fixture
def shop(spawn_scripted: Loader) -> int:
    entity = spawn_scripted("shop", SHOP, Health(100), permissions=SHOP_GRANTS)
    esper.process(0.016)
    return entity


def test_a_call_runs_the_function_with_the_world_api_and_writes_back(
        shop: int, manager: ScriptManager, system: ScriptSystem) -> None:
    heard: list[object] = []
    system.on_event("hit", lambda sender, payload: heard.append((sender, payload)))
    assert system.call("shop", shop, "sell", 30) == (30, 70)
    assert esper.component_for_entity(shop, Health).value == 70   # written back at once
    assert heard == [(shop, {"amount": 30})]
    assert console_texts() == ["sold\t30"]
    esper.component_for_entity(shop, Health).value = 50           # the host's change, seen
    assert system.call("shop", shop, "sell", 5) == (35, 45)
    esper.process(0.016)                                          # a tick sees the call's writes
    assert system.call("shop", shop, "sold") == 35
    assert esper.component_for_entity(shop, Health).value == 45
    assert manager.status("shop").error_count == 0


def test_results_and_arguments_are_plain_data_as_for_context_call(
        shop: int, manager: ScriptManager, system: ScriptSystem) -> None:
    context = manager.running("shop").context  # type: ignore[union-attr]
    assert system.call("shop", shop, "via") == context.call("value") == [
        1, "two", {"three": 3.5, "flag": True}, "<function>"]
    assert system.call("shop", shop, "nothing") is None
    assert system.call("shop", shop, "echo") is None
    assert system.call("shop", shop, "echo", 7) == 7
    args: tuple[object, ...] = (1, None, "x" * 300, [1, [2]], {"k": {"j": False}}, 2.5, None)
    assert system.call("shop", shop, "echo", *args) == args


@pytest.mark.parametrize("bad", [object(), 2**64, {1.5j: 1}, [lambda: 1]])
def test_arguments_that_are_not_plain_data_are_refused_before_anything_runs(
        shop: int, manager: ScriptManager, system: ScriptSystem, bad: object) -> None:
    with pytest.raises(ScriptArgumentError):
        system.call("shop", shop, "sell", bad)
    assert esper.component_for_entity(shop, Health).value == 100
    assert manager.status("shop").error_count == 0


def test_a_runtime_error_is_raised_recorded_and_the_writes_before_it_kept(
        shop: int, manager: ScriptManager, system: ScriptSystem) -> None:
    with pytest.raises(ScriptRuntimeError, match="out of stock") as caught:
        system.call("shop", shop, "fail", "out of stock")
    error = caught.value
    assert (error.script, error.entity, error.callback) == ("shop", shop, "fail")
    assert error.line is not None and error.traceback
    status = manager.status("shop")
    assert status.enabled and status.error_count == 1
    assert isinstance(status.last_error, ScriptRuntimeError)
    assert any("out of stock" in text for text in console_texts("error"))
    assert esper.component_for_entity(shop, Health).value == 1   # as a tick writes them back
    assert system.call("shop", shop, "sell", 1) == (1, 0)        # and the script goes on


def test_failing_calls_count_toward_disabling_like_failing_ticks(
        engine: ScriptEngine, world: str) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()], max_consecutive_failures=3)
    system = ScriptSystem(manager, components=COMPONENTS)
    esper.add_processor(system)
    manager.load("shop", SHOP, permissions=SHOP_GRANTS)
    entity = esper.create_entity(Health(), Script("shop"))
    esper.process(0.016)
    for _ in range(3):
        with pytest.raises(ScriptRuntimeError):
            system.call("shop", entity, "fail", "again")
    assert not manager.status("shop").enabled
    with pytest.raises(ScriptError, match="disabled"):
        system.call("shop", entity, "sold")
    manager.close()


@pytest.mark.parametrize("function", ["cheat", "sneaky"])
def test_a_permission_violation_raises_and_disables_the_script(
        shop: int, manager: ScriptManager, system: ScriptSystem, function: str) -> None:
    with pytest.raises(PermissionDenied) as caught:
        system.call("shop", shop, function)   # even when the script catches the error
    assert caught.value.entity == shop
    status = manager.status("shop")
    assert not status.enabled and isinstance(status.last_error, PermissionDenied)
    assert esper.component_for_entity(shop, Health).value == 100


def test_each_call_may_print_its_own_lines(shop: int, system: ScriptSystem) -> None:
    system.call("shop", shop, "chatter")
    texts = console_texts()
    assert texts[:20] == [str(i) for i in range(1, 21)]
    assert texts[20:] == ["(more output this tick dropped)"]
    system.call("shop", shop, "chatter")
    assert len(console_texts()) == 42


def test_the_call_must_name_a_running_instance(
        shop: int, spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    other = spawn_scripted("other", "function hello(self) return 1 end")
    plain = esper.create_entity(Health())
    for script, entity, message in (
        ("nope", shop, "no script named"), (3, shop, "no script named"),
        ("shop", plain, "does not run"), ("shop", other, "does not run"),
        ("shop", 999_999, "does not run"), ("shop", "1", "does not run"),
        ("shop", None, "does not run"), ("other", other, "no instance of 'other' yet"),
    ):
        with pytest.raises(ScriptError, match=message):
            system.call(script, entity, "hello")  # type: ignore[arg-type]
    esper.process(0.016)
    assert system.call("other", other, "hello") == 1
    esper.delete_entity(other, immediate=True)
    with pytest.raises(ScriptError, match="does not run"):
        system.call("other", other, "hello")
    assert manager.status("shop").error_count == 0 and manager.status("other").error_count == 0


def test_the_resource_entity_is_not_an_instance(shop: int, system: ScriptSystem) -> None:
    [(resource, _)] = esper.get_component(EventQueue)
    esper.add_component(resource, Script("shop"))   # a host mistake: still refused
    with pytest.raises(ScriptError, match="does not run"):
        system.call("shop", resource, "sold")


def test_a_missing_function_or_a_bad_name_is_the_host_s_mistake(
        shop: int, manager: ScriptManager, system: ScriptSystem) -> None:
    with pytest.raises(ScriptRuntimeError, match="no global function 'restock'"):
        system.call("shop", shop, "restock")
    with pytest.raises(ScriptArgumentError, match="function name"):
        system.call("shop", shop, 5)  # type: ignore[arg-type]
    assert manager.status("shop").error_count == 0 and manager.status("shop").enabled


def test_an_instance_whose_on_start_is_owed_cannot_be_called(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    first = spawn_scripted("slow", """
        function on_start(self) if self.entity == stuck then while true do end end end
        function hello(self) return self.entity end""")
    second = esper.create_entity(Script("slow"))
    manager.running("slow").context.execute(f"stuck = {first}")  # type: ignore[union-attr]
    esper.process(0.016)   # stopped in the first on_start: the second is still owed
    with pytest.raises(ScriptError, match="no instance"):
        system.call("slow", second, "hello")
    assert system.call("slow", first, "hello") == first
    esper.process(0.016)
    assert system.call("slow", second, "hello") == second


def _hooked(hook: Callable[[], None]) -> type:
    @dataclass
    class Trigger:
        """Runs host code while a script spawns it (a host callback of that script)."""

        value: int = 0

        def __post_init__(self) -> None:
            hook()

    return Trigger


def test_no_call_during_a_tick_or_from_inside_the_script_s_own_call(
        engine: ScriptEngine, world: str) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    refused: list[str] = []
    entities: list[int] = []

    def hook() -> None:
        try:
            system.call("maker", entities[0], "hello")
        except ScriptError as error:
            refused.append(str(error))

    trigger = _hooked(hook)
    system = ScriptSystem(manager, components=[trigger])
    esper.add_processor(system)
    manager.load("maker", """
        function hello(self) return "hello" end
        function make(self) return world.spawn({Trigger = {value = 1}}) end
        function on_update(self) if ticking then world.spawn({Trigger = {}}) end end""",
                 permissions=Permissions(write={"Trigger"}, spawn=True))
    entities.append(esper.create_entity(Script("maker")))
    esper.process(0.016)
    assert isinstance(system.call("maker", entities[0], "make"), int)
    manager.running("maker").context.execute("ticking = true")  # type: ignore[union-attr]
    esper.process(0.016)
    assert len(refused) == 2
    assert "from inside a call of that script" in refused[0]
    assert "during a tick" in refused[1]
    assert system.call("maker", entities[0], "hello") == "hello"   # between ticks: fine
    manager.close()


def test_a_call_may_reach_another_script_from_inside_a_call(
        engine: ScriptEngine, world: str) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    answers: list[object] = []
    entities: dict[str, int] = {}

    def hook() -> None:
        answers.append(system.call("helper", entities["helper"], "help", 2))

    system = ScriptSystem(manager, components=[_hooked(hook), Position, Label])
    esper.add_processor(system)
    manager.load("maker", "function make(self) world.spawn({Trigger = {}}) end",
                 permissions=Permissions(write={"Trigger"}, spawn=True))
    manager.load("helper", "function help(self, n) return n * 21 end")
    entities["maker"] = esper.create_entity(Script("maker"))
    entities["helper"] = esper.create_entity(Script("helper"))
    esper.process(0.016)
    system.call("maker", entities["maker"], "make")
    assert answers == [42]
    manager.close()


def test_events_a_call_emits_reach_scripts_at_the_next_tick(
        shop: int, spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    listener = spawn_scripted("listener", """
        got = {} function on_event(self, name, payload, sender)
          got[#got + 1] = {name, payload.amount, sender} end
        function heard() return got end""")
    esper.process(0.016)
    system.call("shop", shop, "sell", 4)
    esper.process(0.016)
    heard = manager.running("listener").context.call("heard")  # type: ignore[union-attr]
    assert heard == [["hit", 4, shop]]
    assert listener != shop


LIMITS_SCENARIO = """
import json, time
from dataclasses import dataclass
import esper
from engine_scripting import (Permissions, ResourceLimitExceeded, Script, ScriptEngine,
                              ScriptManager, ScriptResourceLimits, ScriptSystem, WorldApi)

@dataclass
class Health:
    value: int = 100

engine = ScriptEngine(ScriptResourceLimits(max_memory_mb=8, max_execution_time_ms=200,
                                           max_recursion_depth=100))
manager = ScriptManager(engine, initializers=[WorldApi()])
system = ScriptSystem(manager, components=[Health])
esper.add_processor(system)
manager.load("risky", '''
function on_update(self) self.ticks = (self.ticks or 0) + 1 end
function spin(self)
  world.set(self.entity, "Health", {value = 1})
  while true do end
end
function spin_caught(self) while true do pcall(function() while true do end end) end end
function bomb(self) local t = {} while true do t[#t + 1] = string.rep("x", 4096) .. #t end end
function deep(self, n)   -- slow enough per level for the watchdog's depth samples
  local s = 0 for i = 1, 2000 do s = s + i end   -- about 10 us a level: the watchdog samples
                                                 -- the depth long before memory runs out
  return deep(self, n + 1) + s
end
function ticks(self) return self.ticks end
''', permissions=Permissions(read={"Health"}, write={"Health"}))
entity = esper.create_entity(Health(), Script("risky"))
esper.process(0.016)
out = {}
for function in ("spin", "spin_caught", "deep", "bomb"):
    started = time.perf_counter()
    try:
        system.call("risky", entity, function, 1)
        out[function] = "returned"
    except ResourceLimitExceeded as error:
        out[function] = [error.limit_type, error.entity, error.callback,
                         time.perf_counter() - started]
    # the stopped call leaves no callback running: the world API is closed outside calls
    outside = manager.running("risky").context.execute("return pcall(world.get, 1, 'Health')")
    out.setdefault("world_outside", []).append(outside)
esper.process(0.016)
out["health"] = esper.component_for_entity(entity, Health).value
out["ticks"] = system.call("risky", entity, "ticks")
out["enabled"] = manager.status("risky").enabled
out["errors"] = manager.status("risky").error_count
print(json.dumps(out))
"""

ABANDON_SCENARIO = """
import json, sys
from dataclasses import dataclass
import esper
from engine_scripting import (CallAbandoned, Permissions, ResourceLimitExceeded, Script,
                              ScriptEngine, ScriptError, ScriptManager, ScriptResourceLimits,
                              ScriptSystem, WorldApi)

@dataclass
class Counter:
    value: int = 0

engine = ScriptEngine(ScriptResourceLimits(max_memory_mb=64, max_execution_time_ms=500))
manager = ScriptManager(engine, initializers=[WorldApi()], max_consecutive_failures=1000)
system = ScriptSystem(manager, components=[Counter])
esper.add_processor(system)
manager.load("bomb", '''
local t, n = {}, 0
function grow(self, count)
  for _ = 1, count do n = n + 1; t[0.5 + n * 2^-53] = true end
  return n
end
function bomb(self) grow(self, 2) return "finished" end
function size(self) return n end
''')
manager.load("counter", '''
function on_update(self)
  local c = world.get(self.entity, "Counter")
  world.set(self.entity, "Counter", {value = c.value + 1})
end''', permissions=Permissions(read={"Counter"}, write={"Counter"}))
bomb = esper.create_entity(Script("bomb"))
counted = esper.create_entity(Counter(), Script("counter"))
esper.process(0.016)
grown = 0
while grown < 32767:
    try:
        grown = system.call("bomb", bomb, "grow", min(1000, 32767 - grown))
    except ResourceLimitExceeded as error:   # a smaller rehash on the way took long
        assert not isinstance(error, CallAbandoned)
        grown = system.call("bomb", bomb, "size")
try:
    system.call("bomb", bomb, "bomb")
    outcome = "returned"
except CallAbandoned as error:
    outcome = "CallAbandoned"
try:
    system.call("bomb", bomb, "grow", 0)
    again = "ran"
except ScriptError as error:
    again = str(error)
for _ in range(3):
    esper.process(0.016)
status = manager.status("bomb")
print(json.dumps({"outcome": outcome, "again": again, "enabled": status.enabled,
                  "error": type(status.last_error).__name__,
                  "counter": esper.component_for_entity(counted, Counter).value}))
"""


def _scenario(code: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    line = [text for text in done.stdout.splitlines() if text.startswith("{")][-1]
    result: dict[str, Any] = json.loads(line)
    return result


def test_limits_stop_a_call_and_the_script_goes_on() -> None:
    result = _scenario(LIMITS_SCENARIO)
    for function, limit in (("spin", "time"), ("spin_caught", "time"), ("bomb", "memory"),
                            ("deep", "recursion")):
        limit_type, entity, callback, elapsed = result[function]
        assert (limit_type, entity, callback) == (limit, 1, function), function
        assert elapsed < 2.0, function           # 200 ms budget, generously
    assert result["health"] == 1                 # written before the stop, written back
    assert result["ticks"] == 2                  # the script still ticks
    for ok, message in result["world_outside"]:
        assert ok is False and "only available inside callbacks" in message
    assert result["enabled"] is True and result["errors"] == 4


def test_a_call_stuck_in_a_c_function_is_abandoned_and_the_game_goes_on() -> None:
    result = _scenario(ABANDON_SCENARIO)
    assert result["outcome"] == "CallAbandoned" and result["error"] == "CallAbandoned"
    assert result["enabled"] is False and "disabled" in result["again"]
    assert result["counter"] == 4
