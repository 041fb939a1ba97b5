"""Permissions: each denial raises PermissionDenied, is recorded, and disables the script,
even when the script catches the error."""

from __future__ import annotations

import esper
import pytest

from engine_scripting import PermissionDenied, Permissions, Script, ScriptManager
from tests.ecs.conftest import Loader
from tests.ecs.support import ALL, Health, Position

GRANTS = Permissions(read={"Position"}, write={"Position"})

DENIALS = {
    "read an ungranted component": "world.get(E, 'Health')",
    "has on an ungranted component": "world.has(E, 'Health')",
    "write a read-only component": "world.set(E, 'Velocity', {x = 1})",
    "write an ungranted component": "world.set(E, 'Health', {value = 1})",
    "another entity under scope self": "world.get(OTHER, 'Position')",
    "spawn without the grant": "world.spawn({})",
    "destroy without the grant": "world.destroy(E)",
    "emit without the grant": "world.emit('ping')",
}


@pytest.mark.parametrize("case", DENIALS, ids=list(DENIALS))
def test_denials_disable_the_script_even_when_caught(
    spawn_scripted: Loader, manager: ScriptManager, case: str,
) -> None:
    other = esper.create_entity(Position(7.0, 7.0))
    entity = spawn_scripted("sneaky", f"""
        function on_update(self)
          local E, OTHER = self.entity, {other}
          local ok = pcall(function() {DENIALS[case]} end)
          world.set(self.entity, "Position", {{x = self.entity}})
        end""", Position(0.0, 0.0), Health(), permissions=Permissions(
            read={"Position", "Velocity"}, write={"Position"}))
    esper.process(0.1)
    status = manager.status("sneaky")
    assert isinstance(status.last_error, PermissionDenied)
    assert status.last_error.entity == entity
    assert status.enabled is False
    assert "security violation" in (status.disabled_reason or "")
    esper.component_for_entity(entity, Position).x = 0.0
    esper.process(0.1)
    assert esper.component_for_entity(entity, Position).x == 0.0  # disabled: no more updates
    assert esper.component_for_entity(other, Position) == Position(7.0, 7.0)


def test_least_privilege_by_default(spawn_scripted: Loader, manager: ScriptManager) -> None:
    entity = spawn_scripted("nothing", """
        function on_update(self) print("hi") world.get(self.entity, "Position") end""",
        Position(0.0, 0.0), permissions=Permissions())
    esper.process(0.1)
    assert isinstance(manager.status("nothing").last_error, PermissionDenied)
    assert esper.entity_exists(entity)


def test_scope_any_reaches_other_entities(spawn_scripted: Loader, manager: ScriptManager) -> None:
    other = esper.create_entity(Position(1.0, 1.0))
    spawn_scripted("reacher", f"""
        function on_update(self) world.set({other}, "Position", {{x = 5}}) end""",
        permissions=Permissions(read={"Position"}, write={"Position"}, scope="any"))
    esper.process(0.1)
    assert esper.component_for_entity(other, Position).x == 5.0
    assert manager.status("reacher").enabled


def test_spawning_a_more_privileged_script_is_denied(spawn_scripted: Loader,
                                                    manager: ScriptManager) -> None:
    manager.load("admin", "function on_update(self) end", permissions=ALL)
    spawn_scripted("escalator", """
        function on_update(self) pcall(world.spawn, {script = "admin"}) end""",
        permissions=Permissions(spawn=True))
    esper.process(0.1)
    status = manager.status("escalator")
    assert isinstance(status.last_error, PermissionDenied)
    assert not status.enabled
    assert all(link.name != "admin" for _, link in esper.get_component(Script))


def test_other_scripts_run_on_after_a_violation(spawn_scripted: Loader,
                                                manager: ScriptManager) -> None:
    spawn_scripted("bad", "function on_update(self) world.destroy(self.entity) end",
                   permissions=Permissions())
    good = spawn_scripted("good", """
        function on_update(self)
          local p = world.get(self.entity, "Position")
          world.set(self.entity, "Position", {x = p.x + 1})
        end""", Position(0.0, 0.0), permissions=GRANTS)
    for _ in range(3):
        esper.process(0.1)
    assert esper.component_for_entity(good, Position).x == 3.0
    assert not manager.status("bad").enabled
    assert manager.status("good").enabled


def test_covers_compares_every_grant() -> None:
    wide = Permissions(read={"A", "B"}, write={"A"}, scope="any", spawn=True, emit={"e"})
    assert wide.covers(Permissions(read={"A"}, write={"A"}, emit={"e"}))
    assert wide.covers(wide)
    assert not wide.covers(Permissions(write={"B"}))
    assert not wide.covers(Permissions(destroy=True))
    assert not Permissions(read={"A"}).covers(Permissions(read={"A"}, scope="any"))
    assert not Permissions().covers(Permissions(emit={"e"}))
