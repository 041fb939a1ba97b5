"""Churn: movers with one unrelated entity created and deleted per tick, beside the steady
world (engine_scripting/bench/churn.py has the scenes).

Run: pytest benchmarks/test_churn.py --benchmark-json=benchmarks/results/churn.json
The interleaved ratio with its target: engine-scripting bench
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import esper
import pytest

from engine_scripting import ScriptEngine
from engine_scripting.bench.churn import ENTITIES, build_churn
from engine_scripting.bench.scenes import LIMITS, drop_scene


@pytest.fixture(scope="module")
def engine() -> Iterator[ScriptEngine]:
    engine = ScriptEngine(LIMITS)
    yield engine
    engine.close()


@pytest.mark.parametrize("churn", [False, True], ids=["steady", "churn"])
def test_churn_frame(benchmark: Any, engine: ScriptEngine, churn: bool) -> None:
    world = build_churn(ENTITIES, engine, churn)
    benchmark.group = f"churn:{ENTITIES}"
    benchmark.extra_info["entities"] = ENTITIES
    benchmark(esper.process, 0.016)
    drop_scene(world)
