"""Save and load of one script's instances: the host side of saves.lua, behind ``WorldApi``'s
state hooks (the manager's ``save_state``/``load_state`` call them; see manager/_state.py).

Saving: saves.lua runs every started instance's ``on_save`` (or takes its fields) in watched
calls under the script's limits, checks that each result is JSON data within ``SAVE_CAPS`` and
encodes it as JSON text at once (a snapshot no later on_save can change); here the text becomes
``{"<entity id>": data}``, or the first failure a typed error.
Loading: ``check_instances`` checks the host's data (JSON types, caps, entity ids, the entity
map) without touching any script; ``stage_instances`` converts it into the script's Lua state
under its memory limit and keeps it aside until every script has its own (``StagedInstances``).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from engine_scripting._log import get_logger
from engine_scripting._lua_text import error_line, printable, split_message, text
from engine_scripting.engine import ScriptContext
from engine_scripting.errors import (
    ResourceLimitExceeded,
    SaveDataError,
    ScriptError,
    ScriptRuntimeError,
    limit_type_of,
)

_log = get_logger(__name__)
Entry = Callable[..., tuple[Any, ...]]

# Caps on one instance's saved data, the same when saving (saves.lua) and loading (here): what
# one save holds, the next load takes.
SAVE_CAPS = MappingProxyType({
    "max_depth": 32,             # nested tables (the data itself is level 1)
    "max_items": 50_000,         # table entries, all levels together
    "max_text": 1 << 20,         # bytes in one string or key
    "max_bytes": 8 << 20,        # bytes of all strings and keys together
    "max_script_items": 200_000,     # table entries of all a script's instances together
    "max_script_bytes": 32 << 20,    # bytes of strings of all a script's instances together
})
# Loaded data may take at most this share of a script's memory limit in its Lua state: saving
# it again encodes it beside itself (a crafted state that fills the memory would make every
# later save of the game fail).
LOAD_SHARE = 4
# A script's save takes at most this many of its time budgets, all its calls together (each
# call is within one budget), and at least SAVE_MIN_S.
SAVE_BUDGETS, SAVE_MIN_S = 10, 1.0
MAX_SAVED_INSTANCES = 1_000_000  # instances of one script in a state
MAX_ENTITY_ID = 2**63 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")
# what a value takes in a Lua state, roughly: per table, per table entry, per string
_TABLE_BYTES, _ENTRY_BYTES, _STRING_BYTES = 56, 40, 24


def entity_id(key: object) -> int:
    """An entity id given as an int or its decimal string (JSON object keys are strings)."""
    if isinstance(key, str) and _DECIMAL.fullmatch(key):
        key = int(key)
    if isinstance(key, bool) or not isinstance(key, int):
        raise TypeError(f"an entity id is an int or its decimal string, not {key!r}")
    if not 0 <= key <= MAX_ENTITY_ID:
        raise ValueError(f"entity id {key} is outside 0..2**63-1")
    return int(key)


def dropped_reporter(script: str) -> Callable[..., None]:
    """The host function saves.lua calls when it drops loaded data of entities without an
    instance: ``count`` and up to 16 of the entities."""
    def report(count: int, *entities: int) -> None:
        _log.warning("save.data_dropped", script=script, count=count, entities=list(entities),
                     reason="no instance of the script on these entities at its next tick")

    return report


# -- saving -------------------------------------------------------------------------------------
def save_instances(save: Entry, last_saved: Entry, script: str,
                   budget_s: float) -> dict[str, Any]:
    """Every started instance's data (and data loaded but not delivered yet), keyed by the
    entity id as a decimal string. saves.lua hands it over as JSON text, in chunks, each in a
    call of its own. Raises SaveDataError for data that is not JSON data, ScriptRuntimeError for
    a failing ``on_save``, ResourceLimitExceeded for a limit hit (the whole save of a script
    takes at most SAVE_BUDGETS of its time budget ``budget_s``), each naming the script and the
    entity."""
    instances: dict[str, Any] = {}
    first = True
    deadline = time.perf_counter() + max(SAVE_BUDGETS * budget_s, SAVE_MIN_S)
    while True:
        if not first and time.perf_counter() > deadline:
            raise ResourceLimitExceeded(
                f"{script}: saving outlasted {SAVE_BUDGETS} time budgets "
                f"({SAVE_BUDGETS * budget_s * 1e3:.0f} ms) for all its instances together",
                limit_type="time", script=script, callback="on_save")
        try:
            outcome = save(first)
        except ScriptError as error:
            raise _stopped(error, script, last_saved) from None
        first = False
        if outcome[0] is not True:
            raise _failure(script, *outcome[1:5])
        try:
            chunk = json.loads(outcome[1])
        except ValueError as error:   # saves.lua writes only JSON: a bug of ours, typed
            raise ScriptError(f"{script}: the saved data could not be read back: {error}",
                              script=script) from None
        for entity, data in chunk:
            instances[str(entity)] = data
        if not outcome[2]:
            return instances


def _stopped(error: ScriptError, script: str, last_saved: Entry) -> ScriptError:
    """A save call that stopped (a limit, a dead context): named by the entity it was saving."""
    try:
        entity, callback = last_saved()
    except ScriptError:
        entity, callback = None, None
    callback = callback.decode() if isinstance(callback, bytes) else None
    if entity is None or not isinstance(error, ResourceLimitExceeded):
        return error.with_context(script=script, entity=entity, callback=callback)
    doing = "in its on_save" if callback else "checking its data"
    return type(error)(f"{error} (saving entity {entity}, {doing})", limit_type=error.limit_type,
                       script=script, entity=entity, callback=callback)


def _failure(script: str, entity: object, kind: object, message: object,
             path: object) -> ScriptError:
    """saves.lua's description of the first failure (see its ``save``) as a typed error."""
    message = text(message)
    entity = entity if isinstance(entity, int) else None
    if kind == b"data":
        where = printable(text(path))
        return SaveDataError(
            f"{script}: cannot save entity {entity}: {where} is {message}", path=where,
            script=script, entity=entity,
            callback="on_save" if where.startswith("on_save") else None)
    first_line, traceback = split_message(message)
    if kind in (b"memory", b"recursion"):
        limit = limit_type_of(kind)
        return ResourceLimitExceeded(
            f"{script}: {limit} limit exceeded in on_save of entity {entity} ({first_line})",
            limit_type=limit, script=script, entity=entity, callback="on_save",
            traceback=traceback)
    return ScriptRuntimeError(
        f"{script}: on_save of entity {entity} failed: {first_line}", script=script,
        line=error_line(first_line), traceback=traceback, entity=entity, callback="on_save")


