"""WorldApi: the context initializer that gives scripts the `world` API (the ECS room's seam
into the manager), and WorldEntries: the per-script handle the ScriptSystem drives it with.

The Lua side is installed before the script's own code runs, so file-level code can already
refer to `world`; the ScriptSystem attaches the host side (schemas and host functions) later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine_scripting.ecs._world_api import install_world_api, world_source
from engine_scripting.engine import ScriptContext
from engine_scripting.errors import ScriptError
from engine_scripting.manager import ScriptSpec

Entry = Callable[..., tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class WorldEntries:
    """One script's world.lua and instances.lua trampolines, each behind its context's checks
    (``ScriptContext.entry``): none runs on a closed, dead or busy context.

    tick, reloaded: one batch of callbacks (arguments are plain data).
    attach: hand world.lua the schemas and host functions.
    sync: hand instances.lua the sorted instance list.
    pending_writes: the next chunk of the batch's buffered component writes.
    last_entity: the entity whose callback was running when a call stopped.
    instance_list: instances.lua's list (for tests and diagnostics).
    call: one global function for one instance, in a batch of its own (system.call; plain data).
    call_results: that function's results, converted as ``ScriptContext.call`` converts them.
    """

    tick: Entry
    reloaded: Entry
    attach: Entry
    sync: Entry
    pending_writes: Entry
    last_entity: Entry
    instance_list: Entry
    call: Entry
    call_results: Entry


@dataclass(frozen=True)
class WorldApi:
    """Gives every script the `world` API: pass it to ``ScriptManager(engine,
    initializers=[WorldApi()])`` for the scripts a ScriptSystem runs.

    Args:
        console_lines_per_tick: console lines each script may print per tick.
    """

    console_lines_per_tick: int = 20
    _source: tuple[bytes, ...] = field(default_factory=world_source, repr=False, compare=False)

    def __post_init__(self) -> None:
        lines = self.console_lines_per_tick
        if isinstance(lines, bool) or not isinstance(lines, int) or lines < 0:
            raise ValueError(f"console_lines_per_tick must be an int >= 0, not {lines!r}")

    def __call__(self, context: ScriptContext, script: ScriptSpec) -> WorldEntries:
        """Install the Lua side of `world` into ``context`` with the script's permissions."""
        raw = install_world_api(context, self._source, script.permissions,
                                self.console_lines_per_tick)
        entry = context.entry
        return WorldEntries(
            tick=entry(raw.tick, data_args=True),
            reloaded=entry(raw.reloaded, data_args=True),
            attach=entry(raw.attach, host_memory=True),
            sync=entry(raw.sync, data_args=True, host_memory=True),
            pending_writes=entry(raw.pending_writes, host_memory=True),
            last_entity=_never_raising(entry(raw.last_entity, host_memory=True)),
            instance_list=entry(raw.instance_list, host_memory=True),
            call=entry(raw.call, data_args=True),
            call_results=entry(raw.call_results, exported=True),
        )


def _never_raising(entry: Entry) -> Entry:
    """``entry`` for the error path: the system asks it while handling another error, so it
    gives ``(None,)`` instead of raising (a state filled to its limit, a slow collector step)."""
    def call(*args: object) -> tuple[Any, ...]:
        try:
            return entry(*args)
        except ScriptError:
            return (None,)

    return call
