"""Shared by the query and spatial tests: a world of its own per example, a system script that
keeps what it found for the test to read, and brute-force answers."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import Any

import esper

from engine_scripting import (
    Console,
    Permissions,
    Script,
    ScriptEngine,
    ScriptManager,
    ScriptSystem,
    WorldApi,
)
from tests.conftest import ROOMY_LIMITS
from tests.ecs.support import COMPONENTS

NAMES = tuple(component.__name__ for component in COMPONENTS)
BY_NAME = {component.__name__: component for component in COMPONENTS}
READ_ANY = Permissions(read=set(NAMES), write=set(NAMES), scope="any", destroy=True,
                       spawn=True)
_worlds = itertools.count()

# Lua helpers for scripts that keep what they saw: `found` is read with `results()`
KEEPER = """
local function plain(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end
found = {}
function results() return found end
"""


@contextmanager
def fresh_world() -> Iterator[str]:
    """A new esper world, current for the block and deleted after it (for Hypothesis examples,
    which cannot use function-scoped fixtures)."""
    previous = esper.current_world
    name = f"query-world-{next(_worlds)}"
    esper.switch_world(name)
    try:
        yield name
    finally:
        esper.switch_world(previous)
        esper.delete_world(name)


def system_script(engine: ScriptEngine, source: str, permissions: Permissions = READ_ANY,
                  spatial: tuple[Any, ...] | None = None, limits: Any = None,
                  ) -> tuple[ScriptManager, ScriptSystem, int]:
    """Load ``source`` (after KEEPER) as script "q" in the current world, with a system and
    one entity running it; returns the manager, the system and that entity."""
    manager = ScriptManager(engine, initializers=[WorldApi()])
    system = ScriptSystem(manager, components=COMPONENTS, spatial=spatial)
    esper.add_processor(system)
    # real work over whole worlds: roomy limits unless a test asks for its own (a loaded
    # machine must not stop it)
    manager.load("q", KEEPER + source, permissions=permissions,
                 limits=ROOMY_LIMITS if limits is None else limits)
    return manager, system, esper.create_entity(Script("q"))


def results(manager: ScriptManager, name: str = "q") -> Any:
    """What the script kept in `found` (plain data; an empty table is an empty list)."""
    record = manager.running(name)
    assert record is not None
    found = record.context.call("results")
    return [] if found == {} else found


def values(component: object) -> dict[str, object]:
    """A component's fields as the script sees them."""
    return {item.name: getattr(component, item.name) for item in fields(component)}  # type: ignore


def brute_query(listed: list[str], with_: tuple[str, ...] = (),
                without: tuple[str, ...] = ()) -> list[list[object]]:
    """What world.query(listed, {with, without}) yields, from esper directly: [entity, the
    listed components' fields...] per entity, ascending."""
    resource = {entity for entity, _ in esper.get_component(Console)}
    rows = []
    for entity in sorted(esper.get_entities()):  # dead ones too: entity_exists says
        if entity in resource or not esper.entity_exists(entity):
            continue
        held = {type(component).__name__: component
                for component in esper.components_for_entity(entity)}
        if all(name in held for name in (*listed, *with_)) and not any(
                name in held for name in without):
            rows.append([entity, *(values(held[name]) for name in listed)])
    return rows


def unload_all(manager: ScriptManager) -> None:
    for name in manager.names():
        manager.unload(name)
