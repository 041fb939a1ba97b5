"""world.within and world.nearest: answers equal to a brute-force scan (Hypothesis, across ticks
with moves, spawns and despawns), the once-per-tick snapshot, caps, scopes, permissions and bad
arguments."""

from __future__ import annotations

import math
import random
from typing import Any

import esper
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine_scripting.ecs._grid as grid_module
from engine_scripting import (
    Console,
    PermissionDenied,
    Permissions,
    ScriptEngine,
    ScriptManager,
    ScriptSystem,
    WorldApi,
)
from tests.ecs.query_support import (
    READ_ANY,
    fresh_world,
    results,
    system_script,
    unload_all,
)
from tests.ecs.support import COMPONENTS, Health, Label, Position, Velocity

SPATIAL = ("Position", "x", "y")
coordinate = st.one_of(st.floats(-100, 100, allow_nan=False), st.sampled_from([0.0, 1.0, 5.0]),
                       st.integers(-50, 50))
odd = st.sampled_from([math.nan, math.inf, 1e301])
others = st.lists(st.sampled_from([Velocity, Health, Label]), unique=True)
entity = st.tuples(st.one_of(coordinate, odd), coordinate, others)
filters = st.tuples(st.lists(st.sampled_from(["Velocity", "Health"]), unique=True, max_size=2),
                    st.lists(st.sampled_from(["Label", "Health"]), unique=True, max_size=1))
lookup = st.tuples(coordinate, coordinate, st.one_of(st.floats(0, 300), st.just(0.0)),
                   st.integers(1, 8))


def create(x: object, y: object, parts: list[type]) -> int:
    return esper.create_entity(Position(x, y), *(part() for part in parts))  # type: ignore


def usable(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) and abs(number) <= 1e300 else None


def brute(x: float, y: float, radius: float, limit: int, with_: list[str],
          without: list[str]) -> tuple[list[int], bool]:
    resource = {entity for entity, _ in esper.get_component(Console)}
    hits = []
    for entity, position in esper.get_component(Position):
        px, py = usable(position.x), usable(position.y)
        held = {type(part).__name__ for part in esper.components_for_entity(entity)}
        if (px is None or py is None or entity in resource or not esper.entity_exists(entity)
                or not set(with_) <= held or held & set(without)):
            continue
        dx, dy = px - x, py - y
        distance = dx * dx + dy * dy
        if distance <= radius * radius:
            hits.append((distance, entity))
    hits.sort()
    return [entity for _, entity in hits[:limit]], len(hits) > limit


def lua_names(names: list[str]) -> str:
    return "{" + ", ".join(f'"{name}"' for name in names) + "}"


def searcher(lookups: list[tuple[Any, Any, Any, int]], with_: list[str],
             without: list[str]) -> str:
    calls = []
    for x, y, radius, limit in lookups:
        names, options = lua_names(with_), f"{{without = {lua_names(without)}, limit = {limit}}}"
        calls.append(f"""
          do local ids, more = world.within({x!r}, {y!r}, {radius!r}, {names}, {options})
          found[#found + 1] = {{ids, more,
            world.nearest({x!r}, {y!r}, {radius!r}, {names}, {{without = {lua_names(without)}}})
              or false}} end""")
    return "function on_update(self)\n found = {}" + "".join(calls) + "\nend"


def expected(lookups: list[tuple[Any, Any, Any, int]], with_: list[str],
             without: list[str]) -> list[list[object]]:
    rows: list[list[object]] = []
    for x, y, radius, limit in lookups:
        ids, more = brute(float(x), float(y), float(radius), limit, with_, without)
        first = brute(float(x), float(y), float(radius), 1, with_, without)[0]
        rows.append([ids or {}, more, first[0] if first else False])
    return rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=st.lists(entity, max_size=40), lookups=st.lists(lookup, min_size=1, max_size=4),
       chosen=filters, cell=st.one_of(st.none(), st.sampled_from([0.5, 3.0, 40.0])),
       moves=st.lists(st.tuples(st.sampled_from(["move", "spawn", "despawn"]),
                                st.integers(0, 100), entity), max_size=8))
