"""Shared ECS test data: component types, grants and console helpers."""

from __future__ import annotations

from dataclasses import dataclass

import esper

from engine_scripting import Console, Permissions


@dataclass
class Position:
    x: float
    y: float


@dataclass
class Velocity:
    x: float = 0.0
    y: float = 0.0


@dataclass
class Health:
    value: int = 100
    alive: bool = True


@dataclass
class Label:
    text: str = ""


@dataclass
class Fragile:
    """Refuses every write while ``locked`` is set (with ``object.__setattr__``)."""

    value: float = 0.0

    def __setattr__(self, name: str, value: object) -> None:
        if getattr(self, "locked", False):
            raise RuntimeError("fragile component refuses writes")
        object.__setattr__(self, name, value)


COMPONENTS = (Position, Velocity, Health, Label)
ALL = Permissions(read={"Position", "Velocity", "Health", "Label"},
                  write={"Position", "Velocity", "Health", "Label"}, scope="any",
                  spawn=True, destroy=True, emit={"ping", "hit"})


def console_texts(level: str | None = None) -> list[str]:
    """Texts of the current world's console messages, optionally of one level."""
    [(_, console)] = esper.get_component(Console)
    return [m.text for m in console.messages if level is None or m.level == level]
