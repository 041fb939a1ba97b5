"""The fixed cost of a script per tick: a world of 200 distinct one-entity scripts, with an
empty on_update and without one (engine_scripting/bench/fixed_cost.py has the scenes), beside a
bare lupa call.

Run: pytest benchmarks/test_fixed_cost.py --benchmark-json=benchmarks/results/fixed_cost.json
The interleaved ratios with the targets: engine-scripting bench
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import esper
import lupa.lua54 as lua54
import pytest

from engine_scripting import ScriptEngine
from engine_scripting.bench.fixed_cost import SCRIPTS, build_world
from engine_scripting.bench.scenes import LIMITS


@pytest.fixture(scope="module")
def engine() -> Iterator[ScriptEngine]:
    engine = ScriptEngine(LIMITS)
    yield engine
    engine.close()


@pytest.mark.parametrize("shape", ["empty", "idle"])
def test_fixed_cost_frame(benchmark: Any, engine: ScriptEngine, shape: str) -> None:
    world = build_world(SCRIPTS, shape, engine)
    benchmark.group = f"fixed-cost:{SCRIPTS}"
    benchmark.extra_info["scripts"] = SCRIPTS
    benchmark(esper.process, 0.016)
    esper.switch_world("default")
    esper.delete_world(world)


def test_bare_lupa_calls(benchmark: Any) -> None:
    """SCRIPTS bare lupa calls f(table, dt): the floor the frame above is compared with."""
    runtime = lua54.LuaRuntime()
    update = runtime.eval("function(self, dt) end")
    table = runtime.table_from({"entity": 1})

    def frame() -> None:
        for _ in range(SCRIPTS):
            update(table, 0.016)

    benchmark.group = f"fixed-cost:{SCRIPTS}"
    benchmark(frame)
