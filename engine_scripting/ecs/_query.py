"""QueryHost: the host side of world.query for one script (query.lua's query store).

``start`` answers one ``world.query``: the entities that have every listed component (and the
``with`` ones, and none of the ``without`` ones), ascending: what esper's cached
``get_components`` list holds, less the entities destroyed this tick and the resource entity.
That list is kept per query while esper's cached lists (esper rebuilds them after every
structural change), the script's instance list and the destroyed entities stay the same, and
query.lua keeps its copy under the same version number, so an unchanged list does not cross
again.

The script's own instances come from the batch cache (world.get). For every other ("foreign")
entity query.lua keeps a store per component: rows of columns, numbered here, one load per
batch. The load modes, each computed the same way on both sides from the list:

- RESET: the rows are this query's foreign entities, in order (the first load of the
  component in a batch when its list is not the one the rows were made from, or when query.lua
  says its store is not in sync: ``fresh``); every value is sent;
- REUSE: the first load in a batch, over the very list the rows were made from: the rows stay
  (those a later query appended in the last batch go), and so do the component objects
  (esper's list is the same object), so a column whose values are the same Python objects as
  when they were last sent or written back is not sent again;
- APPEND: a later load in the same batch: the foreign entities the store lacks get new rows
  after the others, and their values are sent;
- LOADED: a later load that finds every entity there: nothing crosses (the store may hold the
  batch's writes, which the world does not have yet).

``start`` returns the modes; the list and the values then cross in chunks that ``pull`` hands
out one at a time, and the buffered writes come back through the batch's write-back pull
(``write_back``, under negative component indices: BatchColumns routes them here).
"""

from __future__ import annotations

import itertools
import keyword
import operator
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from operator import itemgetter
from types import MappingProxyType
from typing import Any

import esper

from engine_scripting.ecs._batch import DONE, BatchColumns, write_columns
from engine_scripting.ecs._components import Console, EventQueue
from engine_scripting.ecs._schema import ComponentSchema, lua_column

# chunk kinds ``pull`` hands out (0: no more) and load modes: see the module docstring
VALUES, LIST = 1, 2
RESET, REUSE, APPEND, LOADED = 1, 2, 3, 4
CHUNK = 4096        # entities or rows per chunk
MAX_KEPT = 32       # query lists kept per script (query.lua keeps as many)
MAX_NAMES = 16      # component names in one query, filters included
QUERY_CAPS = MappingProxyType({"values": VALUES, "list": LIST, "reset": RESET, "reuse": REUSE,
                               "append": APPEND, "loaded": LOADED, "chunk": CHUNK,
                               "max_kept": MAX_KEPT})

Report = Callable[[str, int | None, Exception], int]
# read(components) -> the field's values; same(components, values) -> whether each component's
# field is that very object
FieldReader = tuple[Callable[[Sequence[Any]], list[Any]],
                    Callable[[Sequence[Any], Sequence[Any]], bool]]
_READER_SOURCE = """
def read(components):
    return [component.{name} for component in components]

def same(components, values):
    if len(components) != len(values):
        return False
    for component, value in zip(components, values):
        if component.{name} is not value:
            return False
    return True
"""


def field_reader(name: str) -> FieldReader:
    """Functions that read field ``name`` of many components: compiled for the name, so
    that Python specialises the attribute access (about twice as fast as ``attrgetter`` on a
    slotted dataclass). Only for identifiers (dataclass field names always are)."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"not an attribute name: {name!r}")
    namespace: dict[str, Any] = {}
    exec(_READER_SOURCE.format(name=name), namespace)  # an identifier: checked above
    return namespace["read"], namespace["same"]


def dead_entities() -> AbstractSet[int]:
    """The entities esper deletes at its next ``process`` (``delete_entity`` without
    ``immediate``): they keep their components until then, but scripts no longer see them.
    Read from esper's world state; empty if esper ever stops keeping it there."""
    dead = getattr(esper, "_dead_entities", None)
    return dead if isinstance(dead, set) else frozenset()


def resource_listings() -> tuple[list[Any], list[Any]]:
    """esper's cached lists of the resource components (the entity holding them is no script
    entity)."""
    return esper.get_component(Console), esper.get_component(EventQueue)


