"""WorldBindings: the Python functions behind one script's ``world`` API in one ScriptSystem.

The batch cache's host side (fetching columns, writing changes back) is in _batch.py, the
query store's (world.query) in _query.py, world.within/nearest's in _spatial.py.

world.lua has already checked argument types, names, value kinds, caps, permissions and scope
before any of these run. They read and write the current esper world directly (no copies
outlive a call), re-check value types as a second line of defence, and never raise into Lua:
an unexpected exception is logged, recorded, and reported to Lua as status -2.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import esper

from engine_scripting._log import get_logger
from engine_scripting.ecs._batch import DONE, HOST_FAILURE, MISSING, UNKNOWN_ENTITY, BatchColumns
from engine_scripting.ecs._components import ConsoleLevel, Script, ScriptEvent
from engine_scripting.ecs._events import payload_sizes
from engine_scripting.ecs._query import QueryHost
from engine_scripting.ecs._schema import ComponentSchema, FieldKind
from engine_scripting.ecs._spatial import SpatialBindings, SpatialIndex
from engine_scripting.ecs._templates import TemplateError, TemplateRegistry
from engine_scripting.engine import to_python

_log = get_logger(__name__)

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


# What each host function gives Lua when it cannot run (see ScriptContext.gated): values lupa
# pushes without allocating, in ``WorldBindings.functions`` order
REFUSED = (HOST_FAILURE, HOST_FAILURE, HOST_FAILURE, None, HOST_FAILURE, HOST_FAILURE, None,
           MISSING, *(HOST_FAILURE,) * 5)


class WorldHost(Protocol):
    """What the world API needs of the processor that runs it (the ScriptSystem)."""

    max_spawns_per_tick: int
    tick: int   # the number of the tick being (or last) processed
    templates: TemplateRegistry
    spatial: SpatialIndex | None   # world.within/nearest (ScriptSystem(spatial=...))

    def is_script_entity(self, entity: object) -> bool:
        """Whether scripts may address ``entity`` (it exists and is not a resource)."""

    def console_write(self, script: str, entity: int | None, text: str,
                      level: ConsoleLevel) -> None:
        """Append one line to the console of the world being processed."""

    def queue_event(self, event: ScriptEvent, *, size: int = 0,
                    max_bytes: int | None = None) -> bool:
        """Queue an event for the next tick; False when the queue refuses it."""

    def spawn_check(self, spawner: str, script: str) -> tuple[str, str] | None:
        """Why ``spawner`` may not attach ``script`` to a new entity, or None: the problem and,
        for "permission", the grant the spawner lacks (``Permissions.missing``)."""

    def host_failed(self, script: str, entity: int | None, operation: str,
                    error: Exception) -> None:
        """Record a host-side failure of a world function as the script's error."""


class WorldBindings:
    """The host functions world.lua calls for one script (its name fixes who is asking)."""

    def __init__(self, system: WorldHost, script: str,
                 schemas: tuple[ComponentSchema, ...]) -> None:
        self._system = system
        self._script = script
        self._schemas = schemas
        self.spawned_this_tick = 0   # in tick `_spawn_tick` (counted from 0 again in the next)
        self._spawn_tick = -1
        # what this script's queued events may carry per tick (its memory limit)
        self.max_event_bytes = 1 << 62
        self.batch = BatchColumns(schemas, self._failed)
        self.query = QueryHost(schemas, self.batch, self._failed)  # world.query's store
        self.batch.store = self.query
        self.spatial = SpatialBindings(system.spatial, schemas, self._failed)

    def functions(self) -> tuple[Callable[..., Any], ...]:
        """The host functions, in world.lua's ``attach`` order."""
        return (self.get, self.set, self.has, self.spawn, self.destroy, self.emit, self.print,
                self.batch.fetch, self.query.start, self.query.pull, self.spatial.component,
                self.spatial.within, self.spatial.nearest)

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

    def spawn(self, source: int | None, parts: Any, script: Any,
              template: bytes | None = None, granted: bool = False) -> object:
        """A new entity from ``parts`` (component values by schema index; world.lua checked
        them and the grants it can), with ``script``; or from ``template`` with ``parts`` as
        overrides (``granted``: world.lua found the template in the script's grants). Returns
        the entity, or None and the problem ("permission" for a denial; for a script's, the
        grant the spawner lacks and the script follow)."""
        try:
            system = self._system
            found = None
            if template is not None:
                name = template.decode("utf-8", "replace")
                found = system.templates.get(name)
                if found is None:
                    return None, f"unknown template {name[:64]!r}".encode("utf-8", "replace")
                if granted is not True:
                    return None, b"permission"
            if self._spawn_tick != system.tick:
                self._spawn_tick, self.spawned_this_tick = system.tick, 0
            if self.spawned_this_tick >= system.max_spawns_per_tick:
                limit = system.max_spawns_per_tick
                return None, f"spawn limit of {limit} per tick reached".encode()
            named = to_python(script)   # world.lua gave a name or an array of names, each once
            linked = ((named,) if isinstance(named, str)
                      else tuple(map(str, named)) if isinstance(named, list) else ())
            if linked and found is None:
                for name in linked:
                    refused = system.spawn_check(self._script, name)
                    if refused is not None:   # world.lua names the script and the grant
                        why, grant = (part.encode("utf-8", "replace") for part in refused)
                        return None, why, grant, name.encode("utf-8", "replace")
            values = self._spawn_values(parts)
            if found is not None:
                try:
                    components = found.build({schema.component_type: kwargs
                                              for schema, kwargs in values})
                except TemplateError as error:
                    return None, str(error).encode("utf-8", "replace")
            else:
                components = []
                for schema, kwargs in values:
                    try:
                        components.append(schema.component_type(**kwargs))
                    except Exception as error:
                        problem = f"could not create {schema.name}: {error}"
                        return None, problem.encode("utf-8", "replace")
                if linked:
                    components.append(Script(*linked))
            self.spawned_this_tick += 1
            return esper.create_entity(*components)
        except Exception as error:
            self._failed("spawn", source, error)
            return None, b"failed in the host (the failure is logged)"

    def _spawn_values(self, parts: Any) -> list[tuple[ComponentSchema, dict[str, object]]]:
        """The field values of each component given to a spawn, re-checked."""
        given: list[tuple[ComponentSchema, dict[str, object]]] = []
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
            given.append((schema, kwargs))
        return given

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
            data = to_python(payload)
            sizes = payload_sizes(data)
            event = ScriptEvent(name=name.decode("utf-8", "replace"), payload=data,
                                source_entity=source, source_script=self._script, target=target,
                                sizes=sizes)
            queued = self._system.queue_event(event, size=sum(sizes),
                                              max_bytes=self.max_event_bytes)
            return DONE if queued else MISSING
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
