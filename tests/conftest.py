"""Shared fixtures: real lupa runtimes and real engines, never mocks."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import esper
import pytest
import structlog
from hypothesis import settings

from engine_scripting import ScriptContext, ScriptEngine, ScriptResourceLimits

# CI runs the property tests on fixed examples (the ones a developer's run has seen pass), so that
# a submission's result does not depend on the draw; local runs keep exploring.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

FAST_LIMITS = ScriptResourceLimits(max_memory_mb=16, max_execution_time_ms=50,
                                   max_recursion_depth=200)
# for tests that do real work and are not about limits: they pass on a loaded machine too
ROOMY_LIMITS = ScriptResourceLimits(max_memory_mb=32, max_execution_time_ms=3000,
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
    """The engine of the engine and ECS tests (one watchdog for the whole session)."""
    engine = ScriptEngine(FAST_LIMITS)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def roomy_engine() -> Iterator[ScriptEngine]:
    """An engine with ROOMY_LIMITS, for tests that do real work and are not about limits."""
    engine = ScriptEngine(ROOMY_LIMITS)
    yield engine
    engine.close()


@pytest.fixture
def ctx(engine: ScriptEngine) -> Iterator[ScriptContext]:
    context = engine.create_context("test")
    yield context
    context.close()


_world_names = itertools.count()


@pytest.fixture
def world() -> Iterator[str]:
    """Switch to a fresh esper world for the test, and delete it afterwards."""
    previous = esper.current_world
    name = f"test-world-{next(_world_names)}"
    esper.switch_world(name)
    yield name
    esper.switch_world(previous)
    esper.delete_world(name)