def key_of(count: object, with_: object, without: object, rest: Sequence[object],
           schemas: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """The three lists of component indices query.lua passed (``count``, ``with_`` and
    ``without`` of them at the start of ``rest``), checked."""
    if not (type(count) is int and type(with_) is int and type(without) is int
            and min(count, with_, without) >= 0 and count + with_ + without <= MAX_NAMES):
        raise ValueError("malformed query from query.lua")
    total = count + with_ + without
    indices: tuple[int, ...] = tuple(rest[:total])  # type: ignore[arg-type]
    if len(indices) != total or not all(
            type(index) is int and 1 <= index <= schemas for index in indices):
        raise ValueError("malformed query from query.lua")
    return indices[:count], indices[count:count + with_], indices[count + with_:]


@dataclass(slots=True, eq=False)
class _Result:
    """One query's entities (what it was computed from, to tell when it is stale)."""

    sources: tuple[object, ...]
    dead: frozenset[int]
    version: int
    entities: list[int]
    foreign: list[int]
    components: tuple[list[Any], ...]   # per listed component, aligned with ``foreign``


@dataclass(slots=True, eq=False)
class _Store:
    """One component's rows in query.lua's store: row r is ``entities[r - 1]``, whose component
    object is ``components[r - 1]``; rows 1 .. len(base) are ``base``, the foreign list of the
    query that last made them (RESET); rows after them were appended in batch ``batch``."""

    base: list[int]
    entities: list[int]
    components: list[Any]
    batch: int
    # per field, by row - 1: the Python object query.lua's column was last filled from or
    # written back as (``unsent`` where it holds none); None: send everything next time
    mirror: list[list[Any]] | None
    row_of: dict[int, int] | None = None


class QueryHost:
    """The query store's host side for one script (see the module docstring).

    Args:
        schemas: the system's component schemas (indexed from 1 as Lua sees them).
        batch: the script's BatchColumns (its instance list: ``batch_entities``).
        report: called with (operation, entity, error) for a failure; returns the status to
            give Lua (the failure is logged and recorded there).
    """

    def __init__(self, schemas: tuple[ComponentSchema, ...], batch: BatchColumns,
                 report: Report) -> None:
        self._schemas = schemas
        self._batch = batch
        self._report = report
        self._results: dict[tuple[tuple[int, ...], ...], _Result] = {}
        self._stores: dict[int, _Store] = {}
        self._pending: Iterator[tuple[object, ...]] | None = None
        self._versions = itertools.count(1)
        self._readers: dict[int, tuple[FieldReader, ...]] = {}   # made when first needed
        self._unsent = object()

    # -- host functions -----------------------------------------------------------------------
    def start(self, batch: int, known: int, count: int, with_: int, without: int,
              *rest: object) -> object:
        """Plan one query's load (see the module docstring): ``count`` listed component
        indices (each once), ``with_`` and ``without`` filter indices, then one ``fresh`` flag
        per listed component. Returns DONE, the list's version, its length, the number of
        foreign entities in it, and the mode of each listed component."""
        self._pending = None
        try:
            if type(batch) is not int or type(known) is not int:
                raise ValueError("malformed query from query.lua")
            key = key_of(count, with_, without, rest, len(self._schemas))
            fresh = rest[len(key[0]) + len(key[1]) + len(key[2]):]
            if len(fresh) != count or len(set(key[0])) != count:
                raise ValueError("malformed query from query.lua")
            result = self._result(key)
            modes: list[int] = []
            plans: list[tuple[int, _Store, int, int, bool]] = []
            for position, index in enumerate(key[0]):
                mode, plan = self._plan(index, position, result, batch, fresh[position] is True)
                modes.append(mode)
                if plan is not None:
                    plans.append(plan)
            self._pending = self._chunks(result, known != result.version, plans)
            return (DONE, result.version, len(result.entities), len(result.foreign), *modes)
        except Exception as error:  # must not unwind through Lua
            return self._report("query", None, error)

    def pull(self) -> object:
        """The next chunk of the planned load: (LIST, first, count, entities...) or (VALUES,
        index, first row, count, then per field 0 or count and the values); 0 at the end."""
        pending = self._pending
        if pending is None:
            return 0
        try:
            chunk = next(pending, None)
        except Exception as error:
            self._pending = None
            for store in self._stores.values():
                store.mirror = None
            return self._report("query", None, error)
        if chunk is None:
            self._pending = None
            return 0
        return chunk

    # -- the write-back -----------------------------------------------------------------------
    def write_back(self, index: int, fields: int, count: int, first: int,
                   flat: tuple[object, ...]) -> int:
        """Write buffered store changes back (query.lua's ``store_pending``): ``count`` rows,
        ``first .. first + count - 1`` when ``first`` is positive, else the ``count`` row
        numbers that open ``flat``; then one column of ``count`` values per field."""
        try:
            store = self._stores[index]
            return write_columns(
                self._schemas[index - 1], fields, count, first, flat, store.components,
                store.mirror, lambda place, error: self._report("set", store.entities[place],
                                                               error))
        except Exception as error:
            self.forget_mirrors()
            return self._report("flush", None, error)

    def forget_mirrors(self) -> None:
        """query.lua's columns may hold values the host never received: send all next time."""
        for store in self._stores.values():
            store.mirror = None

    # -- planning -----------------------------------------------------------------------------
    def _result(self, key: tuple[tuple[int, ...], ...]) -> _Result:
        listed, with_, without = key
        schemas = self._schemas
        types = tuple(dict.fromkeys(schemas[i - 1].component_type for i in (*listed, *with_)))
        holders: list[Any] = esper.get_components(*types)
        excluded: tuple[list[Any], ...] = tuple(
            esper.get_component(schemas[i - 1].component_type) for i in without)
        instances = self._batch.batch_entities
        hidden = (*resource_listings(), *excluded)
        sources = (holders, instances, *hidden)
        dead = dead_entities()
        kept = self._results.get(key)
        if (kept is not None and len(kept.sources) == len(sources)
                and all(map(operator.is_, kept.sources, sources)) and kept.dead == dead):
            return kept
        drop = set(dead)
        for listing in hidden:
            drop.update(entity for entity, _ in listing)
        rows = sorted(holders, key=itemgetter(0))
        if drop:
            rows = [row for row in rows if row[0] not in drop]
        members = set(instances)
        foreign_rows = [row for row in rows if row[0] not in members] if members else rows
        positions = [types.index(schemas[i - 1].component_type) for i in listed]
        result = _Result(
            sources=sources, dead=frozenset(dead), version=next(self._versions),
            entities=[entity for entity, _ in rows],
            foreign=[entity for entity, _ in foreign_rows],
            components=tuple([parts[at] for _, parts in foreign_rows] for at in positions),
        )
        if key not in self._results and len(self._results) >= MAX_KEPT:
            self._results.clear()
        self._results[key] = result
        return result

    def _plan(self, index: int, position: int, result: _Result, batch: int,
              fresh: bool) -> tuple[int, tuple[int, _Store, int, int, bool] | None]:
        """The load mode of one listed component, and what to send: (index, store, first row,
        last row, whether to compare with the mirror), or None."""
        foreign, components = result.foreign, result.components[position]
        store = self._stores.get(index)
        count = len(foreign)
        fields = len(self._schemas[index - 1].fields)
        if fresh or store is None or (store.batch != batch and store.base is not foreign):
            store = _Store(base=foreign, entities=list(foreign), components=list(components),
                           batch=batch, mirror=[[self._unsent] * count for _ in range(fields)])
            self._stores[index] = store
            return RESET, (index, store, 1, count, False)
        if store.batch != batch:
            del store.entities[count:], store.components[count:]
            store.batch, store.row_of = batch, None
            compare = store.mirror is not None
            if store.mirror is None:
                store.mirror = [[self._unsent] * count for _ in range(fields)]
            for held in store.mirror:
                del held[count:]
            return REUSE, (index, store, 1, count, compare)
        row_of = store.row_of
        if row_of is None:
            row_of = store.row_of = {entity: row for row, entity in
                                     enumerate(store.entities, start=1)}
        first = len(store.entities) + 1
        for entity, component in zip(foreign, components, strict=True):
            if entity not in row_of:
                store.entities.append(entity)
                store.components.append(component)
                row_of[entity] = len(store.entities)
        last = len(store.entities)
        if last < first:
            return LOADED, None
        if store.mirror is None:
            store.mirror = [[self._unsent] * (first - 1) for _ in range(fields)]
        for held in store.mirror:
            held.extend([self._unsent] * (last - first + 1))
        return APPEND, (index, store, first, last, False)

    def _chunks(self, result: _Result, send_list: bool,
                plans: list[tuple[int, _Store, int, int, bool]]) -> Iterator[tuple[object, ...]]:
        if send_list:
            entities = result.entities
            for start in range(0, len(entities), CHUNK):
                part = entities[start:start + CHUNK]
                yield (LIST, start + 1, len(part), *part)
        for index, store, first, last, compare in plans:
            for start in range(first - 1, last, CHUNK):
                chunk = self._values(index, store, start, min(start + CHUNK, last), compare)
                if chunk is not None:
                    yield chunk

    def _values(self, index: int, store: _Store, start: int, stop: int,
                compare: bool) -> tuple[object, ...] | None:
        """Rows ``start + 1 .. stop`` of a store: per field 0 (query.lua's column holds these
        values) or the count and the values; None when no field is sent."""
        schema = self._schemas[index - 1]
        components = store.components[start:stop]
        count = stop - start
        flat: list[object] = [VALUES, index, start + 1, count]
        mirror = store.mirror
        assert mirror is not None
        sent = False
        readers = self._readers.get(index)
        if readers is None:
            readers = self._readers[index] = tuple(map(field_reader, schema.fields))
        for (read, same), kind, held in zip(readers, schema.kinds, mirror, strict=True):
            if compare and same(components, held[start:stop]):
                flat.append(0)
                continue
            values = read(components)
            flat.append(count)
            flat.extend(lua_column(kind, values))
            held[start:stop] = values
            sent = True
        return tuple(flat) if sent else None
