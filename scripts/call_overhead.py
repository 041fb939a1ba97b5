"""Where the fixed cost of one call into a sandboxed context goes (docs/performance.md, "The
fixed cost of a script per tick").

Times, on the engine's worker thread as the ScriptSystem runs them: an empty trusted function
called through ``ScriptContext.invoke``, the same with the watchdog polling less often, and a
script's tick entry; beside a bare lupa call. Usage: python scripts/call_overhead.py
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import esper
import lupa.lua54 as lua54

from engine_scripting.bench.fixed_cost import build_world
from engine_scripting.bench.scenes import LIMITS
from engine_scripting.ecs import ScriptSystem
from engine_scripting.engine import ScriptContext, ScriptEngine

CALLS = 20_000


def _per_call_us(engine: ScriptEngine, context: ScriptContext,
                 call: Callable[[], object]) -> float:
    took: list[float] = []

    def loop(_: object) -> None:
        started = time.perf_counter()
        for _ in range(CALLS):
            call()
        took.append(time.perf_counter() - started)

    engine.run_each([0], loop, lambda _: context, lambda *_: None)
    return took[0] / CALLS * 1e6


def _measure(poll_ms: float, empty: bytes) -> None:
    engine = ScriptEngine(LIMITS, watchdog_poll_ms=poll_ms)
    build_world(1, "empty", engine)
    system = esper.get_processor(ScriptSystem)
    assert isinstance(system, ScriptSystem)
    run = next(iter(system._runs.values()))   # the system's private record, for a probe
    context = run.record.context
    noop = context.install(empty, "noop")
    invoke_us = _per_call_us(engine, context, lambda: context.invoke(noop))
    tick_us = _per_call_us(engine, context, lambda: run.entries.tick(0.016, 1, None, None))
    sys.stdout.write(f"watchdog poll {poll_ms:g} ms: invoke(empty) {invoke_us:.2f} us, "
                     f"tick entry {tick_us:.2f} us\n")
    engine.close()


def main() -> None:
    dump = lua54.LuaRuntime(encoding=None).eval(
        "function(src) return string.dump(assert(load(src)), true) end")
    empty = dump(b"return function() end")
    bare = lua54.LuaRuntime().eval("function() end")
    started = time.perf_counter()
    for _ in range(CALLS):
        bare()
    sys.stdout.write(f"bare lupa call: {(time.perf_counter() - started) / CALLS * 1e6:.2f} us\n")
    for poll_ms in (1.0, 5.0, 20.0):
        _measure(poll_ms, empty)


if __name__ == "__main__":
    main()
