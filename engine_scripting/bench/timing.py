"""Timing worlds side by side: rounds rotate over the worlds being compared, so that the load of
a shared, noisy machine falls on all of them alike; figures are medians."""

from __future__ import annotations

import statistics
import time
from collections.abc import Hashable, Mapping
from typing import TypeVar

import esper
import lupa.lua54 as lua54

K = TypeVar("K", bound=Hashable)


def interleaved(worlds: Mapping[K, str], per: Mapping[K, int], rounds: int, frames: int = 3,
                warm_up: bool = True) -> dict[K, float]:
    """The median time of a frame of each world, in microseconds per unit of ``per`` (entities,
    scripts, lookups). A sample runs ``frames`` frames, after one untimed frame unless
    ``warm_up`` is False (to time a world whose state the others pushed out of the caches)."""
    samples: dict[K, list[float]] = {key: [] for key in worlds}
    keys = list(worlds)
    for index in range(rounds):
        for offset in range(len(keys)):
            key = keys[(index + offset) % len(keys)]
            esper.switch_world(worlds[key])
            if warm_up:
                esper.process(0.016)
            started = time.perf_counter()
            for _ in range(frames):
                esper.process(0.016)
            samples[key].append((time.perf_counter() - started) / frames)
    return {key: statistics.median(values) / per[key] * 1e6 for key, values in samples.items()}


class BareCalls(esper.Processor):
    """Makes ``calls`` bare lupa calls f(table, dt) a tick: the unit of the ratios given in bare
    calls, timed as a world among the others (the machine's load falls on it alike)."""

    def __init__(self, calls: int) -> None:
        runtime = lua54.LuaRuntime()
        self.update, self.table = runtime.eval("function(self, dt) end"), runtime.table_from({})
        self.calls = calls

    def process(self, dt: float) -> None:
        update, table = self.update, self.table
        for _ in range(self.calls):
            update(table, dt)


def build_bare_calls(calls: int) -> str:
    """A world whose only processor makes ``calls`` bare lupa calls a tick; returns its name."""
    name = f"bench-bare-calls-{calls}-{time.perf_counter_ns()}"
    esper.switch_world(name)
    esper.add_processor(BareCalls(calls))
    return name
