"""A broadcast reaches every started instance in one protected run (world.lua's deliver_from):
the same errors, limits and attribution as an event sent to one instance."""

from __future__ import annotations

import esper

from engine_scripting import ScriptManager, ScriptResourceLimits, ScriptSystem
from engine_scripting.errors import ResourceLimitExceeded, ScriptRuntimeError
from tests.ecs.conftest import Loader
from tests.ecs.support import Position, console_texts

DEEP = """
local function down(n) if n == 0 then error("boom") end local r = down(n - 1) return r end
function on_event(self, name, payload) down(payload.n) end
"""


def test_a_broadcast_counts_recursion_as_a_targeted_event_does(
    spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem,
) -> None:
    limits = ScriptResourceLimits(max_memory_mb=16, max_execution_time_ms=500,
                                  max_recursion_depth=50)
    entity = spawn_scripted("deep", DEEP, Position(0.0, 0.0), limits=limits)
    esper.process(0.1)
    kinds: dict[tuple[int, bool], type] = {}
    for depth in (*range(40, 52), 400):   # the edge of the limit, counted as Lua counts frames
        for broadcast in (False, True):
            system.send("ping", {"n": depth}, None if broadcast else entity)
            esper.process(0.1)
            kinds[depth, broadcast] = type(manager.status("deep").last_error)
            manager.enable("deep")   # recursion errors may disable it after enough failures
    assert all(kinds[depth, False] is kinds[depth, True] for depth, _ in kinds), kinds
    assert kinds[40, True] is ScriptRuntimeError
    assert kinds[400, True] is ResourceLimitExceeded


def test_a_failing_receiver_does_not_keep_the_event_from_the_others(
    spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem,
) -> None:
    source = """
        function on_event(self, name, payload)
          if self.entity % 2 == 0 then error("even " .. self.entity) end
          print("got", self.entity)
        end"""
    entities = [spawn_scripted("rx", source, Position(0.0, 0.0)) for _ in range(6)]
    esper.process(0.1)
    system.send("ping", None)
    esper.process(0.1)
    odd = sorted(e for e in entities if e % 2)
    assert [text for text in console_texts() if text.startswith("got")] == [
        f"got\t{e}" for e in odd]
    errors = [text for text in console_texts() if "even" in text]
    assert len(errors) == len(entities) - len(odd)
    assert manager.status("rx").error_count == len(entities) - len(odd)