def test_lookups_equal_a_scan_of_the_world(
    engine: ScriptEngine, world: list[tuple[Any, Any, list[type]]],
    lookups: list[tuple[Any, Any, Any, int]], chosen: tuple[list[str], list[str]],
    cell: float | None, moves: list[tuple[str, int, tuple[Any, Any, list[type]]]],
) -> None:
    with_, without = chosen
    with fresh_world():
        entities = [create(*spec) for spec in world]
        manager, _, _ = system_script(engine, searcher(lookups, with_, without),
                                      spatial=(*SPATIAL, cell) if cell else SPATIAL)
        for step in ([], moves):
            for kind, which, spec in step:
                alive = [entity for entity in entities if esper.entity_exists(entity)]
                if kind == "spawn" or not alive:
                    entities.append(create(*spec))
                elif kind == "despawn":
                    esper.delete_entity(alive[which % len(alive)])
                else:
                    position = esper.component_for_entity(alive[which % len(alive)], Position)
                    position.x, position.y = spec[0], spec[1]
            wanted = expected(lookups, with_, without)
            esper.process(0.1)
            assert manager.status("q").last_error is None
            assert results(manager) == wanted
        unload_all(manager)


def test_the_index_is_a_snapshot_refreshed_once_per_tick(
    engine: ScriptEngine, world: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds: list[int] = []
    build = grid_module.build

    def counted(*args: Any) -> Any:
        builds.append(len(args[0]))
        return build(*args)

    monkeypatch.setattr(grid_module, "build", counted)
    a = esper.create_entity(Position(1.0, 0.0))
    b = esper.create_entity(Position(2.0, 0.0))
    manager, _, _ = system_script(engine, """
        function on_update(self)
          found = {world.nearest(0, 0, 10)}
          world.set(found[1], "Position", {x = 50})   -- seen from the next tick on
          local spawned = world.spawn({Position = {x = 0, y = 0}})
          found[2] = world.nearest(0, 0, 10)
          found[3] = #world.within(0, 0, 100)
          world.destroy(found[1])                      -- left out at once
          found[4] = world.nearest(0, 0, 10)
          found[5] = spawned
        end""", spatial=SPATIAL)
    esper.process(0.1)
    first, again, count, after, spawned = results(manager)
    assert (first, again, count, after) == (a, a, 2, b)
    assert builds == [2]
    esper.process(0.1)   # moved, spawned, destroyed: one refresh
    assert builds == [2, 2]
    assert results(manager)[:3] == [spawned, spawned, 2]


def test_an_unmoved_world_is_not_indexed_again(
    engine: ScriptEngine, world: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds: list[int] = []
    build = grid_module.build
    monkeypatch.setattr(grid_module, "build",
                        lambda *args: builds.append(1) or build(*args))
    for index in range(100):
        esper.create_entity(Position(float(index), 0.0))
    manager, _, _ = system_script(engine, """
        function on_update(self) found = world.nearest(30.2, 0, 5) end""", spatial=SPATIAL)
    for _ in range(3):
        esper.process(0.1)
    assert builds == [1]
    esper.component_for_entity(10, Position).y = 1.0
    esper.process(0.1)
    esper.process(0.1)
    assert builds == [1, 1]
    assert results(manager) == 31


def test_within_returns_at_most_the_cap_and_says_so(engine: ScriptEngine, world: str) -> None:
    for index in range(1100):
        esper.create_entity(Position(float(index % 3), 0.0))
    manager, _, _ = system_script(engine, """
        function on_update(self)
          local all, more = world.within(0, 0, 5)
          local few, more_few = world.within(0, 0, 5, {}, {limit = 2})
          local exact, none_more = world.within(0, 0, 0.5, {}, {limit = 367})
          found = {#all, more, few, more_few, #exact, none_more, all[1], all[1024]}
        end""", spatial=SPATIAL)
    esper.process(0.1)
    assert results(manager) == [1024, True, [1, 4], True, 367, False, 1, 870]


def test_read_scope_self_finds_at_most_the_own_entity(engine: ScriptEngine, world: str) -> None:
    esper.create_entity(Position(0.0, 0.0))
    manager, _, me = system_script(engine, """
        function on_update(self)
          found = {world.nearest(0, 0, 10) or false, #world.within(0, 0, 10)}
        end""", Permissions(read={"Position"}, read_scope="self"), spatial=SPATIAL)
    esper.process(0.1)
    assert results(manager) == [False, 0]
    esper.add_component(me, Position(3.0, 4.0))
    esper.process(0.1)
    assert results(manager) == [me, 1]
    assert manager.status("q").enabled


@pytest.mark.parametrize("call", [
    "world.nearest(0, 0, 1)", 'world.within(0, 0, 1, "Health")',
    'world.nearest(0, 0, 1, {"Velocity"}, {without = {"Health"}})',
])
def test_the_spatial_component_and_every_filter_need_read(engine: ScriptEngine, world: str,
                                                          call: str) -> None:
    readable = {"Velocity"} if call == "world.nearest(0, 0, 1)" else {"Position", "Velocity"}
    grants = Permissions(read=readable, scope="any")
    manager, _, me = system_script(engine, f"""
        function on_update(self) pcall(function() return {call} end) end""", grants,
        spatial=SPATIAL)
    esper.process(0.1)
    status = manager.status("q")
    assert isinstance(status.last_error, PermissionDenied) and not status.enabled
    assert status.last_error.entity == me


BAD = {
    'world.within("1", 0, 1)': "bad argument #1 to 'world.within' (x must be a finite number, "
                               "got string)",
    "world.nearest(0, 0/0, 1)": "bad argument #2 to 'world.nearest' (y must be a finite number, "
                                "got NaN)",
    "world.within(0, 0, math.huge)": "bad argument #3 to 'world.within' (radius must be a finite"
                                     " number, got inf)",
    "world.nearest(0, 0, -1)": "bad argument #3 to 'world.nearest' (radius must be >= 0)",
    "world.within(0, 0)": "bad argument #3 to 'world.within' (radius must be a finite number, "
                          "got nil)",
    "world.within(0, 0, 1, {}, {limit = 0})": "world.within: limit must be an integer from 1 to "
                                              "1024",
    "world.within(0, 0, 1, {}, {limit = 1025})": "world.within: limit must be an integer from 1 "
                                                 "to 1024",
    "world.within(0, 0, 1, {}, {limit = 1.5})": "world.within: limit must be an integer from 1 "
                                                "to 1024",
    "world.nearest(0, 0, 1, {}, {limit = 1})": "world.nearest: unknown option 'limit'",
    "world.within(0, 0, 1, 7)": "bad argument #4 to 'world.within' (component name expected, "
                                "got number)",
    'world.nearest(0, 0, 1, "Nope")': "world.nearest: unknown component 'Nope' (known: Position, "
                                      "Velocity, Health, Label); a component scripts use must "
                                      "be given to ScriptSystem(components=[...])",
}


@pytest.mark.parametrize("call", BAD, ids=list(BAD))
def test_bad_arguments_raise_errors_the_script_can_catch(engine: ScriptEngine, world: str,
                                                         call: str) -> None:
    manager, _, _ = system_script(engine, f"""
        function on_update(self)
          local ok, err = pcall(function() return {call} end)
          found = {{ok, err}}
        end""", spatial=SPATIAL)
    esper.process(0.1)
    ok, message = results(manager)
    assert ok is False
    assert message.endswith(BAD[call]), message
    assert manager.status("q").enabled


def test_without_an_index_the_error_says_how_to_enable_it(engine: ScriptEngine,
                                                           world: str) -> None:
    manager, _, _ = system_script(engine, """
        function on_update(self)
          local ok, err = pcall(world.nearest, 0, 0, 1)
          found = err
        end""")
    esper.process(0.1)
    assert 'spatial=("Position", "x", "y")' in results(manager)
    assert manager.status("q").enabled


@pytest.mark.parametrize("spec", [
    ("Position", "x"), ["Position", "x", "y"], ("Nope", "x", "y"), ("Label", "text", "text"),
    ("Position", "x", "z"), ("Position", "x", "y", 0.0), ("Position", "x", "y", math.inf),
    ("Position", "x", "y", "big"), ("Position", "x", "y", True),
])
def test_a_bad_spatial_configuration_is_refused(engine: ScriptEngine, world: str,
                                                spec: Any) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    with pytest.raises((TypeError, ValueError)):
        ScriptSystem(manager, components=COMPONENTS, spatial=spec)


def test_positions_of_another_kind_are_left_out(engine: ScriptEngine, world: str) -> None:
    good = esper.create_entity(Position(1.0, 1.0))
    esper.create_entity(Position("far", 0.0))   # type: ignore[arg-type]   # a game bug
    esper.create_entity(Position(math.nan, 0.0))
    manager, _, _ = system_script(engine, """
        function on_update(self) found = world.within(0, 0, 1e9) end""", READ_ANY,
        spatial=SPATIAL)
    esper.process(0.1)
    assert results(manager) == [good]
    assert manager.status("q").last_error is None


@pytest.mark.parametrize("cell", [None, 0.7, 25.0])
def test_lookups_agree_with_a_scan_on_a_larger_world(roomy_engine: ScriptEngine, world: str,
                                                     cell: float | None) -> None:
    engine = roomy_engine
    rng = random.Random(15)
    for _ in range(1500):
        if rng.random() < 0.7:   # clusters and empty space between them
            cx, cy = rng.choice([(100.0, 100.0), (700.0, 300.0), (400.0, 900.0)])
            create(cx + rng.gauss(0, 20), cy + rng.gauss(0, 20), [])
        else:
            create(round(rng.uniform(0, 1000)), round(rng.uniform(0, 1000)),
                   [Velocity] if rng.random() < 0.5 else [])
    points = [(rng.uniform(-200, 1200), rng.uniform(-200, 1200), rng.choice([5, 40, 300, 2000]))
              for _ in range(150)]
    lookups = [(x, y, radius, 5) for x, y, radius in points]
    manager, _, _ = system_script(engine, searcher(lookups, ["Velocity"], []),
                                  spatial=(*SPATIAL, cell) if cell else SPATIAL)
    esper.process(0.1)
    assert manager.status("q").last_error is None
    assert results(manager) == expected(lookups, ["Velocity"], [])
    unload_all(manager)
    manager, _, _ = system_script(engine, searcher(lookups, [], []), spatial=SPATIAL)
    esper.process(0.1)
    assert manager.status("q").last_error is None
    assert results(manager) == expected(lookups, [], [])


def test_nearest_breaks_ties_by_the_lower_id_across_cells(engine: ScriptEngine,
                                                         world: str) -> None:
    ring = [(3.0, 0.0), (-3.0, 0.0), (0.0, 3.0), (0.0, -3.0)]
    for offset in range(4):   # every order of creation
        for x, y in ring[offset:] + ring[:offset]:
            create(x + 10 * offset, y, [])
    searches = "".join(f"found[#found + 1] = world.nearest({10 * k}, 0, 5)\n"
                       for k in range(4))
    manager, _, _ = system_script(engine, f"function on_update(self) found = {{}} {searches} end",
                                  spatial=(*SPATIAL, 1.0))
    esper.process(0.1)
    assert results(manager) == [1, 5, 9, 13]


class _Killer(esper.Processor):
    """Runs before the scripts and destroys one entity (esper deletes it at the next process)."""

    def __init__(self, doomed: int) -> None:
        self.doomed = doomed

    def process(self, dt: float) -> None:
        if esper.entity_exists(self.doomed):
            esper.delete_entity(self.doomed)


def test_entities_destroyed_earlier_in_the_tick_and_resources_are_not_found(
    engine: ScriptEngine, world: str,
) -> None:
    doomed = esper.create_entity(Position(0.0, 0.0), Velocity())
    kept = esper.create_entity(Position(1.0, 0.0), Velocity())
    manager, _, _ = system_script(engine, """
        function on_update(self)
          found = {world.nearest(0, 0, 5), #world.within(0, 0, 5)}
          for e, p, v in world.query("Position", "Velocity") do found[#found + 1] = e end
        end""", spatial=SPATIAL)
    esper.process(0.1)
    assert results(manager) == [doomed, 2, doomed, kept]
    # the game gives the resource entity components scripts know: they still do not see it
    [(resource, _)] = esper.get_component(Console)
    esper.add_component(resource, Position(0.0, 0.0))
    esper.add_component(resource, Velocity())
    esper.add_processor(_Killer(doomed), priority=10)
    esper.process(0.1)
    assert results(manager) == [kept, 1, kept]


def test_moves_within_the_grid_re_bucket_only_the_movers(
    roomy_engine: ScriptEngine, world: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    build, move = grid_module.build, grid_module.move
    monkeypatch.setattr(grid_module, "build",
                        lambda *args: calls.append("build") or build(*args))
    monkeypatch.setattr(grid_module, "move",
                        lambda *args: calls.append("move") or move(*args))
    rng = random.Random(3)
    movers = [create(rng.uniform(0, 300), rng.uniform(0, 300), []) for _ in range(500)]
    points = [(rng.uniform(-20, 320), rng.uniform(-20, 320), rng.choice([3, 30, 100]), 4)
              for _ in range(40)]
    manager, _, _ = system_script(roomy_engine, searcher(points, [], []), spatial=SPATIAL)
    for tick in range(6):
        for entity in movers:
            position = esper.component_for_entity(entity, Position)
            step = 40.0 if rng.random() < 0.05 else 0.5   # a few cross several cells
            position.x = min(300.0, max(0.0, position.x + rng.uniform(-step, step)))
            position.y = min(300.0, max(0.0, position.y + rng.uniform(-step, step)))
        wanted = expected(points, [], [])
        esper.process(0.1)
        assert manager.status("q").last_error is None
        assert results(manager) == wanted, tick
    assert calls[0] == "build" and set(calls[1:]) == {"move"} and len(calls) == 6
