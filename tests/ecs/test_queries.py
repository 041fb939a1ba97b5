"""world.query: what it yields equals a brute-force scan of the esper world (Hypothesis, across
ticks with spawns, despawns, moves and component changes), writes during iteration, scopes,
permissions and bad arguments."""

from __future__ import annotations

import esper
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine_scripting import (
    PermissionDenied,
    Permissions,
    ResourceLimitExceeded,
    Script,
    ScriptEngine,
    ScriptManager,
    ScriptResourceLimits,
)
from tests.ecs.query_support import (
    NAMES,
    READ_ANY,
    brute_query,
    fresh_world,
    results,
    system_script,
    unload_all,
    values,
)
from tests.ecs.support import Health, Label, Position, Velocity

floats = st.floats(-1e6, 1e6, allow_nan=False)
COMPONENT = {
    "Position": st.builds(Position, floats, floats),
    "Velocity": st.builds(Velocity, floats, floats),
    "Health": st.builds(Health, st.integers(-1000, 1000), st.booleans()),
    "Label": st.builds(Label, st.text(max_size=8)),
}
entity_parts = st.lists(st.sampled_from(NAMES), unique=True).flatmap(
    lambda names: st.tuples(*(COMPONENT[name] for name in names)))
names = st.lists(st.sampled_from(NAMES), max_size=2, unique=True)


@st.composite
def queries(draw: st.DrawFn) -> tuple[list[str], list[str], list[str]]:
    listed = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3))
    return listed, draw(names), draw(names)


def lua_query(listed: list[str], with_: list[str], without: list[str]) -> str:
    quoted = ", ".join(f'"{name}"' for name in listed)
    if not with_ and not without:
        return f"world.query({quoted})"
    return (f"world.query({{{quoted}}}, {{with = {{{', '.join(map(repr, with_))}}}, "
            f"without = {{{', '.join(map(repr, without))}}}}})").replace("'", '"')


def recorder(query: str, count: int) -> str:
    """A system script that keeps every entity `query` yields, with its tables copied."""
    parts = ", ".join(f"c{i}" for i in range(count))
    copies = ", ".join(f"plain(c{i})" for i in range(count))
    return f"""
        function on_update(self)
          found = {{}}
          for e, {parts} in {query} do found[#found + 1] = {{e, {copies}}} end
        end"""


# one change to the world between ticks: (kind, which entity (an index), a component, the
# components of a new entity)
changes = st.tuples(st.sampled_from(["spawn", "despawn", "move", "add", "remove"]),
                    st.integers(0, 1000), st.sampled_from(NAMES).flatmap(COMPONENT.get),
                    entity_parts)
Change = tuple[str, int, object, tuple[object, ...]]


def apply(change: Change, entities: list[int]) -> None:
    kind, which, component, parts = change
    alive = [entity for entity in entities if esper.entity_exists(entity)]
    if kind == "spawn" or not alive:
        entities.append(esper.create_entity(*parts))
        return
    entity = alive[which % len(alive)]
    held = esper.try_component(entity, type(component))
    if kind == "despawn":
        esper.delete_entity(entity)
    elif kind == "remove":
        if held is not None:
            esper.remove_component(entity, type(component))
    elif kind == "add":
        esper.add_component(entity, component)    # a new object, also where one was
    elif held is not None:                        # move: new values in the same object
        for name, value in values(component).items():
            setattr(held, name, value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=st.lists(entity_parts, max_size=25), own=entity_parts, query=queries(),
       steps=st.lists(st.lists(changes, max_size=6), min_size=1, max_size=3))
def test_a_query_yields_what_a_scan_of_the_world_finds(
    engine: ScriptEngine, world: list[tuple[object, ...]], own: tuple[object, ...],
    query: tuple[list[str], list[str], list[str]],
    steps: list[list[Change]],
) -> None:
    listed, with_, without = query
    with fresh_world():
        entities = [esper.create_entity(*parts) for parts in world]
        manager, _, me = system_script(engine, recorder(lua_query(*query), len(listed)))
        for part in own:   # the script's own entity is yielded from the batch cache
            esper.add_component(me, part)
        for step in [[], *steps]:
            for change in step:
                apply(change, entities)
            expected = brute_query(listed, tuple(with_), tuple(without))
            esper.process(0.1)
            assert manager.status("q").last_error is None
            assert results(manager) == expected
        unload_all(manager)


