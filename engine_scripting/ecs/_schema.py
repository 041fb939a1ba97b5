"""Component schemas: which component types and fields scripts can see, and their value kinds.

Built once per ScriptSystem from the dataclass component types it is given. Fields whose
annotation is float, int, bool or str are visible to Lua; other fields are not.
"""

from __future__ import annotations

import dataclasses
import keyword
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Literal

from engine_scripting.engine import INT_MAX, INT_MIN

FieldKind = Literal["float", "int", "bool", "str"]
_KINDS: MappingProxyType[object, FieldKind] = MappingProxyType(
    {float: "float", int: "int", bool: "bool", str: "str"}
)


@dataclass(frozen=True, slots=True)
class ComponentSchema:
    """The script-visible shape of one component type.

    Attributes:
        name: the class name scripts use ("Position").
        component_type: the dataclass itself.
        index: position in the system's component list (what crosses into Lua).
        fields: visible field names, in declaration order.
        kinds: the value kind of each field.
        required: fields without a default (``world.spawn`` must give them).
    """

    name: str
    component_type: type
    index: int
    fields: tuple[str, ...]
    kinds: tuple[FieldKind, ...]
    required: frozenset[str]
    read_fields: Any  # operator.attrgetter over ``fields``
    column_writers: tuple[ColumnWriter, ...]  # one per field, see ``column_writer``

    def values(self, component: object) -> tuple[object, ...]:
        """The visible field values of ``component`` as Lua may see them (see ``lua_value``)."""
        values = self.read_fields(component)
        if len(self.fields) == 1:
            values = (values,)
        return tuple(lua_value(kind, value) for kind, value in zip(self.kinds, values,
                                                                    strict=True))


ColumnWriter = Callable[[Sequence[Any], Sequence[Any]], None]
_WRITER_SOURCE = """
def write(components, values):
    for component, value in zip(components, values, strict=True):
        if component is not None:
            component.{name} = value
"""


def column_writer(name: str) -> ColumnWriter:
    """A function that sets attribute ``name`` of each component (skipping None) to the value
    at the same position: about twice as fast as ``setattr`` in a loop.

    Only for identifiers (dataclass field names always are); it stops at the first exception.
    """
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"not an attribute name: {name!r}")
    namespace: dict[str, Any] = {}
    exec(_WRITER_SOURCE.format(name=name), namespace)  # an identifier: checked above
    writer: ColumnWriter = namespace["write"]
    return writer


def lua_value(kind: FieldKind, value: object) -> object:
    """A field value as it may cross into Lua: a float, a 64-bit int, a bool or UTF-8 bytes.

    A value of another type (a game bug, or a numpy scalar) reads as nil: no Python object
    ever reaches a script.
    """
    if kind == "float":
        if type(value) is float:
            return value
        if type(value) is int and INT_MIN <= value <= INT_MAX:
            return float(value)
        return None
    if kind == "int":
        return value if type(value) is int and INT_MIN <= value <= INT_MAX else None
    if kind == "bool":
        return value if type(value) is bool else None
    return value.encode("utf-8", "surrogatepass") if type(value) is str else None


def lua_column(kind: FieldKind, column: list[object]) -> list[object]:
    """``lua_value`` over a column, without a Python loop when every value already fits."""
    types = set(map(type, column))
    if kind == "float" and types <= {float}:
        return column
    if kind == "bool" and types <= {bool}:
        return column
    if kind == "int" and types <= {int} and column:
        numbers: list[int] = column  # type: ignore[assignment]
        if min(numbers) >= INT_MIN and max(numbers) <= INT_MAX:
            return column
    return [lua_value(kind, value) for value in column]


def build_schemas(component_types: typing.Sequence[type]) -> tuple[ComponentSchema, ...]:
    """Schemas for ``component_types``, indexed from 1 as Lua sees them.

    Raises TypeError for non-dataclass types and ValueError for two types with the same name.
    """
    schemas: list[ComponentSchema] = []
    seen: set[str] = set()
    for index, component_type in enumerate(component_types, start=1):
        if not (isinstance(component_type, type) and dataclasses.is_dataclass(component_type)):
            raise TypeError(f"components must be dataclass types, not {component_type!r}")
        name = component_type.__name__
        if name in seen:
            raise ValueError(f"two component types are named {name!r}")
        seen.add(name)
        hints = typing.get_type_hints(component_type)
        names: list[str] = []
        kinds: list[FieldKind] = []
        required: set[str] = set()
        for item in dataclasses.fields(component_type):
            kind = _KINDS.get(hints.get(item.name))
            if kind is None or not item.init:
                continue
            names.append(item.name)
            kinds.append(kind)
            if (item.default is dataclasses.MISSING
                    and item.default_factory is dataclasses.MISSING):
                required.add(item.name)
        schemas.append(ComponentSchema(
            name=name, component_type=component_type, index=index, fields=tuple(names),
            kinds=tuple(kinds), required=frozenset(required),
            read_fields=attrgetter(*names) if names else (lambda _component: ()),
            column_writers=tuple(column_writer(name) for name in names),
        ))
    return tuple(schemas)
