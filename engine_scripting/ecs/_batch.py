"""BatchColumns: the host side of batch.lua's batch cache for one script.

During a batch (one call into the script's context) batch.lua asks for each component it uses
once, for all the script's instances at once, in columns (``fetch``), and hands the buffered
writes back when the batch ends (``write_back``, pulled by the system). The component objects
of the instances are kept across batches while esper's cached query and the instance list are
unchanged, and so is, per column, the Python objects batch.lua's column was last filled from or
written back as: a column whose values are the same objects again is not sent.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from operator import attrgetter
from types import MappingProxyType
from typing import Any

import esper

from engine_scripting.ecs._schema import ComponentSchema, FieldKind, lua_column, lua_value

# statuses world.lua understands: done, no such component (or queue full), no such entity,
# failure in the host
DONE, MISSING, UNKNOWN_ENTITY, HOST_FAILURE = 1, 0, -1, -2

def _decoded(value: object) -> object:
    return value.decode("utf-8") if isinstance(value, bytes) else value


_WRITTEN_TYPES: MappingProxyType[FieldKind, type] = MappingProxyType(
    {"float": float, "int": int, "bool": bool, "str": bytes}
)


def _check_column(kind: FieldKind, column: tuple[object, ...]) -> None:
    """Second line of defence: world.lua validated these values; fail on anything else."""
    if not set(map(type, column)) <= {_WRITTEN_TYPES[kind]}:
        raise TypeError(f"write-back of a {kind} field holds another type")
    # a finite sum of floats means no NaN or inf; an overflowing one needs a closer look
    if (kind == "float" and not math.isfinite(sum(column))  # type: ignore[arg-type]
            and not all(map(math.isfinite, column))):  # type: ignore[arg-type]
        raise TypeError("write-back of a float field holds NaN or inf")


def remember(held: list[Any], first: int, count: int, places: Sequence[int],
             values: Sequence[Any]) -> None:
    """Record written ``values`` in a column's mirror (what the host last sent or took): a run
    of ``count`` places from ``first`` (1-based), or the listed ``places`` when ``first`` is 0."""
    if first > 0:
        held[first - 1:first - 1 + count] = values
    else:
        for place, value in zip(places, values, strict=True):
            held[place] = value


def write_columns(schema: ComponentSchema, fields: int, count: int, first: int,
                  flat: tuple[object, ...], rows: list[Any], mirror: list[list[Any]] | None,
                  report_set: Callable[[int, Exception], int]) -> int:
    """Apply a write-back chunk (batch.lua's or query.lua's ``pending_writes``) to the component
    objects ``rows`` it numbers: ``count`` rows, ``first .. first + count - 1`` when ``first``
    is positive, else the ``count`` row numbers that open ``flat``; then one column of ``count``
    values per field. A column whose bulk write raises is written value by value, each failure
    reported with ``report_set(row, error)`` (its status is returned); the written values are
    recorded in ``mirror``. Raises ValueError for a malformed chunk."""
    names, kinds = schema.fields, schema.kinds
    slots = 0 if first > 0 else count
    if fields != len(names) or len(flat) != slots + count * fields:
        raise ValueError("malformed write-back from Lua")
    places: Sequence[Any] = (range(first - 1, first - 1 + count) if first > 0
                             else [slot - 1 for slot in flat[:count]])  # type: ignore
    components = (rows[first - 1:first - 1 + count] if first > 0
                  else [rows[place] for place in places])
    if len(components) != count:
        raise ValueError("write-back beyond the rows fetched")
    status = DONE
    for position, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        column = flat[slots + position * count:slots + (position + 1) * count]
        _check_column(kind, column)
        values = [_decoded(value) for value in column] if kind == "str" else column
        try:
            schema.column_writers[position](components, values)
        except Exception:  # one entity's failure must not drop the others' writes
            for place, component, value in zip(places, components, values, strict=True):
                if component is None:
                    continue  # not present at fetch time: nothing to write to
                try:
                    setattr(component, name, value)
                except Exception as error:
                    status = report_set(place, error)
        # where a write failed, the component keeps another object than `values` holds: the
        # next fetch sees the difference and sends the column again
        if mirror is not None:
            remember(mirror[position], first, count, places, values)
    return status


class BatchColumns:
    """Columns of component values for batch.lua's batch cache, and the way back.

    Args:
        schemas: the system's component schemas (indexed from 1 as Lua sees them).
        report: called with (operation, entity, error) for a failure; returns the status to
            give Lua (the failure is logged and recorded there).
    """

    def __init__(self, schemas: tuple[ComponentSchema, ...],
                 report: Callable[[str, int | None, Exception], int]) -> None:
        self._schemas = schemas
        self._report = report
        # the script's instances during the current batch, in the order of world.lua's `order`
        self.batch_entities: list[int] = []
        # per component index: (esper's holders list, batch entities, components, complete)
        self._kept: dict[int, tuple[list[Any], list[int], list[Any], bool]] = {}
        # per component index, per field: the Python value batch.lua's column holds for each
        # slot of the kept instance list (``self._unsent`` where it holds none)
        self._mirrors: dict[int, list[list[Any]]] = {}
        self._unsent = object()
        # query.lua's store writes back through the same pull, under negative component
        # indices: its host side (_query.QueryHost) takes those and forgets with this
        self.store: Any = None

    def start_batch(self, entities: list[int]) -> None:
        """Name the script's instances for the next batch, in world.lua's order."""
        self.batch_entities = entities

    def _components(self, schema: ComponentSchema) -> tuple[list[Any], bool]:
        """The component of each batch instance (None where it has none), and whether every
        instance has one.

        Kept across batches while esper's cached query for the component type and the batch's
        instance list are the same objects: esper rebuilds that list whenever a component is
        added or removed, so the same list means the same component objects.
        """
        holders: list[tuple[int, Any]] = esper.get_component(schema.component_type)
        entities = self.batch_entities
        kept = self._kept.get(schema.index)
        if kept is not None and kept[0] is holders and kept[1] is entities:
            return kept[2], kept[3]
        components: list[Any]
        if len(holders) <= 8 * len(entities) + 64:
            by_entity = dict(holders)
            try:
                components, complete = list(map(by_entity.__getitem__, entities)), True
            except KeyError:
                components, complete = list(map(by_entity.get, entities)), False
        else:
            component_type = schema.component_type
            components = [esper.try_component(entity, component_type) for entity in entities]
            complete = all(component is not None for component in components)
        if not (kept is not None and kept[1] is entities and len(kept[2]) == len(components)
                and all(map(operator.is_, kept[2], components))):
            self._mirrors.pop(schema.index, None)  # other objects in some slot
        self._kept[schema.index] = (holders, entities, components, complete)
        return components, complete

    def forget_mirrors(self) -> None:
        """batch.lua's columns may hold values the host never received: send everything next
        time."""
        self._mirrors.clear()
        if self.store is not None:
            self.store.forget_mirrors()

    def fetch(self, index: int, total: int, first: int, count: int, fresh: bool) -> object:
        """Component ``index`` of instances ``first .. first + count - 1`` of the batch, in
        columns: whether all of them have it, ``count`` presence flags unless so, then per
        field either 0 (batch.lua's column already holds these values: the same Python
        objects as when they were last sent or written back) or ``count`` and the values
        (nil where absent). ``fresh``: batch.lua's columns hold nothing the host knows of."""
        try:
            entities = self.batch_entities
            if total != len(entities):
                return MISSING  # the lists disagree: world.lua falls back to one call per use
            schema = self._schemas[index - 1]
            if fresh:
                self._mirrors.pop(index, None)
            every, complete = self._components(schema)
            start, stop = first - 1, first - 1 + count
            components = every[start:stop]
            flat: list[object] = [DONE, complete]
            if complete:
                mirror = self._mirrors.get(index)
                if mirror is None:  # dropped whenever the instance list changes
                    mirror = [[self._unsent] * total for _ in schema.fields]
                    self._mirrors[index] = mirror
                for name, kind, held in zip(schema.fields, schema.kinds, mirror, strict=True):
                    read = attrgetter(name)
                    if all(map(operator.is_, map(read, components), held[start:stop])):
                        flat.append(0)
                    else:
                        values = list(map(read, components))
                        flat.append(count)
                        flat.extend(lua_column(kind, values))
                        held[start:stop] = values
            else:
                self._mirrors.pop(index, None)
                flat.extend(component is not None for component in components)
                for name, kind in zip(schema.fields, schema.kinds, strict=True):
                    flat.append(count)
                    for component in components:
                        value = None if component is None else getattr(component, name)
                        flat.append(lua_value(kind, value))
            return tuple(flat)
        except Exception as error:
            self._mirrors.pop(index, None)
            return self._report("fetch", None, error)

    def write_back(self, index: int, fields: int, count: int, first: int,
                   flat: tuple[object, ...]) -> int:
        """Write buffered changes back: what batch.lua's ``pending_writes`` returned.

        ``count`` instances changed: the batch slots ``first .. first + count - 1`` when
        ``first`` is positive, else the ``count`` slot numbers that open ``flat``; then
        ``flat`` holds one column of ``count`` values per field.
        """
        if index < 0 and self.store is not None:
            return int(self.store.write_back(-index, fields, count, first, flat))
        try:
            entities = self.batch_entities
            return write_columns(
                self._schemas[index - 1], fields, count, first, flat,
                self._kept[index][2],  # what this batch's fetches used, by slot
                self._mirrors.get(index),
                lambda place, error: self._report("set", entities[place], error))
        except Exception as error:
            self._mirrors.pop(index, None)
            return self._report("flush", None, error)

