"""Event routing for the ScriptSystem: which script receives which queued event.

Provides ``group_links`` (entities by script, and scripts by entity), ``deliver`` and ``route``,
the receivers' and senders' budgets (``budgets``) and ``payload_sizes``. Uses
``components.ScriptEvent`` and ``components.Script``, and reads the manager's records.

Delivering an event converts its payload into every receiving script's Lua state, before the
receiver's tick runs and outside its memory limit, and the script copies it for each receiving
instance. So each receiver gets events only while all those copies fit in its allowance (what
the ScriptSystem grants it: half its memory limit, less what it uses already), and a sender's
events reach receivers only while their conversions fit in its fan-out budget (its own memory
limit per tick). Events past that are dropped for that receiver and counted, so a flood costs
its receivers their surplus events, never their memory, and the host a bounded amount of work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from engine_scripting.ecs._components import ConsoleLevel, Script, ScriptEvent
from engine_scripting.ecs._params import NO_PARAMS
from engine_scripting.manager import ScriptManager

# Estimated Lua memory: a string's header, a table's header and one hash entry, a scalar slot
_STRING_BYTES = 40
_TABLE_BYTES = 64
_ENTRY_BYTES = 40
_EVENT_BYTES = 200   # the event's own tables and its name in the receiving state
_TARGET_BYTES = 32   # one (target, event number) pair
# on_event calls one receiving script gets per tick at most (their time is the receiver's)
MAX_DELIVERIES = 8192
# Estimated table bytes the receiver's instances may copy per second of its time budget: its
# state copies about 100-190 MB/s of them (measured), so the copies take at most about a
# quarter of its budget
COPY_BYTES_PER_S = 25_000_000


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


def group_links(source: Iterable[tuple[int, Script]],
                ) -> tuple[dict[str, list[int]], dict[int, tuple[str, ...]],
                           dict[int, Mapping[str, object]]]:
    """The entities of each script name, ascending when ``source`` is (esper's Script query),
    the script names of each entity (an entity may run several scripts), and the params of
    each entity whose component has some."""
    script_of: dict[int, tuple[str, ...]] = {}
    params_of: dict[int, Mapping[str, object]] = {}
    groups: dict[tuple[str, ...], list[int]] = {}   # by the component's names: one lookup each
    for entity, link in source:
        names = script_of[entity] = link.names
        if link.params is not NO_PARAMS:
            params_of[entity] = link.params
        group = groups.get(names)
        if group is None:
            groups[names] = [entity]
        else:
            group.append(entity)
    links: dict[str, list[int]] = {}
    for names, entities in groups.items():
        for name in names:
            merged = links.get(name)
            if merged is None:
                links[name] = entities if len(names) == 1 else list(entities)
            else:   # several components name this script: merge, ascending
                merged.extend(entities)
                merged.sort()
    return links, script_of, params_of


def deliver(events: list[ScriptEvent], links: dict[str, list[int]],
            script_of: dict[int, tuple[str, ...]], manager: ScriptManager,
            console_write: Callable[[str, None, str, ConsoleLevel], None]) -> Routed:
    """Per script: the events its instances receive this tick (``route``, within the budgets
    of ``budgets``); a script that missed some hears of it on the console."""
    if not events:
        return {}
    routed, dropped = route(events, links, script_of, *budgets(manager))
    for name, count in dropped.items():
        console_write(name, None, f"{count} events not delivered: copying them for every "
                      "receiving instance would take more than the script's share of its memory "
                      "or time", "warning")
    return routed


def budgets(manager: ScriptManager) -> tuple[Callable[[str], int],
                                             Callable[[str | None], int],
                                             Callable[[str], int]]:
    """What this tick's deliveries may add to a receiving script's state (half its memory
    limit, less what it uses already), the bytes one sender's events may convert into all
    receivers (an eighth of its memory limit; the host's: no bound), and the table bytes a
    receiver's instances may copy in its tick (``COPY_BYTES_PER_S`` of its time budget), for
    ``route``."""
    def allowance(name: str) -> int:
        record = manager.running(name)
        if record is None or record.context.closed or record.context.dead:
            return 0
        limits = record.context.limits
        if limits is None:
            return 1 << 62
        return max(0, limits.max_memory_bytes // 2 - record.context.memory_used)

    def fan_out(name: str | None) -> int:
        record = manager.running(name) if name is not None else None
        limits = record.context.limits if record is not None else None
        return limits.max_memory_bytes // 8 if limits else 1 << 62

    def copying(name: str) -> int:
        record = manager.running(name)
        limits = record.context.limits if record is not None else None
        return int(limits.max_execution_time_s * COPY_BYTES_PER_S) if limits else 1 << 62

    return allowance, fan_out, copying


def route(events: Iterable[ScriptEvent], links: dict[str, list[int]],
          script_of: dict[int, tuple[str, ...]], allowance: Callable[[str], int],
          fan_out: Callable[[str | None], int],
          copying: Callable[[str], int] | None = None) -> tuple[Routed, dict[str, int]]:
    """Per receiving script: the events its instances receive (each once, as ``[name,
    payload, sender]``, the sender None for the host's) and (target entity, event number)
    pairs, numbered from 1 as Lua sees them, the target ``EVERY_INSTANCE`` for a broadcast;
    and per script, how many events it missed. An event sent to an entity reaches each of the
    scripts it runs (``script_of``, as ``group_links`` returns it).

    A script receives an event only while every copy its instances get fits in what is left of
    ``allowance(script)`` bytes, and while the sender's copies to all receiving scripts fit in
    ``fan_out(sender)`` bytes for the tick (each receiving script converts its own), and while
    its instances' deliveries stay within MAX_DELIVERIES for the tick, and while the tables
    they copy fit in ``copying(script)`` bytes (their time is the receiver's)."""
    routed: Routed = {}
    left: dict[str, int] = {}
    sent: dict[str | None, int] = {}
    dropped: dict[str, int] = {}
    calls_left: dict[str, int] = {}
    copy_left: dict[str, int] = {}
    for event in events:
        strings, tables = event.sizes or payload_sizes(event.payload)
        size = _EVENT_BYTES + len(event.name) + strings + tables
        if event.target is None:
            receivers = [(name, EVERY_INSTANCE, len(entities)) for name, entities in links.items()]
        else:
            receivers = [(name, event.target, 1) for name in script_of.get(event.target, ())]
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
            to_copy = copy_left.get(name)
            if to_copy is None:
                to_copy = copying(name) if copying is not None else 1 << 62
            copied = (tables + _TABLE_BYTES) * copies
            if cost > room or size > spent or copies > calls or copied > to_copy:
                left[name], copy_left[name] = room, to_copy
                dropped[name] = dropped.get(name, 0) + 1
                continue
            left[name], sent[source] = room - cost, spent - size
            calls_left[name], copy_left[name] = calls - copies, to_copy - copied
            script_events, pairs = routed.setdefault(name, ([], []))
            script_events.append([event.name, event.payload, event.source_entity])
            pairs.extend((target, len(script_events)))
    return routed, dropped
