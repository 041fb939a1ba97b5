"""WorldApi: the context initializer that gives scripts the `world` API (the ECS room's seam
into the manager), and WorldEntries: the per-script handle the ScriptSystem drives it with.

The Lua side is installed before the script's own code runs, so file-level code can already
refer to `world`; the ScriptSystem attaches the host side (schemas and host functions) later.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine_scripting.ecs._saves import (
    CheckedInstances,
    StagedInstances,
    check_instances,
    dropped_reporter,
    save_instances,
    stage_instances,
)
from engine_scripting.ecs._world_api import (
    install_world_api,
    live_task_counter,
    world_source,
)
from engine_scripting.engine import ScriptContext
from engine_scripting.errors import ScriptError
from engine_scripting.manager import ScriptSpec

Entry = Callable[..., tuple[Any, ...]]


class IdleFlag:
    """Whether a script has nothing to do until the host brings something new (see
    ``WorldEntries.idle``); False until a tick says otherwise."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = False


@dataclass(frozen=True, slots=True)
class WorldEntries:
    """One script's world.lua and instances.lua trampolines, each behind its context's checks
    (``ScriptContext.entry``): none runs on a closed, dead or busy context.

    tick, reloaded: one batch of callbacks (arguments are plain data).
    plain_tick: ``tick`` without events: (dt, tick number, None, None), the hottest call (a
        plain entry, see engine/_entries.py).
    attach: hand world.lua the schemas and host functions.
    sync: hand instances.lua the sorted instance list.
    pending_writes: the next chunk of the batch's buffered component writes.
    last_entity: the entity whose callback was running when a call stopped.
    instance_list: instances.lua's list (for tests and diagnostics).
    call: one global function for one instance, in a batch of its own (system.call; plain data).
    call_results: that function's results, converted as ``ScriptContext.call`` converts them.
    save, last_saved, stage, commit, discard: saves.lua's (see _saves.py).
    live_tasks: how many tasks (task.spawn/delay) the script has alive; reads a count, runs no
        Lua (``live_task_counter``): a cheap check for the host between calls.
    idle: whether the script's last call was a whole tick after which it has nothing to do
        until the host brings something new (world.lua's tick says so): the system skips it
        then. Every other call that runs script code (call, save, commit) clears it.
    """

    tick: Entry
    plain_tick: Entry
    reloaded: Entry
    attach: Entry
    sync: Entry
    pending_writes: Entry
    last_entity: Entry
    instance_list: Entry
    call: Entry
    call_results: Entry
    save: Entry
    last_saved: Entry
    stage: Entry
    commit: Entry
    discard: Entry
    live_tasks: Callable[[], int]
    idle: IdleFlag


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
                                self.console_lines_per_tick, dropped_reporter(script.name))
        entry = context.entry
        idle = IdleFlag()
        return WorldEntries(
            tick=entry(raw.tick, data_args=True),
            plain_tick=entry(raw.tick, plain_args=True),
            reloaded=entry(raw.reloaded, data_args=True),
            attach=entry(raw.attach, host_memory=True),
            sync=entry(raw.sync, data_args=True, host_memory=True),
            pending_writes=entry(raw.pending_writes, host_memory=True),
            last_entity=_never_raising(entry(raw.last_entity, host_memory=True)),
            instance_list=entry(raw.instance_list, host_memory=True),
            call=_waking(entry(raw.call, data_args=True), idle),
            call_results=entry(raw.call_results, exported=True),
            save=_waking(entry(raw.save), idle),
            last_saved=entry(raw.last_saved, host_memory=True),
            stage=entry(raw.stage, data_args=True),
            commit=_waking(entry(raw.commit, host_memory=True), idle),
            discard=entry(raw.discard, host_memory=True),
            live_tasks=live_task_counter(context, raw.task_count), idle=idle,
        )

    # The manager's SavesState protocol: save_state/load_state (see _saves.py)
    @property
    def state_key(self) -> str:
        """The key of its part of each script's saved state: the instances' data."""
        return "instances"

    def save_part(self, handle: WorldEntries, context: ScriptContext) -> dict[str, Any]:
        """The data of the script's instances, keyed by entity id (``save_instances``)."""
        limits = context.limits   # None: an unlimited (trusted) context
        return save_instances(handle.save, handle.last_saved, context.name,
                              math.inf if limits is None else limits.max_execution_time_s)

    def check_part(self, part: object, id_map: Mapping[int, int]) -> CheckedInstances:
        """The instances' data of a state, checked (``check_instances``)."""
        return check_instances(part, id_map)

    def stage_part(self, handle: WorldEntries, context: ScriptContext,
                   checked: CheckedInstances) -> StagedInstances:
        """Checked data, staged in the script's state (``stage_instances``)."""
        return stage_instances(handle.stage, handle.commit, handle.discard, context, checked)


def _waking(entry: Entry, idle: IdleFlag) -> Entry:
    """``entry``, clearing the idle flag after it (also when it fails): it ran script code."""
    def call(*args: object) -> tuple[Any, ...]:
        try:
            return entry(*args)
        finally:
            idle.value = False

    return call


def _never_raising(entry: Entry) -> Entry:
    """``entry`` for the error path: the system asks it while handling another error, so it
    gives ``(None,)`` instead of raising (a state filled to its limit, a slow collector step)."""
    def call(*args: object) -> tuple[Any, ...]:
        try:
            return entry(*args)
        except ScriptError:
            return (None,)

    return call
