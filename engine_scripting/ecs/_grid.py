"""The uniform grid behind the spatial index (_spatial.py): building it from positions, moving
positions on it, and the cells a lookup visits.

A grid holds the indexed entities, their positions, and the occupied cells: cell key ->
positions in the lists, key = column * ncy + row as a float (floor division), cells counted
from (x0, y0), which lie two cells beyond the positions so that small moves keep the geometry
(``move`` then re-buckets only the entities that changed cells).
"""

from __future__ import annotations

import math
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import compress
from operator import ne
from typing import Any

MAX_COORDINATE = 1e300  # positions beyond it are not indexed (their differences would overflow)


@dataclass(slots=True, eq=False)
class Grid:
    """One refresh: the entities, their positions, and the occupied cells (cell key ->
    positions in the lists; key = column * ncy + row as a float, cells counted from (x0, y0),
    which lie two cells beyond the positions so that small moves keep the geometry)."""

    entities: list[int]
    xs: list[float]
    ys: list[float]
    x0: float = 0.0
    y0: float = 0.0
    cell: float = 1.0
    ncx: int = 0
    ncy: int = 0
    cells: dict[float, list[int]] | None = None
    keys: list[float] | None = None   # the cell key of each position
    source: object = None             # esper's list, when it gave every entity (same order)
    position_of: dict[int, int] | None = None

    def position(self, entity: int) -> int | None:
        if self.position_of is None:
            self.position_of = {entity: at for at, entity in enumerate(self.entities)}
        return self.position_of.get(entity)

    def fits(self, bounds: tuple[float, float, float, float]) -> bool:
        """Whether positions within ``bounds`` (low x, high x, low y, high y) are on the grid."""
        low_x, high_x, low_y, high_y = bounds
        return (self.keys is not None and low_x >= self.x0 and low_y >= self.y0
                and (high_x - self.x0) // self.cell < self.ncx
                and (high_y - self.y0) // self.cell < self.ncy)

    def keys_of(self, xs: list[float], ys: list[float]) -> list[float]:
        x0, y0, cell, ncy = self.x0, self.y0, self.cell, self.ncy
        return [((x - x0) // cell) * ncy + (y - y0) // cell for x, y in zip(xs, ys, strict=True)]


def finite_position(value: object) -> float | None:
    if type(value) is int:
        value = float(value) if abs(value) <= MAX_COORDINATE else None
    if type(value) is float and -MAX_COORDINATE <= value <= MAX_COORDINATE:
        return value
    return None


def bounds(xs: list[Any], ys: list[Any]) -> tuple[float, float, float, float] | None:
    """(low x, high x, low y, high y) when every position is a usable float (the common case;
    a sum that is a number means no NaN and no infinity), else None."""
    if not xs or not set(map(type, xs)) <= {float} or not set(map(type, ys)) <= {float}:
        return None
    bounds = (min(xs), max(xs), min(ys), max(ys))
    if (not math.isfinite(sum(xs) + sum(ys)) or min(bounds) < -MAX_COORDINATE
            or max(bounds) > MAX_COORDINATE):
        return None
    return bounds


def clean(entities: list[int], xs: list[Any], ys: list[Any],
           hidden: AbstractSet[int]) -> tuple[list[int], list[float], list[float]]:
    """The entities with usable positions (as floats), less the resource entity."""
    kept: tuple[list[int], list[float], list[float]] = ([], [], [])
    for entity, x, y in zip(entities, map(finite_position, xs), map(finite_position, ys),
                            strict=True):
        if x is not None and y is not None and entity not in hidden:
            kept[0].append(entity)
            kept[1].append(x)
            kept[2].append(y)
    return kept


def build(entities: list[int], xs: list[float], ys: list[float], cell: float | None,
           source: object = None) -> Grid:
    grid = Grid(entities, xs, ys, cells={})
    count = len(entities)
    if count == 0:
        return grid
    low_x, low_y = min(xs), min(ys)
    width, height = max(xs) - low_x, max(ys) - low_y
    # the cells are sized for where most entities are (the central 90%): a few far-off
    # positions (a script may put its own entity at 1e300) must not put everyone in one cell;
    # they get cells of their own, far away, and lookups never walk the empty space between
    # (see SpatialIndex.nearest)
    core_w, core_h = _core_extent(xs), _core_extent(ys)
    size = cell if cell is not None else math.sqrt(core_w) * math.sqrt(core_h / count)
    size = max(size, max(core_w, core_h) / (4 * count + 16),
               math.sqrt(core_w) * math.sqrt(core_h / (16 * count + 64)))
    if not size > 0:
        size = 1.0
    grid.x0, grid.y0, grid.cell, grid.source = low_x - 2 * size, low_y - 2 * size, size, source
    grid.ncx, grid.ncy = int(width // size) + 5, int(height // size) + 5
    grid.keys = grid.keys_of(xs, ys)
    cells: dict[float, list[int]] = {}
    for at, key in enumerate(grid.keys):
        bucket = cells.get(key)
        if bucket is None:
            cells[key] = [at]
        else:
            bucket.append(at)
    grid.cells = cells
    return grid


def _core_extent(values: list[float]) -> float:
    """The extent of the central 90% of ``values`` (from a sample of at most about 1,024)."""
    sample = sorted(values[::max(1, len(values) // 1024)])
    cut = len(sample) // 20
    return sample[-1 - cut] - sample[cut]


def move(grid: Grid, xs: list[float], ys: list[float]) -> None:
    """New positions for the same entities, on the same geometry: only the entities that
    changed cells change buckets."""
    keys, old, cells = grid.keys_of(xs, ys), grid.keys, grid.cells
    assert old is not None and cells is not None
    if keys != old:
        for at in compress(range(len(keys)), map(ne, keys, old)):
            bucket = cells[old[at]]
            bucket.remove(at)
            if not bucket:
                del cells[old[at]]
            target = cells.get(keys[at])
            if target is None:
                cells[keys[at]] = [at]
            else:
                target.append(at)
    grid.xs, grid.ys, grid.keys = xs, ys, keys


def span(low: float, high: float, cells: int) -> range:
    """The cell numbers 0 .. cells - 1 that [low, high] (in cell units) overlaps."""
    if high < 0 or low >= cells:
        return range(0)
    return range(0 if low <= 0 else int(low), (cells - 1 if high >= cells else int(high)) + 1)


def ring_keys(cx: int, cy: int, ring: int, ncx: int, ncy: int) -> list[int]:
    """The keys of the grid's cells ``ring`` (> 0) cells away from (cx, cy) (Chebyshev
    distance)."""
    keys: list[int] = []
    low_x, high_x = max(0, cx - ring), min(ncx - 1, cx + ring)
    for row in (cy - ring, cy + ring):
        if 0 <= row < ncy:
            keys.extend(column * ncy + row for column in range(low_x, high_x + 1))
    low_y, high_y = max(0, cy - ring + 1), min(ncy - 1, cy + ring - 1)
    for column in (cx - ring, cx + ring):
        if 0 <= column < ncx:
            keys.extend(column * ncy + row for row in range(low_y, high_y + 1))
    return keys
