"""Sandboxed execution against a plain lupa.lua54.LuaRuntime on compute-heavy Lua.

Run: pytest benchmarks/ --benchmark-json=benchmarks/results/compute.json
The interleaved ratio report with the targets: engine-scripting bench
"""

from __future__ import annotations

from typing import Any

import lupa.lua54 as lua54
import pytest

from engine_scripting import ScriptEngine, ScriptResourceLimits
from engine_scripting.bench.workloads import WORKLOADS

LIMITS = ScriptResourceLimits(max_memory_mb=256, max_execution_time_ms=60_000)


@pytest.fixture(scope="module")
def sandboxed() -> Any:
    return ScriptEngine(LIMITS).create_context("bench")


@pytest.mark.parametrize("name", WORKLOADS)
def test_plain_lupa(benchmark: Any, name: str) -> None:
    runtime = lua54.LuaRuntime()
    benchmark.group = f"compute:{name}"
    benchmark(runtime.execute, WORKLOADS[name])


@pytest.mark.parametrize("name", WORKLOADS)
def test_sandboxed(benchmark: Any, sandboxed: Any, name: str) -> None:
    benchmark.group = f"compute:{name}"
    benchmark(sandboxed.execute, WORKLOADS[name])


def test_context_creation(benchmark: Any) -> None:
    engine = ScriptEngine(LIMITS)
    benchmark.group = "context"
    benchmark(engine.create_context, "c")
