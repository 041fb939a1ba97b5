"""Where the fixed cost of a busy script goes, cold: a world of 200 distinct one-entity scripts
(an empty ``on_update`` each), every step below timed round-robin over the 200 states, on the
engine's worker thread as the ScriptSystem runs them (docs/performance.md, "The fixed cost of a
script per tick"). Each row adds one layer to the one above it:

1. a bare lupa call into 200 plain LuaRuntimes (the floor of any crossing into a cold state);
2. the sandbox's own Lua ``invoke`` of an empty function, called raw (no host checks);
3. world.lua's tick, called raw (the batch: roster, owed calls, ``on_update`` under xpcall);
4. an empty function through a plain entry: the host's protection (memory limit, collector
   pause, watchdog, the busy/dead checks) around the raw call;
5. the tick through its plain entry (4 and 3 together);
6. ``esper.process`` of the whole world, per script (the system's bookkeeping added).

Usage: python scripts/fixed_cost_floor.py [rounds]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import esper
import lupa.lua54 as lua54

from engine_scripting.bench.fixed_cost import build_world
from engine_scripting.bench.scenes import LIMITS
from engine_scripting.ecs import ScriptSystem
from engine_scripting.engine import ScriptEngine

SCRIPTS = 200


def _median_us(step: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        step()
        samples.append((time.perf_counter() - started) / SCRIPTS * 1e6)
    return statistics.median(samples)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    engine = ScriptEngine(LIMITS)
    esper.switch_world(build_world(SCRIPTS, "empty", engine))
    system = esper.get_processor(ScriptSystem)
    assert isinstance(system, ScriptSystem)
    runs = list(system._runs.values())   # the system's private records, for a probe
    dump = lua54.LuaRuntime(encoding=None).eval(
        "function(src) return string.dump(assert(load(src)), true) end")
    empty = dump(b"return function() return nil, true end")
    contexts = [run.record.context for run in runs]
    noops = [context.install(empty, "noop") for context in contexts]
    noop_entries = [context.entry(noop, plain_args=True)
                    for context, noop in zip(contexts, noops, strict=True)]
    invokes = [context._control.invoke for context in contexts]   # raw, for a probe
    raw_ticks = [run.entries.tick.args[0] for run in runs]        # type: ignore[attr-defined]
    plain = [lua54.LuaRuntime().eval("function(t, dt) end") for _ in range(SCRIPTS)]
    steps: list[tuple[str, Callable[[], object]]] = [
        ("bare lupa call, 200 plain runtimes", lambda: [f(None, 0.016) for f in plain]),
        ("sandbox invoke(empty), raw", lambda: [i(n) for i, n in zip(invokes, noops, strict=True)]),
        ("world tick, raw", lambda: [t(0.016, 7, None, None) for t in raw_ticks]),
        ("empty function, plain entry", lambda: [e() for e in noop_entries]),
        ("world tick, plain entry", lambda: [r.entries.plain_tick(0.016, 7, None, None)
                                             for r in runs]),
        ("esper.process, per script", lambda: esper.process(0.016)),
    ]
    results: dict[str, list[float]] = {label: [] for label, _ in steps}

    def job(_: object) -> None:
        for _ in range(3):   # interleaved: the machine's load falls on every row alike
            for label, step in steps:
                results[label].append(_median_us(step, rounds // 3))

    engine.run_each([0], job, lambda _: contexts[0], lambda *_: None)
    for label, _ in steps:
        sys.stdout.write(f"{label:38s} {statistics.median(results[label]):7.2f} us\n")
    engine.close()


if __name__ == "__main__":
    main()
