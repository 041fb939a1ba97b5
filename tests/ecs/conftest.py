"""ECS fixtures: a manager and a system in the fresh world of each test (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import esper
import pytest

from engine_scripting import (
    Permissions,
    Script,
    ScriptEngine,
    ScriptManager,
    ScriptResourceLimits,
    ScriptSystem,
    WorldApi,
)
from tests.ecs.support import ALL, COMPONENTS


@pytest.fixture
def manager(engine: ScriptEngine, world: str) -> Iterator[ScriptManager]:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    yield manager
    for name in manager.names():
        manager.unload(name)


@pytest.fixture
def system(manager: ScriptManager) -> ScriptSystem:
    system = ScriptSystem(manager, components=COMPONENTS)
    esper.add_processor(system)
    return system


Loader = Callable[..., int]


@pytest.fixture
def spawn_scripted(manager: ScriptManager, system: ScriptSystem) -> Loader:
    """Load ``source`` as ``name`` (once) and create an entity running it."""
    def spawn(name: str, source: str, *components: object,
              permissions: Permissions = ALL,
              limits: ScriptResourceLimits | None = None) -> int:
        if name not in manager:
            manager.load(name, source, permissions=permissions, limits=limits)
        return esper.create_entity(*components, Script(name))

    return spawn
