"""Fault injection: the game loop keeps running and every failure is recorded when entities are
deleted or scripts unloaded mid-tick, or host-side Python code raises."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import esper
import pytest

from engine_scripting import (
    Permissions,
    Script,
    ScriptEngine,
    ScriptManager,
    ScriptRuntimeError,
    ScriptSystem,
    WorldApi,
)
from tests.ecs.support import Position


@dataclass
class Trigger:
    """A component whose write runs host code: the injected fault."""

    value: float = 0.0
    action: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name == "value" and self.action is not None:
            self.action()


@dataclass
class Sensor:
    """A component whose read runs host code."""

    reading: float = 0.0

    def __getattribute__(self, name: str) -> object:
        if name == "reading":
            raise RuntimeError("sensor unplugged")
        return object.__getattribute__(self, name)


@pytest.fixture
def game(roomy_engine: ScriptEngine, world: str) -> Iterator[ScriptManager]:
    manager = ScriptManager(roomy_engine, initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager, components=[Position, Trigger, Sensor]))
    yield manager
    for name in manager.names():
        manager.unload(name)


MOVER = """
function on_update(self)
  local p = world.get(self.entity, "Position")
  world.set(self.entity, "Position", {x = p.x + 1})
end"""
GRANTS = Permissions(read={"Position", "Trigger", "Sensor"}, write={"Position", "Trigger"})


def test_entities_deleted_immediately_in_the_middle_of_a_tick(game: ScriptManager) -> None:
    game.load("a_trigger", "function on_update(self) world.set(self.entity, 'Trigger', "
              "{value = 1}) end", permissions=GRANTS)
    game.load("b_mover", MOVER, permissions=GRANTS)
    victims = [esper.create_entity(Position(0.0, 0.0), Script("b_mover")) for _ in range(3)]
    survivor = esper.create_entity(Position(0.0, 0.0), Script("b_mover"))
    esper.process(0.1)  # instances start

    def delete_victims() -> None:
        for victim in victims:
            if esper.entity_exists(victim):
                esper.delete_entity(victim, immediate=True)

    esper.create_entity(Trigger(action=delete_victims), Script("a_trigger"))
    for _ in range(3):
        esper.process(0.1)
    assert not any(esper.entity_exists(victim) for victim in victims)
    assert esper.component_for_entity(survivor, Position).x == 4.0
    assert game.status("b_mover").enabled


def test_a_script_unloaded_in_the_middle_of_a_tick(game: ScriptManager) -> None:
    game.load("a_trigger", "function on_update(self) world.set(self.entity, 'Trigger', "
              "{value = 1}) end", permissions=GRANTS)
    game.load("b_mover", MOVER, permissions=GRANTS)
    moved = esper.create_entity(Position(0.0, 0.0), Script("b_mover"))
    esper.process(0.1)

    def unload_mover() -> None:
        if "b_mover" in game:
            game.unload("b_mover")

    esper.create_entity(Trigger(action=unload_mover), Script("a_trigger"))
    for _ in range(3):
        esper.process(0.1)
    assert "b_mover" not in game
    assert esper.component_for_entity(moved, Position).x == 1.0
    assert game.status("a_trigger").enabled


def test_a_script_that_tries_to_unload_itself_while_running(game: ScriptManager) -> None:
    game.load("self_destruct", """
        function on_update(self)
          world.set(self.entity, "Trigger", {value = 1})
          print("still running")
        end""", permissions=GRANTS)

    def unload_self() -> None:
        game.unload("self_destruct")

    esper.create_entity(Trigger(action=unload_self), Script("self_destruct"))
    for _ in range(2):
        esper.process(0.1)
    # the write reaches the component after the batch: the unload then succeeds
    assert "self_destruct" not in game


def test_a_python_exception_while_reading_a_component(game: ScriptManager) -> None:
    game.load("reader", """
        function on_update(self)
          print(pcall(world.get, self.entity, "Sensor"))
          local p = world.get(self.entity, "Position")
          world.set(self.entity, "Position", {x = p.x + 1})
        end""", permissions=GRANTS)
    entity = esper.create_entity(Position(0.0, 0.0), Sensor(), Script("reader"))
    for _ in range(3):
        esper.process(0.1)
    status = game.status("reader")
    assert status.enabled and status.error_count >= 1
    assert isinstance(status.last_error, ScriptRuntimeError)
    assert "sensor unplugged" in str(status.last_error)
    assert esper.component_for_entity(entity, Position).x == 3.0
