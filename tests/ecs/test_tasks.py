"""Tasks and timers: task.spawn, task.wait, task.delay and task.cancel (ecs/lua/tasks.lua)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import esper
import pytest

from engine_scripting import (
    Console,
    PermissionDenied,
    Permissions,
    ResourceLimitExceeded,
    Script,
    ScriptEngine,
    ScriptManager,
    ScriptRuntimeError,
    ScriptSystem,
    WorldApi,
)
from engine_scripting.ecs._world_api import WORLD_CAPS
from tests.ecs.conftest import Loader
from tests.ecs.support import COMPONENTS, Position, console_texts

_ROOT = Path(__file__).resolve().parents[2]


def _printed() -> list[tuple[int, str]]:
    """(tick, text) of every printed console line."""
    [(_, console)] = esper.get_component(Console)
    return [(m.tick, m.text) for m in console.messages if m.level == "info"]


def _live(manager: ScriptManager, system: ScriptSystem, name: str) -> int:
    return int(manager.running(name).installed[system._world_api].live_tasks())


def _global(manager: ScriptManager, name: str, expression: str) -> object:
    return manager.running(name).context.execute(f"return {expression}")


# -- running and waiting ----------------------------------------------------------------------
def test_spawn_runs_at_once_until_the_first_wait(spawn_scripted: Loader) -> None:
    spawn_scripted("npc", """
        function on_start(self)
          print("before")
          task.spawn(function(a, b) print("task", a, b) task.wait() print("resumed") end, 1, "x")
          print("after")
        end
        function on_update(self) print("update") end""")
    esper.process(0.0)
    esper.process(0.0)
    assert _printed() == [(1, "before"), (1, "task\t1\tx"), (1, "after"), (1, "update"),
                          (2, "resumed"), (2, "update")]


def test_wait_returns_the_game_time_waited_and_resumes_on_the_right_tick(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    # asked in on_start (before the task phase): counted from that tick's time, dt included;
    # asked in on_update (after it): counted from the next tick's dt on
    spawn_scripted("timer", """
        ticks, log = 0, {}
        local function waiter(name, seconds)
          return function()
            local waited = task.wait(seconds)
            log[#log + 1] = {name, ticks + 1, waited}
          end
        end
        function on_start(self) task.spawn(waiter("start", 1.0)) end
        function on_update(self)
          ticks = ticks + 1
          if ticks == 1 then task.spawn(waiter("update", 0.75)) end
        end""")
    for dt in (0.25, 0.5, 0.125, 0.25, 1.0, 0.5):
        esper.process(dt)
    log = _global(manager, "timer", "log")
    # start: from tick 1 (t=0.25): t = 0.75, 0.875, 1.125, 2.125 -> tick 5, waited 1.875
    # update: from tick 1's end (0.25): 0.75, 0.875, 1.125 -> tick 4, waited 0.875
    assert log == [["update", 4, 0.875], ["start", 5, 1.875]]


def test_wait_zero_and_no_argument_wait_for_the_next_tick_even_when_dt_is_zero(
        spawn_scripted: Loader) -> None:
    spawn_scripted("stepper", """
        function on_start(self)
          task.spawn(function()
            for i = 1, 3 do print("a", i, task.wait(0)) end
          end)
          task.spawn(function()
            for i = 1, 2 do print("b", i, task.wait()) end
          end)
        end""")
    for _ in range(4):
        esper.process(0.0)
    assert _printed() == [(2, "a\t1\t0.0"), (2, "b\t1\t0.0"), (3, "a\t2\t0.0"),
                          (3, "b\t2\t0.0"), (4, "a\t3\t0.0")]


def test_waits_in_steps_of_a_sixtieth_end_on_the_expected_tick(spawn_scripted: Loader) -> None:
    spawn_scripted("sixty", """
        ticks = 0
        function on_start(self) task.spawn(function() task.wait(2) print("woke", ticks) end) end
        function on_update(self) ticks = ticks + 1 end""")
    for _ in range(122):
        esper.process(1 / 60)
    # 120 ticks after the one it was asked in (summed sixtieths fall short of 2 by 2e-16)
    assert _printed() == [(121, "woke\t120")]


def test_waking_order_follows_due_time_then_asking_order(spawn_scripted: Loader,
                                                         manager: ScriptManager) -> None:
    spawn_scripted("order", """
        log = {}
        function on_start(self)
          for i, seconds in ipairs({0.3, 0.1, 0.2, 0.1, 0}) do
            task.spawn(function() task.wait(seconds) log[#log + 1] = i end)
          end
        end""")
    for _ in range(4):
        esper.process(0.1)
    assert _global(manager, "order", "log") == [5, 2, 4, 3, 1]


def test_many_random_waits_and_cancels_match_a_model(roomy_engine: ScriptEngine,
                                                     world: str) -> None:
    rng = random.Random(16)
    durations = [rng.choice([0, 0.5, 1, 1.5, 2.5, 4]) + rng.randrange(4) * 0.25
                 for _ in range(300)]
    cancelled = set(rng.sample(range(300), 60))
    dts = [rng.choice([0.0, 0.25, 0.5, 0.75]) for _ in range(40)]
    manager = ScriptManager(roomy_engine, initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager, components=COMPONENTS, hot_reload_interval_s=None))
    manager.load("model", f"""
        ticks, woke, handles = 0, {{}}, {{}}
        local durations = {{{", ".join(map(str, durations))}}}
        local cancelled = {{{", ".join(str(i + 1) for i in sorted(cancelled))}}}
        function on_update(self)
          ticks = ticks + 1
          if ticks == 1 then
            for i, d in ipairs(durations) do
              handles[i] = task.spawn(function() task.wait(d) woke[i] = ticks + 1 end)
            end
          elseif ticks == 3 then
            for _, i in ipairs(cancelled) do task.cancel(handles[i]) end
          end
        end""")
    esper.create_entity(Script("model"))
    for dt in dts:
        esper.process(dt)
    woke = manager.running("model").context.execute("return woke")
    expected = {}
    for i, duration in enumerate(durations):
        # counted from tick 2's dt on; woken in the first tick whose time reaches it
        tick = next((tick for tick in range(2, len(dts) + 1) if sum(dts[1:tick]) >= duration),
                    None)
        if tick is not None and not (i in cancelled and tick > 3):
            expected[i + 1] = tick
    assert woke == expected and 100 < len(expected) < 300
    manager.close()


def test_the_documented_npc_says_a_line_waits_and_walks(spawn_scripted: Loader,
                                                        system: ScriptSystem) -> None:
    docs = (_ROOT / "docs" / "scripting.md").read_text()
    source = docs.split("## Tasks and timers", 1)[1].split("```lua\n", 1)[1].split("```", 1)[0]
    entity = spawn_scripted("npc", source, Position(0.0, 0.0))
    for _ in range(16):
        esper.process(0.5)
    assert _printed() == [(1, "Hello, traveller!"), (15, "Here we are.")]
    assert esper.component_for_entity(entity, Position).x == 100.0
    other = spawn_scripted("npc", source, Position(0.0, 0.0))
    for _ in range(6):
        esper.process(0.5)
    system.send("stop", target=other)
    for _ in range(4):
        esper.process(0.5)
    assert esper.component_for_entity(other, Position).x == 10.0   # one step (its 6th tick)


# -- delay and cancel ---------------------------------------------------------------------------
def test_delay_starts_later_with_its_arguments_and_cancel_stops_it(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    spawn_scripted("delays", """
        results = {}
        function on_start(self)
          task.delay(0.5, function(a, b, n) print("delayed", a, b, n) end, "x", nil, 3)
          local doomed = task.delay(0.25, function() print("never") end)
          results.first = task.cancel(doomed)
          results.second = task.cancel(doomed)
        end""")
    for _ in range(3):
        esper.process(0.25)
    assert _printed() == [(3, "delayed\tx\tnil\t3")]
    assert _global(manager, "delays", "results") == {"first": True, "second": False}


def test_cancel_ends_a_waiting_task_and_a_finished_task_cancels_to_false(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    spawn_scripted("cancel", """
        results, ticks = {}, 0
        function on_start(self)
          self.quick = task.spawn(function() end)
          self.slow = task.spawn(function() while true do print("tick") task.wait() end end)
          self.failing = task.spawn(function() error("oops") end)
        end
        function on_update(self)
          ticks = ticks + 1
          if ticks == 2 then
            results = {task.cancel(self.slow), task.cancel(self.quick), task.cancel(self.failing)}
          end
        end""")
    assert _live(manager, system, "cancel") == 0
    esper.process(0.1)
    assert _live(manager, system, "cancel") == 1
    esper.process(0.1)
    esper.process(0.1)
    assert _printed() == [(1, "tick"), (2, "tick")]
    assert _global(manager, "cancel", "results") == [True, False, False]
    assert _live(manager, system, "cancel") == 0


def test_a_task_that_cancels_itself_runs_until_it_waits(spawn_scripted: Loader,
                                                       manager: ScriptManager) -> None:
    spawn_scripted("quitter", """
        function on_start(self)
          local handle
          handle = task.spawn(function()
            task.wait()
            print("cancel", task.cancel(handle), task.cancel(handle))
            print("still running")
            task.wait()
            print("never")
          end)
        end""")
    for _ in range(4):
        esper.process(0.1)
    assert _printed() == [(2, "cancel\ttrue\tfalse"), (2, "still running")]
    assert manager.status("quitter").error_count == 0


def test_tasks_spawn_tasks_and_run_in_host_calls(spawn_scripted: Loader, manager: ScriptManager,
                                                 system: ScriptSystem) -> None:
    entity = spawn_scripted("nest", """
        function go(self, n)
          task.spawn(function()
            task.spawn(function() print("inner", task.wait(0.5)) end)
            print("outer", n, task.wait(1))
          end)
          return "started"
        end""")
    esper.process(0.5)
    assert system.call("nest", entity, "go", 7) == "started"
    for _ in range(2):
        esper.process(0.5)
    assert _printed() == [(2, "inner\t0.5"), (3, "outer\t7\t1.0")]


# -- the world API, ordering, errors -----------------------------------------------------------
def test_tasks_use_the_world_api_as_their_instance(spawn_scripted: Loader) -> None:
    entity = spawn_scripted("walker", """
        function on_start(self)
          task.spawn(function()
            while true do
              local p = world.get(self.entity, "Position")
              world.set(self.entity, "Position", {x = p.x + 1})
              task.wait(1)
            end
          end)
        end""", Position(0.0, 0.0))
    for _ in range(4):
        esper.process(0.5)
    assert esper.component_for_entity(entity, Position).x == 2.0   # ticks 1 and 3


def test_a_task_outside_its_scope_is_denied_and_disables_the_script(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    other = esper.create_entity(Position(5.0, 5.0))
    spawn_scripted("sneak", f"""
        function on_start(self)
          task.spawn(function()
            task.wait()
            pcall(world.set, {other}, "Position", {{x = 0}})
          end)
        end""", Position(0.0, 0.0), permissions=Permissions(read={"Position"},
                                                             write={"Position"}))
    esper.process(0.1)
    esper.process(0.1)
    status = manager.status("sneak")
    assert not status.enabled
    assert isinstance(status.last_error, PermissionDenied)
    assert "may only write its own entity" in str(status.last_error)
    assert "in task (entity " in str(status.last_error), str(status.last_error)
    assert esper.component_for_entity(other, Position).x == 5.0


def test_each_tick_runs_events_then_starts_then_tasks_then_on_update(
        spawn_scripted: Loader, system: ScriptSystem) -> None:
    spawn_scripted("order", """
        function on_event(self, name) print("event") end
        function on_start(self)
          print("start")
          task.spawn(function() while true do task.wait() print("task") end end)
        end
        function on_update(self) print("update") end""")
    system.send("ping")
    esper.process(0.1)
    system.send("ping")
    esper.process(0.1)
    assert _printed() == [(1, "start"), (1, "update"), (2, "event"), (2, "task"), (2, "update")]


def test_a_failing_task_is_reported_like_a_callback(spawn_scripted: Loader,
                                                   manager: ScriptManager) -> None:
    entity = spawn_scripted("faulty", """
        function on_start(self)
          task.spawn(function()
            task.wait()
            local t = nil
            return t.field
          end)
        end
        function on_update(self) print("update") end""")
    esper.process(0.1)
    esper.process(0.1)
    status = manager.status("faulty")
    error = status.last_error
    assert isinstance(error, ScriptRuntimeError)
    assert (error.callback, error.entity, error.line) == ("task", entity, 6)
    assert error.traceback is not None and "faulty:6:" in error.traceback
    assert "?" not in error.traceback
    assert status.enabled and _printed()[-1] == (2, "update")   # the other callbacks run on
    assert any("faulty:6: attempt to index" in text for text in console_texts("error"))


@pytest.mark.parametrize(("depth", "expected"), [(150, ScriptRuntimeError),
                                                 (250, ResourceLimitExceeded)])
def test_an_error_deeper_than_the_recursion_limit_in_a_task_is_a_recursion_error(
        spawn_scripted: Loader, manager: ScriptManager, depth: int, expected: type) -> None:
    entity = spawn_scripted("deep", f"""
        local function f(n) if n >= {depth} then error("deep") end return f(n + 1) + 1 end
        function on_start(self) task.spawn(function() task.wait() f(1) end) end""")
    esper.process(0.1)
    esper.process(0.1)
    error = manager.status("deep").last_error
    assert type(error) is expected and (error.callback, error.entity) == ("task", entity)
    assert getattr(error, "limit_type", "recursion") == "recursion"


# -- ending with the instance, hot reload ------------------------------------------------------
def test_tasks_end_with_their_instance_before_on_destroy(spawn_scripted: Loader,
                                                         manager: ScriptManager,
                                                         system: ScriptSystem) -> None:
    entity = spawn_scripted("mortal", """
        function on_start(self)
          self.loop = task.spawn(function() while true do print("alive") task.wait() end end)
          self.later = task.delay(50, function() print("never") end)
        end
        function on_destroy(self)
          local ok, message = pcall(task.spawn, function() print("orphan") end)
          print("destroy", task.cancel(self.loop), task.cancel(self.later), ok, message)
        end""")
    keeper = spawn_scripted("mortal", "")
    esper.process(0.1)
    esper.process(0.1)
    assert _live(manager, system, "mortal") == 4
    esper.delete_entity(entity, immediate=True)
    esper.process(0.1)
    esper.process(10.0)
    texts = [text for _, text in _printed()]
    [destroyed] = [text for text in texts if text.startswith("destroy")]
    assert destroyed.startswith("destroy\tfalse\tfalse\tfalse\ttask.spawn: the instance on "
                                f"entity {entity} has ended")
    assert "orphan" not in texts and "never" not in texts
    assert texts.count("alive") == 2 * 2 + 1 + 1   # both instances twice, then the keeper's
    assert _live(manager, system, "mortal") == 2
    assert keeper != entity


def test_hot_reload_cancels_tasks_and_on_reload_starts_new_ones(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    spawn_scripted("phases", """
        function on_start(self)
          task.spawn(function() while true do print("old") task.wait() end end)
          task.delay(0.3, function() print("old delay") end)
        end""")
    esper.process(0.1)
    esper.process(0.1)
    manager.reload("phases", """
        function on_reload(self)
          task.spawn(function() while true do task.wait() print("new") end end)
        end""")
    esper.process(0.1)
    esper.process(0.1)
    assert _printed() == [(1, "old"), (2, "old"), (4, "new")]
    assert _live(manager, system, "phases") == 1


# -- bad input ----------------------------------------------------------------------------------
def test_task_functions_outside_callbacks_and_tasks_are_clear_errors(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    spawn_scripted("outside", """
        top = {select(2, pcall(task.wait)), select(2, pcall(task.spawn, print)),
               select(2, pcall(task.delay, 1, print))}
        function on_update(self)
          inside = select(2, pcall(task.wait, 1))
          nested = "no error"
          task.spawn(function()
            local co = coroutine.create(function() task.wait(1) end)
            nested = select(2, coroutine.resume(co))
          end)
        end""")
    esper.process(0.1)
    top = _global(manager, "outside", "top")
    assert top == ["task.wait: not inside a task (use task.spawn)",
                   "task.spawn is only available inside callbacks of an attached script",
                   "task.delay is only available inside callbacks of an attached script"]
    assert _global(manager, "outside", "inside") == (
        "task.wait: not inside a task (use task.spawn)")
    assert "only the task's own code may wait" in str(_global(manager, "outside", "nested"))
    assert manager.status("outside").error_count == 0


@pytest.mark.parametrize(("call", "message"), [
    ("task.wait(-1)", "bad argument #1 to 'task.wait' (seconds must be finite and >= 0, got -1)"),
    ("task.wait(0/0)", "bad argument #1 to 'task.wait' (seconds must be finite and >= 0"),
    ("task.wait(math.huge)", "bad argument #1 to 'task.wait' (seconds must be finite"),
    ("task.wait('1')", "bad argument #1 to 'task.wait' (number expected, got string)"),
    ("task.delay(nil, print)", "bad argument #1 to 'task.delay' (number expected, got nil)"),
    ("task.delay(-0.5, print)", "bad argument #1 to 'task.delay' (seconds must be finite"),
    ("task.delay(1, 'print')", "bad argument #2 to 'task.delay' (function expected, got string)"),
    ("task.spawn()", "bad argument #1 to 'task.spawn' (function expected, got nil)"),
    ("task.spawn(coroutine.create(print))",
     "bad argument #1 to 'task.spawn' (function expected, got thread)"),
    ("task.cancel({})", "bad argument #1 to 'task.cancel' (task handle expected, got table)"),
    ("task.cancel(nil)", "bad argument #1 to 'task.cancel' (task handle expected, got nil)"),
    ("task.cancel(coroutine.running())",
     "bad argument #1 to 'task.cancel' (task handle expected, got thread)"),
    ("task.spawn(print).x = 1", "a task handle is read-only"),
])
def test_bad_arguments_are_errors_the_script_can_catch(spawn_scripted: Loader,
                                                        manager: ScriptManager,
                                                        system: ScriptSystem, call: str,
                                                        message: str) -> None:
    spawn_scripted("bad", f"""
        function on_update(self)
          task.spawn(function() ok, err = pcall(function() {call} end) end)
        end""")
    esper.process(0.1)
    assert _global(manager, "bad", "ok") is False
    error = str(_global(manager, "bad", "err"))
    assert error.startswith("bad:3: ") and message in error, error
    assert manager.status("bad").error_count == 0
    assert _live(manager, system, "bad") == 0


def test_handles_are_opaque(spawn_scripted: Loader, manager: ScriptManager) -> None:
    spawn_scripted("opaque", """
        function on_update(self)
          local h = task.spawn(function() task.wait() end)
          seen = {getmetatable(h), next(h) == nil, type(h), pcall(setmetatable, h, {})}
        end""")
    esper.process(0.1)
    assert _global(manager, "opaque", "seen") == ["task", True, "table", False,
                                                  "cannot change a protected metatable"]


def test_a_plain_coroutine_yield_in_a_task_is_an_error_at_its_line(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    entity = spawn_scripted("yielder", """
        function on_start(self)
          task.spawn(function()
            coroutine.yield(1)
            print("never")
          end)
        end""")
    esper.process(0.1)
    esper.process(0.1)
    error = manager.status("yielder").last_error
    assert isinstance(error, ScriptRuntimeError)
    assert (error.callback, error.entity, error.line) == ("task", entity, 4)
    assert "coroutine.yield inside a task (a task waits with task.wait)" in str(error)
    assert _printed() == [] and _live(manager, system, "yielder") == 0


def test_script_code_resuming_or_closing_a_task_thread_changes_nothing(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    spawn_scripted("meddler", """
        function on_start(self)
          task.spawn(function()
            waiting = coroutine.running()
            print("woke", task.wait(0.5))
          end)
          task.spawn(function() doomed = coroutine.running() task.wait(0.5) print("never") end)
        end
        function on_update(self)
          resumed = {coroutine.resume(waiting, "forged", 99)}
          if doomed then coroutine.close(doomed) doomed = nil end
        end""")
    for _ in range(3):
        esper.process(0.25)
    assert _printed() == [(3, "woke\t0.5")]
    assert _global(manager, "meddler", "resumed") == [False, "cannot resume dead coroutine"]
    assert manager.status("meddler").error_count == 0
    assert _live(manager, system, "meddler") == 0


def test_live_tasks_are_capped_per_script(roomy_engine: ScriptEngine, world: str) -> None:
    cap = WORLD_CAPS["max_tasks"]
    manager = ScriptManager(roomy_engine, initializers=[WorldApi()])
    system = ScriptSystem(manager, components=COMPONENTS, hot_reload_interval_s=None)
    esper.add_processor(system)
    manager.load("hoarder", f"""
        function on_start(self)
          for i = 1, {cap} do task.delay(60, print) end
          ok, err = pcall(task.spawn, print)
        end""")
    esper.create_entity(Script("hoarder"))
    esper.process(0.1)
    assert _global(manager, "hoarder", "ok") is False
    assert f"task.spawn: this script has {cap} live tasks, the limit" in str(
        _global(manager, "hoarder", "err"))
    assert _live(manager, system, "hoarder") == cap
    manager.close()


# -- limits -------------------------------------------------------------------------------------
_LIMITS = '''
import json, logging
import esper, structlog
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
from engine_scripting import (Script, ScriptEngine, ScriptManager, ScriptResourceLimits,
                              ScriptSystem, WorldApi)
engine = ScriptEngine(ScriptResourceLimits(max_memory_mb=16, max_execution_time_ms=100,
                                           max_recursion_depth=200))
manager = ScriptManager(engine, initializers=[WorldApi()], max_consecutive_failures=100)
system = ScriptSystem(manager, components=[], hot_reload_interval_s=None)
esper.add_processor(system)
BODIES = {
    "loop": "while true do end",
    "caller": "local n = 0 while true do n = n + #tostring(n) end",
    "bomb": "local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1000000) .. i end",
    "deep": "local function f(n) return 1 + f(n + 1) end f(1)",
    "caught": "local function f(n) return 1 + f(n + 1) end pcall(f, 1)",
}
# a 16 MiB memory bomb takes longer than 100 ms where memory is fresh: the time limit would win
ROOMY = ScriptResourceLimits(max_memory_mb=16, max_execution_time_ms=2000, max_recursion_depth=200)
for name, body in BODIES.items():
    manager.load(name, limits=ROOMY if name == "bomb" else None, source="""
        ticks = 0
        function on_start(self)
          task.spawn(function() task.wait(0.1) %s end)
          task.spawn(function() while true do ticks = ticks + 1 task.wait() end end)
        end""" % body)
    esper.create_entity(Script(name))
# the first of the tasks due in one tick loops: the others (waiting since the last tick or
# longer) run next tick
manager.load("first", """
    log = {}
    function on_start(self)
      task.spawn(function() task.wait() task.wait() log[#log + 1] = "A" while true do end end)
      task.spawn(function() task.wait() task.wait() log[#log + 1] = "B" end)
      task.delay(0, function() task.wait() log[#log + 1] = "C" end)
      task.spawn(function() task.wait(0.1) log[#log + 1] = "D" end)
    end""")
esper.create_entity(Script("first"))
for _ in range(6):
    esper.process(0.05)
def read(name, expression):
    context = manager.running(name).context
    if context.dead:   # abandoned: say so instead of failing to read
        return repr(manager.status(name).last_error)
    return context.execute("return " + expression)
result = {"first": [manager.status("first").error_count, read("first", "log"),
                    manager.running("first").installed[system._world_api].live_tasks()]}
for name in BODIES:
    error = manager.status(name).last_error
    result[name] = [type(error).__name__, getattr(error, "limit_type", None),
                    manager.status(name).error_count, manager.status(name).enabled,
                    read(name, "ticks"),
                    manager.running(name).installed[system._world_api].live_tasks()]
print(json.dumps(result))
'''


def test_limits_stop_task_code_on_a_later_tick_and_other_tasks_run_on() -> None:
    done = subprocess.run([sys.executable, "-c", _LIMITS], capture_output=True, text=True,
                          timeout=180, cwd=_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for name, limit in (("loop", "time"), ("caller", "time"), ("bomb", "memory"),
                        ("deep", "recursion"), ("caught", "recursion")):
        # stopped once, on the tick its wait ended (the third); the other task ran every tick,
        # and the stopped one ended
        assert result[name] == ["ResourceLimitExceeded", limit, 1, True, 6, 1], (name, result)
    assert result["first"] == [1, ["A", "B", "C", "D"], 0]
