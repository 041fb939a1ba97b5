"""A regression check CI can run for the per-frame figures of `engine-scripting bench`
(issues 17 and 20): each ratio is measured side by side in this process at small sizes and must
stay within a wide margin of what it measures today, so that a per-frame regression (a cost that
grows with the world, a path that stops being skipped) fails here. These are not the targets:
those are in docs/performance.md and the bench's report."""

from __future__ import annotations

import statistics
import time

import esper
import lupa.lua54 as lua54

from engine_scripting import ScriptEngine
from engine_scripting.bench import churn, fixed_cost, queries, shapes
from engine_scripting.bench.report import Report, measure_scenes
from engine_scripting.bench.scenes import LIMITS
from engine_scripting.engine import ScriptContext

# figure -> the most it may measure here (today, at these sizes: about a third to a fifth)
CEILINGS = {
    "broadcast": 25.0,          # bare lupa calls per receiving instance (about 3-8 here)
    "foreign read": 60.0,       # x an own read (about 11-18)
    "shared read": 20.0,        # x an own read, every instance reading one entity
    "growth": 3.0,              # one script among 10,000 vs 1,000 entities (about 0.6-1.0)
    "churn": 4.0,               # one unrelated create+delete per tick (about 1.5)
    "fixed cost": 600.0,        # bare calls per busy one-entity script (about 40-120)
    "fixed cost, crowd": 5.0,   # with 3 worlds alive vs one (about 0.8-1.8)
    "idle script": 10.0,        # bare calls per idle script (about 1-1.7)
    "vs plain Python": 40.0,    # movers at 1,000 entities vs the hand-written Processor (~11)
    "query system": 25.0,       # world.query movers vs the hand-written Processor (about 4-7)
    "nearest": 12.0,            # world.nearest vs the same lookup from Python (about 2)
}
CONTEXT_CEILING = 40.0   # a sandboxed context vs a bare LuaRuntime to create (about 8-10)


def test_game_shaped_ratios_stay_within_a_wide_margin() -> None:
    previous = esper.current_world
    try:
        rows = [*shapes.targets(shapes.measure(5, lambda _: None, receivers=200)),
                *churn.targets(churn.measure(5, lambda _: None, count=1000)),
                *fixed_cost.targets(fixed_cost.measure(5, lambda _: None, scripts=50, worlds=3)),
                *queries.targets(queries.measure(1000, 3, lambda _: None))]
        report = Report()
        measure_scenes((1000,), 3, report, lambda _: None)
        movers = next(f for f in report.scenes if f.scene == "movers")
        assert movers.plain_us is not None
        rows.append(("vs plain Python", movers.sandboxed_us / movers.plain_us, 5.0, "movers"))
    finally:
        esper.switch_world(previous)
    measured = {figure: value for figure, value, _, _ in rows}
    assert set(measured) == set(CEILINGS)
    over = {figure: round(value, 2) for figure, value in measured.items()
            if not 0 < value <= CEILINGS[figure]}
    assert over == {}, f"regressed: {over} (ceilings {CEILINGS})"


def test_creating_a_context_stays_within_a_wide_margin_of_a_bare_runtime() -> None:
    engine = ScriptEngine(LIMITS)
    contexts: list[ScriptContext] = []
    runtimes: list[object] = []
    ratios: list[float] = []
    try:
        for _ in range(7):   # interleaved: the machine's load falls on both alike
            started = time.perf_counter()
            contexts += [engine.create_context(f"c{len(contexts) + i}") for i in range(10)]
            made_contexts = time.perf_counter() - started
            started = time.perf_counter()
            runtimes += [lua54.LuaRuntime() for _ in range(10)]
            ratios.append(made_contexts / (time.perf_counter() - started))
        assert contexts[-1].execute("return 1 + 1") == 2   # real, working contexts
        assert statistics.median(ratios) <= CONTEXT_CEILING, ratios
    finally:
        for context in contexts:
            context.close()
        engine.close()
