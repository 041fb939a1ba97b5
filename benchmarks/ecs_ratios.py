"""Interleaved per-entity frame cost of the ECS scenes against a hand-written esper Processor.

Usage: python benchmarks/ecs_ratios.py [--rounds N] [--counts 100,1000,10000]
Each round times one frame of every scene, in rotating order; figures are medians.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

import esper
import lupa.lua54 as lua54
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.scenes import LIMITS, build_scene
from engine_scripting import ScriptEngine

KINDS = ("plain", "empty", "movers")


def _bare_call_us(count: int, rounds: int) -> float:
    """One plain lupa call f(table, dt) per entity: the floor of any per-entity callback."""
    runtime = lua54.LuaRuntime()
    update = runtime.eval("function(self, dt) end")
    tables = [runtime.table_from({"entity": index}) for index in range(count)]
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for table in tables:
            update(table, 0.016)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--counts", default="100,1000,10000")
    options = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    engine = ScriptEngine(LIMITS)
    sys.stdout.write(f"{'entities':>9}{'scene':>8}{'us/entity':>11}{'vs plain':>10}\n")
    for count in (int(text) for text in options.counts.split(",")):
        worlds = {kind: build_scene(kind, count, engine) for kind in KINDS}
        samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for index in range(options.rounds):
            for offset in range(len(KINDS)):
                kind = KINDS[(index + offset) % len(KINDS)]
                esper.switch_world(worlds[kind])
                started = time.perf_counter()
                esper.process(0.016)
                samples[kind].append(time.perf_counter() - started)
        per_entity = {kind: statistics.median(values) / count * 1e6
                      for kind, values in samples.items()}
        for kind in KINDS:
            ratio = per_entity[kind] / per_entity["plain"]
            sys.stdout.write(f"{count:>9}{kind:>8}{per_entity[kind]:>11.3f}{ratio:>10.2f}\n")
        bare = _bare_call_us(count, options.rounds)
        sys.stdout.write(f"{count:>9}{'bare':>8}{bare:>11.3f}   (one lupa call per entity; "
                         f"empty/bare = {per_entity['empty'] / bare:.2f})\n")
        esper.switch_world("default")
        for world in worlds.values():
            esper.delete_world(world)
    engine.close()


if __name__ == "__main__":
    main()
