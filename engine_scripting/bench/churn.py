"""Churn: the movers scene with one unrelated entity created and deleted every tick, against the
same world without it (issue 17's first figure). Games spawn and destroy every tick; esper
rebuilds its cached component lists after each such change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import esper

from engine_scripting.bench.scenes import LIMITS, build_scene, drop_scene
from engine_scripting.bench.timing import interleaved
from engine_scripting.demo.scenes import Position
from engine_scripting.engine import ScriptEngine

ENTITIES = 3000


class Churn(esper.Processor):
    """Creates and deletes one entity that runs no script, every tick."""

    def process(self, dt: float) -> None:
        esper.delete_entity(esper.create_entity(Position(0.0, 0.0)), immediate=True)


@dataclass(frozen=True, slots=True)
class ChurnFigures:
    """What ``measure`` found: milliseconds per frame."""

    entities: int
    steady_ms: float
    churn_ms: float


def build_churn(count: int, engine: ScriptEngine, churn: bool) -> str:
    """The movers scene of ``count`` entities, with the churning processor or without."""
    name = build_scene("movers", count, engine)
    if churn:
        esper.add_processor(Churn(), priority=10)
    return name


def measure(rounds: int, progress: Callable[[str], None],
            count: int = ENTITIES) -> ChurnFigures:
    """Both worlds, interleaved round by round in this process."""
    progress(f"churn: movers at {count} entities, one unrelated create+delete per tick")
    engine = ScriptEngine(LIMITS)
    worlds = {churn: build_churn(count, engine, churn) for churn in (False, True)}
    try:
        frame_us = interleaved(worlds, dict.fromkeys(worlds, 1), rounds, frames=5)
    finally:
        for name in worlds.values():
            drop_scene(name)
        engine.close()
    return ChurnFigures(entities=count, steady_ms=frame_us[False] / 1e3,
                        churn_ms=frame_us[True] / 1e3)


def targets(figures: ChurnFigures) -> list[tuple[str, float, float, str]]:
    """The rows of the targets table: (figure, measured, target, detail)."""
    return [("churn", figures.churn_ms / figures.steady_ms, 1.10,
             f"movers at {figures.entities:,} entities, one unrelated create+delete per tick, "
             "vs the steady world")]


def describe(figures: ChurnFigures) -> list[str]:
    """The figures as report lines."""
    return [f"churn, movers at {figures.entities} entities: {figures.churn_ms:.2f} ms per frame "
            f"with one unrelated create+delete per tick, {figures.steady_ms:.2f} ms without"]
