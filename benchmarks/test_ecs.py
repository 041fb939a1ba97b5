"""Per-frame cost of the ECS scenes: sandboxed, trusted (no sandbox) and hand-written Python.

Run: pytest benchmarks/test_ecs.py --benchmark-json=benchmarks/results/ecs.json
The interleaved ratio report with the targets: engine-scripting bench
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import esper
import pytest

from engine_scripting import ScriptEngine
from engine_scripting.bench.report import Report, measure_loading
from engine_scripting.bench.scenes import LIMITS, SCENES, build_scene, drop_scene

COUNTS = (1, 100, 1000, 10000)


@pytest.fixture(scope="module")
def engines() -> Iterator[dict[str, ScriptEngine]]:
    engines = {"sandboxed": ScriptEngine(LIMITS), "trusted": ScriptEngine(trusted=True)}
    yield engines
    engines["sandboxed"].close()


@pytest.mark.parametrize("count", COUNTS)
@pytest.mark.parametrize("mode", ["sandboxed", "trusted"])
@pytest.mark.parametrize("scene", SCENES)
def test_scene_frame(benchmark: Any, engines: dict[str, ScriptEngine], scene: str, mode: str,
                     count: int) -> None:
    world = build_scene(scene, count, engines[mode])
    benchmark.group = f"{scene}:{count}"
    benchmark.extra_info["entities"] = count
    benchmark(esper.process, 0.016)
    drop_scene(world)


@pytest.mark.parametrize("count", COUNTS)
def test_plain_python_movers(benchmark: Any, count: int) -> None:
    world = build_scene("movers", count, None)
    benchmark.group = f"movers:{count}"
    benchmark.extra_info["entities"] = count
    benchmark(esper.process, 0.016)
    drop_scene(world)


def test_loading_1000_scripts(benchmark: Any) -> None:
    report = Report()
    benchmark.group = "loading"
    benchmark.pedantic(measure_loading, args=(1000, report), rounds=1, iterations=1)
    benchmark.extra_info["kib_each"] = report.load_kib_each
