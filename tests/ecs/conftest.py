"""ECS fixtures: a fresh esper world per test, real engines, real scripts."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import esper
import pytest

from engine_scripting import Permissions, Script, ScriptEngine, ScriptManager, ScriptSystem
from tests.ecs.support import ALL, COMPONENTS, ECS_LIMITS

_world_names = itertools.count()


@pytest.fixture(scope="session")
def ecs_engine() -> Iterator[ScriptEngine]:
    engine = ScriptEngine(ECS_LIMITS)
    yield engine
    engine.close()


@pytest.fixture
def world() -> Iterator[str]:
    """Switch to a fresh esper world for the test, and delete it afterwards."""
    previous = esper.current_world
    name = f"test-world-{next(_world_names)}"
    esper.switch_world(name)
    yield name
    esper.switch_world(previous)
    esper.delete_world(name)


@pytest.fixture
def manager(ecs_engine: ScriptEngine, world: str) -> Iterator[ScriptManager]:
    manager = ScriptManager(ecs_engine)
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
              permissions: Permissions = ALL) -> int:
        if name not in manager:
            manager.load(name, source, permissions=permissions)
        return esper.create_entity(*components, Script(name))

    return spawn
