"""Hot reload: a script loaded from a file is reloaded between ticks when the file changes."""

from __future__ import annotations

import os
from pathlib import Path

import esper
import pytest

from engine_scripting import Script, ScriptEngine, ScriptManager, ScriptSystem, WorldApi
from tests.ecs.support import ALL, COMPONENTS, Position, console_texts


def _write(path: Path, text: str, stamp: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(stamp, stamp))  # a distinct mtime even within the clock's resolution


@pytest.fixture
def reloading(engine: ScriptEngine, world: str) -> ScriptManager:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager, components=COMPONENTS, hot_reload_interval_s=0))
    return manager


def test_a_changed_file_is_reloaded_and_instances_keep_self(reloading: ScriptManager,
                                                            tmp_path: Path) -> None:
    script = tmp_path / "counter.lua"
    _write(script, "function on_update(self) self.n = (self.n or 0) + 1 end", 1_000_000_000)
    reloading.load("counter", path=script, permissions=ALL)
    entity = esper.create_entity(Position(0.0, 0.0), Script("counter"))
    esper.process(0.1)
    esper.process(0.1)
    _write(script, """
        function on_reload(self) print("reloaded with", self.n) end
        function on_update(self)
          self.n = self.n + 1
          world.set(self.entity, "Position", {x = self.n})
        end""", 2_000_000_000)
    esper.process(0.1)
    assert console_texts() == ["reloaded with\t2"]
    assert esper.component_for_entity(entity, Position).x == 3.0
    assert reloading.status("counter").version == 2
    reloading.unload("counter")


def test_a_broken_file_keeps_the_old_version_and_is_not_retried(reloading: ScriptManager,
                                                                 tmp_path: Path) -> None:
    script = tmp_path / "mover.lua"
    _write(script, """function on_update(self)
        local p = world.get(self.entity, "Position")
        world.set(self.entity, "Position", {x = p.x + 1})
      end""", 1_000_000_000)
    reloading.load("mover", path=script, permissions=ALL)
    entity = esper.create_entity(Position(0.0, 0.0), Script("mover"))
    esper.process(0.1)
    _write(script, "function on_update(self", 2_000_000_000)
    esper.process(0.1)
    esper.process(0.1)
    assert esper.component_for_entity(entity, Position).x == 3.0
    status = reloading.status("mover")
    assert status.version == 1 and status.error_count == 1 and status.enabled
    _write(script, "error('top level fails')", 3_000_000_000)
    esper.process(0.1)
    assert reloading.status("mover").error_count == 2
    assert esper.component_for_entity(entity, Position).x == 4.0
    reloading.unload("mover")


def test_hot_reload_can_be_turned_off(engine: ScriptEngine, world: str,
                                      tmp_path: Path) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager, hot_reload_interval_s=None))
    script = tmp_path / "fixed.lua"
    _write(script, "x = 1", 1_000_000_000)
    manager.load("fixed", path=script)
    _write(script, "x = 2", 2_000_000_000)
    esper.process(0.1)
    assert manager.status("fixed").version == 1
    manager.unload("fixed")


def test_statuses_profile_every_script(reloading: ScriptManager) -> None:
    reloading.load("busy", "function on_update(self) local s = 0 for i = 1, 1000 do s = s + i end"
                   " end")
    for _ in range(3):
        esper.create_entity(Script("busy"))
    for _ in range(4):
        esper.process(0.1)
    [status] = reloading.statuses()
    assert status.calls == 4 and status.instances == 3
    assert 0 < status.average_time_s <= status.max_time_s
    reloading.unload("busy")
