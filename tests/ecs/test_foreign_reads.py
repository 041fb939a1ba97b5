"""Reads of entities a script does not run on: kept for the rest of the batch, so that many
instances reading one entity (a player) cross to the host once, and always what the world holds
as far as the script can tell: its own world.set, world.destroy and world.spawn drop what was
kept, the next batch reads again, and every read is a table of its own."""

from __future__ import annotations

import esper

from engine_scripting import Permissions, ScriptManager
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
