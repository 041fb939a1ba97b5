"""The library never prints: a game that configures no logging sees nothing on stdout or stderr;
one that configures the standard logging module sees the library's warnings and errors."""

from __future__ import annotations

import subprocess
import sys

GAME = '''
import sys
{setup}
from dataclasses import dataclass
import esper
from engine_scripting import (Permissions, Script, ScriptEngine, ScriptManager,
                              ScriptResourceLimits, ScriptSystem, WorldApi)

@dataclass
class Position:
    x: float = 0.0

engine = ScriptEngine(ScriptResourceLimits(max_execution_time_ms=50))
manager = ScriptManager(engine, initializers=[WorldApi()])
manager.load("broken", "function on_update(self) error('oops') end")
manager.load("looper", "function on_update(self) while true do end end")
manager.load("fine", "function on_update(self) end")
manager.register_module("m", "return 1")
manager.reload("fine", "function on_update(self) end")
esper.add_processor(ScriptSystem(manager, components=[Position]))
for name in ("broken", "looper", "fine"):
    esper.create_entity(Position(), Script(name))
esper.create_entity(Script("nobody"))
for _ in range(12):
    esper.process(0.016)
manager.unload("fine")
engine.close()
'''


def _run(setup: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", GAME.format(setup=setup)], capture_output=True,
                          text=True, timeout=120)


def test_a_game_that_configures_no_logging_sees_nothing() -> None:
    done = _run("")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "" and done.stderr == ""


def test_a_game_that_configures_logging_sees_warnings_and_errors() -> None:
    done = _run("import logging\nlogging.basicConfig(level=logging.WARNING, stream=sys.stdout)")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "script.error" in done.stdout and "oops" in done.stdout
    assert "script.disabled" in done.stdout
    assert "script.loaded" not in done.stdout          # info stays below WARNING
