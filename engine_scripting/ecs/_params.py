"""Per-instance params: the plain data a ``Script(..., params={...})`` component gives every
instance it starts, read in Lua as the read-only ``self.params``.

The host's value is checked and deep-frozen when the component is made (``frozen_params``):
mappings become ``FrozenParams`` (read-only mappings), lists tuples, so the component stays
immutable (and can still be copied and pickled, as esper tools and ``dataclasses.astuple`` do). The
ScriptSystem hands instances.lua the params of the instances a sync starts, and only of those
(``started_params``): each instance's params cross into Lua once, when it starts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from engine_scripting.engine import INT_MAX, INT_MIN

# Caps on one component's params, all levels together
MAX_PARAMS_DEPTH = 16          # nested tables
MAX_PARAMS_ITEMS = 10_000      # values (table entries)
MAX_PARAMS_TEXT = 1 << 20      # bytes of text, keys included



class FrozenParams(Mapping[str, object]):
    """A read-only mapping of params (the values are frozen too: tuples, FrozenParams). Copies
    are the object itself; pickling rebuilds it."""

    __slots__ = ("_items",)
    _items: dict[str, object]

    def __init__(self, items: Mapping[str, object] | None = None) -> None:
        object.__setattr__(self, "_items", {} if items is None else dict(items))

    def __getitem__(self, key: str) -> object:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("params are read-only")

    def __repr__(self) -> str:
        return repr(self._items)

    def __copy__(self) -> FrozenParams:
        return self

    def __deepcopy__(self, memo: object) -> FrozenParams:
        return self

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return FrozenParams, (self._items,)


NO_PARAMS = FrozenParams()


class _Budget:
    """What the rest of one params value may still hold."""

    __slots__ = ("items", "text")

    def __init__(self) -> None:
        self.items = MAX_PARAMS_ITEMS
        self.text = MAX_PARAMS_TEXT

    def spend(self, text: str | None = None) -> None:
        self.items -= 1
        if self.items < 0:
            raise ValueError(f"params hold more than {MAX_PARAMS_ITEMS} values")
        if text is not None:
            self.text -= len(text.encode("utf-8", "surrogatepass"))
            if self.text < 0:
                raise ValueError(f"params hold more than {MAX_PARAMS_TEXT} bytes of text")


def frozen_params(params: object) -> Mapping[str, object]:
    """``params`` checked and deep-frozen: a FrozenParams of str keys to plain data (None, bool,
    int within 64 bits, finite float, str, lists or tuples and mappings of those; lists become
    tuples, mappings FrozenParams with str keys). None gives ``NO_PARAMS``.

    Raises TypeError for anything else (functions, other objects, bytes, non-str keys) and
    ValueError for NaN or infinity, integers outside 64 bits, cycles, and params past the caps
    (16 levels, 10,000 values, 1 MiB of text). The message says where: ``params['a'][2]``."""
    if params is None:
        return NO_PARAMS
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping with str keys, not {type(params).__name__}")
    frozen = _frozen(params, "params", 0, _Budget(), set())
    assert isinstance(frozen, Mapping)
    return frozen


def _frozen(value: object, where: str, depth: int, budget: _Budget, open_: set[int]) -> object:
    if value is None or isinstance(value, bool):
        budget.spend()
        return value
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise ValueError(f"{where}: integer {value} does not fit in 64 bits")
        budget.spend()
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} is not a finite number")
        budget.spend()
        return float(value)
    if isinstance(value, str):
        budget.spend(value)
        return str(value)
    if not isinstance(value, Mapping | list | tuple):
        raise TypeError(f"{where}: a value of type {type(value).__name__} is not plain data "
                        "(params hold None, bool, int, float, str, lists and mappings with str "
                        "keys)")
    if id(value) in open_:
        raise ValueError(f"{where}: params contain a reference cycle")
    if depth >= MAX_PARAMS_DEPTH:
        raise ValueError(f"{where}: params nest deeper than {MAX_PARAMS_DEPTH} levels")
    budget.spend()
    open_.add(id(value))
    if isinstance(value, Mapping):
        items: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: params keys must be str, not {key!r}")
            budget.spend(key)
            items[str(key)] = _frozen(item, f"{where}[{key[:32]!r}]", depth + 1, budget, open_)
        frozen: object = FrozenParams(items)
    else:
        frozen = tuple(_frozen(item, f"{where}[{index}]", depth + 1, budget, open_)
                       for index, item in enumerate(value))
    open_.discard(id(value))
    return frozen


def thawed(params: object) -> Any:
    """Frozen params as the plain dicts and lists the engine converts into Lua tables."""
    if isinstance(params, Mapping):
        return {key: thawed(item) for key, item in params.items()}
    if isinstance(params, tuple):
        return [thawed(item) for item in params]
    return params


def started_params(params_of: Mapping[int, Mapping[str, object]], wanted: set[int],
                   running: set[int]) -> dict[int, Any] | None:
    """The params of the instances a sync starts (in ``wanted``, not ``running``), by entity,
    as plain data; None when none of them has params (the common case costs one check)."""
    if not params_of:
        return None
    started = {entity: thawed(params) for entity, params in params_of.items()
               if entity in wanted and entity not in running}
    return started or None
