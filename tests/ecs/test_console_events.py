"""The console resource and the event queue: bounded, per world, fair between scripts."""

from __future__ import annotations

import esper
import pytest

from engine_scripting import (
    Console,
    EventQueue,
    Permissions,
    Script,
    ScriptEngine,
    ScriptManager,
    ScriptSystem,
    WorldApi,
)
from engine_scripting.errors import MAX_MESSAGE_CHARS
from tests.conftest import ROOMY_LIMITS
from tests.ecs.conftest import Loader
from tests.ecs.support import console_texts


def test_one_console_on_a_resource_entity(system: ScriptSystem) -> None:
    esper.process(0.1)
    esper.process(0.1)
    [(entity, console)] = esper.get_component(Console)
    assert esper.has_component(entity, EventQueue)
    assert console is system.console
    assert console.messages.maxlen == 1000


def test_console_maxlen_is_configurable(engine: ScriptEngine, world: str) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager, console_maxlen=3))
    manager.load("talker", "function on_update(self) for i = 1, 5 do print(i) end end")
    esper.create_entity(Script("talker"))
    esper.process(0.1)
    assert console_texts() == ["3", "4", "5"]
    manager.unload("talker")


def test_messages_are_capped_in_length(spawn_scripted: Loader) -> None:
    spawn_scripted("long", "function on_update(self) print(('x'):rep(100000)) end")
    esper.process(0.1)
    [text] = console_texts()
    assert len(text) == 1024 + 3 and text.endswith("...")


def test_error_text_is_capped_in_errors_and_in_the_console(spawn_scripted: Loader,
                                                           manager: ScriptManager) -> None:
    spawn_scripted("shouter", "function on_update(self) error(string.rep('e', 1400000)) end",
                   limits=ROOMY_LIMITS)
    esper.process(0.1)
    kept = manager.status("shouter").last_error
    assert kept is not None and len(kept.message) < MAX_MESSAGE_CHARS + 100
    [line] = console_texts("error")
    assert len(line) == 1024 + 3 and line.endswith("...")


def test_a_flooding_script_cannot_push_out_the_others(spawn_scripted: Loader) -> None:
    spawn_scripted("flood", "function on_update(self) for i = 1, 100000 do print(i) end end")
    spawn_scripted("quiet", "function on_update(self) print('still here') end")
    for _ in range(3):
        esper.process(0.1)
    texts = console_texts()
    assert texts.count("still here") == 3
    assert texts.count("(more output this tick dropped)") == 3
    assert len(texts) == 3 * (20 + 1 + 1)


def test_drain_and_clear(spawn_scripted: Loader, system: ScriptSystem) -> None:
    spawn_scripted("talker", "function on_update(self) print('a') print('b') end")
    esper.process(0.1)
    drained = system.console.drain()
    assert [m.text for m in drained] == ["a", "b"]
    assert len(system.console.messages) == 0
    esper.process(0.1)
    system.console.clear()
    assert len(system.console.messages) == 0


def test_the_event_queue_is_bounded(engine: ScriptEngine, world: str) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    # one script's share is a quarter of the queue: 5 of 20
    esper.add_processor(ScriptSystem(manager, event_queue_maxlen=20))
    manager.load("spammer", """
        function on_update(self)
          local sent = 0
          for i = 1, 10 do
            if pcall(world.emit, "ping", {i = i}) then sent = sent + 1 end
          end
          print(sent)
        end""", permissions=Permissions(emit={"ping"}))
    esper.create_entity(Script("spammer"))
    esper.process(0.1)
    assert console_texts() == ["5"]
    [(_, queue)] = esper.get_component(EventQueue)
    assert len(queue.pending) == 5
    esper.process(0.1)
    assert console_texts() == ["5", "5"]
    manager.unload("spammer")


def test_events_wait_in_the_ecs_not_in_the_system(spawn_scripted: Loader) -> None:
    spawn_scripted("sender", """
        function on_update(self) world.emit("hit", {damage = 3}) end""")
    esper.process(0.1)
    [(_, queue)] = esper.get_component(EventQueue)
    [event] = queue.pending
    assert (event.name, event.payload, event.source_script) == ("hit", {"damage": 3}, "sender")


def test_a_flooder_cannot_push_others_out_over_many_ticks(engine: ScriptEngine,
                                                          world: str) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager, console_maxlen=100))
    manager.load("flood", "function on_update(self) for i = 1, 50 do print(i) end end")
    manager.load("quiet", """function on_update(self)
        if not self.said then self.said = true print("hello once") end end""")
    esper.create_entity(Script("flood"))
    esper.create_entity(Script("quiet"))
    for _ in range(30):
        esper.process(0.1)
    texts = console_texts()
    assert "hello once" in texts
    [(_, console)] = esper.get_component(Console)
    flood_lines = sum(1 for m in console.messages if m.script == "flood")
    assert flood_lines <= console.share + 16
    for name in manager.names():
        manager.unload(name)


def test_console_share_is_validated() -> None:
    assert Console(maxlen=8).share == 2
    with pytest.raises(ValueError):
        Console(maxlen=8, share=-1)
