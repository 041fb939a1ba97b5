"""ScriptSystem: the esper Processor that runs script instances each tick.

Uses the ScriptManager's records (scripts live only there), world.lua's trampolines (one call
per script per tick runs all its instances) and WorldBindings (the host side of `world`).

One tick, in order:
1. the resource entity (Console and EventQueue) is found or created in the current world;
2. scripts whose files changed are reloaded (every ``hot_reload_interval_s``);
3. entities with a Script component are grouped by script name;
4. for each enabled script, in load order: if its entities changed, a sync (``_sync``) that
   queues ``on_destroy`` for ended instances and ``on_start`` for new ones; ``on_reload`` if a
   reload was adopted; then in one batch: the events queued during the previous tick
   (``on_event``), the queued ``on_destroy`` and ``on_start`` calls (also those a stopped tick
   left) and ``on_update`` for all; the batch's buffered component writes are then applied;
5. each script's outcome is recorded in the manager, logged, and errors go to the console.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import esper
import lupa.lua54 as lua54
import structlog

from engine_scripting.ecs._bindings import REFUSED, WorldBindings
from engine_scripting.ecs._components import (
    Console,
    ConsoleLevel,
    ConsoleMessage,
    EventQueue,
    Script,
    ScriptEvent,
)
from engine_scripting.ecs._events import route
from engine_scripting.ecs._schema import ComponentSchema, build_schemas
from engine_scripting.ecs._world_api import WORLD_CAPS
from engine_scripting.engine._context import abandon_open_calls
from engine_scripting.engine._outcome import instance_errors
from engine_scripting.engine._runner import Worker
from engine_scripting.errors import (
    ScriptError,
    ScriptRuntimeError,
)
from engine_scripting.manager._manager import ManagedScript, ScriptManager

_log = structlog.get_logger(__name__)
_CONSOLE_LINE = WORLD_CAPS["max_print"]


class ScriptSystem(esper.Processor):
    """Runs the scripts of a ScriptManager on the entities that carry a ``Script`` component.

    Args:
        manager: the store of scripts. One manager serves one system.
        components: dataclass component types scripts may see, by class name.
        console_maxlen: how many messages the world's Console keeps.
        event_queue_maxlen: how many events may wait for delivery; emit fails beyond it.
        max_spawns_per_tick: entities one script may spawn per tick.
        max_logged_errors: errors logged per script per tick; the rest are counted in one event
            (all of them are recorded in the manager's status).
        hot_reload_interval_s: how often scripts loaded from files are checked for changes
            (between ticks); None turns hot reload off.
        profiling: time each script's tick (the stats in ``ScriptManager.status``). It costs
            two clock reads per script and tick, so it is on by default.
    """

    def __init__(
        self,
        manager: ScriptManager,
        components: Iterable[type] = (),
        *,
        console_maxlen: int = 1000,
        event_queue_maxlen: int = 1024,
        max_spawns_per_tick: int = 64,
        max_logged_errors: int = 5,
        hot_reload_interval_s: float | None = 0.5,
        profiling: bool = True,
    ) -> None:
        if getattr(manager, "system", None) is not None:
            raise ScriptError("this ScriptManager already serves a ScriptSystem")
        manager.system = self
        manager.on_unload(self._forget)
        self.manager = manager
        self.schemas: tuple[ComponentSchema, ...] = build_schemas(tuple(components))
        self.max_spawns_per_tick = max_spawns_per_tick
        self.max_logged_errors = max_logged_errors
        self.hot_reload_interval_s = hot_reload_interval_s
        self.profiling = profiling
        self._next_reload_check = 0.0
        self._console_maxlen = console_maxlen
        self._queue_maxlen = event_queue_maxlen
        self._schema_spec = {
            schema.name: {"index": schema.index, "fields": list(schema.fields),
                          "kinds": list(schema.kinds), "required": sorted(schema.required)}
            for schema in self.schemas
        }
        self.tick = 0
        self._resource_entity: int | None = None
        self._console: Console | None = None
        self._queue: EventQueue | None = None
        self._bindings: dict[str, WorldBindings] = {}
        self._attached: dict[str, ManagedScript] = {}
        self._instances: dict[str, set[int]] = {}       # instances per script (instances.lua's)
        self._order: dict[str, list[int]] = {}          # the same, ascending (world.lua's order)
        self._synced: dict[str, object] = {}            # links list each script last synced to
        self._unsynced: set[str] = set()                # scripts whose last sync failed
        self._links: dict[str, list[int]] = {}
        self._links_source: object = None
        self._host_errors: dict[str, list[ScriptError]] = {}
        self._unknown_reported: set[str] = set()

    # -- the tick -----------------------------------------------------------------------------
    def process(self, dt: float = 0.0) -> None:
        """Run one tick of every enabled script (see the module docstring for the order)."""
        if isinstance(dt, bool) or not isinstance(dt, int | float) or not math.isfinite(dt):
            raise ValueError(f"dt must be a finite number, not {dt!r}")
        self.tick += 1
        self._find_resources()
        if self.hot_reload_interval_s is not None:
            now = time.monotonic()
            if now >= self._next_reload_check:
                self._next_reload_check = now + self.hot_reload_interval_s
                self.manager.reload_changed()
        # esper returns the same cached list until the world's structure changes: then links are
        # as last tick and no script has instances to start or end
        source = esper.get_component(Script)
        if source is not self._links_source:
            links: dict[str, list[int]] = {}
            for entity, link in source:
                links.setdefault(link.name, []).append(entity)
            self._links, self._links_source = links, source
        links = self._links
        deliveries = self._route(self._queue.take() if self._queue else [], links)
        records = [record for name in self.manager.names()
                   if (record := self.manager.running(name)) is not None and record.enabled]

        def run(record: ManagedScript) -> None:
            if self.manager.running(record.name) is not record:
                return  # unloaded by host code earlier in this tick
            self._run_script(record, links.get(record.name, ()), deliveries.get(record.name),
                             float(dt), source)

        runner = self.manager.engine.runner
        if runner is None:
            for record in records:
                run(record)
        else:
            runner.run_each(records, run, self._abandoned)
        for name in links:
            if name not in self.manager and name not in self._unknown_reported:
                self._unknown_reported.add(name)
                _log.warning("script.unknown", script=name, entities=len(links[name]))

    def _run_script(self, record: ManagedScript, entities: Iterable[int],
                    deliveries: tuple[list[object], list[int]] | None, dt: float,
                    source: object) -> None:
        if not record.enabled:
            return
        started = time.perf_counter() if self.profiling else 0.0
        name, api = record.name, record.api
        if self._attached.get(name) is not record:
            try:
                self._attach(record)
            except ScriptError as error:  # e.g. the script's top-level code filled its time
                self._report(record, [error])
                self.manager.record_tick(record, [error], 0)
                return
        bindings = self._bindings[name]
        bindings.spawned_this_tick = 0
        errors: list[ScriptError] = []
        if self._synced.get(name) is source or self._sync(record, entities, source, errors):
            bindings.batch.start_batch(self._order[name])
            if record.reload_pending:
                record.reload_pending = False
                self._call(record, api.reloaded, errors, self.tick)
            events, targets = deliveries if deliveries else (None, None)
            if self._attached.get(name) is record:  # not unloaded by host code in on_reload
                # plain data: the context converts it inside the watched call (ScriptContext.invoke)
                self._call(record, api.tick, errors, dt, self.tick, events, targets)
        errors.extend(self._host_errors.pop(name, ()))
        if self.profiling:
            self.manager.record_time(record, time.perf_counter() - started)
        self._report(record, errors)
        self.manager.record_tick(record, errors, len(self._instances.get(name, ())))

    def _sync(self, record: ManagedScript, entities: Iterable[int], source: object,
              errors: list[ScriptError]) -> bool:
        """Hand instances.lua the script's sorted instance list if it changed, in a watched call
        of its own with the memory limit lifted. All or nothing: after a failure instances.lua
        holds the old list or the new one; the tick is skipped (False), the next one syncs."""
        name = record.name
        wanted = set(entities)
        if wanted != self._instances[name] or name in self._unsynced:
            order = sorted(wanted)
            try:
                record.context.invoke(record.api.sync, order, data_args=True, host_memory=True)
            except ScriptError as error:
                self._unsynced.add(name)
                self._synced.pop(name, None)
                errors.append(error.with_context(script=name))
                return False
            self._unsynced.discard(name)
            self._instances[name], self._order[name] = wanted, order
        self._synced[name] = source
        return True

    def _call(self, record: ManagedScript, function: Any, errors: list[ScriptError],
              *args: object) -> None:
        """One batch call into the script's context. ``args`` are plain data (the context
        converts them inside the watched call). The batch's buffered component writes are
        written back after it, also after a stop."""
        context = record.context
        try:
            result = context.invoke(function, *args, data_args=True)
        except ScriptError as error:
            entity = record.api.last_entity() if not (context.closed or context.dead) else None
            errors.append(error.with_context(script=record.name, entity=entity))
            self._write_back(record, None, errors)
            return
        # not in a `finally`: an abandoned call unwinds its worker past this (_runner.py)
        if len(result) > 1:  # nothing after the errors: nothing was written
            self._write_back(record, result[1:], errors)
        if result and result[0] is not None:
            errors.extend(instance_errors(record.name, result[0]))

    def _write_back(self, record: ManagedScript, chunk: tuple[Any, ...] | None,
                    errors: list[ScriptError]) -> None:
        """Apply the batch's buffered component writes to the world: ``chunk`` is the first
        (world.lua's ``pending_writes``: more, index, fields, count, first, values...), or None
        when the batch stopped before returning it; further chunks are taken with watched
        calls."""
        bindings = self._bindings[record.name]
        context = record.context
        try:
            if chunk is None:
                if context.closed or context.dead:
                    return
                chunk = context.invoke(record.api.pending_writes, host_memory=True)
            while chunk:
                bindings.batch.write_back(int(chunk[1]), int(chunk[2]), int(chunk[3]),
                                          int(chunk[4]), chunk[5:])
                chunk = (context.invoke(record.api.pending_writes, host_memory=True)
                         if chunk[0] else ())
        except (ScriptError, lua54.LuaError) as error:
            bindings.batch.forget_mirrors()
            errors.append(ScriptRuntimeError(
                f"{record.name}: writing back component changes failed: {error}",
                script=record.name,
            ))

    def _abandoned(self, record: ManagedScript, worker: Worker) -> None:
        """On the host's thread: the worker running ``record``'s tick was abandoned, stuck in a
        C function. Its context is dead; the script is disabled and forgotten here."""
        error = abandon_open_calls(worker, record.context)
        self._report(record, [error])
        self.manager.record_tick(record, [error], 0)
        self._forget(record.name)

    def _report(self, record: ManagedScript, errors: list[ScriptError]) -> None:
        for index, error in enumerate(errors):
            if index < self.max_logged_errors:
                _log.error("script.error", script=record.name, entity=error.entity,
                           callback=error.callback, error_class=type(error).__name__,
                           message=str(error), line=error.line, traceback=error.traceback)
            if index < self._console_maxlen:
                line = f"{type(error).__name__}: {str(error).partition(chr(10))[0]}"
                if len(line) > _CONSOLE_LINE:   # cut as world.lua cuts printed lines
                    line = line[:_CONSOLE_LINE] + "..."
                self.console_write(record.name, error.entity, line, "error")
        if len(errors) > self.max_logged_errors:
            _log.error("script.errors_not_logged", script=record.name,
                       count=len(errors) - self.max_logged_errors, tick=self.tick)

    def _attach(self, record: ManagedScript) -> None:
        bindings = WorldBindings(self, record.name, self.schemas)
        if record.context.limits is not None:
            bindings.max_event_bytes = record.context.limits.max_memory_bytes
        context = record.context
        functions = (context.gated(function, refused)
                     for function, refused in zip(bindings.functions(), REFUSED, strict=True))
        context.invoke(record.api.attach, context.lua_value(self._schema_spec), *functions,
                       host_memory=True)
        self._bindings[record.name] = bindings
        self._attached[record.name] = record
        self._instances[record.name] = set()
        self._order[record.name] = []
        self._synced.pop(record.name, None)
        self._unsynced.discard(record.name)

    def _forget(self, name: str) -> None:
        """Drop everything the system keeps for a script (the manager unloaded it)."""
        self._attached.pop(name, None)
        self._bindings.pop(name, None)
        self._instances.pop(name, None)
        self._order.pop(name, None)
        self._synced.pop(name, None)
        self._unsynced.discard(name)
        self._host_errors.pop(name, None)

    def _route(self, events: list[ScriptEvent],
               links: dict[str, list[int]]) -> dict[str, tuple[list[object], list[int]]]:
        """Per script: the events its instances receive, within its allowance (_events.py);
        a script that missed some hears of it on the console."""
        if not events:
            return {}
        routed, dropped = route(events, links, self._event_allowance, self._fan_out)
        for name, count in dropped.items():
            self.console_write(name, None, f"{count} events not delivered: they would take more"
                               " than half the script's memory limit", "warning")
        return routed

    def _fan_out(self, name: str) -> int:
        """Bytes one script's events may convert into all receivers per tick (host work)."""
        limits = (record := self.manager.running(name)) and record.context.limits
        return limits.max_memory_bytes // 8 if limits else 1 << 62

    def _event_allowance(self, name: str) -> int:
        """What this tick's deliveries may add to a script's state: half its memory limit,
        less what it uses already."""
        record = self.manager.running(name)
        if record is None or record.context.closed or record.context.dead:
            return 0
        limits = record.context.limits
        if limits is None:
            return 1 << 62
        return max(0, limits.max_memory_bytes // 2 - record.context.memory_used)

    # -- resources ----------------------------------------------------------------------------
    def _find_resources(self) -> None:
        entity = self._resource_entity
        if entity is None or not esper.entity_exists(entity):
            existing = esper.get_component(Console)
            if existing:
                entity = existing[0][0]
            else:
                entity = esper.create_entity(Console(self._console_maxlen))
            self._resource_entity = entity
        self._console = esper.component_for_entity(entity, Console)
        queue = esper.try_component(entity, EventQueue)
        if queue is None:
            queue = EventQueue(self._queue_maxlen)
            esper.add_component(entity, queue)
        self._queue = queue

    @property
    def console(self) -> Console:
        """The Console of the current world (created when missing)."""
        self._find_resources()
        assert self._console is not None
        return self._console

    # -- for WorldBindings --------------------------------------------------------------------
    def is_script_entity(self, entity: object) -> bool:
        """Whether scripts may address ``entity``: it exists and is not the resource entity."""
        return (type(entity) is int and entity != self._resource_entity
                and esper.entity_exists(entity))

    def console_write(self, script: str, entity: int | None, text: str,
                      level: ConsoleLevel) -> None:
        """Append one message to the console of the world being processed."""
        if self._console is None:
            self._find_resources()
        assert self._console is not None
        self._console.append(ConsoleMessage(script, entity, text, level, self.tick))

    def queue_event(self, event: ScriptEvent, *, size: int = 0,
                    max_bytes: int | None = None) -> bool:
        """Queue an event for the next tick; False when the queue is full. The world API
        passes ``size`` and ``max_bytes`` for a script's event (see EventQueue.offer)."""
        if self._queue is None:
            self._find_resources()
        assert self._queue is not None
        return self._queue.offer(event, size=size, max_bytes=max_bytes)

    def spawn_check(self, spawner: str, script: str) -> str | None:
        """Why ``spawner`` may not attach ``script`` to a new entity, or None."""
        if script not in self.manager:
            return f"no script named {script!r}"
        if not self.manager.permissions(spawner).covers(self.manager.permissions(script)):
            return "permission"
        return None

    def host_failed(self, script: str, entity: int | None, operation: str,
                    error: Exception) -> None:
        """Record a host-side failure of a world function; it counts as a script error."""
        self._host_errors.setdefault(script, []).append(ScriptRuntimeError(
            f"world.{operation} failed in the host: {type(error).__name__}: {error}",
            script=script, entity=entity,
        ))
