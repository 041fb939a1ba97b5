"""The errors world.lua recorded for single instances in one batch, as typed ScriptErrors."""

from __future__ import annotations

import bisect
from typing import Any

from engine_scripting._lua_text import error_line, split_message, text
from engine_scripting.errors import (
    ResourceLimitExceeded,
    ScriptError,
    ScriptRuntimeError,
    limit_type_of,
)


def instance_errors(name: str, failures: Any) -> list[ScriptError]:
    """The errors world.lua recorded for single instances in one batch, typed."""
    found: list[ScriptError] = []
    for index in range(1, len(failures) + 1):
        item = failures[index]
        kind = item[b"kind"]
        entity = item[b"entity"]
        callback = text(item[b"callback"])
        message = text(item[b"message"])
        first_line, traceback = split_message(message)
        if kind in (b"memory", b"recursion"):
            limit = limit_type_of(kind)
            found.append(ResourceLimitExceeded(
                f"{name}: {limit} limit exceeded in {callback} ({first_line})",
                limit_type=limit, script=name, entity=entity, callback=callback,
                traceback=traceback,
            ))
        else:
            found.append(ScriptRuntimeError(
                first_line, script=name, line=error_line(first_line),
                traceback=traceback, entity=entity, callback=callback,
            ))
    return found


def with_progress(error: ScriptError, entity: int | None, callback: str | None,
                  order: list[int]) -> ScriptError:
    """A time-limit error of a batch, saying where it stopped: in a callback the batch runs
    instance by instance, how many of its instances it reached (the one running when it
    stopped included); in a task (tasks run in the order they fall due), in which entity's.
    Other errors unchanged."""
    if (not isinstance(error, ResourceLimitExceeded) or error.limit_type != "time"
            or entity is None):
        return error
    if callback == "task":
        where = f"in task of entity {entity}"
    else:
        at = bisect.bisect_left(order, entity)
        if at == len(order) or order[at] != entity:
            return error
        where = f"{at + 1} of {len(order)} instances reached"
    return type(error)(f"{error} ({where})", limit_type="time", script=error.script,
                       entity=error.entity, callback=error.callback)


def stopped_in(last: tuple[Any, ...]) -> tuple[int | None, str | None]:
    """The entity and the callback a stopped batch was running, from world.lua's
    ``last_entity`` (``(None,)`` when it could not tell)."""
    entity = last[0] if last and type(last[0]) is int else None
    callback = text(last[1]) if len(last) > 1 and last[1] is not None else None
    return entity, callback


def during_sync(error: ScriptError, count: int) -> ScriptError:
    """A time-limit error of a sync (the instance list's bookkeeping, before any callback of
    the tick ran), saying so; other errors unchanged."""
    if not isinstance(error, ResourceLimitExceeded) or error.limit_type != "time":
        return error
    return type(error)(f"{error} (while updating the list of {count} instances, before any "
                       "callback ran)", limit_type="time", script=error.script,
                       entity=error.entity, callback=error.callback)
