"""ScriptSystem: the esper Processor that runs script instances each tick.

Uses the ScriptManager's records (scripts live only there; this module only reads them), the
entries ``WorldApi`` installed in each script's context (one call per script per tick runs all
its instances), WorldBindings (the host side of `world`) and one ScriptRun per script (what the
system keeps for it).

One tick, in order:
1. the resource entity (Console and EventQueue) is found or created in the current world
   (_resources.py);
2. scripts whose files changed are reloaded (every ``hot_reload_interval_s``); a reload that
   fails puts an error line on the console;
3. entities with a Script component are grouped by script name (an entity may run several);
4. for each enabled script, in load order: if its entities changed, a sync (``_sync``) that
   queues ``on_destroy`` for ended instances and ``on_start`` for new ones; ``on_reload`` if a
   reload was adopted; then in one batch: the events queued during the previous tick
   (``on_event``), the queued ``on_destroy`` and ``on_start`` calls (also those a stopped tick
   left) and ``on_update`` for all; the batch's buffered component writes are then applied;
5. each script's outcome is recorded in the manager, logged, and errors go to the console;
6. the host's listeners hear the scripts' events of the tick (``on_event``, _host_messages.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import esper
import lupa.lua54 as lua54

from engine_scripting._log import get_logger
from engine_scripting.ecs._bindings import REFUSED, WorldBindings
from engine_scripting.ecs._components import Console, ConsoleLevel, Script, ScriptEvent
from engine_scripting.ecs._error_log import ErrorLog
from engine_scripting.ecs._events import deliver, group_links
from engine_scripting.ecs._grant_check import GrantCheck
from engine_scripting.ecs._host_calls import HostCalls
from engine_scripting.ecs._host_messages import HostMessages, Listener
from engine_scripting.ecs._instance_errors import (
    during_sync,
    instance_errors,
    stopped_in,
    with_progress,
)
from engine_scripting.ecs._params import started_params
from engine_scripting.ecs._resources import WorldResources, reload_changed
from engine_scripting.ecs._runs import ScriptRun
from engine_scripting.ecs._schema import ComponentSchema, build_schemas
from engine_scripting.ecs._spatial import spatial_index
from engine_scripting.ecs._templates import TemplateRegistry
from engine_scripting.ecs._world_api import WORLD_CAPS
from engine_scripting.ecs._world_initializer import WorldApi, WorldEntries
from engine_scripting.engine import ScriptContext
from engine_scripting.errors import CallAbandoned, ScriptError, ScriptRuntimeError
from engine_scripting.manager import ManagedScript, ScriptManager

_log = get_logger(__name__)
_CONSOLE_LINE = WORLD_CAPS["max_print"]


class ScriptSystem(esper.Processor):
    """Runs the scripts of a ScriptManager on the entities that carry a ``Script`` component.

    Args:
        manager: the store of scripts, made with ``initializers=[WorldApi()]`` (the `world`
            API its scripts use). One manager serves one system.
        components: dataclass component types scripts may see, by class name.
        console_maxlen: how many messages the world's Console keeps.
        event_queue_maxlen: how many events may wait for delivery; emit fails beyond it.
        max_spawns_per_tick: entities one script may spawn per tick.
        max_logged_errors: errors logged per script per tick (and 10 a second on average, see
            _error_log.py); the rest are counted in one event
            (all of them are recorded in the manager's status).
        hot_reload_interval_s: how often scripts loaded from files are checked for changes
            (between ticks); None turns hot reload off.
        profiling: time each script's tick (the stats in ``ScriptManager.status``). It costs
            two clock reads per script and tick, so it is on by default.
        spatial: ("Position", "x", "y"[, cell size]) gives scripts world.within/nearest over
            that component's fields (_spatial.py); None: they have none.
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
        spatial: tuple[Any, ...] | None = None,
    ) -> None:
        world_api = next((i for i in manager.initializers if isinstance(i, WorldApi)), None)
        if world_api is None:
            raise ScriptError("the manager gives its scripts no `world` API: create it with "
                              "ScriptManager(engine, initializers=[WorldApi()])")
        self.schemas: tuple[ComponentSchema, ...] = build_schemas(tuple(components))
        self._grants = GrantCheck(self.schemas)   # the scripts loaded so far, now; others: process
        self._grants.check_new(map(manager.running, manager.names()), {})
        manager.claim(self)
        manager.on_unload(self._forget)
        self.manager = manager
        self._world_api = world_api
        self.max_spawns_per_tick = max_spawns_per_tick
        self.templates = TemplateRegistry()  # spawn templates: see register_template
        self.spatial = spatial_index(self.schemas, spatial, lambda: self.tick)
        self.max_logged_errors = max_logged_errors
        self._error_log = ErrorLog()
        self.hot_reload_interval_s = hot_reload_interval_s
        self.profiling = profiling
        self._next_reload_check = 0.0
        self._resources = WorldResources(console_maxlen, event_queue_maxlen)
        self._schema_spec = {
            schema.name: {"index": schema.index, "fields": list(schema.fields),
                          "kinds": list(schema.kinds), "required": sorted(schema.required)}
            for schema in self.schemas
        }
        self.tick = 0
        self._runs: dict[str, ScriptRun] = {}
        self._links: dict[str, list[int]] = {}
        self._script_of: dict[int, tuple[str, ...]] = {}
        self._params_of: dict[int, Mapping[str, object]] = {}   # entities given params only
        self._links_source: object = None
        self.ticking = False   # True while process runs the scripts (no system.call then)
        self._messages = HostMessages(self)
        self._calls = HostCalls(self, self._runs, self._messages, self._write_back, self._report,
                                self._abandoned)
        self._unknown_reported: set[str] = set()

    # -- the tick -----------------------------------------------------------------------------
    def process(self, dt: float = 0.0) -> None:
        """Run one tick of every enabled script (see the module docstring for the order)."""
        if isinstance(dt, bool) or not isinstance(dt, int | float) or not math.isfinite(dt):
            raise ValueError(f"dt must be a finite number, not {dt!r}")
        records = [record for name in self.manager.names()
                   if (record := self.manager.running(name)) is not None and record.enabled]
        self._grants.check_new(records, self._runs)   # before anything changes (_grant_check.py)
        self.tick += 1
        resources = self._resources
        resources.find()
        if self.hot_reload_interval_s is not None:
            now = time.monotonic()
            if now >= self._next_reload_check:
                self._next_reload_check = now + self.hot_reload_interval_s
                reload_changed(self.manager, resources, self.tick)  # failures: on the console
        # esper returns the same cached list until the world's structure changes; a new list
        # equal to the last (a change elsewhere: churn of other entities) changes no link. The
        # `links` dict stays the same object while the links do: runs synced to it have no
        # instances to start or end
        source = esper.get_component(Script)
        if source is not self._links_source:
            if source != self._links_source:
                self._links, self._script_of, self._params_of = group_links(source)
            self._links_source = source
        links = self._links
        deliveries = deliver(resources.queue.take(), links, self._script_of, self.manager,
                             self.console_write)

        runs = self._runs   # skip the idle: nothing new for them, nothing to run
        records = [record for record in records
                   if (active := runs.get(record.name)) is None or not active.entries.idle.value
                   or active.synced is not links or active.version != record.version
                   or active.record is not record or record.name in deliveries
                   or active.host_errors]

        def run(record: ManagedScript) -> None:
            if self.manager.running(record.name) is not record:
                return  # unloaded by host code earlier in this tick
            self._run_script(record, links.get(record.name, ()), deliveries.get(record.name),
                             float(dt), links)

        self.ticking = True
        try:
            self.manager.engine.run_each(records, run, _context_of, self._abandoned)
        finally:
            self.ticking = False
        self._messages.flush()
        for name in links:
            if name not in self.manager and name not in self._unknown_reported:
                self._unknown_reported.add(name)
                _log.warning("script.unknown", script=name, entities=len(links[name]))

    def _run_script(self, record: ManagedScript, entities: Iterable[int],
                    deliveries: tuple[list[object], list[int]] | None, dt: float,
                    links: object) -> None:
        if not record.enabled:
            return
        name = record.name
        run = self._runs.get(name)
        started = time.perf_counter() if self.profiling else 0.0
        if run is None or run.record is not record:
            try:
                run = self._attach(record)
            except ScriptError as error:  # e.g. the script's top-level code filled its time
                self._report(record, [error])
                self.manager.record_tick(record, [error], 0)
                return
        errors: list[ScriptError] = []
        order = run.order
        if run.synced is links or self._sync(run, entities, links, errors):
            if (deliveries is None and run.order is order and run.version == record.version
                    and not run.host_errors and run.entries.idle.value):
                return   # the entities changed, but not this script's
            if run.version != record.version:
                run.version = record.version
                self._call(run, run.entries.reloaded, errors, self.tick)
            if self._runs.get(name) is run:  # not unloaded by host code in on_reload
                entry = run.entries.tick if deliveries else run.entries.plain_tick
                events, targets = deliveries if deliveries else (None, None)
                self._call(run, entry, errors, dt, self.tick, events, targets)
        if run.host_errors:
            errors.extend(run.host_errors)
            run.host_errors.clear()
        if self.profiling:
            self.manager.record_time(record, time.perf_counter() - started)
        if errors:
            self._report(record, errors)
        self.manager.record_tick(record, errors, len(run.instances))

    def _sync(self, run: ScriptRun, entities: Iterable[int], links: object,
              errors: list[ScriptError]) -> bool:
        """Hand instances.lua the script's sorted instance list if it changed, in a watched call
        of its own with the memory limit lifted. All or nothing: after a failure instances.lua
        holds the old list or the new one; the tick is skipped (False), the next one syncs."""
        wanted = set(entities)
        if wanted != run.instances or run.unsynced:
            order = sorted(wanted)
            try:   # the params of the instances it starts, converted once (_params.py)
                run.entries.sync(order, started_params(self._params_of, wanted, run.instances))
            except ScriptError as error:
                run.unsynced, run.synced = True, None
                errors.append(during_sync(error, len(order)).with_context(script=run.record.name))
                return False
            run.unsynced = False
            run.instances, run.order = wanted, order
            run.bindings.batch.start_batch(order)   # the batch's instances, until the next sync
        run.synced = links
        return True

    def _call(self, run: ScriptRun, entry: Any, errors: list[ScriptError],
              *args: object) -> None:
        """One batch call into the script's context. ``args`` are plain data (the context
        converts them inside the watched call). The batch's buffered component writes are
        written back after it, also after a stop."""
        name, context = run.record.name, run.record.context
        run.entries.idle.value = False   # until a whole tick says otherwise
        try:
            result = entry(*args)
        except ScriptError as error:
            entity, callback = (stopped_in(run.entries.last_entity())
                                if not (context.closed or context.dead) else (None, None))
            errors.append(with_progress(error, entity, callback, run.order).with_context(
                script=name, entity=entity, callback=callback))
            self._write_back(run, None, errors)
            return
        # results: errors, idle (see WorldEntries.idle), the first chunk of writes if any
        run.entries.idle.value = len(result) > 1 and result[1] is True
        # not in a `finally`: an abandoned call unwinds its worker past this (engine/_runner.py)
        if len(result) > 2:  # nothing after the errors: nothing was written
            self._write_back(run, result[2:], errors)
        if result and result[0] is not None:
            errors.extend(instance_errors(name, result[0]))

    def _write_back(self, run: ScriptRun, chunk: tuple[Any, ...] | None,
                    errors: list[ScriptError]) -> None:
        """Apply the batch's buffered component writes to the world: ``chunk`` is the first
        (batch.lua's ``pending_writes``: more, index, fields, count, first, values...), or None
        when the batch stopped before returning it; further chunks are taken with watched
        calls."""
        batch, context = run.bindings.batch, run.record.context
        try:
            if chunk is None:
                if context.closed or context.dead:
                    return
                chunk = run.entries.pending_writes()
            while chunk:
                batch.write_back(int(chunk[1]), int(chunk[2]), int(chunk[3]), int(chunk[4]),
                                 chunk[5:])
                chunk = run.entries.pending_writes() if chunk[0] else ()
        except (ScriptError, lua54.LuaError) as error:
            batch.forget_mirrors()
            name = run.record.name
            errors.append(ScriptRuntimeError(
                f"{name}: writing back component changes failed: {error}", script=name,
            ))

    def _abandoned(self, record: ManagedScript, error: CallAbandoned) -> None:
        """On the host's thread: the call running ``record``'s tick was abandoned, stuck in a
        C function. Its context is dead; the script is disabled and forgotten here."""
        self._report(record, [error])
        self.manager.record_tick(record, [error], 0)
        self._forget(record.name)

    def _report(self, record: ManagedScript, errors: list[ScriptError]) -> None:
        if errors:   # logged within a budget over time (_error_log.py)
            self._error_log.report(record.name, errors, self.tick, self.max_logged_errors)
        for index, error in enumerate(errors):
            if index < self._resources.console_maxlen:
                line = f"{type(error).__name__}: {str(error).partition(chr(10))[0]}"
                if len(line) > _CONSOLE_LINE:   # cut as world.lua cuts printed lines
                    line = line[:_CONSOLE_LINE] + "..."
                self.console_write(record.name, error.entity, line, "error")

    def _attach(self, record: ManagedScript) -> ScriptRun:
        entries = record.installed.get(self._world_api)
        if not isinstance(entries, WorldEntries):
            raise ScriptError(f"{record.name}: no `world` API was installed for this script",
                              script=record.name)
        bindings = WorldBindings(self, record.name, self.schemas)
        context = record.context
        if context.limits is not None:
            bindings.max_event_bytes = context.limits.max_memory_bytes
        functions = (context.gated(function, refused)
                     for function, refused in zip(bindings.functions(), REFUSED, strict=True))
        entries.attach(context.lua_value(self._schema_spec), *functions)
        run = ScriptRun(record, entries, bindings, record.version)
        self._runs[record.name] = run
        return run

    def _forget(self, name: str) -> None:
        """Drop everything the system keeps for a script (the manager unloaded it)."""
        self._runs.pop(name, None)
        self._error_log.forget(name)

    # -- resources (_resources.py) ------------------------------------------------------------
    @property
    def console(self) -> Console:
        """The Console of the current world (created when missing)."""
        self._resources.find()
        return self._resources.console

    # -- the host's messages and calls (_host_messages.py, _host_calls.py) ---------------------
    def send(self, name: str, payload: object = None, target: int | None = None) -> None:
        """Send scripts an event from the host, delivered next tick (``HostMessages.send``)."""
        self._messages.send(name, payload, target)

    def on_event(self, name: str, callback: Listener) -> Callable[[], None]:
        """Hear scripts' events ``name`` after each tick; see ``HostMessages.listen``."""
        return self._messages.listen(name, callback)

    def call(self, script: str, entity: int, function: str, *args: object) -> Any:
        """Run ``function(self, *args)`` of an instance between ticks; see ``HostCalls.call``."""
        return self._calls.call(script, entity, function, args)

    # -- for WorldBindings --------------------------------------------------------------------
    def is_script_entity(self, entity: object) -> bool:
        """Whether scripts may address ``entity``: it exists and is not the resource entity."""
        return (type(entity) is int and entity != self._resources.entity
                and esper.entity_exists(entity))

    def console_write(self, script: str, entity: int | None, text: str,
                      level: ConsoleLevel) -> None:
        """Append one message to the console of the world being processed."""
        self._resources.write(script, entity, text, level, self.tick)

    def queue_event(self, event: ScriptEvent, *, size: int = 0,
                    max_bytes: int | None = None) -> bool:
        """Queue an event for the next tick; False when the queue is full. The world API
        passes ``size`` and ``max_bytes`` for a script's event (see EventQueue.offer)."""
        queued = self._resources.queue.offer(event, size=size, max_bytes=max_bytes)
        if queued and max_bytes is not None:
            self._messages.emitted(event)   # for the host's listeners (system.on_event)
        return queued

    def register_template(self, name: str, components: Iterable[object] = (),
                          script: str | None = None) -> None:
        """Register spawn template ``name`` for ``world.spawn(name, overrides)`` (granted by
        ``Permissions(templates={name})``): ``components`` are instances (copied at each spawn)
        or zero-argument factories; ``script`` is run by its entities. See _templates.py."""
        self.templates.register(name, components, script)

    def spawn_check(self, spawner: str, script: str) -> tuple[str, str] | None:
        """Why ``spawner`` may not attach ``script`` to a new entity, or None: the problem and,
        for "permission", the first grant of the script that the spawner lacks."""
        if script not in self.manager:
            return f"no script named {script!r}", ""
        lacking = self.manager.permissions(spawner).missing(self.manager.permissions(script))
        return None if lacking is None else ("permission", lacking)

    def host_failed(self, script: str, entity: int | None, operation: str,
                    error: Exception) -> None:
        """Record a host-side failure of a world function; it counts as a script error."""
        run = self._runs.get(script)
        if run is not None:
            run.host_errors.append(ScriptRuntimeError(
                f"world.{operation} failed in the host: {type(error).__name__}: {error}",
                script=script, entity=entity,
            ))


def _context_of(record: ManagedScript) -> ScriptContext:
    return record.context
