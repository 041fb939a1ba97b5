"""ScriptManager: load, reload, unload, enable, disable and status, with real contexts."""

from __future__ import annotations

from pathlib import Path

import esper
import pytest

from engine_scripting import (
    Permissions,
    Script,
    ScriptCompileError,
    ScriptEngine,
    ScriptError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptSystem,
    WorldApi,
)
from tests.ecs.support import ALL, Position

COUNTER = """
function on_update(self, dt)
  self.n = (self.n or 0) + 1
  world.set(self.entity, "Position", {x = self.n})
end
"""


def test_load_from_source_and_path(manager: ScriptManager, tmp_path: Path) -> None:
    manager.load("inline", "x = 1")
    script = tmp_path / "mover.lua"
    script.write_text("y = 2")
    manager.load("file", path=script)
    assert manager.names() == ("inline", "file")
    assert manager.status("file").path == str(script)
    assert manager.status("inline").enabled is True
    assert manager.status("inline").version == 1


def test_load_rejects_bad_requests_and_stores_nothing(manager: ScriptManager,
                                                      tmp_path: Path) -> None:
    with pytest.raises(ScriptCompileError):
        manager.load("broken", "function (")
    with pytest.raises(ScriptRuntimeError, match="boom"):
        manager.load("failing", "error('boom')")
    with pytest.raises(ScriptError, match="either source or path"):
        manager.load("neither")
    with pytest.raises(ScriptError, match="cannot read"):
        manager.load("missing", path=tmp_path / "nope.lua")
    assert manager.names() == ()
    manager.load("once", "x = 1")
    with pytest.raises(ScriptError, match="already loaded"):
        manager.load("once", "x = 2")


def test_status_of_unknown_script_is_an_error(manager: ScriptManager) -> None:
    with pytest.raises(ScriptError, match="no script"):
        manager.status("ghost")


def test_a_trusted_engine_runs_scripts_without_a_sandbox(world: str) -> None:
    manager = ScriptManager(ScriptEngine(trusted=True), initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager, components=[Position]))
    manager.load("baseline", """
        function on_update(self)
          local p = world.get(self.entity, "Position")
          world.set(self.entity, "Position", {x = p.x + 1, y = os.time() > 0 and 1 or 0})
        end""", permissions=Permissions(read={"Position"}, write={"Position"}))
    entity = esper.create_entity(Position(0.0, 0.0), Script("baseline"))
    esper.process(0.1)
    assert esper.component_for_entity(entity, Position) == Position(1.0, 1.0)
    manager.unload("baseline")


def test_one_manager_serves_one_system(manager: ScriptManager, system: ScriptSystem) -> None:
    with pytest.raises(ScriptError, match="already serves"):
        ScriptSystem(manager)


def test_reload_keeps_self_and_calls_on_reload(manager: ScriptManager,
                                               system: ScriptSystem) -> None:
    manager.load("counter", COUNTER, permissions=ALL)
    entity = esper.create_entity(Position(0.0, 0.0), Script("counter"))
    esper.process(0.1)
    esper.process(0.1)
    manager.reload("counter", COUNTER.replace("(self.n or 0) + 1", "(self.n or 0) + 10") + """
        function on_reload(self) self.reloaded = true; self.n = self.n + 100 end""")
    esper.process(0.1)
    # n: 2 before the reload, +100 in on_reload, +10 in the update of the same tick
    assert esper.component_for_entity(entity, Position).x == 112.0
    assert manager.status("counter").version == 2


def test_failed_reload_keeps_the_old_version_running(manager: ScriptManager,
                                                     system: ScriptSystem) -> None:
    manager.load("counter", COUNTER, permissions=ALL)
    entity = esper.create_entity(Position(0.0, 0.0), Script("counter"))
    esper.process(0.1)
    with pytest.raises(ScriptCompileError):
        manager.reload("counter", "function on_update(")
    with pytest.raises(ScriptRuntimeError):
        manager.reload("counter", "function on_update() end error('top-level failure')")
    esper.process(0.1)
    assert esper.component_for_entity(entity, Position).x == 2.0
    status = manager.status("counter")
    assert status.version == 1
    assert status.error_count == 2
    assert isinstance(status.last_error, ScriptRuntimeError)


def test_reload_from_the_file(manager: ScriptManager, tmp_path: Path) -> None:
    script = tmp_path / "value.lua"
    script.write_text("function value() return 1 end")
    manager.load("value", path=script)
    script.write_text("function value() return 2 end")
    manager.reload("value")
    assert manager.status("value").version == 2
    record = manager.running("value")
    assert record is not None and record.context.call("value") == 2


def test_unload_closes_the_context_and_stops_its_instances(manager: ScriptManager,
                                                           system: ScriptSystem) -> None:
    manager.load("counter", COUNTER, permissions=ALL)
    record = manager.running("counter")
    assert record is not None
    entity = esper.create_entity(Position(0.0, 0.0), Script("counter"))
    esper.process(0.1)
    manager.unload("counter")
    assert record.context.closed
    esper.process(0.1)
    assert esper.component_for_entity(entity, Position).x == 1.0
    assert "counter" not in manager
    with pytest.raises(ScriptError):
        manager.unload("counter")


def test_disable_and_enable(manager: ScriptManager, system: ScriptSystem) -> None:
    manager.load("counter", COUNTER, permissions=ALL)
    entity = esper.create_entity(Position(0.0, 0.0), Script("counter"))
    esper.process(0.1)
    manager.disable("counter")
    esper.process(0.1)
    assert esper.component_for_entity(entity, Position).x == 1.0
    assert manager.status("counter").disabled_reason == "disabled by the host"
    manager.enable("counter")
    esper.process(0.1)
    assert esper.component_for_entity(entity, Position).x == 2.0
    assert manager.status("counter").enabled


def test_status_reports_calls_time_and_memory(manager: ScriptManager,
                                              system: ScriptSystem) -> None:
    manager.load("counter", COUNTER, permissions=ALL)
    esper.create_entity(Position(0.0, 0.0), Script("counter"))
    for _ in range(3):
        esper.process(0.1)
    status = manager.status("counter")
    assert status.calls == 3
    assert 0 < status.max_time_s <= status.total_time_s
    assert status.memory_used > 0


def test_permissions_validate_their_fields() -> None:
    assert Permissions().read == frozenset()
    assert Permissions(read=["A"]).read == frozenset({"A"})
    with pytest.raises(ValueError):
        Permissions(scope="everything")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Permissions(read="Position")
    with pytest.raises(TypeError):
        Permissions(spawn="yes")  # type: ignore[arg-type]
