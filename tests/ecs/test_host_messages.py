"""Messaging between the host and scripts: ``system.send`` (events from the host, sender nil),
``system.on_event`` (the host hears scripts' events after the tick), ``on_event``'s ``sender``,
and the queue's shares (each script's, and the host's, which scripts cannot fill)."""

from __future__ import annotations

from typing import Any

import esper
import pytest
import structlog

from engine_scripting import (
    EventQueue,
    Permissions,
    Script,
    ScriptArgumentError,
    ScriptEngine,
    ScriptError,
    ScriptEvent,
    ScriptManager,
    ScriptResourceLimits,
    ScriptSystem,
    WorldApi,
)
from tests.conftest import ROOMY_LIMITS
from tests.ecs.conftest import Loader
from tests.ecs.support import ALL, console_texts

LISTENER = """
got = {}
function on_event(self, name, payload, sender)
  got[#got + 1] = {entity = self.entity, name = name, payload = payload,
                   sender = sender == nil and "nil" or sender}
end
function heard() return got end
"""

EMITTER = """
function on_update(self)
  if self.entity == loud then world.emit("hit", {damage = 3, tags = {"a"}}) end
end
function shout(self, name, payload, target) world.emit(name, payload, target) return "sent" end
"""


def _heard(manager: ScriptManager, name: str = "listener") -> list[dict[str, Any]]:
    record = manager.running(name)
    assert record is not None
    got = record.context.call("heard")
    return list(got) if isinstance(got, list) else []


def _queue() -> EventQueue:
    [(_, queue)] = esper.get_component(EventQueue)
    return queue


