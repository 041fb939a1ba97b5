"""Event routing for the ScriptSystem: which script receives which queued event.

Provides ``route`` and ``payload_bytes``. Uses ``components.ScriptEvent``.

Delivering an event copies its payload into every receiving script's Lua state, before the
receiver's tick runs and outside its memory limit (the host converts it). So each receiver gets
events only while their estimated size fits in its allowance (what the ScriptSystem grants it:
half its memory limit, less what it uses already). Events past that are dropped for that
receiver and counted, so a flood costs its receivers their surplus events, never their memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from engine_scripting.components import ScriptEvent

# Estimated Lua memory: a string's header, a table's header and one hash entry, a scalar slot
_STRING_BYTES = 40
_TABLE_BYTES = 64
_ENTRY_BYTES = 40
_EVENT_BYTES = 200   # the event's own tables and its name in the receiving state


def payload_bytes(payload: object) -> int:
    """An upper estimate of what ``payload`` (plain data) takes once copied into a Lua state."""
    total = 0
    pending: list[object] = [payload]
    while pending:
        value = pending.pop()
        if isinstance(value, str):   # UTF-8 takes up to 4 bytes a character
            total += _STRING_BYTES + (len(value) if value.isascii() else 4 * len(value))
        elif isinstance(value, bytes):
            total += _STRING_BYTES + len(value)
        elif isinstance(value, dict):
            total += _TABLE_BYTES + _ENTRY_BYTES * len(value)
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list | tuple):
            total += _TABLE_BYTES + _ENTRY_BYTES * len(value)
            pending.extend(value)
    return total


Routed = dict[str, tuple[list[object], list[int]]]


def route(events: Iterable[ScriptEvent], script_of: dict[int, str],
          allowance: Callable[[str], int]) -> tuple[Routed, dict[str, int]]:
    """Per receiving script: the events its instances receive (each once, as ``[name,
    payload]``) and (target entity, event number) pairs, numbered from 1 as Lua sees them;
    and per script, how many events were dropped because they did not fit in
    ``allowance(script)`` bytes."""
    routed: Routed = {}
    left: dict[str, int] = {}
    dropped: dict[str, int] = {}
    for event in events:
        size = _EVENT_BYTES + len(event.name) + payload_bytes(event.payload)
        targets: Iterable[int] = script_of if event.target is None else (event.target,)
        numbered: dict[str, int] = {}
        for target in targets:
            name = script_of.get(target)
            if name is None:
                continue
            number = numbered.get(name)
            if number is None:
                room = left.get(name)
                if room is None:
                    room = allowance(name)
                if size > room:
                    left[name] = room
                    dropped[name] = dropped.get(name, 0) + 1
                    numbered[name] = 0
                    continue
                left[name] = room - size
                script_events = routed.setdefault(name, ([], []))[0]
                script_events.append([event.name, event.payload])
                number = numbered[name] = len(script_events)
            elif number == 0:
                continue
            routed[name][1].extend((target, number))
    return routed, dropped