MOVER = """
    function on_update(self)
      for e, p in world.query("Position") do
        p.x = p.x + 1
        world.set(e, "Position", p)
      end
      found = {}
      for e, p, v in world.query("Position", "Velocity") do found[#found + 1] = {e, p.x} end
    end"""


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=st.lists(entity_parts, max_size=25),
       steps=st.lists(st.lists(changes, max_size=6), min_size=1, max_size=4))
def test_writes_reach_the_world_and_later_queries_see_them(
    engine: ScriptEngine, world: list[tuple[object, ...]],
    steps: list[list[Change]],
) -> None:
    with fresh_world():
        entities = [esper.create_entity(*parts) for parts in world]
        manager, _, _ = system_script(engine, MOVER)
        for step in steps:
            for change in step:
                apply(change, entities)
            before = {row[0]: row[1]["x"] for row in brute_query(["Position"])}
            expected = [[entity, before[entity] + 1] for entity, *_ in
                        brute_query(["Position", "Velocity"])]
            esper.process(0.1)
            assert manager.status("q").last_error is None
            assert results(manager) == expected
            assert {row[0]: row[1]["x"] for row in brute_query(["Position"])} == {
                entity: x + 1 for entity, x in before.items()}
        unload_all(manager)


def _run(engine: ScriptEngine, source: str, *entities: tuple[object, ...],
         permissions: Permissions = READ_ANY) -> tuple[ScriptManager, list[int], object]:
    """One tick of a system script over fresh ``entities``: (manager, entities, results)."""
    made = [esper.create_entity(*parts) for parts in entities]
    manager, _, _ = system_script(engine, source, permissions)
    esper.process(0.1)
    return manager, made, results(manager)


def test_tables_are_world_gets_and_instances_use_the_batch_cache(engine: ScriptEngine,
                                                                  world: str) -> None:
    a, b = esper.create_entity(Position(1.0, 0.0)), esper.create_entity(Position(2.0, 0.0))
    manager, _, me = system_script(engine, """
        function on_update(self)
          world.set(self.entity, "Position", {x = 5})    -- buffered in the batch cache
          found = {}
          for e, p in world.query("Position") do
            found[#found + 1] = {e, p.x, p == world.get(e, "Position")}
          end
        end""")
    esper.add_component(me, Position(0.0, 0.0))
    esper.process(0.1)
    assert results(manager) == [[a, 1.0, True], [b, 2.0, True], [me, 5.0, True]]


def test_writes_during_iteration_are_seen_at_once(engine: ScriptEngine, world: str) -> None:
    _, (a, b, c), found = _run(engine, """
        function on_update(self)
          for e, h in world.query("Health") do
            found[#found + 1] = {e, h.value, world.has(e, "Health")}
            if h.value == 1 then   -- the first: write the last one, ahead of the iteration
              for other in world.query("Health", "Label") do
                world.set(other, "Health", {value = 42})
              end
            end
          end
          local h = world.get(found[3][1], "Health")
          found[#found + 1] = h.value
          for e, h2, l in world.query({"Health"}, {with = {"Label"}}) do
            found[#found + 1] = {e, h2.value}
          end
        end""", (Health(1),), (Health(2),), (Health(3), Label("x")))
    assert found == [[a, 1, True], [b, 2, True], [c, 42, True], 42, [c, 42]]
    assert esper.component_for_entity(c, Health).value == 42
    assert esper.component_for_entity(b, Health).value == 2


def test_a_write_to_a_component_no_query_loaded_goes_to_the_world_at_once(
    engine: ScriptEngine, world: str,
) -> None:
    _, (a,), found = _run(engine, """
        function on_update(self)
          for e in world.query("Position") do world.set(e, "Label", {text = "seen"}) end
          for e, l in world.query("Label") do found[#found + 1] = l.text end
        end""", (Position(0.0, 0.0), Label("old")))
    assert found == ["seen"]
    assert esper.component_for_entity(a, Label).text == "seen"


def test_destroyed_entities_are_skipped_and_spawned_ones_wait_for_a_new_query(
    engine: ScriptEngine, world: str,
) -> None:
    _, (a, b, c), found = _run(engine, """
        function on_update(self)
          local spawned
          for e, h in world.query("Health") do
            found[#found + 1] = e
            if h.value == 1 then
              world.destroy(e + 1)
              spawned = world.spawn({Health = {value = 9}})
            end
          end
          found[#found + 1] = "again"
          for e in world.query("Health") do found[#found + 1] = e end
          found[#found + 1] = spawned
        end""", (Health(1),), (Health(2),), (Health(3),))
    spawned = found[-1]
    assert found == [a, c, "again", a, c, spawned, spawned]
    esper.process(0.1)
    assert not esper.entity_exists(b)


