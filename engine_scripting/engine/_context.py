"""ScriptContext: one isolated Lua state and the calls the host makes into it.

Uses the control table built by sandbox.lua, the watchdog for limits, and _convert.py for data.
Every failure leaves here as a ScriptError subclass.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import lupa.lua54 as lua54

from engine_scripting._log import get_logger
from engine_scripting.engine._boundary import HostBoundary
from engine_scripting.engine._control import SandboxControl
from engine_scripting.engine._convert import to_lua
from engine_scripting.engine._entries import plain_entry
from engine_scripting.engine._hooks import PUSH_FREE, ContextHooks
from engine_scripting.engine._limits import ScriptResourceLimits
from engine_scripting.engine._native import Collector, LuaNative
from engine_scripting.engine._outcome import Outcomes, Result
from engine_scripting.engine._runner import Abandoned, Runner, Worker, abandon_open_calls
from engine_scripting.engine._watchdog import CallWatch, Watchdog
from engine_scripting.errors import CallAbandoned, ScriptError, SecurityViolation

_log = get_logger(__name__)

# The host memory a call's converted results may take, in multiples of the memory limit.
RESULT_CAP_FACTOR = 4
_BINARY_CHUNK = b"\x1b"


class ScriptContext:
    """An isolated sandbox with its own Lua state, globals, string metatable and GC.

    Create it with ``ScriptEngine.create_context``. A context is not thread-safe and not
    re-entrant: one call at a time.
    """

    def __init__(self, name: str, runtime: Any, control: SandboxControl, hooks: ContextHooks,
                 boundary: HostBoundary, limits: ScriptResourceLimits | None,
                 watchdog: Watchdog | None, native: LuaNative | None,
                 runner: Runner | None = None, engine_closed: threading.Event | None = None,
                 engine: object = None) -> None:
        self.name = name
        self._engine = engine   # its threads run while one of its contexts lives
        self._engine_closed = engine_closed if engine_closed is not None else threading.Event()
        self._runner = runner
        self._dead = False
        self.limits = limits
        self._runtime: Any = runtime
        self._hooks = hooks
        self._boundary = boundary
        self._collector: Collector | None = None
        self._control: SandboxControl | None = control
        self._chunk_name = b"=" + name.encode("utf-8", "replace")
        self._watchdog = watchdog
        self._native = native
        self._busy = False
        self._watch: CallWatch | None = None
        self._restore_finalizers: Callable[[], object] | None = None
        # The memory limit is in force only while script code runs (see _run); at any other
        # time the host may allocate in the state (converting arguments, reading results)
        # where Lua has no protected call to catch a memory error, and such an error aborts
        # the whole process ("PANIC: unprotected error in call to Lua API").
        self._memory_limit = limits.max_memory_bytes if limits is not None else None
        if self._memory_limit is not None:
            runtime.set_max_memory(0)
        if native is not None and limits is not None:
            switch = native.disable_finalizers(control.main_state, control.event_names,
                                               control.gc_disabled)
            # runs once: at close, or before the runtime is freed when the context is dropped
            self._restore_finalizers = weakref.finalize(self, switch.restore)
        if limits is not None and watchdog is not None:
            self._watch = CallWatch(
                main_state=control.main_state, slots_table=control.slots_table,
                slot_capacity=control.slot_capacity, budget_s=limits.max_execution_time_s,
                deep_slots=2 * limits.max_recursion_depth + 64)
            if native is not None:
                # collector steps run only while script code runs (see _boundary.py)
                self._collector = native.collector(self._watch.main_state)
                self._collector.pause()
                boundary.connect(self._collector, native, self._watch, runtime.get_memory_used,
                                 control.collect, runtime.set_max_memory)
        # a result may hold one string many times; Python gets a copy of each
        self._outcomes = Outcomes(
            name, control.outcome,
            RESULT_CAP_FACTOR * limits.max_memory_bytes if limits is not None else None,
            native, self._watch,
        )

    @property
    def output(self) -> deque[str]:
        """Lines the script printed (bounded; oldest dropped first)."""
        return self._hooks.output

    @property
    def memory_used(self) -> int:
        """Bytes this context's Lua state uses now (its last count once it is dead)."""
        if self._runtime is None:
            raise ScriptError("the context is closed", script=self.name)
        if self._dead or self._engine_closed.is_set():
            return int(self._runtime.get_memory_used() or 0)
        used = self._runtime.get_memory_used()
        if used:
            return int(used)
        return int(self._runtime.eval("collectgarbage('count')") * 1024)

    @property
    def closed(self) -> bool:
        """True once ``close`` has run."""
        return self._runtime is None

    @property
    def running(self) -> bool:
        """True while a call of this context is in progress (asked from a host function)."""
        return self._busy and not self._dead

    def __enter__(self) -> ScriptContext:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def mark_dead(self) -> None:
        """A call of this context was abandoned on its worker (``_runner.abandon_open_calls``)."""
        self._dead = True

    @property
    def dead(self) -> bool:
        """True once a call of this context was abandoned (stuck inside a C function): the
        context refuses every call from then on, and only ``close`` is left to do."""
        return self._dead

    def gated(self, function: Callable[..., Any], refused: object = None) -> Callable[..., Any]:
        """``function`` as a host function for this context's Lua code (see _boundary.py); it
        returns ``refused`` when it cannot run or its result does not fit in memory."""
        return self._boundary.wrap(function, refused)

    def entry(self, function: Any, *, data_args: bool = False, host_memory: bool = False,
              exported: bool = False, plain_args: bool = False) -> Callable[..., tuple[Any, ...]]:
        """A trusted function returned by ``install``, as a host-side callable: every call goes
        through ``invoke`` (its closed, dead and busy checks and the limits) with these flags.
        The host keeps entries, never the raw Lua function. ``plain_args`` (alone): the
        caller's arguments are what ``invoke``'s plain_args promises (see _entries.py)."""
        if plain_args and not (data_args or host_memory or exported):
            return plain_entry(function, self._open().invoke, self._run, self._outcomes.values)
        return functools.partial(self.invoke, function, data_args=data_args,
                                 host_memory=host_memory, exported=exported)

    def execute(self, source: str | bytes, chunk_name: str | None = None) -> Result:
        """Compile and run a chunk of Lua text in the sandbox; return its value(s) as plain data.

        Raises ScriptCompileError, ScriptRuntimeError, ResourceLimitExceeded or
        SecurityViolation (binary chunks are refused).
        """
        control = self._open()
        code = self._source_bytes(source)
        name = self._chunk_name if chunk_name is None else b"=" + chunk_name.encode()
        return self._outcomes.values(self._run(control.execute, (code, name), False),
                                     compiling=True, deadline=self._result_deadline())

    def call(self, function: str, *args: object) -> Result:
        """Call a global function of the context with plain-data arguments.

        Raises ScriptRuntimeError when there is no such function, ScriptArgumentError for
        arguments that are not plain data, and the errors ``execute`` raises.
        """
        control = self._open()
        return self._outcomes.values(
            self._run(control.call, (function.encode("utf-8"), *args), False, convert=True),
            deadline=self._result_deadline())

    def stage(self, source: str | bytes, chunk_name: str | None = None) -> None:
        """Run a new version of the script's code in a fresh global environment.

        The new environment replaces the current one only when the chunk's top-level code
        succeeds; on any error the old globals stay (a trusted context has one global table:
        there, what the chunk did before the error stays). Other Lua values live on either way.
        Raises the errors ``execute`` raises.
        """
        control = self._open()
        code = self._source_bytes(source)
        name = self._chunk_name if chunk_name is None else b"=" + chunk_name.encode()
        self._outcomes.values(self._run(control.stage, (code, name), False), compiling=True)

    def install(self, source: bytes, chunk_name: str, *args: object) -> Any:
        """Run a trusted, precompiled Lua chunk that extends this context (for
        engine_scripting's own APIs; see ``engine.compile_chunk``).

        The chunk receives the sandbox's kit of original functions and ``args``; whatever it
        returns comes back as raw lupa values. Never pass script-supplied code here.
        """
        control = self._open()
        try:
            return control.install(source, b"=" + chunk_name.encode(), *args)
        except lua54.LuaMemoryError as error:
            raise self._outcomes.memory_error() from error
        except lua54.LuaError as error:
            raise ScriptError(
                f"installing {chunk_name} failed: {error}", script=self.name
            ) from error

    def invoke(self, function: Any, *args: object, plain_args: bool = False,
               data_args: bool = False, host_memory: bool = False,
               exported: bool = False) -> tuple[Any, ...]:
        """Call a trusted function returned by ``install`` under this context's limits.

        ``plain_args`` True: the caller guarantees that every argument is None, a bool, an int,
        a float or a Lua value of this context (as ``lua_value`` returns), which saves checking
        them on every call. ``data_args`` True: the arguments are plain Python data, converted
        inside the watched call (so that what the conversion allocates is watched too).
        ``host_memory`` True: what the function allocates is the host's (installing bindings),
        so the memory limit is not in force; the time limit is. Returns the raw results (with
        ``exported``, one item: what it passed to the kit's ``export``, as ``call`` returns it).
        """
        control = self._open()
        if not plain_args and not data_args:
            plain_args = PUSH_FREE.issuperset(map(type, args))
        result = self._run(control.invoke, (function, *args), plain_args, convert=data_args,
                           limited=not host_memory)
        if exported:
            return (self._outcomes.values(result, deadline=self._result_deadline()),)
        if result[0] is not True:
            self._outcomes.values(result)
        return result[1:]

    def lua_value(self, value: object) -> Any:
        """Plain Python data as a fresh Lua value of this context (tables are copies), made
        inside a watched call (see ``invoke``'s ``data_args``).

        Raises ScriptArgumentError for anything that is not plain data.
        """
        return self.invoke(self._open().identity, value, data_args=True, host_memory=True)[0]

    def set_constant(self, name: str, value: object) -> None:
        """Make ``value`` (plain data) the read-only global ``name`` of the script, in its
        current environment and in every one a reload makes. Its Lua copy counts toward the
        memory limit. Raises ScriptArgumentError for anything that is not plain data."""
        if not isinstance(name, str) or not name.isidentifier():
            raise ScriptError(f"not a global name: {name!r}", script=self.name)
        control = self._open()
        self.invoke(control.set_constant, name, value, data_args=True)

    def set_module_source(self, source_of: Callable[[str], bytes | None]) -> None:
        """Let the script ``require(name)``: ``source_of(name)`` gives the module's source text,
        or None for an unknown module. It runs as a host function of this context."""
        control = self._open()
        self.invoke(control.set_modules, self.gated(
            lambda name: source_of(name.decode("utf-8", "replace")), None), host_memory=True)

    def collect_garbage(self) -> None:
        """Run a full garbage collection of the state now, as a call under the context's limits:
        no script code runs (finalizers are off), but a script can make a collection slow
        (weak tables), so it is watched like a call and abandoned past twice the budget."""
        control = self._open()
        result = self._run(control.invoke, (control.collect, True), True)
        if result[0] is not True:
            self._outcomes.values(result)

    def close(self) -> None:
        """Free the Lua state (no script finalizer runs: ``__gc`` has no effect in the sandbox);
        a dead context's state is freed once its abandoned call has unwound."""
        if self._busy and not self._dead:
            raise ScriptError("cannot close a context while it runs", script=self.name)
        if self._restore_finalizers is not None and not self._dead:
            self._restore_finalizers()
        self._control = None
        self._runtime = None

    def _result_deadline(self) -> float | None:
        """When converting a call's results must end: when the call would be abandoned."""
        return None if self._watch is None else self._watch.started + 2 * self._watch.budget_s

    def _source_bytes(self, source: str | bytes) -> bytes:
        code = source.encode("utf-8") if isinstance(source, str) else source
        if not isinstance(code, bytes):
            raise ScriptError("source must be str or bytes", script=self.name)
        if code.startswith(_BINARY_CHUNK):
            raise SecurityViolation(
                "binary chunks are not allowed in the sandbox", reason="binary_chunk",
                script=self.name,
            )
        return code

    def _open(self) -> SandboxControl:
        """The control of an open, live context; raises when it is closed or dead."""
        control = self._control
        if control is None:
            raise ScriptError("the context is closed", script=self.name)
        if self._engine_closed.is_set():
            raise ScriptError("the engine of this context is closed", script=self.name)
        if self._dead:
            raise CallAbandoned(
                f"{self.name}: the context is dead: a call of it was abandoned",
                limit_type="time", script=self.name,
            )
        return control

    def _run(self, function: Any, args: tuple[object, ...], push_free: bool,
             convert: bool = False, limited: bool = True) -> tuple[object, ...]:
        """One protected call into Lua under the limits; returns xpcall's results.

        It runs on the engine's worker thread (see _runner.py): a call stuck inside a C function
        is abandoned, and raises CallAbandoned here. ``push_free``: lupa pushes every argument
        without allocating in the Lua state (see ``PUSH_FREE``); otherwise the arguments travel
        in one table.
        """
        runner = self._runner
        worker = runner.current() if runner is not None else None
        if runner is None or worker is not None:
            return self._run_here(function, args, push_free, convert, limited, worker)
        return runner.run(  # type: ignore[no-any-return]
            lambda: self._run_here(function, args, push_free, convert, limited,
                                   runner.current()), self._abandoned)

    def _abandoned(self, worker: Worker) -> tuple[object, ...]:
        """On the calling thread, once ``worker`` was given up on: every context with a call
        open on it is dead."""
        raise abandon_open_calls(worker, self)

    def _run_here(self, function: Any, args: tuple[object, ...], push_free: bool,
                  convert: bool, limited: bool, worker: Worker | None) -> tuple[object, ...]:
        if self._busy:
            raise ScriptError("the context is already running a call", script=self.name)
        control = self._open()
        self._busy = True
        hooks, watch, watchdog = self._hooks, self._watch, self._watchdog
        if hooks.violations or hooks.more_violations:
            hooks.violations.clear()
            hooks.more_violations = 0
        # what went wrong, kept without the exception: its traceback would hold this frame,
        # and with it the arguments' Lua tables, until Python's cycle collector ran
        failure: str | None = None
        out_of_memory = stopped = False
        result: object = None
        limit = self._memory_limit if limited else None
        runtime, collector, boundary = self._runtime, self._collector, self._boundary
        try:
            # host work, outside the budget: no collector step runs meanwhile (it is paused
            # between calls), so nothing a script prepared can make it slow
            if convert:
                args = tuple(to_lua(runtime, arg) for arg in args)
                push_free = PUSH_FREE.issuperset(map(type, args))
            if not push_free and (limit is not None or collector is not None):
                # strings and other values that allocate when pushed travel in one table,
                # made while no limit is in force
                packed = runtime.table_from(list(args))
                function, args = control.apply, (function, packed, len(args))
            if worker is not None:
                worker.open_calls.append(self)
            if watch is not None and watchdog is not None:
                watch.worker = worker
                watchdog.begin(watch)
            try:
                if limit is not None:
                    runtime.set_max_memory(limit)
                    boundary.memory_limit = limit
                if collector is not None:
                    collector.resume()
                result = function(*args)
            except lua54.LuaError as error:
                failure, out_of_memory = str(error), isinstance(error, lua54.LuaMemoryError)
            finally:
                if collector is not None:
                    collector.pause()
                    boundary.settle()
                boundary.memory_limit = None
                if watch is not None and watchdog is not None:
                    stopped = watchdog.end(watch)
                if worker is not None:
                    if worker.abandoned:
                        raise Abandoned  # nothing more of the host may run on this thread
                    worker.open_calls.pop()
                if limit is not None:
                    runtime.set_max_memory(0)
            reason: object = None
            if stopped and watch is not None and self._native is not None:
                self._native.disarm(watch.main_state)
                reason = control.after_stop()
        finally:
            self._busy = False
        pending = boundary.take_failure(self.name, self._outcomes.memory_error)
        if pending is not None:
            raise pending
        if hooks.violations or failure is not None or reason or out_of_memory:
            ended = self._outcomes.call_error(hooks.violations[0] if hooks.violations else None,
                                              reason, out_of_memory, failure)
            if ended is not None:
                raise ended
        return result if type(result) is tuple else (result,)
