"""The Lua side of the ECS API: installs its chunks into a script's context and returns their
raw entry points (``WorldApi`` in _world_initializer.py wraps them for the host).

checks.lua holds the checks that depend only on the caps; batch.lua the batch cache (the Lua
side of _batch.py); instances.lua the instance list and the lifecycle calls owed (the system
hands it the list with ``sync``); query.lua world.query/within/nearest and the query store (the
Lua side of _query.py and _spatial.py); saves.lua the instances' save and load (the Lua side
of _saves.py); tasks.lua the `task` global (tasks and timers, run
by world.lua's tick); world.lua the `world` global and `print` for script code and the
trampolines the ScriptSystem calls each tick. The caps and the wire protocol's
status codes are defined here and in _batch.py, once, and passed to Lua at install.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from engine_scripting.ecs._batch import DONE, HOST_FAILURE, MISSING, UNKNOWN_ENTITY
from engine_scripting.ecs._events import EVERY_INSTANCE
from engine_scripting.ecs._query import MAX_NAMES, QUERY_CAPS
from engine_scripting.ecs._saves import SAVE_CAPS
from engine_scripting.ecs._spatial import MAX_RESULTS
from engine_scripting.engine import ScriptContext, compile_chunk
from engine_scripting.permissions import Permissions

# Caps on what scripts hand to the world API. Larger values get a Lua error.
WORLD_CAPS = MappingProxyType({
    "max_text": 4096,            # bytes in a str field or a payload string
    "max_payload_items": 1024,   # table entries in one event payload, all levels together
    "max_payload_depth": 8,      # nested tables in one event payload
    "max_print": 1024,           # bytes in one console line
    "max_lines": 20,             # console lines per script per tick
    "max_query_components": MAX_NAMES,      # names in one world.query/within/nearest
    "max_spatial_results": MAX_RESULTS,     # entities one world.within returns
    "max_tasks": 10_000,         # live tasks per script (task.spawn/delay beyond: a Lua error)
})


def world_source() -> tuple[bytes, ...]:
    """checks.lua, batch.lua, instances.lua, world.lua, query.lua, saves.lua and tasks.lua,
    precompiled (once by each ScriptManager); ``install_world_api`` installs world.lua last."""
    return (compile_chunk("ecs/lua/checks.lua", "checks"),
            compile_chunk("ecs/lua/batch.lua", "batch"),
            compile_chunk("ecs/lua/instances.lua", "instances"),
            compile_chunk("ecs/lua/world.lua", "world"),
            compile_chunk("ecs/lua/query.lua", "query"),
            compile_chunk("ecs/lua/saves.lua", "saves"),
            compile_chunk("ecs/lua/tasks.lua", "tasks"))


@dataclass(frozen=True, slots=True)
class WorldTrampolines:
    """The trampolines world.lua and instances.lua returned for one context (raw Lua
    functions; the host calls them only through ``ScriptContext.entry``)."""

    tick: Any
    reloaded: Any
    attach: Any
    last_entity: Any
    instance_list: Any
    pending_writes: Any
    sync: Any
    call: Any
    call_results: Any
    save: Any
    last_saved: Any
    stage: Any
    commit: Any
    discard: Any
    task_count: Any   # tasks.lua's `live` table (a count, not a function: see live_task_counter)


def lua_grants(permissions: Permissions) -> dict[str, object]:
    """``permissions`` as the plain data world.lua (and any chunk that checks grants) reads:
    ``read`` and ``templates``, lists of names; ``write``, component name -> true (every field)
    or a list of field names; ``emit``, event name -> the scope of its targets ("self" or
    "any"); ``read_scope`` and ``write_scope``, "self" or "any"; ``spawn``, ``destroy``, bools.
    """
    return {
        "read": sorted(permissions.read), "templates": sorted(permissions.templates),
        "write": {name: True if fields is None else sorted(fields)
                  for name, fields in permissions.write.items()},
        "emit": dict(permissions.emit), "read_scope": permissions.read_scope,
        "write_scope": permissions.write_scope, "spawn": permissions.spawn,
        "destroy": permissions.destroy,
    }


def install_world_api(
    context: ScriptContext, source: tuple[bytes, ...], permissions: Permissions,
    lines_per_tick: int, on_dropped: Callable[..., object] | None = None,
) -> WorldTrampolines:
    """Install checks.lua, batch.lua, instances.lua and world.lua (``world_source()``) into
    ``context`` with ``permissions``; return their trampolines. ``on_dropped`` is the host
    function saves.lua calls for loaded data it drops (_saves.py ``dropped_reporter``)."""
    grants = context.lua_value(lua_grants(permissions))
    caps = context.lua_value({**WORLD_CAPS, "max_lines": lines_per_tick, "status": {
        "done": DONE, "missing": MISSING, "unknown_entity": UNKNOWN_ENTITY,
        "host_failure": HOST_FAILURE, "every_instance": EVERY_INSTANCE}, "query": dict(QUERY_CAPS)})
    checks: Any = context.install(source[0], "checks", caps)
    batch: Any = context.install(source[1], "batch", caps)
    roster: Any = context.install(source[2], "instances")
    saves: Any = context.install(source[5], "saves", context.lua_value(dict(SAVE_CAPS)), roster,
                                 context.gated(on_dropped or (lambda *_: None)), checks)
    query: Any = context.install(source[4], "query", grants, caps, batch)
    tasks: Any = context.install(source[6], "tasks", caps, roster, checks)
    control: Any = context.install(source[3], "world", grants, caps, roster, checks, batch,
                                   query, saves, tasks)
    return WorldTrampolines(
        tick=control[b"tick"], reloaded=control[b"reloaded"],
        attach=control[b"attach"], last_entity=control[b"last_entity"],
        instance_list=roster[b"instance_list"], pending_writes=control[b"pending_writes"],
        sync=roster[b"sync"], call=control[b"call"], call_results=control[b"call_results"],
        save=saves[b"save"], last_saved=saves[b"last_saved"], stage=saves[b"stage"],
        commit=saves[b"commit"], discard=saves[b"discard"], task_count=tasks[b"live"],
    )


def live_task_counter(context: ScriptContext, task_count: Any) -> Callable[[], int]:
    """How many tasks the script has alive, read from tasks.lua's count table without a call
    (no Lua code runs, nothing is allocated in the state): for the host between calls, or from
    a host function of the script's own call. 0 once the context is closed or dead."""
    def live_tasks() -> int:
        if context.closed or context.dead:
            return 0
        return int(task_count[1])

    return live_tasks

