"""The demo scenes: which scripts each loads, with which grants, and the entities it starts with.

1. fountain: a spawner script and hundreds of particle scripts that end themselves;
2. hunt: predators find the nearest prey through the spatial index (world.nearest) and tell it
   it was caught with a targeted event; a nest spawns new prey from a host template;
3. rogue: well-behaved orbiters beside hostile scripts (an infinite loop, a memory bomb, a
   permission violation, escape attempts, a console flood) that are stopped and disabled. They
   come from the catalogue of hostile scripts (engine_scripting/bench/hostile), files and
   grants alike; and a cheating mod whose plausible grants stop its cheats (cheater.lua);
4. quest: a villager (her lines are her entity's params) talks on a timer (tasks), a hero
   walks from gem to gem in a task, and a quest state machine whose goal is its config counts
   the gems and rewards the hero.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType

import esper

from engine_scripting.bench.hostile import BY_NAME as HOSTILE
from engine_scripting.ecs import Script
from engine_scripting.manager import ScriptManager
from engine_scripting.permissions import Permissions


@dataclass(slots=True)
class Position:
    x: float
    y: float


@dataclass(slots=True)
class Velocity:
    x: float = 0.0
    y: float = 0.0


@dataclass(slots=True)
class Appearance:
    r: int = 255
    g: int = 255
    b: int = 255
    size: float = 1.5


@dataclass(slots=True)
class Life:
    remaining: float = 1.0


@dataclass(slots=True)
class Prey:
    """Marks what predators hunt."""

    caught: bool = False


@dataclass(slots=True)
class Gem:
    """Marks what the quest's hero collects."""

    value: int = 1


COMPONENTS = (Position, Velocity, Appearance, Life, Prey, Gem)
SPATIAL = ("Position", "x", "y")
BODY = frozenset({"Position", "Velocity", "Appearance", "Life"})


@dataclass(frozen=True, slots=True)
class DemoScript:
    """A script file of the demo, its grants and its config; ``path`` None:
    demo/lua/<name>.lua."""

    name: str
    permissions: Permissions
    path: Path | None = None
    config: Mapping[str, object] | None = None

    def file(self) -> Path:
        """The script's Lua file."""
        return self.path if self.path is not None else script_path(self.name)


@dataclass(frozen=True, slots=True)
class Scene:
    """A demo scene: its scripts and a function that creates its starting entities."""

    name: str
    description: str
    scripts: tuple[DemoScript, ...]
    populate: Callable[[random.Random], None]
    # host templates scripts may spawn from: (name, components, script)
    templates: tuple[tuple[str, tuple[object, ...], str | None], ...] = ()


def script_path(name: str) -> Path:
    """The file of a demo script (shipped inside the package)."""
    return Path(str(files("engine_scripting").joinpath(f"demo/lua/{name}.lua")))


def load_scripts(manager: ScriptManager, scene: Scene) -> None:
    """Load a scene's scripts from their files (so hot reload works on them)."""
    for script in scene.scripts:
        manager.load(script.name, path=script.file(), permissions=script.permissions,
                     config=script.config)


def _fountain(rng: random.Random) -> None:
    esper.create_entity(Position(50.0, 8.0), Appearance(90, 160, 255, 3.0), Script("spawner"))


def _hunt(rng: random.Random) -> None:
    esper.create_entity(Position(50.0, 50.0), Appearance(150, 110, 60, 4.0), Script("nest"))
    for _ in range(40):
        esper.create_entity(Position(rng.uniform(5, 95), rng.uniform(5, 95)), *_prey_body(),
                            Script("prey"))
    for _ in range(4):
        esper.create_entity(Position(rng.uniform(5, 95), rng.uniform(5, 95)),
                            Appearance(240, 80, 60, 2.0), Script("predator"))


def _prey_body() -> tuple[object, ...]:
    return Appearance(120, 220, 120, 1.5), Prey()


# names in the catalogue of hostile scripts
ROGUES = ("looper", "bomb", "thief", "escaper", "flooder")


def _rogue(rng: random.Random) -> None:
    for index in range(24):
        radius = 12 + (index % 6) * 6
        angle = index * 0.9
        esper.create_entity(Position(50 + radius * math.cos(angle), 50 + radius * math.sin(angle)),
                            Appearance(110, 190, 255, 1.6), Script("orbiter"))
    for index, name in enumerate(ROGUES):
        esper.create_entity(Position(12.0 + index * 19, 92.0), Appearance(255, 70, 70, 2.5),
                            Script(name))
    esper.create_entity(Position(50.0, 50.0), Appearance(255, 200, 0, 2.5), Script("cheater"))


def _quest(rng: random.Random) -> None:
    esper.create_entity(Position(50.0, 50.0), Appearance(200, 160, 255, 3.0), Script(
        "npc", params={"name": "Mira", "pause": 1.5, "lines": [
            "Traveller! My gems are scattered over the meadow.",
            "Bring them back and I will pay you well.",
            "Mind the brambles."]}))
    esper.create_entity(Position(50.0, 45.0), Script("quest"))
    esper.create_entity(Position(45.0, 50.0), Appearance(90, 200, 255, 2.5),
                        Script("hero", params={"speed": 60.0, "start_after": 1.0}))
    for _ in range(3):
        esper.create_entity(Position(rng.uniform(10, 90), rng.uniform(10, 90)),
                            Appearance(255, 220, 60, 1.8), Gem(), Script("gem"))


_SELF_BODY = Permissions(read=BODY, write=BODY, destroy=True)

SCENES: MappingProxyType[str, Scene] = MappingProxyType({
    "fountain": Scene(
        "fountain", "particles: a spawner script and hundreds of short-lived particle scripts",
        (DemoScript("spawner", Permissions(read=BODY, write=BODY, spawn=True, destroy=True)),
         DemoScript("particle", _SELF_BODY)),
        _fountain,
    ),
    "hunt": Scene(
        "hunt", "predators find the nearest prey (spatial index); a nest respawns it",
        (DemoScript("prey", Permissions(read={"Position"}, write={"Position"}, destroy=True,
                                        emit={"prey_eaten": "any", "prey_gone": "self"})),
         DemoScript("predator", Permissions(read={"Position", "Prey"}, read_scope="any",
                                            write={"Position": None, "Appearance": {"size"}},
                                            emit={"caught": "any"})),
         DemoScript("nest", Permissions(write={"Position"}, templates={"prey"}))),
        _hunt,
        (("prey", (Position(50.0, 50.0), *_prey_body()), "prey"),),
    ),
    "rogue": Scene(
        "rogue", "hostile mods (loop, memory bomb, theft, escapes, flood) beside good scripts",
        (DemoScript("orbiter", Permissions(read={"Position"}, write={"Position"})),
         *(DemoScript(name, HOSTILE[name].grants, HOSTILE[name].path) for name in ROGUES),
         DemoScript("cheater", Permissions(read={"Position"}, read_scope="any",
                                           write={"Position"}, emit={"score"}))),
        _rogue,
    ),
    "quest": Scene(
        "quest", "a villager talks on a timer, a hero walks from gem to gem, a quest counts",
        (DemoScript("npc", Permissions(), config=None),
         DemoScript("quest", Permissions(emit={"quest_done"}),
                    config={"goal": 3, "reward": 50}),
         DemoScript("hero", Permissions(read={"Position", "Gem"}, read_scope="any",
                                        write={"Position"}, emit={"picked": "any"})),
         DemoScript("gem", Permissions(destroy=True, emit={"gem_collected"}))),
        _quest,
    ),
})
