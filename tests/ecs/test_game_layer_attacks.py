"""Attacks on the game layer (tasks, save and load, hot reload) that a red-team pass found, each
kept as a regression test: tasks never outlive their instance, a caught security violation
fails a reload whole and disables the script, a violation in on_save disables the script, and
script-made text cannot forge lines in error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import esper
import pytest

from engine_scripting import (
    PermissionDenied,
    SaveDataError,
    ScriptManager,
    ScriptSystem,
    SecurityViolation,
)
from tests.ecs.conftest import Loader

_ROOT = Path(__file__).resolve().parents[2]

# B's on_event spins to ~85% of the budget every tick, so the tick that ends A's thousands of
# tasks overruns, and the stop can land while they are being ended (before the fix, the rest
# stayed live and ran on as entity A, with A's on_destroy lost).
_ZOMBIES = r'''
import json
from dataclasses import dataclass
import esper
from engine_scripting import (Permissions, Script, ScriptEngine, ScriptManager,
                              ScriptResourceLimits, ScriptSystem, WorldApi)

@dataclass
class Label:
    text: str = ""

engine = ScriptEngine(ScriptResourceLimits(max_memory_mb=64, max_execution_time_ms=50))
manager = ScriptManager(engine, initializers=[WorldApi()], max_consecutive_failures=100)
esper.add_processor(ScriptSystem(manager, components=[Label], hot_reload_interval_s=None))
manager.load("mod", """
local started = 0
function spawn_some(self)
  local mine = self
  for i = 1, 1000 do
    task.spawn(function()
      if i > 1 then task.wait(1e9) end
      task.wait(0.2)
      while true do
        world.set(mine.entity, "Label", {text = "zombie"})
        task.wait()
      end
    end)
  end
end
function on_destroy(self) destroyed = (destroyed or 0) + 1 end
function on_event(self)
  if self.params.role == "trap" and cal then
    local x = 0
    for i = 1, math.floor(cal * 0.85) do x = x + i end
  end
end
function on_update(self, dt)
  if self.params.role == "victim" and started < 9 then
    started = started + 1
    spawn_some(self)
  end
  if self.params.role == "trap" then
    if not cal then
      if calibrating then cal = count return end
      calibrating, count = true, 0
      while true do count = count + 1 end
    end
    world.emit("ping", nil, self.entity)
  end
end
""", permissions=Permissions(read={"Label"}, write={"Label"}, emit={"ping"}))
esper.create_entity(Label(""), Script("mod", params={"role": "trap"}))
victim = esper.create_entity(Label("mine"), Script("mod", params={"role": "victim"}))
for _ in range(14):
    esper.process(0.016)
esper.remove_component(victim, Script)
esper.add_component(victim, Label("the game's"))
for _ in range(40):
    esper.process(0.016)
live = next(iter(manager.running("mod").installed.values())).live_tasks()
print(json.dumps([live, esper.component_for_entity(victim, Label).text,
                  manager.running("mod").context.execute("return destroyed")]))
'''


def test_tasks_never_outlive_their_instance_even_when_a_stop_cuts_their_ending() -> None:
    done = subprocess.run([sys.executable, "-c", _ZOMBIES], capture_output=True, text=True,
                          timeout=180, cwd=_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    live, label, destroyed = json.loads(done.stdout.strip().splitlines()[-1])
    assert (live, label, destroyed) == (0, "the game's", 1)


def test_a_caught_violation_fails_a_reload_whole_and_disables_the_script(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    spawn_scripted("mod", "VERSION = 'old'\nfunction on_update(self) end")
    esper.process(0.016)
    with pytest.raises(SecurityViolation):
        manager.reload("mod", "VERSION = 'new'\npcall(load, '\\27Lua')\n"
                              "function on_update(self) end")
    status = manager.status("mod")
    assert not status.enabled and "security violation" in (status.disabled_reason or "")
    assert manager.running("mod").context.execute("return VERSION") == "old"
    assert status.version == 1


def test_a_violation_in_on_save_disables_the_script_and_the_next_save_works(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    spawn_scripted("saver", "function on_save(self) pcall(load, '\\27Lua') return {} end")
    spawn_scripted("fine", "function on_start(self) self.n = 1 end")
    esper.process(0.016)
    with pytest.raises(SecurityViolation):
        manager.save_state()
    assert not manager.status("saver").enabled
    state = manager.save_state()
    assert "saver" in state["disabled"] and list(state["scripts"]) == ["fine"]


def test_script_made_names_cannot_forge_lines_in_a_permission_denied_message(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    spawn_scripted("emitter", "function on_update(self) "
                              "world.emit('x\\n\\27[2K\\rgood_mod:1: denied', nil) end")
    esper.process(0.016)
    error = manager.status("emitter").last_error
    assert isinstance(error, PermissionDenied)
    assert "\n" not in str(error) and "\x1b" not in str(error) and "\r" not in str(error)
    assert "\\x0a\\x1b[2K\\x0dgood_mod" in str(error)


def test_a_save_is_bounded_for_all_of_a_script_s_instances_together(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    # each instance within the per-instance caps; together past the script's
    source = ("local shared = {} for i = 1, 19990 do shared[i] = {} end "
              "function on_save(self) return shared end")
    for _ in range(11):
        spawn_scripted("hoarder", source)
    esper.process(0.016)
    with pytest.raises(SaveDataError, match="all the script's instances together"):
        manager.save_state()
    assert manager.status("hoarder").enabled   # the host's cap, not the script's violation


def test_an_error_message_starting_with_a_newline_still_says_what_failed(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    spawn_scripted("blank", "function on_update(self) error('\\n\\nreal reason', 0) end")
    esper.process(0.016)
    assert str(manager.status("blank").last_error) == "real reason"
