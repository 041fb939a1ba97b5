"""The Lua-facing ECS API: installs world.lua into a script's context and names its entry points.

world.lua defines the `world` global and `print` for script code and the trampolines the
ScriptSystem calls each tick; instances.lua, installed just before it, keeps the instance list
and the lifecycle calls owed (the system hands it the list with ``sync``). The manager installs
them before a script's own code runs, so file-level code can already refer to `world`; the
system attaches the host side later.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from engine_scripting.ecs._batch import DONE, HOST_FAILURE, MISSING, UNKNOWN_ENTITY
from engine_scripting.ecs._events import EVERY_INSTANCE
from engine_scripting.engine._context import ScriptContext
from engine_scripting.engine._engine import compile_chunk
from engine_scripting.permissions import Permissions

# Caps on what scripts hand to the world API. Larger values get a Lua error.
WORLD_CAPS = MappingProxyType({
    "max_text": 4096,            # bytes in a str field or a payload string
    "max_payload_items": 1024,   # table entries in one event payload, all levels together
    "max_payload_depth": 8,      # nested tables in one event payload
    "max_print": 1024,           # bytes in one console line
    "max_lines": 20,             # console lines per script per tick
})


def world_source() -> tuple[bytes, bytes]:
    """instances.lua and world.lua, precompiled (once by each ScriptManager)."""
    return (compile_chunk("ecs/lua/instances.lua", "instances"),
            compile_chunk("ecs/lua/world.lua", "world"))


@dataclass(frozen=True, slots=True)
class WorldApi:
    """The trampolines world.lua and instances.lua returned for one context (raw Lua
    functions)."""

    tick: Any
    reloaded: Any
    attach: Any
    last_entity: Any
    instance_list: Any
    pending_writes: Any
    sync: Any


def install_world_api(
    context: ScriptContext, source: tuple[bytes, bytes], permissions: Permissions,
    lines_per_tick: int,
) -> WorldApi:
    """Install instances.lua and world.lua (``world_source()``) into ``context`` with
    ``permissions``; return their trampolines."""
    grants = context.lua_value({
        "read": sorted(permissions.read), "write": sorted(permissions.write),
        "emit": sorted(permissions.emit), "scope": permissions.scope,
        "spawn": permissions.spawn, "destroy": permissions.destroy,
    })
    caps = context.lua_value({**WORLD_CAPS, "max_lines": lines_per_tick, "status": {
        "done": DONE, "missing": MISSING, "unknown_entity": UNKNOWN_ENTITY,
        "host_failure": HOST_FAILURE, "every_instance": EVERY_INSTANCE}})
    roster: Any = context.install(source[0], "instances")
    control: Any = context.install(source[1], "world", grants, caps, roster)
    return WorldApi(
        tick=control[b"tick"], reloaded=control[b"reloaded"],
        attach=control[b"attach"], last_entity=control[b"last_entity"],
        instance_list=roster[b"instance_list"], pending_writes=control[b"pending_writes"],
        sync=roster[b"sync"],
    )
