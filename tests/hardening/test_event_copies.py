"""A sender cannot spend a receiver's time: the payload copies a receiver's instances make in its
tick are bounded by its time budget, not only by its memory (red-team finding: a broadcast of
260 empty tables per tick, within the memory allowance, took an innocent 1,000-instance
receiver past its budget every tick until it was disabled)."""

from __future__ import annotations

import json
import subprocess
import sys

SCENARIO = '''
import json, logging, structlog
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
import esper
from engine_scripting import (Console, Permissions, Script, ScriptEngine, ScriptManager,
                              ScriptResourceLimits, ScriptSystem, WorldApi)
engine = ScriptEngine(limits=ScriptResourceLimits(max_memory_mb=64, max_execution_time_ms=50))
manager = ScriptManager(engine, initializers=[WorldApi()])
esper.add_processor(ScriptSystem(manager, components=[]))
manager.load("sender", """
local p = {} for i = 1, 260 do p[i] = {} end
function on_update(self) pcall(world.emit, 'heavy', p) pcall(world.emit, 'light', {n = 1}) end
""", permissions=Permissions(emit={"heavy", "light"}))
manager.load("crowd", """
heavy, light = 0, 0
function on_event(self, name) if name == 'heavy' then heavy = heavy + 1 else light = light + 1 end
end""")
esper.create_entity(Script("sender"))
for _ in range(1000):
    esper.create_entity(Script("crowd"))
for _ in range(14):
    esper.process(0.016)
status = manager.status("crowd")
[(_, console)] = esper.get_component(Console)
heavy, light = manager.running("crowd").context.execute("return heavy, light")
print(json.dumps({"enabled": status.enabled, "errors": status.error_count, "heavy": heavy,
                  "light": light, "warned": any("not delivered" in m.text
                                                for m in console.messages)}))
'''


def test_payload_copies_are_bounded_by_the_receivers_time() -> None:
    done = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["enabled"] is True and result["errors"] == 0, result
    assert result["heavy"] == 0 and result["warned"] is True, result
    assert result["light"] == 13 * 1000, result        # small broadcasts still reach everyone
