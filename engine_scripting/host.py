"""WorldBindings: the Python functions behind one script's ``world`` API in one ScriptSystem.

world.lua has already checked argument types, names, value kinds, caps, permissions and scope
before any of these run. They read and write the current esper world directly (no copies
outlive a call), re-check value types as a second line of defence, and never raise into Lua:
an unexpected exception is logged, recorded, and reported to Lua as status -2.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from operator import attrgetter
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import esper
import structlog

from engine_scripting.components import Script, ScriptEvent
from engine_scripting.convert import to_python
from engine_scripting.schema import ComponentSchema, FieldKind, lua_column, lua_value

if TYPE_CHECKING:
    from engine_scripting.system import ScriptSystem

_log = structlog.get_logger(__name__)

DONE, MISSING, UNKNOWN_ENTITY, HOST_FAILURE = 1, 0, -1, -2


def _checked(kind: FieldKind, value: object) -> object:
    if kind == "float":
        if type(value) is not float or not math.isfinite(value):
            raise TypeError(f"expected a finite float, got {value!r}")
        return value
    if kind == "int":
        if type(value) is not int:
            raise TypeError(f"expected an int, got {value!r}")
        return value
    if kind == "bool":
        if type(value) is not bool:
            raise TypeError(f"expected a bool, got {value!r}")
        return value
    if not isinstance(value, bytes):
        raise TypeError(f"expected text, got {value!r}")
    return value.decode("utf-8")


def _decoded(value: object) -> object:
    return value.decode("utf-8") if isinstance(value, bytes) else value


_WRITTEN_TYPES: MappingProxyType[FieldKind, type] = MappingProxyType(
    {"float": float, "int": int, "bool": bool, "str": bytes}
)


def _check_column(kind: FieldKind, column: tuple[object, ...]) -> None:
    """Second line of defence: world.lua validated these values; fail on anything else."""
    if not set(map(type, column)) <= {_WRITTEN_TYPES[kind]}:
        raise TypeError(f"write-back of a {kind} field holds another type")
    if kind == "float" and not all(map(math.isfinite, column)):  # type: ignore[arg-type]
        raise TypeError("write-back of a float field holds NaN or inf")


class WorldBindings:
    """The host functions world.lua calls for one script (its name fixes who is asking)."""

    def __init__(self, system: ScriptSystem, script: str,
                 schemas: tuple[ComponentSchema, ...]) -> None:
        self._system = system
        self._script = script
        self._schemas = schemas
        self.spawned_this_tick = 0
        # the script's instances during the current batch, in the order of world.lua's `order`
        self.batch_entities: list[int] = []
        self._lookups: dict[int, Callable[[int], object]] = {}

    def functions(self) -> tuple[Callable[..., Any], ...]:
        """The host functions, in world.lua's ``attach`` order."""
        return (self.get, self.set, self.has, self.spawn, self.destroy, self.emit, self.print,
                self.fetch)

    def start_batch(self, entities: list[int]) -> None:
        """Name the script's instances for the next batch, in world.lua's order."""
        self.batch_entities = entities
        self._lookups.clear()

    def _lookup(self, schema: ComponentSchema) -> Callable[[int], object]:
        """entity -> component (or None) for this batch: a dict over esper's cached query when
        the instances are a good share of the component's holders, else esper.try_component."""
        found = self._lookups.get(schema.index)
        if found is None:
            holders: list[tuple[int, object]] = esper.get_component(schema.component_type)
            if len(holders) <= 8 * len(self.batch_entities) + 64:
                found = dict(holders).get
            else:
                component_type = schema.component_type
                found = lambda entity: esper.try_component(entity, component_type)  # noqa: E731
            self._lookups[schema.index] = found
        return found

    def fetch(self, index: int, total: int, first: int, count: int) -> object:
        """Component ``index`` of instances ``first .. first + count - 1`` of the batch, in
        columns: ``count`` presence flags, then ``count`` values per field (nil when absent)."""
        try:
            entities = self.batch_entities
            if total != len(entities):
                return MISSING  # the lists disagree: world.lua falls back to one call per use
            schema = self._schemas[index - 1]
            components = list(map(self._lookup(schema), entities[first - 1:first - 1 + count]))
            flat: list[object] = [DONE]
            if None not in components:
                flat.extend([True] * len(components))
                for name, kind in zip(schema.fields, schema.kinds, strict=True):
                    flat.extend(lua_column(kind, list(map(attrgetter(name), components))))
            else:
                flat.extend(component is not None for component in components)
                for name, kind in zip(schema.fields, schema.kinds, strict=True):
                    for component in components:
                        value = None if component is None else getattr(component, name)
                        flat.append(lua_value(kind, value))
            return tuple(flat)
        except Exception as error:
            return self._failed("fetch", None, error)

    def write_back(self, index: int, fields: int, flat: tuple[object, ...]) -> int:
        """Write buffered changes back. ``flat`` holds the entity count n, n entity ids, then
        one column of n values per field: what world.lua's ``pending_writes`` returned.
        """
        try:
            schema = self._schemas[index - 1]
            names, kinds = schema.fields, schema.kinds
            count = flat[0]
            if (fields != len(names) or type(count) is not int
                    or len(flat) != 1 + count * (fields + 1)):
                raise ValueError("malformed write-back from world.lua")
            entities = flat[1:1 + count]
            columns = [flat[1 + count * (f + 1):1 + count * (f + 2)] for f in range(fields)]
            for kind, column in zip(kinds, columns, strict=True):
                _check_column(kind, column)
            lookup = self._lookup(schema)
            status = DONE
            components = [lookup(entity) for entity in entities]  # type: ignore[arg-type]
            for name, kind, column in zip(names, kinds, columns, strict=True):
                values = [_decoded(value) for value in column] if kind == "str" else column
                for entity, component, value in zip(entities, components, values, strict=True):
                    if component is None:
                        continue  # removed during the batch by the host: nothing to write to
                    try:
                        setattr(component, name, value)
                    except Exception as error:  # one entity's failure must not drop the others'
                        status = self._failed("set", entity, error)  # type: ignore[arg-type]
            return status
        except Exception as error:
            return self._failed("flush", None, error)

    def get(self, entity: int, index: int) -> object:
        try:
            schema = self._schemas[index - 1]
            component = esper.try_component(entity, schema.component_type)
            if component is None:
                return MISSING if self._system.is_script_entity(entity) else UNKNOWN_ENTITY
            return (DONE, *schema.values(component))
        except Exception as error:  # must not unwind through Lua
            return self._failed("get", entity, error)

    def set(self, entity: int, index: int, *values: object) -> int:
        try:
            schema = self._schemas[index - 1]
            component = esper.try_component(entity, schema.component_type)
            if component is None:
                return MISSING if self._system.is_script_entity(entity) else UNKNOWN_ENTITY
            changes = [(field, _checked(kind, value))
                       for field, kind, value in zip(schema.fields, schema.kinds, values,
                                                     strict=False)
                       if value is not None]
            for field, value in changes:
                setattr(component, field, value)
            return DONE
        except Exception as error:
            return self._failed("set", entity, error)

    def has(self, entity: int, index: int) -> int:
        try:
            if not self._system.is_script_entity(entity):
                return UNKNOWN_ENTITY
            schema = self._schemas[index - 1]
            return DONE if esper.has_component(entity, schema.component_type) else MISSING
        except Exception as error:
            return self._failed("has", entity, error)

    def spawn(self, source: int | None, parts: Any, script: bytes | None) -> object:
        try:
            system = self._system
            if self.spawned_this_tick >= system.max_spawns_per_tick:
                limit = system.max_spawns_per_tick
                return None, f"spawn limit of {limit} per tick reached".encode()
            name = None if script is None else script.decode("utf-8", "replace")
            if name is not None:
                problem = system.spawn_check(self._script, name)
                if problem is not None:
                    return None, problem.encode()
            components: list[object] = []
            for schema in self._schemas:
                values = parts[schema.index]
                if values is None:
                    continue
                kwargs = {}
                for position, (field, kind) in enumerate(zip(schema.fields, schema.kinds,
                                                              strict=True), start=1):
                    value = values[position]
                    if value is not None:
                        kwargs[field] = _checked(kind, value)
                try:
                    components.append(schema.component_type(**kwargs))
                except Exception as error:
                    problem = f"could not create {schema.name}: {error}"
                    return None, problem.encode("utf-8", "replace")
            if name is not None:
                components.append(Script(name))
            self.spawned_this_tick += 1
            return esper.create_entity(*components)
        except Exception as error:
            self._failed("spawn", source, error)
            return None, b"failed in the host (the failure is logged)"

    def destroy(self, entity: int) -> int:
        try:
            if not self._system.is_script_entity(entity):
                return UNKNOWN_ENTITY
            esper.delete_entity(entity)
            return DONE
        except Exception as error:
            return self._failed("destroy", entity, error)

    def emit(self, source: int | None, name: bytes, payload: Any, target: int | None) -> int:
        try:
            if target is not None and not self._system.is_script_entity(target):
                return UNKNOWN_ENTITY
            event = ScriptEvent(name=name.decode("utf-8", "replace"), payload=to_python(payload),
                                source_entity=source, source_script=self._script, target=target)
            return DONE if self._system.queue_event(event) else MISSING
        except Exception as error:
            return self._failed("emit", source, error)

    def print(self, entity: int | None, line: bytes, dropped: bool) -> None:
        try:
            text = line.decode("utf-8", "replace")
            self._system.console_write(self._script, entity, text,
                                       "warning" if dropped else "info")
        except Exception as error:
            self._failed("print", entity, error)

    def _failed(self, operation: str, entity: int | None, error: Exception) -> int:
        _log.error("script.host_failure", script=self._script, entity=entity,
                   operation=operation, error_class=type(error).__name__, message=str(error),
                   exc_info=error)
        self._system.host_failed(self._script, entity, operation, error)
        return HOST_FAILURE