# -- system.send ------------------------------------------------------------------------------
def test_a_host_broadcast_reaches_every_instance_with_no_sender(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    first = spawn_scripted("listener", LISTENER)
    second = spawn_scripted("listener", LISTENER)
    other = spawn_scripted("other", LISTENER)
    esper.process(0.016)
    payload: dict[str, Any] = {"n": 1, "list": [1, 2.5, True, "x"], "nested": {"k": {"z": 1}}}
    system.send("ping", payload)
    payload["n"] = 99                          # copied at send: later changes do not travel
    payload["list"].append("late")
    assert _heard(manager) == []               # delivered at the next tick, not before
    esper.process(0.016)
    expected = {"n": 1, "list": [1, 2.5, True, "x"], "nested": {"k": {"z": 1}}}
    assert _heard(manager) == [
        {"entity": first, "name": "ping", "payload": expected, "sender": "nil"},
        {"entity": second, "name": "ping", "payload": expected, "sender": "nil"}]
    assert [e["entity"] for e in _heard(manager, "other")] == [other]
    esper.process(0.016)
    assert len(_heard(manager)) == 2           # once


def test_a_host_event_to_an_entity_reaches_only_that_entity(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    spawn_scripted("listener", LISTENER)
    target = spawn_scripted("listener", LISTENER)
    plain = esper.create_entity()
    esper.process(0.016)
    system.send("ping", None, target)          # None: an empty table
    system.send("ping", [1, 2], plain)         # an entity without scripts: nobody hears it
    esper.process(0.016)
    assert _heard(manager) == [
        {"entity": target, "name": "ping", "payload": {}, "sender": "nil"}]


def test_sender_is_the_emitting_entity(spawn_scripted: Loader, manager: ScriptManager,
                                       system: ScriptSystem) -> None:
    listener = spawn_scripted("listener", LISTENER)
    loud = spawn_scripted("emitter", EMITTER)
    emitter = manager.running("emitter")
    assert emitter is not None
    emitter.context.execute(f"loud = {loud}")
    esper.process(0.016)
    esper.process(0.016)
    assert _heard(manager) == [{"entity": listener, "name": "hit",
                                "payload": {"damage": 3, "tags": ["a"]}, "sender": loud}]


@pytest.mark.parametrize("name", [1, None, b"ping", ["ping"]])
def test_send_refuses_a_name_that_is_not_a_str(system: ScriptSystem, name: object) -> None:
    with pytest.raises(ScriptArgumentError, match="event name"):
        system.send(name)  # type: ignore[arg-type]


@pytest.mark.parametrize(("payload", "message"), [
    ("text", "dict, a list or None"), (5, "dict, a list or None"),
    ({"f": lambda: 1}, "cannot hold a function"), ({"s": {1, 2}}, "cannot hold a set"),
    ({"o": object()}, "cannot hold a object"), ([None], "cannot hold a NoneType"),
    ({"n": float("nan")}, "NaN"), ({"big": 2**63}, "64 bits"), ({True: 1}, "keys"),
    ({1.5: 1}, "keys"), ({("a",): 1}, "keys"), ({2**64: 1}, "keys"),
    ({"s": "x" * 4097}, "longer than 4096"), ({"k" * 4097: 1}, "longer than 4096"),
    ({"s": "\ud800"}, "UTF-8"), (list(range(1025)), "more than 1024"),
    ([[[[[[[[[1]]]]]]]]], "deeper than 8"), ({"a": list(range(600)), "b": list(range(600))},
                                             "more than 1024"),
])
def test_send_refuses_a_payload_world_emit_would_refuse(
        spawn_scripted: Loader, system: ScriptSystem, payload: object, message: str) -> None:
    spawn_scripted("listener", LISTENER)
    esper.process(0.016)
    with pytest.raises(ScriptArgumentError, match=message):
        system.send("ping", payload)
    assert len(_queue().pending) == 0          # nothing half-queued


def test_send_takes_what_world_emit_takes_at_the_caps(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    spawn_scripted("listener", LISTENER)
    esper.process(0.016)
    deep: Any = [1]
    for _ in range(7):
        deep = [deep]                          # 8 tables
    system.send("deep", deep)
    system.send("wide", list(range(1024)))
    system.send("text", {"s": "é" * 2048, -5: (1, 2), 2**63 - 1: float("inf")})
    esper.process(0.016)
    names = [entry["name"] for entry in _heard(manager)]
    assert names == ["deep", "wide", "text"]
    text = _heard(manager)[2]["payload"]
    assert text["s"] == "é" * 2048 and text[-5] == [1, 2]


@pytest.mark.parametrize("target", [999_999, True, "1", 1.0, -1])
def test_send_refuses_a_target_that_is_not_an_entity(system: ScriptSystem,
                                                     target: object) -> None:
    with pytest.raises(ValueError, match="existing entity"):
        system.send("ping", {}, target)  # type: ignore[arg-type]


def test_send_refuses_the_resource_entity_and_a_deleted_one(system: ScriptSystem) -> None:
    entity = esper.create_entity()
    esper.process(0.016)
    [(resource, _)] = esper.get_component(EventQueue)
    esper.delete_entity(entity, immediate=True)
    for target in (resource, entity):
        with pytest.raises(ValueError):
            system.send("ping", {}, target)


# -- the queue's shares -----------------------------------------------------------------------
def test_flooding_scripts_cannot_starve_the_host(engine: ScriptEngine, world: str) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    system = ScriptSystem(manager, event_queue_maxlen=64)
    esper.add_processor(system)
    flood = "sent = 0 function on_update(self) for i = 1, 100 do " \
            "if pcall(world.emit, 'ping') then sent = sent + 1 end end end"
    for index in range(6):
        manager.load(f"flood{index}", flood, permissions=Permissions(emit={"ping"}))
        esper.create_entity(Script(f"flood{index}"))
    esper.process(0.016)
    queue = _queue()
    assert (queue.maxlen, queue.per_script, queue.host_share) == (64, 16, 8)
    sent = [manager.running(f"flood{i}").context.execute("return sent")  # type: ignore[union-attr]
            for i in range(6)]
    assert sent == [16, 16, 16, 8, 0, 0]       # each within its share; together within 64 - 8
    for index in range(8):
        system.send("host", {"i": index})      # the host's share is free
    with pytest.raises(ScriptError, match="queue is full"):
        system.send("host")
    assert len(queue.pending) == 64
    manager.close()


def test_the_queue_keeps_each_script_within_its_share_and_the_host_s_share_free() -> None:
    queue = EventQueue(maxlen=10, per_script=4, host_share=3)

    def event(script: str | None) -> ScriptEvent:
        return ScriptEvent("e", {}, None if script is None else 1, script, None)

    def offer(script: str | None) -> bool:
        return queue.offer(event(script), max_bytes=None if script is None else 1 << 20)

    assert [offer("a") for _ in range(5)] == [True] * 4 + [False]
    assert [offer("b") for _ in range(4)] == [True, True, True, False]   # 7 = 10 - 3 for scripts
    assert [offer(None) for _ in range(4)] == [True, True, True, False]  # the host's 3
    queue.take()
    assert [offer(None) for _ in range(9)] == [True] * 9   # the host may use any free place
    assert offer("a") is True and offer("a") is False       # then only what is left
    with pytest.raises(ValueError):
        EventQueue(maxlen=4, host_share=4)
    with pytest.raises(ValueError):
        EventQueue(host_share=-1)


# -- system.on_event --------------------------------------------------------------------------
def test_the_host_hears_scripts_events_after_the_tick(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    loud = spawn_scripted("emitter", EMITTER)
    quiet = spawn_scripted("emitter", EMITTER)
    emitter = manager.running("emitter")
    assert emitter is not None
    emitter.context.execute(f"loud = {loud}")
    first: list[tuple[object, object]] = []
    second: list[tuple[object, object]] = []
    ticks: list[int] = []
    system.on_event("hit", lambda sender, payload: first.append((sender, payload)))
    system.on_event("hit", lambda sender, payload: (second.append((sender, payload)),
                                                    ticks.append(system.tick)))
    system.on_event("other", lambda sender, payload: first.append(("other", payload)))
    esper.process(0.016)
    assert first == [(loud, {"damage": 3, "tags": ["a"]})] and second == first
    assert ticks == [1]                        # after tick 1, not at the next one
    first[0][1]["damage"] = 0                  # type: ignore[index]  # a copy per callback
    assert second[0][1] == {"damage": 3, "tags": ["a"]}
    assert system.call("emitter", quiet, "shout", "hit", {"n": 1}) == "sent"
    assert first[-1] == (quiet, {"n": 1})      # heard when system.call returned
    esper.process(0.016)
    assert len(first) == 3 and len(second) == 3


def test_a_removed_listener_hears_nothing_more(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    loud = spawn_scripted("emitter", EMITTER)
    manager.running("emitter").context.execute(f"loud = {loud}")  # type: ignore[union-attr]
    kept: list[object] = []
    dropped: list[object] = []
    removers: list[Any] = []

    def once(sender: object, payload: object) -> None:
        dropped.append(sender)
        removers[0]()                          # removing itself part-way through a flush

    def keep(sender: object, payload: object) -> None:
        kept.append(sender)

    removers.append(system.on_event("hit", once))
    remove_twin = system.on_event("hit", keep)   # the same callable, registered twice
    system.on_event("hit", keep)
    for _ in range(3):
        esper.process(0.016)
    assert dropped == [loud] and len(kept) == 6
    remove_twin()
    remove_twin()                              # a second removal does nothing
    esper.process(0.016)
    assert len(kept) == 7                      # the other registration of it still hears
    removers[0]()


def test_a_failing_listener_is_logged_and_the_others_go_on(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    loud = spawn_scripted("emitter", EMITTER)
    manager.running("emitter").context.execute(f"loud = {loud}")  # type: ignore[union-attr]
    heard: list[object] = []

    def broken(sender: object, payload: object) -> None:
        raise RuntimeError("listener bug")

    system.on_event("hit", broken)
    system.on_event("hit", lambda sender, payload: heard.append(sender))
    with structlog.testing.capture_logs() as logs:
        esper.process(0.016)                   # does not raise
        esper.process(0.016)
    failures = [log for log in logs if log["event"] == "script.listener_failed"]
    assert len(failures) == 2 and failures[0]["message"] == "listener bug"
    assert failures[0]["name"] == "hit" and failures[0]["entity"] == loud
    assert heard == [loud, loud]
    assert manager.status("emitter").error_count == 0   # the host's bug, not the script's


def test_listeners_may_send_and_call(spawn_scripted: Loader, manager: ScriptManager,
                                     system: ScriptSystem) -> None:
    listener = spawn_scripted("listener", LISTENER)
    loud = spawn_scripted("emitter", EMITTER)
    manager.running("emitter").context.execute(f"loud = {loud}")  # type: ignore[union-attr]
    answers: list[object] = []

    def relay(sender: object, payload: Any) -> None:
        system.send("relayed", {"damage": payload["damage"]}, listener)
        answers.append(system.call("emitter", loud, "shout", "ping", {}))

    system.on_event("hit", relay)
    system.on_event("ping", lambda sender, payload: answers.append(("echo", sender)))
    esper.process(0.016)
    assert answers == [("echo", loud), "sent"]   # the echo was heard when its call returned
    esper.process(0.016)
    relayed = [e for e in _heard(manager) if e["name"] == "relayed"]
    assert relayed == [{"entity": listener, "name": "relayed", "payload": {"damage": 3},
                        "sender": "nil"}]


@pytest.mark.parametrize(("name", "callback"), [(1, print), ("hit", None), ("hit", "print")])
def test_on_event_refuses_bad_arguments(system: ScriptSystem, name: object,
                                        callback: object) -> None:
    with pytest.raises(TypeError):
        system.on_event(name, callback)  # type: ignore[arg-type]


def test_a_host_event_stays_within_each_receiver_s_memory(world: str) -> None:
    engine = ScriptEngine(ScriptResourceLimits(max_memory_mb=2, max_execution_time_ms=1000))
    manager = ScriptManager(engine, initializers=[WorldApi()])
    system = ScriptSystem(manager)
    esper.add_processor(system)
    manager.load("listener", LISTENER)
    esper.create_entity(Script("listener"))
    esper.process(0.016)
    big = ["x" * 4096 for _ in range(1024)]      # 4 MiB: more than half the receiver's limit
    system.send("big", big)
    system.send("small", {"ok": True})
    esper.process(0.016)
    assert [entry["name"] for entry in _heard(manager)] == ["small"]
    assert any("1 events not delivered" in text for text in console_texts("warning"))
    assert manager.status("listener").error_count == 0
    manager.close()
    engine.close()


def test_the_host_s_events_do_not_count_against_a_script_s_share(
        spawn_scripted: Loader, manager: ScriptManager, system: ScriptSystem) -> None:
    spawn_scripted("spammer", """
        sent = 0
        function on_update(self)
          for i = 1, 300 do if pcall(world.emit, "ping") then sent = sent + 1 end end
        end
        function count() local n = sent sent = 0 return n end""", permissions=ALL,
        limits=ROOMY_LIMITS)   # 300 host calls a tick: no time limit on a loaded machine
    esper.process(0.016)
    spammer = manager.running("spammer")
    assert spammer is not None and spammer.context.call("count") == 256
    for _ in range(100):
        system.send("ping")
    esper.process(0.016)                       # the host's 100 leave the script its 256
    assert spammer.context.call("count") == 256
