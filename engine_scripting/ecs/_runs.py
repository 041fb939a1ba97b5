"""ScriptRun: everything the ScriptSystem keeps for one script it runs, in one record.

A run belongs to one loaded version of the manager's record (a script unloaded and loaded again
gets a new run). The manager's record is only read here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine_scripting.ecs._bindings import WorldBindings
from engine_scripting.ecs._world_initializer import WorldEntries
from engine_scripting.errors import ScriptError
from engine_scripting.manager import ManagedScript


@dataclass(eq=False, slots=True)
class ScriptRun:
    """The system's state for one script.

    Attributes:
        record: the manager's record this run drives (read only).
        entries: its world.lua and instances.lua trampolines.
        bindings: the host functions behind its `world` API.
        version: the record's version the instances last ran (a newer one means a reload to
            adopt: ``on_reload``).
        instances: entities instances.lua holds an instance for.
        order: the same, ascending (world.lua's order).
        synced: the system's links (its grouping of entities by script, the same object
            while no link changes) the instances were last synced to (None: sync again).
        unsynced: the last sync failed: instances.lua holds the old list or the new one, so
            the next tick syncs whatever the links are.
        host_errors: failures of host functions during the current tick.
    """

    record: ManagedScript
    entries: WorldEntries
    bindings: WorldBindings
    version: int
    instances: set[int] = field(default_factory=set)
    order: list[int] = field(default_factory=list)
    synced: object = None
    unsynced: bool = False
    host_errors: list[ScriptError] = field(default_factory=list)
