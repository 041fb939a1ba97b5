"""Scripts with nothing to do are skipped: no call into Lua for a script whose last tick left it
idle (no on_update to run, no task alive, no loaded data to deliver) while nothing new comes
(no events for it, no instances started or ended, no reload). Anything new wakes it at once."""

from __future__ import annotations

import esper

from engine_scripting import ScriptManager, ScriptSystem
from tests.ecs.conftest import Loader

LISTENER = """
heard = {}
function on_event(self, name) heard[#heard + 1] = name end
"""


def _calls(manager: ScriptManager, name: str) -> int:
    return manager.status(name).calls


def _ticks(count: int) -> None:
    for _ in range(count):
        esper.process(0.1)


def test_a_script_without_on_update_is_not_called_while_nothing_is_new(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    spawn_scripted("listener", LISTENER)
    spawn_scripted("mover", "function on_update(self) end")
    _ticks(3)
    idle_calls, busy_calls = _calls(manager, "listener"), _calls(manager, "mover")
    _ticks(5)
    assert _calls(manager, "listener") == idle_calls
    assert _calls(manager, "mover") == busy_calls + 5


def test_events_new_instances_and_reloads_wake_an_idle_script(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    spawn_scripted("listener", LISTENER + "started = 0\n"
                   "function on_start(self) started = started + 1 end")
    _ticks(3)
    context = manager.running("listener").context
    system.send("ping")
    _ticks(2)
    assert context.execute("return heard") == ["ping"]
    spawn_scripted("listener", "")
    _ticks(2)
    assert context.execute("return started") == 2
    manager.reload("listener", LISTENER + "function on_reload(self) reloaded = true end")
    _ticks(2)
    assert manager.running("listener").context.execute("return reloaded") is True


def test_a_script_that_gains_on_update_runs_it_from_then_on(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    entity = spawn_scripted("late", """
        n = 0
        function on_event(self) on_update = function(self) n = n + 1 end end
        function arm(self) on_update = function(self) n = n + 10 end end
    """)
    _ticks(3)
    context = manager.running("late").context
    system.send("go")
    _ticks(3)       # the event's tick defines on_update and runs it, then two more
    assert context.execute("return n") == 3
    context.execute("on_update = nil")
    _ticks(2)
    system.call("late", entity, "arm")   # a host call may define it too
    _ticks(2)
    assert context.execute("return n") == 23


def test_tasks_and_loaded_data_keep_an_idle_script_running(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    entity = spawn_scripted("timer", """
        rang = 0
        function on_start(self) task.delay(0.3, function() rang = rang + 1 end) end
        function on_load(self, data) restored = data.restored end
    """)
    _ticks(5)
    context = manager.running("timer").context
    assert context.execute("return rang") == 1
    state = manager.save_state()
    state["scripts"]["timer"]["instances"][str(entity)] = {"restored": True}
    _ticks(2)
    manager.load_state(state)
    _ticks(1)
    assert context.execute("return restored") is True
    assert manager.status("timer").error_count == 0


def test_churn_of_other_entities_neither_wakes_nor_resyncs_a_script(
        spawn_scripted: Loader, manager: ScriptManager) -> None:
    spawn_scripted("listener", LISTENER)
    _ticks(3)
    calls = _calls(manager, "listener")
    for _ in range(5):   # esper rebuilds its Script list each time: the links stay the same
        esper.delete_entity(esper.create_entity(), immediate=True)
        esper.process(0.1)
    assert _calls(manager, "listener") == calls
    spawn_scripted("listener", "")      # a new link does wake it
    _ticks(1)
    assert _calls(manager, "listener") == calls + 1
