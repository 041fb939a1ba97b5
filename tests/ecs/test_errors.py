"""Error recovery: runtime errors and limit breaches are recorded and logged; the script keeps
running until it fails too many ticks in a row; the rest of the game runs on."""

from __future__ import annotations

import esper
import pytest
from structlog.testing import capture_logs

from engine_scripting import (
    Permissions,
    ResourceLimitExceeded,
    Script,
    ScriptEngine,
    ScriptManager,
    ScriptResourceLimits,
    ScriptRuntimeError,
    ScriptSystem,
    WorldApi,
)
from tests.ecs.conftest import Loader
from tests.ecs.support import ALL, Fragile, Position, console_texts


def test_runtime_errors_are_recorded_logged_and_the_script_runs_on(
    spawn_scripted: Loader, manager: ScriptManager,
) -> None:
    entity = spawn_scripted("flaky", """
        function on_update(self)
          self.n = (self.n or 0) + 1
          if self.n == 1 then local t = nil; return t.field end
          world.set(self.entity, "Position", {x = self.n})
        end""", Position(0.0, 0.0))
    with capture_logs() as logs:
        esper.process(0.1)
    [event] = [log for log in logs if log["event"] == "script.error"]
    assert event["script"] == "flaky"
    assert event["entity"] == entity
    assert event["error_class"] == "ScriptRuntimeError"
    assert event["callback"] == "on_update"
    assert event["line"] == 4
    assert "flaky:4:" in event["message"]
    assert "stack traceback" in event["traceback"]
    status = manager.status("flaky")
    assert isinstance(status.last_error, ScriptRuntimeError)
    assert status.last_error.entity == entity and status.error_count == 1
    assert console_texts("error") == [f"ScriptRuntimeError: {event['message']}"]
    esper.process(0.1)
    assert esper.component_for_entity(entity, Position).x == 2.0
    assert manager.status("flaky").consecutive_failures == 0


def test_consecutive_failing_ticks_disable_the_script(spawn_scripted: Loader,
                                                      manager: ScriptManager) -> None:
    spawn_scripted("broken", "function on_update(self) error('always') end")
    for tick in range(1, 10):
        esper.process(0.1)
        assert manager.status("broken").consecutive_failures == tick
        assert manager.status("broken").enabled
    esper.process(0.1)
    status = manager.status("broken")
    assert not status.enabled
    assert "10 ticks in a row" in (status.disabled_reason or "")
    esper.process(0.1)
    assert manager.status("broken").error_count == 10


def test_the_failure_threshold_is_configurable(engine: ScriptEngine, world: str) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()], max_consecutive_failures=2)
    esper.add_processor(ScriptSystem(manager))
    manager.load("broken", "function on_update(self) error('always') end")
    esper.create_entity(Script("broken"))
    esper.process(0.1)
    esper.process(0.1)
    assert not manager.status("broken").enabled
    manager.unload("broken")


def test_an_infinite_loop_is_stopped_and_recorded(spawn_scripted: Loader,
                                                  manager: ScriptManager) -> None:
    looping = spawn_scripted("looper", "function on_update(self) while true do end end")
    esper.process(0.1)
    error = manager.status("looper").last_error
    assert isinstance(error, ResourceLimitExceeded)
    assert error.limit_type == "time"
    assert error.entity == looping


def test_a_memory_bomb_is_stopped_and_recorded(manager: ScriptManager,
                                               system: ScriptSystem) -> None:
    # a generous time budget: on a loaded machine the memory limit must still be what stops it
    manager.load("bomb", """
        function on_update(self)
          local t = {} for i = 1, 1e8 do t[i] = ("x"):rep(4 * 1024 * 1024) .. i end
        end""", limits=ScriptResourceLimits(max_memory_mb=16, max_execution_time_ms=5000))
    esper.create_entity(Script("bomb"))
    esper.process(0.1)
    error = manager.status("bomb").last_error
    assert isinstance(error, ResourceLimitExceeded)
    assert error.limit_type == "memory"


def test_deep_recursion_is_recorded_as_a_recursion_limit(spawn_scripted: Loader,
                                                         manager: ScriptManager) -> None:
    spawn_scripted("deep", """
        local function dive(n) return 1 + dive(n + 1) end
        function on_update(self) dive(1) end""")
    esper.process(0.1)
    error = manager.status("deep").last_error
    assert isinstance(error, ResourceLimitExceeded)
    assert error.limit_type == "recursion"


def test_one_failing_instance_does_not_stop_the_others(spawn_scripted: Loader) -> None:
    source = """
        function on_update(self)
          local p = world.get(self.entity, "Position")
          if p.y < 0 then error("negative") end
          world.set(self.entity, "Position", {x = p.x + 1})
        end"""
    bad = spawn_scripted("mixed", source, Position(0.0, -1.0))
    good = spawn_scripted("mixed", source, Position(0.0, 1.0))
    esper.process(0.1)
    assert esper.component_for_entity(good, Position).x == 1.0
    assert esper.component_for_entity(bad, Position).x == 0.0


def test_a_python_exception_in_a_host_function_is_recorded(engine: ScriptEngine,
                                                          world: str) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager, components=[Fragile]))
    manager.load("writer", """
        function on_update(self)
          print(pcall(world.set, self.entity, "Fragile", {value = 1}))
        end""", permissions=Permissions(read={"Fragile"}, write={"Fragile"}))
    fragile = Fragile()
    object.__setattr__(fragile, "locked", True)
    entity = esper.create_entity(fragile, Script("writer"))
    esper.process(0.1)
    status = manager.status("writer")
    assert status.error_count == 1
    assert "fragile component refuses writes" in str(status.last_error)
    assert status.last_error is not None and status.last_error.entity == entity
    assert "failed in the host" in console_texts("error")[0]
    esper.process(0.1)
    assert manager.status("writer").enabled
    manager.unload("writer")


@pytest.mark.parametrize("callback", ["on_start", "on_event", "on_destroy"])
def test_errors_in_other_callbacks_are_attributed(spawn_scripted: Loader,
                                                  manager: ScriptManager, callback: str) -> None:
    entity = spawn_scripted("noisy", f"""
        function {callback}(self) error("in {callback}") end
        function on_update(self)
          if not self.sent then self.sent = true world.emit("ping", {{}}, self.entity) end
        end""", permissions=ALL)
    esper.process(0.1)
    esper.process(0.1)
    esper.delete_entity(entity)
    esper.process(0.1)
    error = manager.status("noisy").last_error
    assert error is not None and error.callback == callback and error.entity == entity
