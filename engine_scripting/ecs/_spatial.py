"""The spatial index behind world.within and world.nearest.

``ScriptSystem(..., spatial=("Position", "x", "y"))`` gives the system one ``SpatialIndex``: a
uniform grid over the entities that have that component, shared by all its scripts. It is a
snapshot, refreshed at most once per tick, at the tick's first lookup, and only when esper's
list of the component or one of the x/y values changed since the last refresh (an identity
check per value; a refresh reads every position, O(n), and re-buckets the entities that changed
cells, see _grid.py). So a lookup sees the
positions of that moment: what scripts write later in the tick (the caller's own buffered
writes included) and entities spawned later count from the next tick on; entities destroyed
since are left out. Positions that are not finite numbers within +-1e300 are not indexed.

The cell size is the one configured (``spatial=("Position", "x", "y", 8.0)``) or, by default,
the side of the square each entity would have to itself (about one entity per cell), and
never so small that the grid has more than about 16 cells per entity. ``within`` visits the
cells under the circle's bounding box; ``nearest`` visits rings of cells around the point and
stops once the next ring cannot hold anything closer than what it found. Both are O(n) at worst
(a radius that covers the world), with bounded memory: ``within`` returns at most
``MAX_RESULTS`` entities (the closest ones) and says whether there were more.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from operator import is_
from typing import Any

import esper

from engine_scripting.ecs import _grid
from engine_scripting.ecs._batch import DONE
from engine_scripting.ecs._grant_check import listed
from engine_scripting.ecs._query import (
    Report,
    dead_entities,
    field_reader,
    key_of,
    resource_listings,
)
from engine_scripting.ecs._schema import ComponentSchema

MAX_RESULTS = 1024       # entities one world.within returns at most


@dataclass(frozen=True, slots=True)
class SpatialConfig:
    """What ``ScriptSystem(spatial=...)`` configured: the component and its two fields, and
    the cell size (None: chosen from the data at each refresh)."""

    schema: ComponentSchema
    x: str
    y: str
    cell: float | None = None


def spatial_config(schemas: tuple[ComponentSchema, ...], spec: object) -> SpatialConfig | None:
    """Check ``ScriptSystem(spatial=...)``: None, or (component name, x field, y field) with an
    optional positive cell size. Raises TypeError or ValueError."""
    if spec is None:
        return None
    if not isinstance(spec, tuple) or len(spec) not in (3, 4):
        raise TypeError("spatial must be (component name, x field, y field[, cell size]), "
                        f"not {spec!r}")
    name, x, y, *rest = spec
    schema = next((schema for schema in schemas if schema.name == name), None)
    if schema is None:
        raise ValueError(f"spatial: {name!r} is not one of the system's components (known: "
                         f"{listed(schema.name for schema in schemas)})")
    for field in (x, y):
        kinds = dict(zip(schema.fields, schema.kinds, strict=True))
        if kinds.get(field) not in ("float", "int"):
            raise ValueError(f"spatial: {name}.{field} is not a float or int field")
    cell = rest[0] if rest else None
    if cell is not None and (isinstance(cell, bool) or not isinstance(cell, int | float)
                             or not 0 < cell < math.inf):
        raise ValueError(f"spatial: the cell size must be a positive number, not {cell!r}")
    return SpatialConfig(schema, x, y, None if cell is None else float(cell))


class SpatialIndex:
    """The grid of one ScriptSystem (see the module docstring).

    Args:
        config: the component and fields (``spatial_config``).
        clock: the system's tick number (the grid is refreshed at most once per tick).
    """

    def __init__(self, config: SpatialConfig, clock: Callable[[], int]) -> None:
        self.config = config
        self._clock = clock
        self._fields = (field_reader(config.x), field_reader(config.y))
        self._tick: int | None = None
        self._seen: tuple[object, ...] = ()      # esper's lists at the last refresh
        self._raw: tuple[list[Any], list[Any]] = ([], [])   # the x and y objects read then
        self._grid = _grid.Grid([], [], [], cells={})
        self._filters: dict[tuple[tuple[int, ...], tuple[int, ...]],
                            tuple[tuple[list[Any], ...], AbstractSet[int]]] = {}

    def grid(self) -> _grid.Grid:
        """The grid of this tick (refreshed at the tick's first lookup if positions moved)."""
        tick = self._clock()
        if tick == self._tick:
            return self._grid
        self._tick = tick
        holders: list[Any] = esper.get_component(self.config.schema.component_type)
        seen = (holders, *resource_listings())
        components = [component for _, component in holders]
        (read_x, same_x), (read_y, same_y) = self._fields
        raw_x, raw_y = self._raw
        if (len(seen) == len(self._seen) and all(map(is_, seen, self._seen))
                and same_x(components, raw_x) and same_y(components, raw_y)):
            return self._grid
        xs, ys = read_x(components), read_y(components)
        self._seen, self._raw = seen, (xs, ys)
        kind = self.config.schema.component_type   # a resource entity is never found
        hidden = {entity for listing in seen[1:] for entity, _ in listing
                  if esper.try_component(entity, kind) is not None}
        bounds = None if hidden else _grid.bounds(xs, ys)
        if bounds is not None and self._grid.source is holders and self._grid.fits(bounds):
            _grid.move(self._grid, xs, ys)   # the same entities, moved: the same geometry
        elif bounds is not None:
            self._grid = _grid.build([entity for entity, _ in holders], xs, ys, self.config.cell,
                                holders)
        else:
            entities = [entity for entity, _ in holders]
            self._grid = _grid.build(*_grid.clean(entities, xs, ys, hidden), self.config.cell)
        return self._grid

    def allowed(self, with_: tuple[int, ...], without: tuple[int, ...],
                schemas: tuple[ComponentSchema, ...]) -> AbstractSet[int] | None:
        """The entities with the spatial component, every ``with_`` component and none of the
        ``without`` ones (schema indices); None when there is no filter."""
        if not with_ and not without:
            return None
        own = self.config.schema.component_type
        types = tuple(dict.fromkeys(schemas[i - 1].component_type for i in with_))
        sources: tuple[list[Any], ...] = (
            esper.get_components(own, *types),
            *(esper.get_component(schemas[i - 1].component_type) for i in without))
        key = (with_, without)
        kept = self._filters.get(key)
        if kept is not None and all(map(is_, kept[0], sources)):
            return kept[1]
        members = {entity for entity, _ in sources[0]}
        for listing in sources[1:]:
            members.difference_update(entity for entity, _ in listing)
        if key not in self._filters and len(self._filters) >= 64:
            self._filters.clear()
        self._filters[key] = (sources, members)
        return members

    def _candidates(self, grid: _grid.Grid, x: float, y: float, radius: float,
                    only: int | None, allowed: AbstractSet[int] | None) -> Iterable[list[int]]:
        """Lists of positions that may lie within ``radius`` of (x, y)."""
        if only is not None:
            at = grid.position(only)
            return () if at is None else ([at],)
        assert grid.cells is not None
        if allowed is not None and len(allowed) < len(grid.cells):
            # a filter few entities pass (or none): their positions, not the grid's cells
            return ([at for entity in allowed if (at := grid.position(entity)) is not None],)
        # a cell more on each side: the keys come from floor division, this from a product
        inv, x0, y0 = 1.0 / grid.cell, grid.x0, grid.y0
        xs = _grid.span((x - radius - x0) * inv - 1, (x + radius - x0) * inv + 1, grid.ncx)
        ys = _grid.span((y - radius - y0) * inv - 1, (y + radius - y0) * inv + 1, grid.ncy)
        if len(xs) * len(ys) >= len(grid.cells):
            return grid.cells.values()
        cells, ncy = grid.cells, grid.ncy
        return [bucket for cx in xs for cy in ys
                if (bucket := cells.get(cx * ncy + cy)) is not None]

    def within(self, x: float, y: float, radius: float, limit: int, only: int | None,
               allowed: AbstractSet[int] | None) -> tuple[list[int], bool]:
        """The entities within ``radius`` of (x, y), nearest first (ties: lower entity id),
        at most ``limit`` of them, and whether there were more."""
        grid = self.grid()
        entities, xs, ys = grid.entities, grid.xs, grid.ys
        dead = dead_entities()
        limit2 = radius * radius
        hits: list[tuple[float, int]] = []
        total = 0
        for bucket in self._candidates(grid, x, y, radius, only, allowed):
            for at in bucket:
                dx, dy = xs[at] - x, ys[at] - y
                distance = dx * dx + dy * dy
                if distance > limit2:
                    continue
                entity = entities[at]
                if (allowed is not None and entity not in allowed) or entity in dead:
                    continue
                hits.append((distance, entity))
                total += 1
                if len(hits) > 2 * limit + 64:
                    hits = heapq.nsmallest(limit, hits)
        hits.sort()
        return [entity for _, entity in hits[:limit]], total > limit

    def nearest(self, x: float, y: float, radius: float, only: int | None,
                allowed: AbstractSet[int] | None) -> int | None:
        """The entity nearest to (x, y) within ``radius`` (ties: the lower id), or None."""
        grid = self.grid()
        if only is not None or not grid.cells or (allowed is not None
                                                   and len(allowed) < len(grid.cells)):
            found, _ = self.within(x, y, radius, 1, only, allowed)
            return found[0] if found else None
        entities, xs, ys, cells = grid.entities, grid.xs, grid.ys, grid.cells
        ncx, ncy, cell = grid.ncx, grid.ncy, grid.cell
        dead = dead_entities()
        # the cell of the point, moved into the grid: a ring k cells away is still at least
        # (k - 1) cells away from the point
        qx, qy = (x - grid.x0) / cell, (y - grid.y0) / cell
        cx = 0 if qx < 0 else ncx - 1 if qx >= ncx else min(ncx - 1, int((x - grid.x0) // cell))
        cy = 0 if qy < 0 else ncy - 1 if qy >= ncy else min(ncy - 1, int((y - grid.y0) // cell))
        best, best_distance = None, radius * radius
        rings, ring = max(cx, ncx - 1 - cx, cy, ncy - 1 - cy), 1
        # the ring walk visits at most as many cells as are occupied: past that, one pass over
        # the occupied cells is cheaper (a sparse or stretched grid, a filter nothing matches)
        visits_left = len(cells)
        keys = [column * ncy + row for column in range(max(0, cx - 1), min(ncx, cx + 2))
                for row in range(max(0, cy - 1), min(ncy, cy + 2))]   # rings 0 and 1
        while True:
            for key in keys:
                bucket = cells.get(key)
                if bucket is None:
                    continue
                for at in bucket:
                    dx, dy = xs[at] - x, ys[at] - y
                    distance = dx * dx + dy * dy
                    if distance > best_distance:
                        continue
                    entity = entities[at]
                    if distance == best_distance and best is not None and entity > best:
                        continue
                    if (allowed is not None and entity not in allowed) or entity in dead:
                        continue
                    best, best_distance = entity, distance
            ring += 1
            gap = (ring - 1) * cell
            if ring > rings or gap > radius or (best is not None and gap * gap > best_distance):
                return best
            visits_left -= len(keys)
            if visits_left < 8 * ring:
                found, _ = self.within(x, y, radius, 1, None, allowed)
                return found[0] if found else None
            keys = _grid.ring_keys(cx, cy, ring, ncx, ncy)


def _coordinate(value: object) -> float:
    kind = type(value)
    if (kind is float or kind is int) and math.isfinite(value):  # type: ignore[arg-type]
        return float(value)  # type: ignore[arg-type]
    raise ValueError(f"malformed coordinate from query.lua: {value!r}")


class SpatialBindings:
    """The host functions of world.within and world.nearest for one script.

    Args:
        index: the system's index, or None when the game configured none.
        schemas: the system's component schemas.
        report: called with (operation, entity, error) for a failure (see QueryHost).
    """

    def __init__(self, index: SpatialIndex | None, schemas: tuple[ComponentSchema, ...],
                 report: Report) -> None:
        self._index = index
        self._schemas = schemas
        self._report = report

    def component(self) -> int:
        """The schema index of the spatial component, or 0 without an index."""
        return 0 if self._index is None else self._index.config.schema.index

    def _lookup(self, x: object, y: object, radius: object, limit: object, only: object,
                count: object, without: object, rest: tuple[object, ...],
                ) -> tuple[SpatialIndex, float, float, float, int, int | None,
                           AbstractSet[int] | None]:
        index = self._index
        if index is None:
            raise ValueError("no spatial index is configured")
        x, y, radius = _coordinate(x), _coordinate(y), _coordinate(radius)
        if radius < 0 or type(limit) is not int or not 1 <= limit <= MAX_RESULTS:
            raise ValueError("malformed lookup from query.lua")
        if only is not None and type(only) is not int:
            raise ValueError("malformed lookup from query.lua")
        if count == 0 and without == 0 and not rest:   # no filter: the common case
            return index, x, y, radius, limit, only, None
        listed, _, excluded = key_of(count, 0, without, rest, len(self._schemas))
        return (index, x, y, radius, limit, only,
                index.allowed(listed, excluded, self._schemas))

    def within(self, x: object, y: object, radius: object, limit: object, only: object,
               count: object, without: object, *rest: object) -> object:
        """DONE, whether there were more than ``limit``, and the entity ids, nearest first."""
        try:
            index, x_, y_, radius_, limit_, only_, allowed = self._lookup(
                x, y, radius, limit, only, count, without, rest)
            found, more = index.within(x_, y_, radius_, limit_, only_, allowed)
            return (DONE, more, *found)
        except Exception as error:  # must not unwind through Lua
            return self._report("within", None, error)

    def nearest(self, x: object, y: object, radius: object, limit: object, only: object,
                count: object, without: object, *rest: object) -> object:
        """DONE and the nearest entity id (None when there is none)."""
        try:
            index, x_, y_, radius_, _, only_, allowed = self._lookup(
                x, y, radius, limit, only, count, without, rest)
            return DONE, index.nearest(x_, y_, radius_, only_, allowed)
        except Exception as error:
            return self._report("nearest", None, error)


def spatial_index(schemas: tuple[ComponentSchema, ...], spec: object,
                  clock: Callable[[], int]) -> SpatialIndex | None:
    """The index ``ScriptSystem(spatial=spec)`` asks for, or None (see ``spatial_config``)."""
    config = spatial_config(schemas, spec)
    return None if config is None else SpatialIndex(config, clock)

