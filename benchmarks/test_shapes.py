"""Game shapes: a broadcast event every tick, reads of entities that run no script, and one
script in a growing world (engine_scripting/bench/shapes.py has the scenes).

Run: pytest benchmarks/test_shapes.py --benchmark-json=benchmarks/results/shapes.json
The interleaved ratios with their targets: engine-scripting bench
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import esper
import pytest

from engine_scripting import ScriptEngine
from engine_scripting.bench.scenes import LIMITS, drop_scene
from engine_scripting.bench.shapes import BIG_WORLD, RECEIVERS, SMALL_WORLD, build_shape

SHAPES = {
    "quiet": ("receiver", RECEIVERS, 0, False),
    "broadcast": ("receiver", RECEIVERS, 0, True),
    "own_read": ("own", RECEIVERS, RECEIVERS, False),
    "foreign_read": ("foreign", RECEIVERS, RECEIVERS, False),
    "shared_read": ("foreign", RECEIVERS, 1, False),
    "one_in_small_world": ("mover", 1, SMALL_WORLD, False),
    "one_in_big_world": ("mover", 1, BIG_WORLD, False),
}


@pytest.fixture(scope="module")
def engine() -> Iterator[ScriptEngine]:
    engine = ScriptEngine(LIMITS)
    yield engine
    engine.close()


@pytest.mark.parametrize("shape", list(SHAPES))
def test_shape_frame(benchmark: Any, engine: ScriptEngine, shape: str) -> None:
    script, count, extra, broadcast = SHAPES[shape]
    world = build_shape(script, engine, count, extra, broadcast)
    benchmark.group = "shapes"
    benchmark.extra_info.update(instances=count, other_entities=extra)
    benchmark(esper.process, 0.016)
    drop_scene(world)
