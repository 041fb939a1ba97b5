"""HostBoundary: what happens when a context's Lua code calls a host (Python) function.

Uses ``runner.Runner`` (callbacks refuse once their call was abandoned), ``native.Collector``
(no collector step while the host holds the GIL) and ``native.LuaNative`` (stop the script).

lupa runs a host function holding Python's GIL, then pushes what it returned into the Lua
state. Three things must not happen on that path:

- a Python exception reaching Lua: lupa would hand the script the exception object, and a
  KeyboardInterrupt or SystemExit would be swallowed by the script's ``pcall``. Every exception
  is caught here. An ordinary one makes the function return its refusal value (the host logs
  it); KeyboardInterrupt and SystemExit stop the script and are raised again by the host once
  Lua has unwound (``ScriptContext`` does that);
- a collector step during the push: a script can make one step last seconds (weak-keyed tables
  whose keys chain), and it would hold every Python thread, the watchdog's included. The next
  step is deferred past what the push allocates (``Collector.defer``);
- an allocation failure during the push: Lua would run an emergency collection there, with the
  same effect. When what the push may allocate does not fit under the memory limit, a full
  collection runs first, as a nested call into Lua (lupa releases the GIL for it, and the
  watchdog can abandon it); if the push still does not fit, the function returns its refusal
  value and the call ends with a memory error.

Collector pacing stays Lua's: a host function first gives back the previous one's deferral and,
when a step is due, lets it run in a nested call (before taking the worker's gate, so that the
watchdog can abandon a slow one), and the context gives back the last deferral once the call
has ended (``settle``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import lupa.lua54 as lua54

from engine_scripting._log import get_logger
from engine_scripting.engine._native import Collector, LuaNative
from engine_scripting.engine._runner import Runner
from engine_scripting.engine._watchdog import TIME_COUNT, CallWatch
from engine_scripting.errors import ScriptError

_log = get_logger(__name__)

# Lua gives a C function 20 free stack slots; lupa pushes more only after growing the stack
_FREE_SLOTS = 20
_SLOT_BYTES = 16
# What Lua allocates per pushed value besides a string's bytes (TString header, userdata)
_STRING_OVERHEAD = 48
_SPARE_BYTES = 4096
# What lupa pushes without allocating in the Lua state (a number, a boolean, nil)
_SCALARS = frozenset({type(None), bool, int, float})


def _no_limit(limit: int) -> None:
    """No state is connected: nothing to limit."""


class HostBoundary:
    """The host functions of one context, wrapped so that they cannot hurt it or the host
    (see the module docstring). One per context; the context reads ``interrupt``,
    ``out_of_memory`` and ``host_failure`` when its call ends."""

    def __init__(self, runner: Runner | None) -> None:
        self._runner = runner
        self._collector: Collector | None = None
        self._native: LuaNative | None = None
        self._watch: CallWatch | None = None
        self._memory_used: Callable[[], int | None] | None = None
        self._set_limit: Callable[[int], object] = _no_limit
        self._collect: Callable[[bool], object] | None = None
        self._deferred = 0
        self.memory_limit: int | None = None   # in force now (set by the context around calls)
        self.interrupt: BaseException | None = None
        self.out_of_memory = False
        self.host_failure: str | None = None

    def connect(self, collector: Collector, native: LuaNative, watch: CallWatch,
                memory_used: Callable[[], int | None], collect: Callable[[bool], object],
                set_limit: Callable[[int], object]) -> None:
        """Attach the context's state once it exists (limited contexts only). ``collect(full)``
        is a Lua function: a full collection, or an allocation that runs a due step;
        ``set_limit`` sets the state's memory limit (0: none)."""
        self._collector, self._native, self._watch = collector, native, watch
        self._memory_used, self._collect, self._set_limit = memory_used, collect, set_limit

    def take_failure(self, name: str,
                     memory_error: Callable[[], ScriptError]) -> BaseException | None:
        """What the call that just ended must raise because of its host functions, if
        anything: a KeyboardInterrupt or SystemExit, a memory error, or a host failure."""
        interrupt, self.interrupt = self.interrupt, None
        out_of_memory, self.out_of_memory = self.out_of_memory, False
        host_failure, self.host_failure = self.host_failure, None
        if interrupt is not None:
            return interrupt
        if out_of_memory:
            return memory_error()
        if host_failure is not None:
            return ScriptError(f"{name}: {host_failure}", script=name)
        return None

    def settle(self) -> None:
        """Give the last host function's deferral back (the call has ended, steps are paused):
        the next call's first allocation runs what the collector is owed."""
        if self._deferred and self._collector is not None:
            self._collector.defer(-self._deferred)
            self._deferred = 0

    def _catch_up(self, full: bool) -> None:
        """Run the collector in a nested call, without the GIL (the watchdog may abandon it)."""
        collect = self._collect
        assert collect is not None
        with contextlib.suppress(lua54.LuaError):  # a limit stopped it: and the script too
            collect(full)

    def wrap(self, function: Callable[..., Any], refused: object = None) -> Callable[..., Any]:
        """``function`` as a host function Lua may call; ``refused`` is what Lua gets when it
        does not run (its call was abandoned), fails, or returns more than fits in memory."""
        runner = self._runner

        def host_function(*args: Any) -> Any:
            collector = self._collector
            lifted = self.memory_limit if collector is not None else None
            if collector is not None:
                if self._deferred:
                    self.settle()
                if collector.due():
                    self._catch_up(False)
            if lifted is not None:
                # host code may make lupa allocate (references to the tables it reads, stack):
                # an allocation failure there would run an emergency collection holding the
                # GIL, or raise through lupa's frames
                self._set_limit(0)
            worker = runner.thread_worker() if runner is not None else None
            gate = worker.gate if worker is not None else None
            try:
                if gate is not None and not gate.acquire(blocking=False):
                    return refused   # the call that reached it was abandoned
                try:
                    result = function(*args)
                finally:
                    if gate is not None:
                        gate.release()
            except (KeyboardInterrupt, SystemExit) as error:
                if self.interrupt is None:
                    self.interrupt = error
                self._stop_script()
                return refused
            except BaseException as error:   # a host bug: the call fails with it, typed
                _log.exception("script.host_function_failed", function=function.__name__)
                if self.host_failure is None:
                    self.host_failure = (f"host function {function.__name__} failed:"
                                         f" {type(error).__name__}: {error}")
                return refused
            finally:
                if lifted is not None:
                    self._set_limit(lifted)
            if collector is None:
                return result
            kind = type(result)
            if kind in _SCALARS or (kind is tuple and len(result) <= _FREE_SLOTS
                                    and _SCALARS.issuperset(map(type, result))):
                return result   # pushed without allocating: no step, no memory error
            return self._pushable(result, refused)

        host_function.__name__ = getattr(function, "__name__", "host_function")
        return host_function

    def _pushable(self, result: object, refused: object) -> object:
        values = result if type(result) is tuple else (result,)
        size = _SPARE_BYTES + _STRING_OVERHEAD * len(values)
        strings = False
        for value in values:
            if type(value) is bytes:   # contexts have no encoding: only bytes become strings
                size += _STRING_OVERHEAD + len(value)
                strings = True
        collector = self._collector
        assert collector is not None
        if strings:
            size += collector.string_table_bytes()
        if len(values) > _FREE_SLOTS:
            size += self._stack_bytes(len(values))
        limit = self.memory_limit
        if limit is not None and self._memory_used is not None:
            if (self._memory_used() or 0) + size >= limit:
                self._catch_up(True)
            if (self._memory_used() or 0) + size >= limit:
                self.out_of_memory = True
                self._stop_script()
                return refused
        collector.defer(size)
        self._deferred = size
        return result

    def _stack_bytes(self, count: int) -> int:
        """An upper bound on what growing the running thread's stack by ``count`` slots
        allocates: Lua at least doubles it."""
        native, watch = self._native, self._watch
        assert native is not None and watch is not None
        largest = native.stack_capacity(watch.main_state)
        for thread in native.slot_threads(watch.slots_table, watch.slot_capacity):
            largest = max(largest, native.stack_capacity(thread))
        return _SLOT_BYTES * 2 * (largest + count)

    def _stop_script(self) -> None:
        """Stop the running script at its next instruction (on the thread that runs it, inside
        a host function: the same way the watchdog stops it at the deadline)."""
        native, watch = self._native, self._watch
        if native is None or watch is None:
            return
        native.arm(watch.main_state, TIME_COUNT)
        for thread in native.slot_threads(watch.slots_table, watch.slot_capacity):
            native.arm(thread, TIME_COUNT)
        watch.stopping = True
