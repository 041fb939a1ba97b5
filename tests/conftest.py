"""Shared fixtures: real lupa runtimes and real engines, never mocks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from engine_scripting import ScriptContext, ScriptEngine, ScriptResourceLimits

FAST_LIMITS = ScriptResourceLimits(max_memory_mb=16, max_execution_time_ms=50,
                                   max_recursion_depth=200)
# a generous bound on how long a stopped call may take, for a loaded 2-core machine
STOP_BOUND_S = 2.0


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """The CLI configures structlog for the process; give every test the defaults back."""
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def engine() -> Iterator[ScriptEngine]:
    engine = ScriptEngine(FAST_LIMITS)
    yield engine
    engine.close()


@pytest.fixture
def ctx(engine: ScriptEngine) -> Iterator[ScriptContext]:
    context = engine.create_context("test")
    yield context
    context.close()
