"""A script that fills its memory to the limit cannot crash the host.

lupa converts host values (argument tables, strings, the world API's host functions) into the
Lua state outside any protected call; a memory error there makes Lua abort the whole process
("PANIC: unprotected error in call to Lua API"). Each scenario runs in a child process, so a
regression fails the test instead of killing the test run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Leaves the state with almost nothing free: strings of halving sizes until even 16 bytes fail.
FILL = """
hog = {}
local size = 65536
while size >= 16 do
  if not pcall(function() hog[#hog + 1] = string.rep("x", size) end) then size = size // 2 end
end
"""


def _run_child(body: str) -> str:
    code = textwrap.dedent(body).replace("@FILL@", repr(FILL))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-2000:])
    return done.stdout


def test_arguments_and_source_reach_a_full_context_without_a_crash() -> None:
    out = _run_child("""
        import lupa.lua54
        from engine_scripting import ScriptEngine, ScriptResourceLimits
        from engine_scripting.errors import ResourceLimitExceeded, ScriptError
        engine = ScriptEngine(ScriptResourceLimits(max_memory_mb=1, max_execution_time_ms=2000))
        ctx = engine.create_context("hog")
        dump = lupa.lua54.LuaRuntime(encoding=None).eval(
            "function(s) return string.dump(load(s), true) end")
        length = ctx.install(dump(b"return function(s, n) return #s + n end"), "length")
        ctx.execute(@FILL@ + "function count(t) return #t end")
        outcomes = []
        for attempt in (
            lambda: ctx.invoke(length, b"y" * 300_000, 1),   # packed: bytes allocate when pushed
            lambda: ctx.call("count", list(range(100_000))),
            lambda: ctx.call("count", {"nested": [float(i) for i in range(50_000)]}),
            lambda: ctx.call("count", "x" * 300_000),
            lambda: ctx.execute("return " + " + ".join(["1"] * 50_000)),
            lambda: ctx.call("count", []),
        ):
            try:
                outcomes.append(attempt())
            except ResourceLimitExceeded as error:
                outcomes.append(error.limit_type)
            except ScriptError as error:
                outcomes.append(type(error).__name__)
        print(outcomes)
        print("small invoke", ctx.invoke(length, b"ab", 1, plain_args=False))
        ctx.close()
        engine.close()
    """)
    assert "memory" in out
    assert "small invoke" in out


def test_a_script_that_fills_its_memory_does_not_take_the_world_down() -> None:
    out = _run_child("""
        from dataclasses import dataclass
        import esper
        from engine_scripting import (Permissions, Script, ScriptEngine, ScriptEvent,
                                      ScriptManager, ScriptResourceLimits, ScriptSystem, WorldApi)

        @dataclass
        class Counter:
            n: int = 0

        engine = ScriptEngine(ScriptResourceLimits(max_memory_mb=1, max_execution_time_ms=2000))
        manager = ScriptManager(engine, initializers=[WorldApi()])
        # the callbacks are defined before the fill: defining a global after it may need a
        # bigger global table, which a full state cannot allocate (the load would fail)
        manager.load("hog", '''
            function on_start(self) self.seen = {} end
            function on_event(self, name, payload) self.last = payload end
            ''' + @FILL@)
        manager.load("counter", '''
            function on_update(self, dt)
              local c = world.get(self.entity, "Counter")
              world.set(self.entity, "Counter", {n = c.n + 1})
            end''', permissions=Permissions(read={"Counter"}, write={"Counter"}),
            limits=ScriptResourceLimits(max_memory_mb=32, max_execution_time_ms=2000))
        system = ScriptSystem(manager, components=[Counter])
        esper.add_processor(system)
        counter = esper.create_entity(Counter(), Script("counter"))
        esper.create_entity(Script("hog"))
        for tick in range(5):
            # many new instances and big broadcast payloads for the full context each tick
            for _ in range(200):
                esper.create_entity(Script("hog"))
            system.queue_event(ScriptEvent(name="flood", payload={"data": list(range(20_000))},
                                          source_entity=None, source_script="host", target=None))
            esper.process(0.016)
        print("counter", esper.component_for_entity(counter, Counter).n)
        print("hog errors", manager.status("hog").error_count > 0)
    """)
    assert "counter 5" in out
    assert "hog errors True" in out
