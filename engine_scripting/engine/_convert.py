"""Plain data across the Python/Lua boundary.

Provides ``to_lua`` (Python plain data into Lua values) and ``to_python`` (exported Lua values
into Python plain data). Uses lupa. Lua functions, threads and userdata never reach Python as
live objects: sandbox.lua's ``export`` has already replaced them with marker strings.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import lupa.lua54 as lua54

from engine_scripting.errors import ScriptArgumentError, ScriptError

MAX_DEPTH = 100
# Lua 5.4's integers
INT_MIN, INT_MAX = -(2**63), 2**63 - 1

PlainData = None | bool | int | float | str | list[Any] | dict[Any, Any]


_NUMBERS = frozenset({int, float, bool})


def _lua_value_types() -> frozenset[type]:
    """lupa's types for Lua tables and functions (values that already live in a state)."""
    runtime = lua54.LuaRuntime()
    table, function = runtime.eval("{}, function() end")
    return frozenset({type(table), type(function)})


_LUA_VALUES = _lua_value_types()


def to_lua(runtime: Any, value: object, depth: int = 0, seen: set[int] | None = None) -> object:
    """Convert plain Python data into values lupa passes to Lua without wrapping objects.

    Raises ScriptArgumentError for other types, integers outside 64 bits, cycles and nesting
    deeper than MAX_DEPTH.
    """
    kind = type(value)
    if value is None or kind is float or kind is bool or kind is bytes or kind in _LUA_VALUES:
        return value  # a Lua value must be of ``runtime``'s state (lupa refuses others)
    if kind is str:
        return value.encode("utf-8", "surrogatepass")  # type: ignore[attr-defined]
    if kind is int:
        if not INT_MIN <= value <= INT_MAX:  # type: ignore[operator]
            raise ScriptArgumentError(f"integer {value} does not fit in 64 bits")
        return value
    if isinstance(value, bool | float | bytes):
        return value
    if isinstance(value, int):
        return to_lua(runtime, int(value), depth, seen)
    if isinstance(value, str):
        return to_lua(runtime, str(value), depth, seen)
    if depth >= MAX_DEPTH:
        raise ScriptArgumentError(f"argument nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, list | tuple):
        items: list[Any] | tuple[Any, ...] = value
        if (items and set(map(type, items)) <= _NUMBERS
                and min(items) >= INT_MIN and max(items) <= INT_MAX):
            return runtime.table_from(items)  # numbers only: nothing to convert one by one
    if seen is None:
        seen = set()
    if id(value) in seen:
        raise ScriptArgumentError("argument contains a reference cycle")
    if isinstance(value, list | tuple):
        seen.add(id(value))
        converted = [to_lua(runtime, item, depth + 1, seen) for item in value]
        seen.discard(id(value))
        return runtime.table_from(converted)
    if isinstance(value, dict):
        seen.add(id(value))
        table = {_key_to_lua(key): to_lua(runtime, item, depth + 1, seen)
                 for key, item in value.items()}
        seen.discard(id(value))
        return runtime.table_from(table)
    raise ScriptArgumentError(f"cannot pass a {type(value).__name__} to a script")


def _key_to_lua(key: object) -> object:
    if isinstance(key, str):
        return key.encode("utf-8", "surrogatepass")
    if isinstance(key, bool) or (isinstance(key, int) and INT_MIN <= key <= INT_MAX):
        return key
    if isinstance(key, float) and not math.isnan(key):
        return key
    raise ScriptArgumentError(f"cannot use {key!r} as a table key")


class ResultTooLarge(ScriptError):
    """A script's result would take more host memory than its cap (see ``to_python``)."""


class ResultTooSlow(ScriptError):
    """Converting a script's result would outlast its deadline (see ``exported_to_python``)."""


_ITEM_BYTES = 16   # what one table entry counts against the cap, beside its strings
_CHECK_EVERY = 512  # table entries between two looks at the clock


class _Budget:
    """What a conversion may still spend: bytes, and time until ``deadline`` (perf_counter)."""

    __slots__ = ("countdown", "deadline", "left")

    def __init__(self, max_bytes: int | None, deadline: float | None = None) -> None:
        self.left = max_bytes if max_bytes is not None else -1
        self.deadline = deadline
        self.countdown = _CHECK_EVERY


def to_python(value: object, max_bytes: int | None = None) -> PlainData:
    """Convert a plain Lua value (a table holds no functions, cycles or metatables) into plain
    Python data.

    Tables whose keys are exactly 1..n become lists; other tables become dicts. ``max_bytes``
    caps what the copies may take (strings by their length, table entries at 16 bytes). Raises
    ResultTooLarge past it.
    """
    return _to_python(value, _Budget(max_bytes), ())


def exported_to_python(export: Any, strings: Any, max_bytes: int | None,
                       start: int = 1, deadline: float | None = None) -> list[PlainData]:
    """The values of an export.lua table (``{n = count, ...}``), or of a sequence of scalars
    (``start`` 0), as plain Python data, within one ``max_bytes`` budget for all of them, and
    before ``deadline`` (a ``time.perf_counter`` value; ResultTooSlow past it). ``strings`` is
    export.lua's list of long strings: each is copied once, and every place that holds it gets
    the same Python string."""
    budget = _Budget(max_bytes, deadline)
    shared: list[PlainData] = []
    if strings is not None:
        for index in range(1, len(strings) + 1):
            shared.append(_to_python(strings[index], budget, ()))
    if start == 0:
        converted = []
        for value in export:
            _entry(budget)
            converted.append(_to_python(value, budget, shared))
        return converted
    return [_to_python(export[index], budget, shared)
            for index in range(1, int(export[b"n"]) + 1)]


def _spend(budget: _Budget, amount: int) -> None:
    if budget.left >= 0:
        budget.left -= amount
        if budget.left < 0:
            raise ResultTooLarge("the result is too large for the host")


def _entry(budget: _Budget) -> None:
    """One table entry: its bytes, and now and then a look at the clock."""
    _spend(budget, _ITEM_BYTES)
    budget.countdown -= 1
    if budget.countdown <= 0:
        budget.countdown = _CHECK_EVERY
        if budget.deadline is not None and time.perf_counter() > budget.deadline:
            raise ResultTooSlow("converting the result took too long")


def _to_python(value: object, budget: _Budget, shared: Sequence[PlainData]) -> PlainData:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, bytes):
        _spend(budget, len(value))
        return value.decode("utf-8", "replace")
    if lua54.lua_type(value) != "table":
        return f"<{lua54.lua_type(value)}>"
    table: Any = value
    items = []
    for key, item in table.items():
        _entry(budget)
        if shared and lua54.lua_type(key) == "table":   # export.lua's {[REF] = index}
            return shared[int(item) - 1]
        if type(key) is bool:   # Python's dict would merge True with 1 and False with 0
            key = b"<true>" if key else b"<false>"
        items.append((_to_python(key, budget, shared), _to_python(item, budget, shared)))
    if items and all(type(key) is int for key, _ in items):
        by_index = sorted(items, key=lambda pair: int(pair[0]))  # type: ignore[arg-type]
        if by_index[0][0] == 1 and by_index[-1][0] == len(items):
            return [item for _, item in by_index]
    return {key if not isinstance(key, list | dict) else str(key): item for key, item in items}
