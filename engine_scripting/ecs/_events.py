"""Event routing for the ScriptSystem: which script receives which queued event.

Provides ``route`` and ``payload_sizes``. Uses ``components.ScriptEvent``.

Delivering an event converts its payload into every receiving script's Lua state, before the
receiver's tick runs and outside its memory limit, and the script copies it for each receiving
instance. So each receiver gets events only while all those copies fit in its allowance (what
the ScriptSystem grants it: half its memory limit, less what it uses already), and a sender's
events reach receivers only while their conversions fit in its fan-out budget (its own memory
limit per tick). Events past that are dropped for that receiver and counted, so a flood costs
its receivers their surplus events, never their memory, and the host a bounded amount of work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from engine_scripting.ecs._components import ScriptEvent

# Estimated Lua memory: a string's header, a table's header and one hash entry, a scalar slot
_STRING_BYTES = 40
_TABLE_BYTES = 64
_ENTRY_BYTES = 40
_EVENT_BYTES = 200   # the event's own tables and its name in the receiving state
_TARGET_BYTES = 32   # one (target, event number) pair
# on_event calls one receiving script gets per tick at most (their time is the receiver's)
MAX_DELIVERIES = 8192


def payload_sizes(payload: object) -> tuple[int, int]:
    """Upper estimates of what ``payload`` takes in a Lua state: its strings, and its tables
    (what each further copy made in Lua costs: copies share the strings)."""
    strings = tables = 0
    pending: list[object] = [payload]
    while pending:
        value = pending.pop()
        if isinstance(value, str):   # UTF-8 takes up to 4 bytes a character
            strings += _STRING_BYTES + (len(value) if value.isascii() else 4 * len(value))
        elif isinstance(value, bytes):
            strings += _STRING_BYTES + len(value)
        elif isinstance(value, dict):
            tables += _TABLE_BYTES + _ENTRY_BYTES * len(value)
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list | tuple):
            tables += _TABLE_BYTES + _ENTRY_BYTES * len(value)
            pending.extend(value)
    return strings, tables


Routed = dict[str, tuple[list[object], list[int]]]
# The target that stands for every instance of the receiving script (a broadcast)
EVERY_INSTANCE = 0


def route(events: Iterable[ScriptEvent], links: dict[str, list[int]],
          allowance: Callable[[str], int],
          fan_out: Callable[[str], int]) -> tuple[Routed, dict[str, int]]:
    """Per receiving script: the events its instances receive (each once, as ``[name,
    payload]``) and (target entity, event number) pairs, numbered from 1 as Lua sees them, the
    target ``EVERY_INSTANCE`` for a broadcast; and per script, how many events it missed.

    A script receives an event only while every copy its instances get fits in what is left of
    ``allowance(script)`` bytes, and while the sender's copies to all receiving scripts fit in
    ``fan_out(sender)`` bytes for the tick (each receiving script converts its own), and while
    its instances' deliveries stay within MAX_DELIVERIES for the tick."""
    script_of = {entity: name for name, entities in links.items() for entity in entities}
    routed: Routed = {}
    left: dict[str, int] = {}
    sent: dict[str, int] = {}
    dropped: dict[str, int] = {}
    calls_left: dict[str, int] = {}
    for event in events:
        strings, tables = event.sizes or payload_sizes(event.payload)
        size = _EVENT_BYTES + len(event.name) + strings + tables
        if event.target is None:
            receivers = [(name, EVERY_INSTANCE, len(entities)) for name, entities in links.items()]
        else:
            name = script_of.get(event.target)
            receivers = [] if name is None else [(name, event.target, 1)]
        source = event.source_script
        for name, target, copies in receivers:
            room = left.get(name)
            if room is None:
                room = allowance(name)
            spent = sent.get(source)
            if spent is None:
                spent = fan_out(source)
            cost = size + (tables + _TABLE_BYTES) * copies + _TARGET_BYTES
            calls = calls_left.get(name, MAX_DELIVERIES)
            if cost > room or size > spent or copies > calls:
                left[name] = room
                dropped[name] = dropped.get(name, 0) + 1
                continue
            left[name], sent[source] = room - cost, spent - size
            calls_left[name] = calls - copies
            script_events, pairs = routed.setdefault(name, ([], []))
            script_events.append([event.name, event.payload])
            pairs.extend((target, len(script_events)))
    return routed, dropped