@pytest.mark.parametrize("components", ['"Health"', '"Health", "Label"',
                                        '"Health", "Label", "Label"'])
def test_an_entity_destroyed_during_iteration_is_not_yielded(engine: ScriptEngine, world: str,
                                                             components: str) -> None:
    _, (a, _b, c), found = _run(engine, f"""
        function on_update(self)
          for e in world.query({components}) do
            found[#found + 1] = e
            if #found == 1 then world.destroy(e + 1) end
          end
        end""", *[(Health(index), Label()) for index in range(3)])
    assert found == [a, c]


def test_an_iterator_kept_past_its_tick_raises(engine: ScriptEngine, world: str) -> None:
    manager, _, _ = _run(engine, """
        local kept
        function on_update(self)
          if kept then
            local ok, err = pcall(kept)
            found = {ok, err}
          else
            kept = world.query("Position")
          end
        end""", (Position(0.0, 0.0),))
    esper.process(0.1)
    ok, message = results(manager)
    assert ok is False and "belongs to an earlier tick" in message
    assert manager.status("q").enabled


def test_read_scope_self_yields_at_most_the_own_entity(engine: ScriptEngine,
                                                        world: str) -> None:
    source = """
        function on_update(self)
          found = {}
          for e, p in world.query({"Position"}, {without = {"Label"}}) do
            found[#found + 1] = {e, p.x}
          end
        end"""
    esper.create_entity(Position(9.0, 9.0))
    grants = Permissions(read={"Position", "Label"}, read_scope="self")
    manager, _, me = system_script(engine, source, grants)
    esper.process(0.1)
    assert results(manager) == []
    esper.add_component(me, Position(4.0, 0.0))
    esper.process(0.1)
    assert results(manager) == [[me, 4.0]]
    esper.add_component(me, Label("no"))
    esper.process(0.1)
    assert results(manager) == []
    assert manager.status("q").enabled


@pytest.mark.parametrize("query", [
    'world.query("Health")', 'world.query({"Position"}, {with = {"Health"}})',
    'world.query({"Position"}, {without = {"Health"}})',
])
def test_every_named_component_needs_read(engine: ScriptEngine, world: str,
                                          query: str) -> None:
    esper.create_entity(Position(0.0, 0.0), Health())
    grants = Permissions(read={"Position"}, scope="any")
    manager, _, me = system_script(engine, f"""
        function on_update(self)
          pcall(function() for e in {query} do end end)
          world.get(self.entity, "Position")
        end""", grants)
    esper.process(0.1)
    status = manager.status("q")
    assert isinstance(status.last_error, PermissionDenied)
    assert not status.enabled
    assert status.last_error.entity == me


BAD = {
    "world.query()": "bad argument #1 to 'world.query' (component name expected, got no value)",
    "world.query(1)": "bad argument #1 to 'world.query' (component name expected, got number)",
    'world.query("Position", true)': "bad argument #2 to 'world.query' (component name "
                                     "expected, got boolean)",
    'world.query("Nope")': "world.query: unknown component 'Nope' (known: Position, Velocity, "
                           "Health, Label); a component scripts use must be given to "
                           "ScriptSystem(components=[...])",
    "world.query({})": "bad argument #1 to 'world.query' (component name expected, got no value)",
    "world.query({1})": "bad argument #1 to 'world.query' (component name expected, got number)",
    'world.query({"Position"}, 5)': "bad argument #2 to 'world.query' (table of options or nil "
                                    "expected, got number)",
    'world.query({"Position"}, {with = "Label"})': "bad argument #2 to 'world.query' (with must "
                                                  "be a table of component names, got string)",
    'world.query({"Position"}, {sort = true})': "world.query: unknown option 'sort'",
    'world.query({"Position"}, {limit = 1})': "world.query: unknown option 'limit'",
    'world.query({"Position"}, {}, 3)': "bad argument #3 to 'world.query' (nothing expected "
                                        "after the options)",
    'world.query(table.unpack((function() local t = {} for i = 1, 17 do t[i] = "Position" end '
    'return t end)()))': "world.query: at most 16 component names",
    'world.query({"Position"}, {without = {"Position", "Label", "Health", "Velocity", "Position",'
    ' "Label", "Health", "Velocity", "Position", "Label", "Health", "Velocity", "Position", '
    '"Label", "Health", "Velocity"}})': "world.query: at most 16 component names",
}


