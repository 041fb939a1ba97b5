"""HostMessages: the host's side of script events, for one ScriptSystem.

``send`` (``system.send``) queues an event from the host; ``listen`` (``system.on_event``)
registers a host callback for scripts' events of one name. The system reports every script
event it queued (``emitted``) and calls ``flush`` after each tick and after each
``system.call``: the callbacks then hear the events of that tick or call.

The host's events take the same road as scripts' events: their payload is checked against the
caps ``world.emit`` applies (WORLD_CAPS: items, depth, text) and copied, they wait in the same
queue, where scripts cannot take the host's share (``EventQueue.host_share``), and they are
routed within the same receivers' budgets (_events.py). Their receivers get ``sender`` nil.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

from engine_scripting._log import get_logger
from engine_scripting.ecs._components import ScriptEvent
from engine_scripting.ecs._events import payload_sizes
from engine_scripting.ecs._world_api import WORLD_CAPS
from engine_scripting.engine import INT_MAX, INT_MIN
from engine_scripting.errors import ScriptArgumentError, ScriptError

_log = get_logger(__name__)

# A host callback for scripts' events: (sender entity, payload as plain Python data)
Listener = Callable[[int | None, Any], object]


class MessageHost(Protocol):
    """What HostMessages needs of the processor (the ScriptSystem)."""

    def is_script_entity(self, entity: object) -> bool:
        """Whether scripts may address ``entity`` (it exists and is not a resource)."""

    def queue_event(self, event: ScriptEvent, *, size: int = 0,
                    max_bytes: int | None = None) -> bool:
        """Queue an event for the next tick; False when the queue refuses it."""


class _Registration:
    """One ``listen`` call: removing it ends it, also part-way through a flush."""

    __slots__ = ("active", "callback")

    def __init__(self, callback: Listener) -> None:
        self.callback = callback
        self.active = True


class HostMessages:
    """The host's sent events and its listeners to scripts' events (see the module docstring)."""

    def __init__(self, host: MessageHost) -> None:
        self._host = host
        self._listeners: dict[str, list[_Registration]] = {}
        self._heard: list[ScriptEvent] = []

    def send(self, name: str, payload: object = None, target: int | None = None) -> None:
        """Queue event ``name`` from the host, delivered at the next tick: to every instance
        of every script when ``target`` is None, else to each instance (of each script) on
        entity ``target``. Their ``on_event(self, name, payload, sender)`` gets ``sender`` nil.

        ``payload`` is None (an empty table) or what ``world.emit`` takes, as plain Python
        data: a dict or list of str, int, float, bool, dict and list, with str or int keys; at
        most 1,024 items, 8 levels and 4,096 bytes of UTF-8 per string. It is copied now.

        Raises ScriptArgumentError for a name that is not a str or a payload that is not such
        data, ValueError for a target that is not an existing entity, and ScriptError when the
        queue is full (scripts cannot fill the host's share of it: ``EventQueue.host_share``).
        Nothing is queued when it raises.
        """
        if not isinstance(name, str):
            raise ScriptArgumentError(f"event name must be a str, not {type(name).__name__}")
        _check_text(name, "event name")
        data = plain_payload(payload)
        if target is not None and not self._host.is_script_entity(target):
            raise ValueError(f"target must be an existing entity or None, not {target!r}")
        sizes = payload_sizes(data)
        event = ScriptEvent(name=name, payload=data, source_entity=None, source_script=None,
                            target=target, sizes=sizes)
        if not self._host.queue_event(event, size=sum(sizes)):
            raise ScriptError(f"system.send({name[:64]!r}): the event queue is full")

    def listen(self, name: str, callback: Listener) -> Callable[[], None]:
        """Call ``callback(sender, payload)`` for every event ``name`` a script emits, after
        the tick in which it was emitted (after the ``system.call`` for an event emitted in
        one), in the order emitted. ``sender`` is the emitting instance's entity; ``payload``
        is plain Python data, a fresh copy for each call. Several callbacks may listen to one
        name (each is called in the order registered); the same callback registered twice is
        called twice.

        A callback that raises is logged (structlog ``script.listener_failed``, with the
        traceback) and the other callbacks and events go on; the exception is not raised again
        (``esper.process`` would skip the processors after this one).

        Returns a function that removes this registration (later calls do nothing). Raises
        TypeError for a name that is not a str or a callback that is not callable.
        """
        if not isinstance(name, str):
            raise TypeError(f"event name must be a str, not {type(name).__name__}")
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        registration = _Registration(callback)
        self._listeners.setdefault(name, []).append(registration)

        def remove() -> None:
            registration.active = False
            listeners = self._listeners.get(name)
            if listeners is not None and registration in listeners:
                listeners.remove(registration)
                if not listeners:
                    del self._listeners[name]

        return remove

    def emitted(self, event: ScriptEvent) -> None:
        """A script's event was queued: keep it for the listeners of its name, if any."""
        if event.name in self._listeners:
            self._heard.append(event)

    def flush(self) -> None:
        """Hand the events kept since the last flush to their listeners. A callback may send,
        listen, remove, or call into scripts (``system.call``): what that emits is heard when
        that call returns."""
        if not self._heard:
            return
        heard, self._heard = self._heard, []
        for event in heard:
            for registration in tuple(self._listeners.get(event.name, ())):
                if not registration.active:
                    continue
                try:
                    registration.callback(event.source_entity, _copied(event.payload))
                except Exception as error:  # the host's own code: logged, never in the way
                    _log.error("script.listener_failed", name=event.name,
                               script=event.source_script, entity=event.source_entity,
                               callback=getattr(registration.callback, "__qualname__", None),
                               error_class=type(error).__name__, message=str(error),
                               exc_info=error)


def plain_payload(payload: object) -> dict[Any, Any] | list[Any]:
    """A copy of a host event's payload, checked as ``world.emit`` checks a script's (see
    ``HostMessages.send``): None gives an empty dict. Raises ScriptArgumentError."""
    if payload is None:
        return {}
    if not isinstance(payload, dict | list | tuple):
        raise ScriptArgumentError(
            f"event payload must be a dict, a list or None, not {type(payload).__name__}")
    copy = _plain(payload, 1, [WORLD_CAPS["max_payload_items"]])
    assert isinstance(copy, dict | list)
    return copy


def _plain(value: object, depth: int, budget: list[int]) -> object:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise ScriptArgumentError(f"event payload integer {value} does not fit in 64 bits")
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            raise ScriptArgumentError("event payload holds NaN")
        return float(value)
    if isinstance(value, str):
        _check_text(value, "event payload string")
        return str(value)
    if not isinstance(value, dict | list | tuple):
        raise ScriptArgumentError(f"event payload cannot hold a {type(value).__name__}")
    if depth > WORLD_CAPS["max_payload_depth"]:
        raise ScriptArgumentError(
            f"event payload nested deeper than {WORLD_CAPS['max_payload_depth']} tables")
    budget[0] -= len(value)
    if budget[0] < 0:
        raise ScriptArgumentError(
            f"event payload has more than {WORLD_CAPS['max_payload_items']} items")
    if not isinstance(value, dict):
        return [_plain(item, depth + 1, budget) for item in value]
    copy: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(key, str):
            _check_text(key, "event payload key")
        elif isinstance(key, bool) or not isinstance(key, int) or not INT_MIN <= key <= INT_MAX:
            raise ScriptArgumentError(
                f"event payload keys must be strings or 64-bit integers, not {key!r}")
        copy[str(key) if isinstance(key, str) else int(key)] = _plain(item, depth + 1, budget)
    return copy


def _check_text(text: str, what: str) -> None:
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise ScriptArgumentError(f"{what} is not valid UTF-8 text") from None
    if size > WORLD_CAPS["max_text"]:
        raise ScriptArgumentError(f"{what} is longer than {WORLD_CAPS['max_text']} bytes")


def _copied(value: object) -> object:
    """A listener's own copy of a payload (plain data: dicts, lists and scalars)."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value
