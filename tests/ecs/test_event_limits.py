"""Events cannot be used to hurt neighbours: floods stay within the receivers' memory, one
script cannot starve the queue, and a self-scoped script cannot address other entities."""

from __future__ import annotations

import esper

from engine_scripting import (
    EventQueue,
    PermissionDenied,
    Permissions,
    Script,
    ScriptEngine,
    ScriptManager,
    ScriptResourceLimits,
    ScriptSystem,
    WorldApi,
)
from tests.ecs.support import Position, console_texts

FLOOD = """
local s = string.rep("x", 4096)
local payload = {}
for i = 1, 1024 do payload[i] = s end
sent = 0
function on_update(self)
  for i = 1, 8 do if pcall(world.emit, "ping", payload) then sent = sent + 1 end end
end"""

LISTENER = """
count = 0
function on_event(self, name, payload) count = count + 1 end
function on_update(self) local t = {} for i = 1, 100 do t[i] = {i} end end"""


def test_a_broadcast_flood_keeps_every_receiver_within_its_memory(world: str) -> None:
    engine = ScriptEngine(ScriptResourceLimits(max_memory_mb=16, max_execution_time_ms=3000))
    manager = ScriptManager(engine, initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager, components=[Position]))
    manager.load("flooder", FLOOD, permissions=Permissions(emit={"ping"}))
    manager.load("listener", LISTENER)
    manager.load("deaf", "function on_update(self) local t = {} for i = 1, 100 do t[i] = i end end")
    esper.create_entity(Script("flooder"))
    for name in ("listener", "deaf"):
        for _ in range(3):
            esper.create_entity(Position(0.0, 0.0), Script(name))
    limit = 16 * 2**20
    highest = 0
    for _ in range(6):
        esper.process(0.016)
        for name in manager.names():
            highest = max(highest, manager.status(name).memory_used)
    for name in manager.names():
        status = manager.status(name)
        assert status.enabled and status.error_count == 0, (name, status.last_error)
    assert highest <= limit
    flooder, listener = manager.running("flooder"), manager.running("listener")
    assert flooder is not None and listener is not None
    # the flooder's share: its events' payloads fit in its own memory limit each tick
    assert 0 < flooder.context.execute("return sent") < 6 * 8  # type: ignore[operator]
    # 4 MB payloads: more than the sender's fan-out (an eighth of its limit) and than half a
    # receiver's limit: they are dropped, with a warning, and nobody fails
    assert listener.context.execute("return count") == 0
    assert any("events not delivered" in text for text in console_texts("warning"))
    manager.close()
    engine.close()


def test_a_neighbour_s_emits_succeed_while_another_script_floods(
        engine: ScriptEngine, world: str) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager))
    manager.load("flooder", "function on_update(self) for i = 1, 2000 do "
                 "pcall(world.emit, 'ping') end end", permissions=Permissions(emit={"ping"}))
    manager.load("neighbour", "ok, failed = 0, 0 function on_update(self) for i = 1, 20 do "
                 "if pcall(world.emit, 'ping') then ok = ok + 1 else failed = failed + 1 end "
                 "end end", permissions=Permissions(emit={"ping"}))
    esper.create_entity(Script("flooder"))
    esper.create_entity(Script("neighbour"))
    for _ in range(3):
        esper.process(0.016)
    neighbour = manager.running("neighbour")
    assert neighbour is not None
    assert neighbour.context.execute("return ok, failed") == (60, 0)
    [(_, queue)] = esper.get_component(EventQueue)
    assert queue.per_script == queue.maxlen // 4
    manager.close()


def test_a_self_scoped_script_cannot_address_other_entities(
        engine: ScriptEngine, world: str) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager))
    manager.load("listener", "got = 0 function on_event(self) got = got + 1 end")
    other = esper.create_entity(Script("listener"))
    manager.load("selfish", f"""
        function on_update(self)
          world.emit("ping")                      -- a broadcast names no entity: allowed
          world.emit("ping", nil, self.entity)    -- to itself: allowed
          world.emit("ping", nil, {other})
        end""", permissions=Permissions(emit={"ping"}))
    esper.create_entity(Script("selfish"))
    esper.process(0.016)
    esper.process(0.016)
    status = manager.status("selfish")
    assert isinstance(status.last_error, PermissionDenied)
    assert not status.enabled
    listener = manager.running("listener")
    assert listener is not None
    assert listener.context.execute("return got") == 1   # the broadcast, not the targeted one
    manager.close()


def test_broadcasts_cannot_spend_a_receiver_s_time(world: str) -> None:
    """Every receiving instance gets its own copy and an on_event call: a receiver's calls and
    copies per tick are bounded, and a script without on_event pays nothing."""
    engine = ScriptEngine(ScriptResourceLimits(max_memory_mb=16, max_execution_time_ms=200))
    manager = ScriptManager(engine, initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager))
    manager.load("sender", "local p = {} for i = 1, 1000 do p[i] = i end "
                 "function on_update(self) for i = 1, 256 do pcall(world.emit, 'ping', "
                 "i == 1 and p or nil) end end", permissions=Permissions(emit={"ping"}))
    manager.load("crowd", "got = 0 function on_event(self) got = got + 1 end")
    manager.load("deaf", "function on_update(self) end")
    esper.create_entity(Script("sender"))
    for _ in range(2000):
        esper.create_entity(Script("crowd"))
        esper.create_entity(Script("deaf"))
    for _ in range(6):
        esper.process(0.016)
    for name in ("crowd", "deaf"):
        status = manager.status(name)
        assert status.enabled and status.error_count == 0, (name, status.last_error)
    crowd = manager.running("crowd")
    assert crowd is not None and crowd.context.execute("return got") > 0  # type: ignore[operator]
    engine.close()