@pytest.mark.parametrize("call", BAD, ids=list(BAD))
def test_bad_arguments_raise_errors_the_script_can_catch(engine: ScriptEngine, world: str,
                                                         call: str) -> None:
    _, _, found = _run(engine, f"""
        function on_update(self)
          local ok, err = pcall(function() return {call} end)
          found = {{ok, err}}
        end""", (Position(0.0, 0.0), Label("x")))
    ok, message = found
    assert ok is False
    assert message.endswith(BAD[call]), message


def test_an_unchanged_world_sends_no_values_again(engine: ScriptEngine, world: str) -> None:
    """The host pays per changed value: after the first tick, only what changed crosses."""
    for index in range(50):
        esper.create_entity(Position(float(index), 0.0), Velocity(1.0, 0.0))
    manager, system, _ = system_script(engine, """
        function on_update(self)
          found = 0
          for e, p, v in world.query("Position", "Velocity") do found = found + p.x + v.x end
        end""")
    esper.process(0.1)
    host = system._runs["q"].bindings.query
    sent: list[tuple[object, ...]] = []
    original = host._values

    def counting(*args: object) -> tuple[object, ...] | None:
        chunk = original(*args)  # type: ignore[arg-type]
        if chunk is not None:
            sent.append(chunk)
        return chunk

    host._values = counting  # type: ignore[method-assign]
    esper.process(0.1)
    assert sent == []
    assert results(manager) == sum(range(50)) + 50
    esper.component_for_entity(7, Velocity).x = 3.0
    esper.process(0.1)
    assert len(sent) == 1 and sent[0][4] == 50 and sent[0][-1] == 0   # Velocity.x, not y
    assert results(manager) == sum(range(50)) + 52


def test_text_fields_and_has_go_through_the_store(engine: ScriptEngine, world: str) -> None:
    _, (a,), found = _run(engine, """
        function on_update(self)
          for e, l in world.query("Label") do
            world.set(e, "Label", {text = l.text .. "!"})
            found[#found + 1] = world.get(e, "Label").text
            found[#found + 1] = world.has(e, "Label")
            found[#found + 1] = world.has(e, "Health")
          end
        end""", (Label("hi"),))
    assert found == ["hi!", True, False]
    assert esper.component_for_entity(a, Label).text == "hi!"


def test_several_instances_share_the_store(engine: ScriptEngine, world: str) -> None:
    system_script(engine, """
        function on_update(self)
          for e, h in world.query("Health") do world.set(e, "Health", {value = h.value + 1}) end
        end""")
    esper.create_entity(Script("q"))
    target = esper.create_entity(Health(0))
    esper.process(0.1)
    esper.process(0.1)
    assert esper.component_for_entity(target, Health).value == 4   # 2 instances x 2 ticks


def test_a_query_too_large_for_the_memory_limit_fails_alone(engine: ScriptEngine,
                                                             world: str) -> None:
    for index in range(20000):
        esper.create_entity(Position(float(index), 0.0), Velocity())
    manager, _, _ = system_script(engine, """
        function on_update(self)
          for e, p, v in world.query("Position", "Velocity") do found = e end
        end""", limits=ScriptResourceLimits(max_memory_mb=1, max_execution_time_ms=2000))
    esper.process(0.1)
    error = manager.status("q").last_error
    assert isinstance(error, ResourceLimitExceeded) and error.limit_type == "memory"
    assert esper.component_for_entity(5, Position) == Position(4.0, 0.0)


def test_field_grants_hold_for_tables_a_query_gave(engine: ScriptEngine, world: str) -> None:
    manager, (a,), _ = _run(engine, """
        function on_update(self)
          for e, h in world.query("Health") do
            h.value = h.value + 1
            world.set(e, "Health", h)        -- allowed: only value changed
            h.alive = false
            world.set(e, "Health", h)        -- denied: alive is not granted
          end
        end""", (Health(1, True),), permissions=Permissions(
            read={"Health"}, write={"Health": {"value"}}, scope="any"))
    status = manager.status("q")
    assert isinstance(status.last_error, PermissionDenied) and not status.enabled
    # a violation drops the batch's buffered writes, as for the batch cache
    assert values(esper.component_for_entity(a, Health)) == {"value": 1, "alive": True}
