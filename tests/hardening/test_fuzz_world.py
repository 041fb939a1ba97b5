"""Fuzzing the world API from inside scripts: arbitrary arguments to world.get/set/has/spawn/
destroy/emit never crash the game, never raise anything but ScriptError on the host side, and
leave component data untouched whenever the call failed."""

from __future__ import annotations

import itertools
from dataclasses import astuple

import esper
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine_scripting import (
    Console,
    Permissions,
    Script,
    ScriptEngine,
    ScriptManager,
    ScriptSystem,
    SecurityViolation,
    WorldApi,
)
from tests.ecs.support import ALL, COMPONENTS, Health, Label, Position, Velocity
from tests.hardening.test_fuzz_boundary import lua_values

_worlds = itertools.count()


FUNCTIONS = ["get", "set", "has", "spawn", "destroy", "emit"]
arguments = st.lists(
    lua_values | st.sampled_from([
        "'Position'", "'Velocity'", "'Health'", "'Label'", "'Mana'", "'ping'", "'hit'",
        "E", "OTHER", "E + 0.5", "-E", "99999", "{x = 1}", "{x = 0/0}", "{value = 2^63}",
        "{alive = 'yes'}", "{text = ('y'):rep(5000)}", "{Position = {x = 1, y = 2}}",
        "{script = 'fuzz'}", "{Health = {value = 1.5}}", "{x = math.huge}",
    ]),
    max_size=4,
)


def _snapshot(entities: list[int]) -> list[object]:
    return [tuple(astuple(c) for c in esper.components_for_entity(e)) for e in entities]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(function=st.sampled_from(FUNCTIONS), args=arguments,
       grants=st.sampled_from(["all", "none"]))
def test_world_calls_with_arbitrary_arguments(engine: ScriptEngine, function: str,
                                              args: list[str], grants: str) -> None:
    previous = esper.current_world
    world = f"fuzz-world-{next(_worlds)}"
    esper.switch_world(world)
    manager = ScriptManager(engine, initializers=[WorldApi()])
    try:
        esper.add_processor(ScriptSystem(manager, components=COMPONENTS))
        manager.load("fuzz", f"""
            function on_update(self)
              local E, OTHER = self.entity, OTHER_ENTITY
              local ok, err = pcall(world.{function}{"".join(", " + a for a in args)})
              print(ok and "ok" or "failed", err)
            end""", permissions=ALL if grants == "all" else Permissions())
        other = esper.create_entity(Position(5.0, 6.0), Health(7, True), Label("other"))
        entity = esper.create_entity(Position(1.0, 2.0), Velocity(3.0, 4.0), Health(9, False),
                                     Label("me"), Script("fuzz"))
        record = manager.running("fuzz")
        assert record is not None
        record.context.execute(f"OTHER_ENTITY = {other}")
        before = _snapshot([other, entity])
        esper.process(0.1)  # nothing escapes but what the system records
        [(_, console)] = esper.get_component(Console)
        outcome = [m.text for m in console.messages if m.script == "fuzz"]
        status = manager.status("fuzz")
        if not outcome or outcome[0].startswith("failed") or not status.enabled:
            # a failed (or denied) call changed nothing
            assert _snapshot([other, entity]) == before
        if not status.enabled:
            assert isinstance(status.last_error, SecurityViolation)
    finally:
        for name in manager.names():
            manager.unload(name)
        esper.switch_world(previous)
        esper.delete_world(world)
