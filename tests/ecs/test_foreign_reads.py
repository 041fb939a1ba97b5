"""Reads of entities a script does not run on: kept for the rest of the batch, so that many
instances reading one entity (a player) cross to the host once, and always what the world holds
as far as the script can tell: its own world.set, world.destroy and world.spawn drop what was
kept, the next batch reads again, and every read is a table of its own."""

from __future__ import annotations

from dataclasses import dataclass

import esper

from engine_scripting import (
    Permissions,
    Script,
    ScriptEngine,
    ScriptManager,
    ScriptSystem,
    WorldApi,
)
from tests.conftest import ROOMY_LIMITS
from tests.ecs.conftest import Loader
from tests.ecs.support import Health, Position, console_texts

ANY = Permissions(read={"Position", "Health"}, write={"Position", "Health"}, scope="any",
                  spawn=True, destroy=True)


def test_many_instances_reading_one_entity_see_its_values_and_their_own_copies(
    spawn_scripted: Loader,
) -> None:
    player = esper.create_entity(Position(3.0, 4.0))
    source = f"""
        function on_update(self)
          local p = world.get({player}, "Position")
          local again = world.get({player}, "Position")
          print(p.x, p.y, p ~= again)
          p.x = -1   -- a copy: the next read does not see it
        end"""
    for _ in range(3):
        spawn_scripted("reader", source, Position(0.0, 0.0), permissions=ANY)
    esper.process(0.1)
    assert console_texts() == ["3.0\t4.0\ttrue"] * 3


def test_a_scripts_own_set_destroy_and_spawn_are_seen_by_its_next_read(
    spawn_scripted: Loader,
) -> None:
    other = esper.create_entity(Position(1.0, 1.0), Health(5))
    doomed = esper.create_entity(Position(2.0, 2.0))
    spawn_scripted("changer", f"""
        function on_update(self)
          print(world.get({other}, "Position").x, world.get({doomed}, "Position").x)
          world.set({other}, "Position", {{x = 9}})
          print(world.get({other}, "Position").x)
          world.destroy({doomed})   -- esper deletes it at its next process: still readable
          local ok, p = pcall(world.get, {doomed}, "Position")
          print(ok, p and p.x)
          world.spawn({{Position = {{x = 0, y = 0}}}})
          print(world.get({other}, "Position").x, world.get({other}, "Health").value)
        end""", Position(0.0, 0.0), permissions=ANY)
    esper.process(0.1)
    texts = console_texts()
    assert texts == ["1.0\t2.0", "9.0", "true\t2.0", "9.0\t5"]


def test_the_next_batch_reads_what_the_host_and_other_scripts_changed(
    spawn_scripted: Loader, manager: ScriptManager,
) -> None:
    target = esper.create_entity(Position(1.0, 0.0))
    spawn_scripted("reader", f"""
        function on_update(self) print("read", world.get({target}, "Position").x) end""",
        Position(0.0, 0.0), permissions=ANY)
    spawn_scripted("writer", f"""
        function on_update(self)
          local p = world.get({target}, "Position")
          world.set({target}, "Position", {{x = p.x + 10}})
        end""", Position(0.0, 0.0), permissions=ANY)
    esper.process(0.1)    # reader: 1, writer: 11
    esper.component_for_entity(target, Position).x = 100.0   # the host, between ticks
    esper.process(0.1)    # reader: 100, writer: 110
    esper.process(0.1)    # reader: 110
    assert console_texts() == ["read\t1.0", "read\t100.0", "read\t110.0"]
    assert esper.component_for_entity(target, Position).x == 120.0


def test_reads_of_more_entities_than_are_kept_stay_right(spawn_scripted: Loader) -> None:
    others = [esper.create_entity(Position(float(i), 0.0)) for i in range(5000)]
    spawn_scripted("many", f"""
        function on_update(self)
          local first, last, total = {others[0]}, {others[-1]}, 0
          for round = 1, 2 do
            for e = first, last do total = total + world.get(e, "Position").x end
          end
          print(total)
        end""", Position(0.0, 0.0), permissions=ANY, limits=ROOMY_LIMITS)
    esper.process(0.1)
    esper.component_for_entity(others[-1], Position).x = 0.0
    esper.process(0.1)
    expected = 2 * sum(range(5000))
    assert console_texts() == [f"{float(expected)}", f"{float(expected - 2 * 4999)}"]


@dataclass
class Shield:
    """The game's own code runs inside world.set: a broken shield kills its ship."""

    hp: int = 10

    def __setattr__(self, name: str, value: object) -> None:
        owner = getattr(self, "owner", None)
        if owner is not None and name == "hp" and isinstance(value, int) and value <= 0:
            esper.component_for_entity(owner, Health).alive = False
        object.__setattr__(self, name, value)


def test_a_change_the_games_setter_makes_to_another_entity_is_read(
    engine: ScriptEngine, world: str,
) -> None:
    # red-team finding: the ship's kept read was served stale after the shield's setter ran,
    # and passing it back under a field grant looked like a forged field: the script was
    # disabled
    manager = ScriptManager(engine, initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager, components=[Health, Shield]))
    ship = esper.create_entity(Health(100, True))
    shield = Shield(10)
    object.__setattr__(shield, "owner", ship)
    guarded = esper.create_entity(shield)
    manager.load("gunner", f"""
        function on_update(self)
          print("before", world.get({ship}, "Health").alive)
          world.set({guarded}, "Shield", {{hp = 0}})
          local health = world.get({ship}, "Health")
          print("after", health.alive)
          health.value = health.value - 1
          world.set({ship}, "Health", health)
        end""", permissions=Permissions(read={"Health", "Shield"},
                                        write={"Shield": None, "Health": {"value"}}, scope="any"))
    esper.create_entity(Script("gunner"))
    esper.process(0.1)
    assert console_texts() == ["before\ttrue", "after\tfalse"]
    assert manager.status("gunner").enabled and manager.status("gunner").error_count == 0
    assert esper.component_for_entity(ship, Health) == Health(99, False)


def test_what_is_kept_takes_no_memory_after_a_collection(spawn_scripted: Loader) -> None:
    # red-team finding: the per-component tables of kept reads outlived a collection
    others = [esper.create_entity(Position(float(i), 0.0)) for i in range(0, 3 * 4096, 3)]
    spawn_scripted("reader", f"""
        function on_update(self)
          collectgarbage()
          local before = collectgarbage("count")
          for e = {others[0]}, {others[-1]}, 3 do local p = world.get(e, "Position") end
          collectgarbage()
          print(math.floor((collectgarbage("count") - before) * 1024))
        end""", Position(0.0, 0.0), permissions=ANY, limits=ROOMY_LIMITS)
    esper.process(0.1)
    [grown] = console_texts()
    assert int(grown) < 1024, grown
