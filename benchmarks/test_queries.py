"""world.query and world.nearest beside their hand-written twins (engine_scripting/bench/
queries.py has the scenes).

Run: pytest benchmarks/test_queries.py --benchmark-json=benchmarks/results/queries.json
The interleaved ratios with the targets: engine-scripting bench
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import esper
import pytest

from engine_scripting import ScriptEngine
from engine_scripting.bench.queries import LOOKUPS, build_nearest, build_query_movers
from engine_scripting.bench.scenes import LIMITS

COUNT = 10000


@pytest.fixture(scope="module")
def engine() -> Iterator[ScriptEngine]:
    engine = ScriptEngine(LIMITS)
    yield engine
    engine.close()


def _drop(world: str) -> None:
    esper.switch_world("default")
    esper.delete_world(world)


@pytest.mark.parametrize("variant", ["scripted", "plain"])
def test_query_movers_frame(benchmark: Any, engine: ScriptEngine, variant: str) -> None:
    world = build_query_movers(COUNT, engine if variant == "scripted" else None)
    benchmark.group = f"query-movers:{COUNT}"
    benchmark.extra_info["entities"] = COUNT
    benchmark(esper.process, 0.016)
    _drop(world)


@pytest.mark.parametrize("variant", ["scripted", "plain"])
def test_nearest_frame(benchmark: Any, engine: ScriptEngine, variant: str) -> None:
    """A frame of LOOKUPS world.nearest calls over COUNT entities."""
    world = build_nearest(COUNT, engine, variant)
    benchmark.group = f"nearest:{COUNT}"
    benchmark.extra_info["entities"] = COUNT
    benchmark.extra_info["lookups"] = LOOKUPS
    benchmark(esper.process, 0.016)
    _drop(world)