# -- loading ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CheckedInstances:
    """One script's instance data from a state, checked: ``pairs`` ([entity, data], the entity
    already mapped, ascending), ``size`` (about what it takes in a Lua state), ``id_map``."""

    pairs: list[list[Any]]
    size: int
    id_map: dict[int, int]


def check_instances(part: object, id_map: Mapping[int, int]) -> CheckedInstances:
    """Check a script's ``{"<entity id>": data}`` from a state (JSON types within SAVE_CAPS,
    entity ids, no two loading into one entity once mapped); raises TypeError or ValueError
    whose message starts with the path of the offending value."""
    if not isinstance(part, Mapping):
        raise TypeError(f": expected a mapping of entity ids to data, not {type(part).__name__}")
    if len(part) > MAX_SAVED_INSTANCES:
        raise ValueError(f": more than {MAX_SAVED_INSTANCES} instances")
    pairs: list[list[Any]] = []
    loaded_from: dict[int, object] = {}
    size = 0
    for key, data in part.items():
        try:
            saved = entity_id(key)
        except (TypeError, ValueError) as error:
            raise type(error)(f"[{key!r}]: {error}") from None
        entity = id_map.get(saved, saved)
        if entity in loaded_from:
            raise ValueError(f"[{key!r}]: entities {loaded_from[entity]!r} and {key!r} would "
                             f"both load into entity {entity}")
        loaded_from[entity] = key
        checker = _JsonCheck()
        try:
            checker.check(data, 1)
        except (TypeError, ValueError) as error:
            where = "".join(f"[{step!r}]" for step in checker.keys)
            raise type(error)(f"[{key!r}]{where}: {error}") from None
        size += checker.size
        pairs.append([entity, data])
    pairs.sort(key=lambda pair: int(pair[0]))
    return CheckedInstances(pairs, size, dict(id_map))


