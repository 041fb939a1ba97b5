"""The host's error paths never fail in turn: a script that leaves its state full when the time
limit stops it cannot make ``esper.process`` raise (red-team finding: the system's question
"which entity was running?" allocated under the memory limit)."""

from __future__ import annotations

import json
import subprocess
import sys

SCENARIO = '''
import json, logging, structlog
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
import esper
from engine_scripting import (ScriptEngine, ScriptResourceLimits, ScriptManager, ScriptSystem,
                              WorldApi, Script)
engine = ScriptEngine(limits=ScriptResourceLimits(max_memory_mb=16, max_execution_time_ms=50))
manager = ScriptManager(engine, initializers=[WorldApi()])
esper.add_processor(ScriptSystem(manager, components=[]))
manager.load("bomb", """
local cos = {}
for i = 1, 120 do cos[i] = coroutine.create(function() while true do coroutine.yield() end end) end
local S, A = {}, {}
for i = 1, 64 do S[i] = false end
for i = 1, 1000 do A[i] = false end
local function fill()
  local n, k = 1 << 23, 0
  while n >= 32 do
    local ok, s = pcall(string.rep, "x", n)
    if ok then k = k + 1; S[k] = s else n = n // 2 end
  end
  for i = 1, #A do A[i] = {} end
end
function on_update(self)
  for i = 1, #cos do coroutine.resume(cos[i]) end
  pcall(fill)
  while true do end
end""")
manager.load("good", "n = 0 function on_update(self) n = n + 1 end")
esper.create_entity(Script("bomb"))
esper.create_entity(Script("good"))
raised = []
for i in range(12):
    try:
        esper.process(0.016)
    except Exception as error:
        raised.append(type(error).__name__)
print(json.dumps({"raised": raised, "bomb_enabled": manager.status("bomb").enabled,
                  "good": manager.running("good").context.execute("return n")}))
'''


def test_a_full_state_stopped_by_the_time_limit_does_not_break_the_tick() -> None:
    done = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["raised"] == []
    assert result["good"] == 12                  # the script after the bomb ran every tick
    assert result["bomb_enabled"] is False       # 10 failing ticks in a row disable it
