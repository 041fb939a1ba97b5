"""ScriptManager: the one store of scripts and their lifecycle (load, reload, unload, enable).

Each loaded script owns one sandboxed context (its Lua state), shared by all its instances.
Before a script's own code runs, the manager's context initializers install their APIs into the
context (the ECS room's ``WorldApi`` installs `world`); the manager knows nothing of them beyond
the ``ContextInitializer`` protocol. The manager keeps each script's status and statistics; a
processor (the ScriptSystem) reports outcomes to it and the manager decides when a script is
disabled.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine_scripting._log import get_logger
from engine_scripting.engine import ScriptEngine, ScriptResourceLimits
from engine_scripting.errors import (
    CallAbandoned,
    ScriptError,
    SecurityViolation,
)
from engine_scripting.manager._records import (
    ContextInitializer,
    ManagedScript,
    ScriptSpec,
    ScriptStatus,
)
from engine_scripting.manager._sources import config_of, read_source
from engine_scripting.manager._state import LoadedState, load_scripts, save_scripts
from engine_scripting.permissions import Permissions

_log = get_logger(__name__)
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,127}")


class ScriptManager:
    """Loads, reloads, unloads, enables and disables scripts; the only place scripts live.

    Args:
        engine: the ScriptEngine whose sandboxes run the scripts. A trusted engine runs them
            without sandbox or limits: only for engine-owned scripts and for baselines.
        initializers: what every script's context gets before its code runs, in this order;
            for a ScriptSystem, ``WorldApi()`` (the `world` API).
        max_consecutive_failures: a script that fails this many ticks in a row is disabled.
    """

    def __init__(self, engine: ScriptEngine, *,
                 initializers: Iterable[ContextInitializer] = (),
                 max_consecutive_failures: int = 10) -> None:
        if max_consecutive_failures < 1:
            raise ValueError("max_consecutive_failures must be at least 1")
        self.engine = engine
        self.initializers: tuple[ContextInitializer, ...] = tuple(initializers)
        if len(set(self.initializers)) != len(self.initializers):
            raise ValueError("an initializer is given twice")
        self.max_consecutive_failures = max_consecutive_failures
        self._scripts: dict[str, ManagedScript] = {}
        self._modules: dict[str, bytes] = {}
        self._required: dict[str, set[str]] = {}   # module -> scripts that required it
        self._processor: object = None
        self._unload_listeners: list[Callable[[str], None]] = []

    # -- lifecycle ----------------------------------------------------------------------------
    def load(self, name: str, source: str | bytes | None = None, *, path: str | Path | None = None,
             permissions: Permissions | None = None,
             limits: ScriptResourceLimits | None = None,
             config: Mapping[str, object] | None = None) -> None:
        """Compile and run a script's top-level code in a new sandbox, and store it.

        Give either ``source`` or ``path``. ``config`` (plain data, keyed by strings) is the
        script's read-only global ``config`` (an empty table without it); it survives reloads
        and ``configure`` replaces it. Raises ScriptError when the name is taken or the file
        cannot be read, ScriptArgumentError for a config that is not plain data, and the
        compile/runtime/limit errors of the top-level code; on any error nothing is stored.
        """
        if not isinstance(name, str) or not name:
            raise ScriptError("a script needs a non-empty name")
        if name in self._scripts:
            raise ScriptError(f"script {name!r} is already loaded; use reload", script=name)
        grants = permissions if permissions is not None else Permissions()
        if not isinstance(grants, Permissions):
            raise ScriptError("permissions must be a Permissions instance", script=name)
        settings = config_of(name, config)
        code, file_path, modified_ns = read_source(name, source, path)
        context = self.engine.create_context(name, limits)
        spec = ScriptSpec(name, grants)
        try:
            installed = MappingProxyType(
                {initializer: initializer(context, spec) for initializer in self.initializers})
            context.set_constant("config", settings)
            context.set_module_source(lambda module: self._module_source(name, module))
            context.execute(code)
            context.collect_garbage()  # the installed chunks are garbage: start small
        except BaseException:
            context.close()
            raise
        record = ManagedScript(name, context, installed, grants, file_path, modified_ns)
        record.config, record.source = settings, code
        self._scripts[name] = record
        _log.info("script.loaded", script=name, path=str(file_path) if file_path else None)

    def reload(self, name: str, source: str | bytes | None = None) -> None:
        """Replace a script's code, keeping its Lua state and every instance's ``self``.

        Without ``source`` the script's file is read again (a script loaded from source text
        runs its last source again). The new code runs in a fresh global
        environment that replaces the old one only if its top-level code succeeds; on failure
        the old version keeps running, the error is recorded and raised.
        """
        record = self._get(name)
        if source is None and record.path is None:
            source = record.source
        try:
            code, _, modified_ns = read_source(name, source, None if source else record.path)
            record.context.stage(code)
        except ScriptError as error:
            self._record_error(record, error)
            _log.warning("script.reload_failed", script=name, error_class=type(error).__name__,
                         message=str(error))
            if isinstance(error, SecurityViolation):
                self._disable_for(record, f"security violation: {error}")
            raise
        if source is None and modified_ns is not None:
            record.modified_ns = modified_ns
        record.version += 1
        record.source = code
        _log.info("script.reloaded", script=name, version=record.version)

    def register_module(self, name: str, source: str | bytes) -> tuple[str, ...]:
        """Let scripts ``require(name)`` this Lua source: each script state runs it once, in its
        own sandbox, and caches its value. Registering a new source for a name reloads every
        script that required the old one (so they run the new module); returns their names.
        A reload that fails keeps that script's old version and records the error."""
        if not isinstance(name, str) or not _MODULE_NAME.fullmatch(name):
            raise ScriptError(f"a module name is letters, digits, '_' and '.', not {name!r}")
        code, _, _ = read_source(name, source, None)
        if code.startswith(b"\x1b"):
            raise ScriptError(f"module {name!r}: binary chunks are not allowed")
        replaced = name in self._modules
        self._modules[name] = code
        if not replaced:
            return ()
        reloaded = []
        for script in sorted(self._required.get(name, ())):
            if script not in self._scripts:
                continue
            try:
                self.reload(script)
            except ScriptError:
                continue
            reloaded.append(script)
        return tuple(reloaded)

    def configure(self, name: str, config: Mapping[str, object]) -> None:
        """Replace the script's read-only ``config`` global (its instances see the new one from
        their next callback on). Raises ScriptArgumentError for a config that is not plain data;
        the old config then stays."""
        record = self._get(name)
        if record.context.running:
            raise ScriptError(f"cannot configure {name!r} while it runs", script=name)
        settings = config_of(name, config)
        record.context.set_constant("config", settings)
        record.config = settings
        _log.debug("script.configured", script=name)

    def config(self, name: str) -> Mapping[str, object]:
        """The script's current config (a read-only view)."""
        return MappingProxyType(self._get(name).config)

    def unload(self, name: str) -> None:
        """Remove a script and free its Lua state. Entities still linked to it stop running."""
        record = self._scripts.get(name)
        if record is None:
            raise ScriptError(f"no script named {name!r}", script=name)
        if record.context.running:
            raise ScriptError(f"cannot unload {name!r} while it runs (unload it after the call)",
                              script=name)
        del self._scripts[name]
        record.context.close()
        for listener in self._unload_listeners:
            listener(name)
        _log.info("script.unloaded", script=name)

    def close(self) -> None:
        """Unload every script (their Lua states are freed). The engine stays open."""
        for name in list(self._scripts):
            self.unload(name)

    def __enter__(self) -> ScriptManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def enable(self, name: str) -> None:
        """Let a script's instances run again; clears its consecutive-failure count."""
        record = self._get(name)
        record.enabled = True
        record.disabled_reason = None
        record.consecutive_failures = 0

    def disable(self, name: str, reason: str = "disabled by the host") -> None:
        """Stop a script's instances from running (they keep their state)."""
        record = self._get(name)
        record.enabled = False
        record.disabled_reason = reason
        _log.info("script.disabled", script=name, reason=reason)

    # -- queries ------------------------------------------------------------------------------
    def status(self, name: str) -> ScriptStatus:
        """A snapshot of the script's state and statistics."""
        record = self._get(name)
        return ScriptStatus(
            name=record.name, enabled=record.enabled, error_count=record.error_count,
            consecutive_failures=record.consecutive_failures, last_error=record.last_error,
            disabled_reason=record.disabled_reason,
            path=str(record.path) if record.path else None, version=record.version,
            calls=record.calls, total_time_s=record.total_time_s, max_time_s=record.max_time_s,
            memory_used=record.context.memory_used, instances=record.instances,
        )

    def statuses(self) -> tuple[ScriptStatus, ...]:
        """Every script's status, in load order: the per-script profile of the game."""
        return tuple(self.status(name) for name in self._scripts)

    def names(self) -> tuple[str, ...]:
        """Loaded script names, in load order."""
        return tuple(self._scripts)

    def __contains__(self, name: object) -> bool:
        return name in self._scripts

    def permissions(self, name: str) -> Permissions:
        """The grants the script was loaded with."""
        return self._get(name).permissions

    def changed_files(self) -> tuple[str, ...]:
        """Scripts loaded from files whose modification time changed since they were read."""
        changed = []
        for record in self._scripts.values():
            if record.path is None:
                continue
            try:
                modified_ns = os.stat(record.path).st_mtime_ns
            except OSError:
                continue
            if modified_ns != record.modified_ns:
                changed.append(record.name)
        return tuple(changed)

    def reload_changed(self) -> tuple[str, ...]:
        """Reload every script whose file changed (hot reload); return the names reloaded.

        A failed reload keeps the old version running and records the error; the same file
        version is not tried again.
        """
        reloaded = []
        for name in self.changed_files():
            record = self._scripts[name]
            try:
                self.reload(name)
            except ScriptError:
                assert record.path is not None
                try:
                    record.modified_ns = os.stat(record.path).st_mtime_ns
                except OSError:
                    record.modified_ns = None
                continue
            reloaded.append(name)
        return tuple(reloaded)

    # -- save and load (manager/_state.py; docs/scripting.md "Save and load") ------------------
    def save_state(self) -> dict[str, Any]:
        """Every enabled script's state (its instances' ``on_save`` results or fields) as JSON
        data; the first failure raises (SaveDataError, ScriptRuntimeError, ...): no partial
        state. A security violation in a script's ``on_save`` also disables that script."""
        try:
            return save_scripts(self._scripts.values(), self.initializers)
        except SecurityViolation as error:
            record = self._scripts.get(error.script or "")
            if record is not None:
                self._record_error(record, error)
                self._disable_for(record, f"security violation: {error}")
            raise

    def load_state(self, state: object, entity_map: Mapping[Any, int] | None = None
                   ) -> LoadedState:
        """Hand each instance its saved data before its next ``on_update`` (``entity_map``:
        saved entity id -> new id). Checks everything first: bad input raises and changes
        nothing. Scripts of the state not loaded here are skipped (``LoadedState.skipped``)."""
        return load_scripts(self._scripts, self.initializers, state, entity_map)

    # -- for the ScriptSystem -----------------------------------------------------------------
    def claim(self, processor: object) -> None:
        """Make ``processor`` the one that runs this manager's scripts; raises ScriptError when
        another already does (two would run every script twice per tick)."""
        if self._processor is not None and self._processor is not processor:
            raise ScriptError("this ScriptManager already serves a ScriptSystem")
        self._processor = processor

    def on_unload(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(name)`` whenever a script is unloaded (the system drops its state)."""
        self._unload_listeners.append(listener)

    def running(self, name: str) -> ManagedScript | None:
        """The record of a loaded script, or None. For the ScriptSystem only."""
        return self._scripts.get(name)

    def record_time(self, record: ManagedScript, elapsed_s: float) -> None:
        """Count one tick of the script and its wall time."""
        record.calls += 1
        record.total_time_s += elapsed_s
        if elapsed_s > record.max_time_s:
            record.max_time_s = elapsed_s

    def record_tick(self, record: ManagedScript, errors: list[ScriptError],
                    instances: int) -> None:
        """Record one tick's outcome (its errors, or a clean tick) and its instance count.

        A security violation disables the script at once; ``max_consecutive_failures`` failing
        ticks in a row disable it too.
        """
        record.instances = instances
        if not errors:
            record.consecutive_failures = 0
            return
        for error in errors:
            self._record_error(record, error)
        violation = next((e for e in errors if isinstance(e, SecurityViolation)), None)
        if violation is not None:
            self._disable_for(record, f"security violation: {violation}")
            return
        abandoned = next((e for e in errors if isinstance(e, CallAbandoned)), None)
        if abandoned is not None:
            self._disable_for(record, str(abandoned))
            return
        record.consecutive_failures += 1
        if record.consecutive_failures >= self.max_consecutive_failures:
            self._disable_for(
                record, f"failed {record.consecutive_failures} ticks in a row: {errors[-1]}"
            )

    # -- internals ----------------------------------------------------------------------------
    def _get(self, name: str) -> ManagedScript:
        record = self._scripts.get(name)
        if record is None:
            raise ScriptError(f"no script named {name!r}", script=name)
        return record

    def _module_source(self, script: str, module: str) -> bytes | None:
        code = self._modules.get(module)
        if code is not None:
            self._required.setdefault(module, set()).add(script)
        return code

    def _record_error(self, record: ManagedScript, error: ScriptError) -> None:
        record.error_count += 1
        record.last_error = error.with_context(script=record.name).detached()

    def _disable_for(self, record: ManagedScript, reason: str) -> None:
        if record.enabled:
            record.enabled = False
            record.disabled_reason = reason
            _log.warning("script.disabled", script=record.name, reason=reason)