class _JsonCheck:
    """Checks one instance's data: JSON types (dicts with str keys, lists, str, int within 64
    bits, finite floats, bools, None) within SAVE_CAPS, no cycle. ``keys`` holds the path of the
    value being checked, so it names the offending one after an error."""

    def __init__(self) -> None:
        self.keys: list[object] = []
        self.items = 0
        self.bytes = 0
        self.size = 0
        self.on_path: set[int] = set()

    def check(self, value: object, depth: int) -> None:
        if value is None or isinstance(value, bool):
            return
        if isinstance(value, int):
            if not -(2**63) <= value <= 2**63 - 1:
                raise ValueError(f"integer {value} does not fit in 64 bits")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"{value} is not JSON data (no NaN or infinity)")
        elif isinstance(value, str):
            self.text(value)
        elif isinstance(value, dict | list):
            self.table(value, depth)
        else:
            raise TypeError(f"a {type(value).__name__} is not JSON data")

    def text(self, value: str) -> None:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise ValueError("a string that is not valid UTF-8 (a lone surrogate)") from None
        if size > SAVE_CAPS["max_text"]:
            raise ValueError(f"a string longer than {SAVE_CAPS['max_text']} bytes")
        self.bytes += size
        if self.bytes > SAVE_CAPS["max_bytes"]:
            raise ValueError(f"more than {SAVE_CAPS['max_bytes']} bytes of strings in one "
                             "instance's data")
        self.size += size + _STRING_BYTES

    def table(self, value: dict[Any, Any] | list[Any], depth: int) -> None:
        if id(value) in self.on_path:
            raise ValueError("a reference cycle")
        if depth > SAVE_CAPS["max_depth"]:
            raise ValueError(f"a table nested deeper than {SAVE_CAPS['max_depth']} levels")
        self.on_path.add(id(value))
        self.size += _TABLE_BYTES
        entries = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in entries:
            self.keys.append(key)
            self.items += 1
            if self.items > SAVE_CAPS["max_items"]:
                raise ValueError(f"more than {SAVE_CAPS['max_items']} table entries in one "
                                 "instance's data")
            if isinstance(value, dict):
                if not isinstance(key, str):
                    raise TypeError(f"a {type(key).__name__} key (JSON keys are strings)")
                self.text(key)
            self.size += _ENTRY_BYTES
            self.check(item, depth + 1)
            self.keys.pop()
        self.on_path.discard(id(value))


@dataclass(frozen=True, slots=True)
class StagedInstances:
    """Data staged in a script's Lua state: ``commit`` puts it in place (replacing data still
    pending from an earlier load), ``discard`` drops it."""

    _commit: Entry
    _discard: Entry

    def commit(self) -> None:
        """Make the staged data pending: the script's next tick delivers it."""
        self._commit()

    def discard(self) -> None:
        """Drop the staged data (another script's failed); never raises."""
        with contextlib.suppress(ScriptError):
            self._discard()


def stage_instances(stage: Entry, commit: Entry, discard: Entry, context: ScriptContext,
                    checked: CheckedInstances) -> StagedInstances:
    """Convert checked data into the script's Lua state, aside (saves.lua's ``stage``). Raises
    ResourceLimitExceeded when it does not fit under the script's memory limit, and the
    context's errors (closed, dead, running)."""
    limits = context.limits
    if limits is not None and checked.size > limits.max_memory_bytes // LOAD_SHARE:
        raise ResourceLimitExceeded(
            f"{context.name}: its saved data (about {checked.size} bytes in Lua) is more than "
            f"1/{LOAD_SHARE} of its memory limit ({limits.max_memory_bytes} bytes): saving it "
            "again would not fit", limit_type="memory", script=context.name)
    try:
        stage(checked.pairs, checked.id_map)
    except ResourceLimitExceeded as error:
        if error.limit_type != "memory":
            raise
        raise ResourceLimitExceeded(
            f"{context.name}: its saved data does not fit in its memory limit "
            f"({limits.max_memory_bytes if limits else '?'} bytes)", limit_type="memory",
            script=context.name) from None
    return StagedInstances(commit, discard)
