"""Per-frame cost of the ECS layer: scripted scenes against a hand-written esper Processor.

Run: pytest benchmarks/test_ecs.py --benchmark-json=benchmarks/results/ecs.json
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import esper
import pytest

from benchmarks.scenes import LIMITS, build_scene
from engine_scripting import ScriptEngine

COUNTS = (100, 1000)


@pytest.fixture(scope="module")
def engine() -> Iterator[ScriptEngine]:
    engine = ScriptEngine(LIMITS)
    yield engine
    engine.close()


@pytest.mark.parametrize("count", COUNTS)
@pytest.mark.parametrize("kind", ["plain", "empty", "movers"])
def test_frame(benchmark: Any, engine: ScriptEngine, kind: str, count: int) -> None:
    world = build_scene(kind, count, engine)
    benchmark.group = f"ecs:{count}"
    benchmark.extra_info["per_entity"] = True
    benchmark(esper.process, 0.016)
    esper.switch_world("default")
    esper.delete_world(world)
