"""Spawn templates: the host registers them, scripts spawn them by name with overrides.

Registration refuses malformed templates in Python; a spawn builds fresh components, applies
checked overrides, needs the template in ``templates`` (not the grants of its script), stays
within the per-tick cap, and reports unknown names and bad overrides as catchable Lua errors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import esper
import pytest

from engine_scripting import Permissions, Script, ScriptManager, ScriptSystem
from tests.ecs.support import console_texts
from tests.ecs.test_authority import (
    ARENA,
    Damage,
    Position,
    Velocity,
    assert_denied,
    assert_fine,
)

GUNNER = Permissions(write={"Position", "Velocity"}, templates={"bullet"})
Fire = Callable[..., int]


@dataclass
class Sprite:
    """A host-only component (not in the system's schemas)."""

    frames: list[str] = field(default_factory=lambda: ["a", "b"])


@dataclass(frozen=True)
class Team:
    side: int = 0


@dataclass
class Shield:
    strength: int = 1

    def __post_init__(self) -> None:
        if self.strength < 0:
            raise ValueError("strength must not be negative")


@pytest.fixture
def arena(manager: ScriptManager) -> ScriptSystem:
    system = ScriptSystem(manager, components=(*ARENA, Team, Shield), max_spawns_per_tick=4)
    esper.add_processor(system)
    return system


@pytest.fixture
def fire(manager: ScriptManager, arena: ScriptSystem) -> Fire:
    """Run ``body`` (with ``E``, the instance's entity) once per tick as ``name``."""
    def attach(body: str, *components: object, permissions: Permissions = GUNNER,
               name: str = "gunner") -> int:
        manager.load(name, f"function on_update(self) local E = self.entity {body} end",
                     permissions=permissions)
        return esper.create_entity(*components, Script(name))

    return attach


def spawned() -> list[int]:
    return sorted(entity for entity, _ in esper.get_component(Damage))


# -- registration ----------------------------------------------------------------------------
def test_registration_refuses_malformed_templates(arena: ScriptSystem) -> None:
    shared = Damage()
    unsafe = Damage()
    unsafe.lock = threading.Lock()  # type: ignore[attr-defined]
    cases: list[tuple[dict[str, object], type[Exception], str]] = [
        ({"name": ""}, TypeError, "non-empty string"),
        ({"name": 5}, TypeError, "non-empty string"),
        ({"name": "b", "components": "Position"}, TypeError, "sequence of component"),
        ({"name": "b", "components": Damage()}, TypeError, "sequence of component"),
        ({"name": "b", "components": [None]}, TypeError, "component #1 is None"),
        ({"name": "b", "components": [lambda: None]}, TypeError, "component #1 made None"),
        ({"name": "b", "components": [lambda: shared]}, ValueError, "same object"),
        ({"name": "b", "components": [Damage, Damage(5)]}, ValueError, "two components"),
        ({"name": "b", "components": [Script("x")]}, ValueError, "script="),
        ({"name": "b", "components": [lambda: 1 / 0]}, ValueError, "factory failed"),
        ({"name": "b", "components": [unsafe]}, ValueError, "cannot be copied"),
        ({"name": "b", "script": ""}, TypeError, "script must be"),
        ({"name": "b", "script": 3}, TypeError, "script must be"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            arena.register_template(**kwargs)  # type: ignore[arg-type]
    assert arena.templates.names() == []
    arena.register_template("b", [Damage])
    with pytest.raises(ValueError, match="already registered"):
        arena.register_template("b", [Damage])


# -- spawning --------------------------------------------------------------------------------
def test_each_spawn_gets_fresh_components(arena: ScriptSystem, fire: Fire,
                                          manager: ScriptManager) -> None:
    prototype = Sprite(["x"])
    arena.register_template("bullet", [Position(1.0, 2.0), Damage, prototype,
                                       lambda: Velocity(3.0)])
    fire("world.spawn('bullet') world.spawn('bullet', {})")
    esper.process(0.1)
    assert_fine(manager, "gunner")
    first, second = spawned()
    for component_type in (Position, Damage, Sprite, Velocity):
        one = esper.component_for_entity(first, component_type)
        other = esper.component_for_entity(second, component_type)
        assert one == other and one is not other
    assert esper.component_for_entity(first, Position) == Position(1.0, 2.0)
    assert esper.component_for_entity(first, Velocity) == Velocity(3.0)
    esper.component_for_entity(first, Sprite).frames.append("y")
    assert esper.component_for_entity(second, Sprite).frames == ["x"]
    assert prototype.frames == ["x"]


def test_overrides_set_fields_of_the_template_s_components(
        arena: ScriptSystem, fire: Fire, manager: ScriptManager) -> None:
    arena.register_template("bullet", [Position(9.0, 9.0), Velocity, Damage, Team(1)])
    fire("""
        local e = world.spawn("bullet", {Position = {x = 1, y = 2}, Velocity = {y = 5},
                                         Team = {side = 2}})
        print(math.type(e))""", permissions=Permissions(
            write={"Position", "Velocity", "Team"}, templates={"bullet"}))
    esper.process(0.1)
    assert_fine(manager, "gunner")
    assert console_texts("info") == ["integer"]
    [bullet] = spawned()
    assert esper.component_for_entity(bullet, Position) == Position(1.0, 2.0)
    assert esper.component_for_entity(bullet, Velocity) == Velocity(0.0, 5.0)
    assert esper.component_for_entity(bullet, Team) == Team(2)   # frozen: replaced
    assert esper.component_for_entity(bullet, Damage) == Damage(10)


def test_the_template_s_script_needs_none_of_the_spawner_s_grants(
        arena: ScriptSystem, fire: Fire, manager: ScriptManager) -> None:
    manager.load("bullet", """
        function on_update(self)
          local p = world.get(self.entity, "Position")
          world.set(self.entity, "Position", {x = p.x + 1})
        end""", permissions=Permissions(read={"Position"}, write={"Position"}, scope="any",
                                        destroy=True, emit={"hit"}))
    arena.register_template("bullet", [Position, Damage], script="bullet")
    fire("if not fired then fired = world.spawn('bullet') end",
         permissions=Permissions(templates={"bullet"}))
    for _ in range(3):
        esper.process(0.1)
    assert_fine(manager, "gunner")
    assert_fine(manager, "bullet")
    [bullet] = spawned()
    assert esper.component_for_entity(bullet, Script).name == "bullet"
    assert esper.component_for_entity(bullet, Position).x == 2.0   # ran in ticks 2 and 3


@pytest.mark.parametrize(("call", "message"), [
    ("world.spawn('bullet', {Damage = {amount = 1000000}})", "'Damage' is not writable"),
    ("world.spawn('bullet', {Position = {x = 1}})", "field 'x' of Position is not writable"),
    ("world.spawn('nuke')", "template 'nuke' is not granted"),
    ("world.spawn({Position = {x = 1}})", "world.spawn is not granted"),
], ids=["ungranted component", "ungranted field", "ungranted template", "table form"])
def test_spawn_violations_are_denied(arena: ScriptSystem, fire: Fire, manager: ScriptManager,
                                     call: str, message: str) -> None:
    arena.register_template("bullet", [Position, Damage])
    arena.register_template("nuke", [Position, Damage(1_000_000)])
    entity = fire(f"pcall(function() {call} end)", permissions=Permissions(
        write={"Position": {"y"}}, templates={"bullet"}))
    esper.process(0.1)
    assert_denied(manager, "gunner", entity)
    assert message in str(manager.status("gunner").last_error)
    assert spawned() == []


@pytest.mark.parametrize(("call", "message"), [
    ("world.spawn('ghost')", "unknown template 'ghost'"),
    ("world.spawn('phantom')", "unknown template 'phantom'"),   # not granted either
    ("world.spawn(('g'):rep(300))", "unknown template '" + "g" * 64 + "'"),
    ("world.spawn('bullet', 5)", "bad argument #2 to 'world.spawn' (table of overrides"),
    ("world.spawn('bullet', {Position = 5})", "fields of Position must be a table"),
    ("world.spawn('bullet', {Position = {x = 0/0}})", "Position.x must be a finite number"),
    ("world.spawn('bullet', {Position = {z = 1}})", "Position has no field 'z'"),
    ("world.spawn('bullet', {Mana = {}})", "unknown component 'Mana'"),
    ("world.spawn('bullet', {script = 'x'})", "unknown component 'script'"),
    ("world.spawn('bullet', {Velocity = {x = 1}})", "template 'bullet' has no Velocity"),
    ("world.spawn('bullet', {Shield = {strength = -1}})",
     "could not create Shield from template 'bullet': strength must not be negative"),
], ids=["unknown", "unknown and not granted", "long unknown name", "overrides not a table",
        "fields not a table", "NaN", "unknown field", "unknown component", "script key",
        "component not in the template", "refused by the component"])
def test_bad_template_spawns_are_catchable_errors(arena: ScriptSystem, fire: Fire,
                                                  manager: ScriptManager, call: str,
                                                  message: str) -> None:
    arena.register_template("bullet", [Position, Damage, Shield])
    fire(f"print(pcall(function() {call} end))", permissions=Permissions(
        write={"Position", "Velocity", "Shield"}, templates={"bullet", "ghost", "g" * 300}))
    esper.process(0.1)
    assert_fine(manager, "gunner")
    [text] = console_texts("info")
    assert text.startswith("false\t") and message in text, text
    assert spawned() == []


def test_template_spawns_count_toward_the_cap(arena: ScriptSystem, fire: Fire,
                                              manager: ScriptManager) -> None:
    arena.register_template("bullet", [Position, Damage])
    fire("""
        for i = 1, 6 do
          local ok, err = pcall(world.spawn, "bullet")
          if not ok then print(err) end
        end
        print(pcall(world.spawn, {Position = {x = 1, y = 1}}))""",
         permissions=Permissions(write={"Position"}, templates={"bullet"}, spawn=True))
    esper.process(0.1)
    assert_fine(manager, "gunner")
    assert len(spawned()) == 4
    texts = console_texts("info")
    assert len(texts) == 3 and all("spawn limit of 4 per tick reached" in t for t in texts)
    esper.process(0.1)
    assert len(spawned()) == 8


def test_the_table_form_keeps_working(arena: ScriptSystem, fire: Fire,
                                      manager: ScriptManager) -> None:
    fire("world.spawn({Position = {x = 1, y = 2}, Damage = {amount = 3}})",
         permissions=Permissions(write={"Position", "Damage"}, spawn=True))
    esper.process(0.1)
    assert_fine(manager, "gunner")
    [entity] = spawned()
    assert esper.component_for_entity(entity, Damage) == Damage(3)


def test_a_factory_that_changes_type_fails_the_spawn_cleanly(
        arena: ScriptSystem, fire: Fire, manager: ScriptManager) -> None:
    made = iter([Damage(), Damage(), Velocity()])
    arena.register_template("odd", [lambda: next(made)])
    fire("print(pcall(world.spawn, 'odd'))", permissions=Permissions(templates={"odd"}))
    esper.process(0.1)
    assert_fine(manager, "gunner")
    [text] = console_texts("info")
    assert "could not create Damage from template 'odd'" in text
    assert "made a Velocity" in text
    assert esper.get_component(Velocity) == []
