"""The manager's records: a script's status snapshot, its mutable record, and the protocol of
context initializers (what the manager knows of the APIs installed into a script's context)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from engine_scripting.engine import ScriptContext
from engine_scripting.errors import ScriptError
from engine_scripting.permissions import Permissions


@dataclass(frozen=True, slots=True)
class ScriptStatus:
    """A snapshot of one script's state and statistics.

    Attributes:
        name: the script's name.
        enabled: whether its instances run.
        error_count: errors recorded since load (runtime errors, limit breaches, violations).
        consecutive_failures: ticks in a row in which the script failed.
        last_error: the most recent error, or None.
        disabled_reason: why it was disabled, or None while enabled.
        path: the file it was loaded from, or None.
        version: 1 at load, plus one per successful reload.
        calls: ticks in which the system ran the script.
        total_time_s: wall time the script took in those ticks (all its instances and batches).
        max_time_s: the longest of those ticks.
        memory_used: bytes its Lua state uses now.
        instances: entities running the script, as of its last tick.

    ``total_time_s / calls`` is the average time per tick.
    """

    name: str
    enabled: bool
    error_count: int
    consecutive_failures: int
    last_error: ScriptError | None
    disabled_reason: str | None
    path: str | None
    version: int
    calls: int
    total_time_s: float
    max_time_s: float
    memory_used: int
    instances: int

    @property
    def average_time_s(self) -> float:
        """Mean wall time per tick."""
        return self.total_time_s / self.calls if self.calls else 0.0


@dataclass(frozen=True, slots=True)
class ScriptSpec:
    """What a context initializer learns of the script it prepares a context for."""

    name: str
    permissions: Permissions


class ContextInitializer(Protocol):
    """Installs an API into a new script's context, before the script's own code runs.

    Called once per load with the fresh context; what it returns is kept with the script
    (``ManagedScript.installed[initializer]``) for the part of the game that drives that API.
    It raises ScriptError to refuse the load. It must be hashable (a frozen dataclass is).
    """

    def __call__(self, context: ScriptContext, script: ScriptSpec) -> object: ...


class ManagedScript:
    """The manager's record of one loaded script. Mutated only by the ScriptManager; others
    read it (``ScriptManager.running``)."""

    __slots__ = (
        "calls", "config", "consecutive_failures", "context", "disabled_reason", "enabled",
        "error_count", "installed", "instances", "last_error", "max_time_s", "modified_ns",
        "name", "path", "permissions", "source", "total_time_s", "version",
    )

    def __init__(self, name: str, context: ScriptContext,
                 installed: Mapping[ContextInitializer, object], permissions: Permissions,
                 path: Path | None, modified_ns: int | None) -> None:
        self.name = name
        self.context = context
        self.installed = installed
        self.permissions = permissions
        self.path = path
        self.modified_ns = modified_ns
        self.enabled = True
        self.error_count = 0
        self.consecutive_failures = 0
        self.last_error: ScriptError | None = None
        self.disabled_reason: str | None = None
        self.version = 1
        self.config: dict[str, object] = {}
        self.source = b""   # the code it runs now
        self.calls = 0
        self.total_time_s = 0.0
        self.max_time_s = 0.0
        self.instances = 0
