"""Errors that help: a time-limit error says the budget, how long the call ran and how many of
the tick's instances it reached."""

from __future__ import annotations

import re

import esper

from engine_scripting import ResourceLimitExceeded, ScriptManager, ScriptSystem
from tests.ecs.conftest import Loader

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
    assert error.entity == entities[3]
    assert re.search(r"time limit exceeded \(budget \d+ ms, stopped after \d+ ms\) "
                     r"\(4 of 10 instances reached\)", str(error)), str(error)
