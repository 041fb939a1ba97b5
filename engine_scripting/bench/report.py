"""The ``engine-scripting bench`` report: per-frame costs and the overhead targets.

Every ratio is measured interleaved in one process (rounds rotate over the worlds being
compared; figures are medians), because the machines are shared and noisy.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
import tracemalloc
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TypeVar

import esper
import lupa.lua54 as lua54

from engine_scripting.bench import churn, fixed_cost, shapes
from engine_scripting.bench.queries import QueryFigures, describe
from engine_scripting.bench.queries import measure as measure_queries
from engine_scripting.bench.queries import targets as query_targets
from engine_scripting.bench.scenes import LIMITS, SCENES, build_scene, drop_scene
from engine_scripting.bench.workloads import WORKLOADS
from engine_scripting.ecs import WorldApi
from engine_scripting.engine import ScriptEngine
from engine_scripting.manager import ScriptManager

K = TypeVar("K", bound=Hashable)
SAMPLE_S = 0.002  # the shortest timed sample of a scene


@dataclass(frozen=True, slots=True)
class SceneFigure:
    """One scene at one entity count: microseconds per entity per frame."""

    scene: str
    entities: int
    sandboxed_us: float
    trusted_us: float
    plain_us: float | None


@dataclass(frozen=True, slots=True)
class Target:
    """One row of the targets table."""

    figure: str
    measured: float
    target: float
    detail: str

    @property
    def met(self) -> bool:
        """Whether the measured ratio is within the target."""
        return self.measured <= self.target


@dataclass(slots=True)
class Report:
    """Everything ``engine-scripting bench`` measured."""

    scenes: list[SceneFigure] = field(default_factory=list)
    bare_call_us: dict[int, float] = field(default_factory=dict)
    compute: dict[str, float] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    load_count: int = 0
    load_ms_each: float = 0.0
    load_kib_each: float = 0.0
    context_us: float = 0.0
    context_kib: float = 0.0
    profiling_ratio: float = 0.0
    queries: QueryFigures | None = None   # world.query and world.nearest (queries.py)
    fixed_cost: fixed_cost.FixedCostFigures | None = None   # many one-entity scripts
    churn: churn.ChurnFigures | None = None   # movers with one create+delete per tick
    shapes: shapes.ShapeFigures | None = None   # broadcasts, foreign reads, a growing world

    def as_dict(self) -> dict[str, object]:
        """Plain data, for JSON."""
        data = asdict(self)
        data["targets"] = [{**asdict(t), "met": t.met} for t in self.targets]
        return data


def _median_frame_us(worlds: Mapping[K, str], counts: Mapping[K, int],
                     rounds: int) -> dict[K, float]:
    """Median per-entity frame time of each world.

    A sample runs enough frames to last at least SAMPLE_S (and 2,000 entity updates), so small
    worlds average over their garbage-collection cycles instead of catching one or none, after
    one untimed frame: a game runs the same world frame after frame, so what counts is a warm
    frame, not the first one after another world pushed this one out of the caches."""
    keys = list(worlds)
    samples: dict[K, list[float]] = {key: [] for key in keys}
    frames = {key: _frames_per_sample(worlds[key], counts[key]) for key in keys}
    for index in range(rounds):
        for offset in range(len(keys)):
            key = keys[(index + offset) % len(keys)]
            esper.switch_world(worlds[key])
            esper.process(0.016)
            started = time.perf_counter()
            for _ in range(frames[key]):
                esper.process(0.016)
            samples[key].append((time.perf_counter() - started) / frames[key])
    return {key: statistics.median(values) / counts[key] * 1e6
            for key, values in samples.items()}


def _frames_per_sample(world: str, count: int) -> int:
    esper.switch_world(world)
    esper.process(0.016)
    started = time.perf_counter()
    esper.process(0.016)
    frame_s = max(time.perf_counter() - started, 1e-7)
    return max(1, 2000 // count, math.ceil(SAMPLE_S / frame_s))


def _bare_call_us(count: int, rounds: int) -> float:
    """One plain lupa call f(table, dt) per entity: the floor of a per-entity callback."""
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


def measure_scenes(counts: Sequence[int], rounds: int, report: Report,
                   progress: Callable[[str], None]) -> None:
    """Time every scene at every count: sandboxed, trusted (and plain for movers).

    All counts and variants of a scene are interleaved with each other, so that the security
    tax, the ratio to plain Python and the scaling from count to count are each measured side
    by side. Each variant is built several times, early and late, in alternating order
    (identical worlds differ by up to 10%: a world built earlier runs a few percent slower, and
    every Lua state lays out its tables differently), and the figure is the mean of the copies.
    """
    sandboxed, trusted = ScriptEngine(LIMITS), ScriptEngine(trusted=True)
    engines: dict[str, ScriptEngine | None] = {"sandboxed": sandboxed, "trusted": trusted}
    try:
        for scene in SCENES:
            progress(f"the {scene} scene at {', '.join(map(str, counts))} entities")
            variants = [*engines, "plain"] if scene == "movers" else list(engines)
            worlds: dict[tuple[str, int, int], str] = {}
            for copy in range(max(map(_copies, counts))):
                order = variants if copy % 2 == 0 else variants[::-1]
                for count in counts:
                    if copy < _copies(count):
                        for variant in order:
                            worlds[variant, count, copy] = build_scene(scene, count,
                                                                       engines.get(variant))
            per_entity = _median_frame_us(worlds, {key: key[1] for key in worlds}, rounds)
            mean = {(variant, count): statistics.fmean(
                        per_entity[variant, count, copy] for copy in range(_copies(count)))
                    for variant in variants for count in counts}
            for count in counts:
                report.scenes.append(SceneFigure(
                    scene=scene, entities=count, sandboxed_us=mean["sandboxed", count],
                    trusted_us=mean["trusted", count], plain_us=mean.get(("plain", count)),
                ))
            for name in worlds.values():
                drop_scene(name)
            gc.collect()
        for count in counts:
            report.bare_call_us[count] = _bare_call_us(count, rounds)
    finally:
        sandboxed.close()
    report.scenes.sort(key=lambda figure: (figure.entities, SCENES.index(figure.scene)))


def _copies(count: int) -> int:
    """How many copies of a world of ``count`` entities to build: small worlds are cheap to
    build and to time, so they get more copies (their ratios are the noisiest)."""
    return 4 if count <= 1000 else 2


def measure_profiling(count: int, rounds: int, report: Report) -> None:
    """The empty scene (the least work per tick) with per-script profiling on against off."""
    engine = ScriptEngine(LIMITS)
    worlds = {"on": build_scene("empty", count, engine, profiling=True),
              "off": build_scene("empty", count, engine, profiling=False)}
    per_entity = _median_frame_us(worlds, dict.fromkeys(worlds, count), rounds)
    report.profiling_ratio = per_entity["on"] / per_entity["off"]
    for name in worlds.values():
        drop_scene(name)
    engine.close()


def measure_compute(rounds: int, report: Report) -> None:
    """Sandboxed context against a plain lupa.lua54.LuaRuntime on compute-heavy Lua."""
    engine = ScriptEngine(LIMITS)
    context = engine.create_context("bench")
    plain = lua54.LuaRuntime()
    try:
        for name, source in WORKLOADS.items():
            plain_times: list[float] = []
            sandbox_times: list[float] = []
            for index in range(rounds):
                gc.collect()
                order = [(plain.execute, plain_times), (context.execute, sandbox_times)]
                for run, times in (order if index % 2 else order[::-1]):
                    started = time.perf_counter()
                    run(source)
                    times.append(time.perf_counter() - started)
            report.compute[name] = statistics.median(sandbox_times) / statistics.median(
                plain_times)
        count = 200
        started = time.perf_counter()
        contexts = [engine.create_context(f"c{index}") for index in range(count)]
        report.context_us = (time.perf_counter() - started) / count * 1e6
        report.context_kib = statistics.median(c.memory_used for c in contexts) / 1024
    finally:
        context.close()
        engine.close()


def measure_loading(count: int, report: Report) -> None:
    """Load ``count`` distinct scripts (one context each): time and memory per script."""
    engine = ScriptEngine(LIMITS)
    manager = ScriptManager(engine, initializers=[WorldApi()])
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    for index in range(count):
        manager.load(f"script{index}", f"""
            local speed = {index}
            function on_update(self, dt) self.t = (self.t or 0) + dt * speed end""")
    elapsed = time.perf_counter() - started
    python_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    lua_bytes = sum(manager.status(name).memory_used for name in manager.names())
    report.load_count = count
    report.load_ms_each = elapsed / count * 1e3
    report.load_kib_each = (lua_bytes + python_bytes) / count / 1024
    for name in manager.names():
        manager.unload(name)
    engine.close()


def evaluate(report: Report) -> None:
    """Fill in the targets table from the measurements."""
    by_key = {(f.scene, f.entities): f for f in report.scenes}
    counts = sorted({f.entities for f in report.scenes})
    # one-entity frames are fixed costs, not per-entity taxes: leave them out when there is more
    taxed = [f for f in report.scenes if f.entities >= 100] or report.scenes
    worst_tax = max(((f.sandboxed_us / f.trusted_us, f) for f in taxed), key=lambda pair: pair[0])
    report.targets.append(Target(
        "security tax", worst_tax[0], 1.05,
        f"worst scene, sandboxed vs trusted ({worst_tax[1].scene}, "
        f"{worst_tax[1].entities} entities)"))
    big = max(counts)
    movers = by_key[("movers", big)]
    assert movers.plain_us is not None
    report.targets.append(Target(
        "vs plain Python", movers.sandboxed_us / movers.plain_us, 5.0,
        f"movers at {big} entities vs a hand-written Processor (first milestone 10x)"))
    empty = by_key[("empty", big)]
    report.targets.append(Target(
        "system overhead", empty.sandboxed_us / report.bare_call_us[big], 2.0,
        f"empty on_update at {big} entities vs one bare lupa call f(table, dt)"))
    if 1000 in counts and 10000 in counts:
        worst_scaling = max(by_key[(scene, 10000)].sandboxed_us * 10000
                            / (by_key[(scene, 1000)].sandboxed_us * 1000) for scene in SCENES)
        report.targets.append(Target(
            "scaling", worst_scaling, 11.0, "frame time at 10,000 vs 1,000 entities, worst scene"))
    geomean = math.exp(sum(math.log(r) for r in report.compute.values()) / len(report.compute))
    report.targets.append(Target(
        "compute", geomean, 1.05, "geometric mean, sandboxed vs plain lupa.lua54.LuaRuntime"))
    if report.queries is not None:
        report.targets.extend(Target(*row) for row in query_targets(report.queries))
    if report.fixed_cost is not None:
        report.targets.extend(Target(*row) for row in fixed_cost.targets(report.fixed_cost))
    if report.churn is not None:
        report.targets.extend(Target(*row) for row in churn.targets(report.churn))
    if report.shapes is not None:
        report.targets.extend(Target(*row) for row in shapes.targets(report.shapes))


def run(quick: bool, progress: Callable[[str], None]) -> Report:
    """Measure everything; ``quick`` uses fewer entities, rounds and scripts."""
    report = Report()
    counts = (1, 100, 1000) if quick else (1, 100, 1000, 10000)
    measure_scenes(counts, 9 if quick else 41, report, progress)
    progress("profiling overhead")
    measure_profiling(100, 9 if quick else 21, report)
    progress("compute workloads")
    measure_compute(3 if quick else 15, report)
    progress("loading scripts")
    measure_loading(200 if quick else 1000, report)
    report.queries = measure_queries(2000 if quick else 10000, 9 if quick else 31, progress)
    report.fixed_cost = fixed_cost.measure(9 if quick else 31, progress)
    report.churn = churn.measure(9 if quick else 31, progress)
    report.shapes = shapes.measure(9 if quick else 31, progress)
    evaluate(report)
    return report


def format_report(report: Report) -> str:
    """The report as text tables."""
    lines = ["Per entity per frame (us); ratios measured interleaved in one process", "",
             f"{'scene':<8}{'entities':>9}{'sandboxed':>11}{'trusted':>9}{'tax':>7}"
             f"{'plain':>8}{'vs plain':>10}"]
    for f in report.scenes:
        plain = f"{f.plain_us:>8.3f}{f.sandboxed_us / f.plain_us:>9.1f}x" if f.plain_us else ""
        lines.append(f"{f.scene:<8}{f.entities:>9}{f.sandboxed_us:>11.3f}{f.trusted_us:>9.3f}"
                     f"{f.sandboxed_us / f.trusted_us:>7.2f}{plain}")
    lines.append("")
    lines.append("bare lupa call f(table, dt) per entity: " + ", ".join(
        f"{count}: {us:.3f} us" for count, us in sorted(report.bare_call_us.items())))
    lines.append("compute, sandboxed vs plain lupa: " + ", ".join(
        f"{name} {ratio:.3f}" for name, ratio in report.compute.items()))
    lines.append(f"context creation: {report.context_us:.0f} us, {report.context_kib:.1f} KiB "
                 "of Lua memory each")
    lines.append(f"loading {report.load_count} distinct scripts: {report.load_ms_each:.3f} ms "
                 f"and {report.load_kib_each:.1f} KiB each")
    lines.append(f"per-script profiling on vs off (empty scene, 100 entities): "
                 f"{report.profiling_ratio:.3f}")
    if report.queries is not None:
        lines.extend(describe(report.queries))
    if report.fixed_cost is not None:
        lines.extend(fixed_cost.describe(report.fixed_cost))
    if report.churn is not None:
        lines.extend(churn.describe(report.churn))
    if report.shapes is not None:
        lines.extend(shapes.describe(report.shapes))
    lines.append("")
    lines.append(f"{'figure':<18}{'measured':>10}{'target':>9}  {'':<4}detail")
    for t in report.targets:
        lines.append(f"{t.figure:<18}{t.measured:>10.3f}{t.target:>9.2f}  "
                     f"{'ok' if t.met else 'OVER':<4}{t.detail}")
    return "\n".join(lines)
