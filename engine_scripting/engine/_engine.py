"""ScriptEngine: creates sandboxed contexts and owns the watchdog that enforces their limits.

Uses sandbox.lua (compiled once per engine), ``LuaNative`` and ``Watchdog``.
"""

from __future__ import annotations

import os
import struct
import threading
import weakref
from collections.abc import Callable, Sequence
from importlib.resources import files
from typing import TypeVar

import lupa.lua54 as lua54

from engine_scripting._log import get_logger
from engine_scripting.engine._boundary import HostBoundary
from engine_scripting.engine._context import ScriptContext
from engine_scripting.engine._control import SandboxControl
from engine_scripting.engine._hooks import ContextHooks
from engine_scripting.engine._limits import MAX_SOURCE_BYTES, ScriptResourceLimits
from engine_scripting.engine._native import LuaNative
from engine_scripting.engine._native_probe import checked_native
from engine_scripting.engine._policy import LUA_POLICY
from engine_scripting.engine._runner import Runner, Worker, abandon_open_calls
from engine_scripting.engine._watchdog import SAMPLE_COUNT, TIME_COUNT, Watchdog
from engine_scripting.errors import CallAbandoned, ResourceLimitExceeded, ScriptError

_log = get_logger(__name__)
Item = TypeVar("Item")

# The share of a call's time budget that one uninterruptible C call may take, by the worst-case
# cost bound of patterns.lua and tables.lua; costlier calls run as interruptible Lua.
C_CALL_SHARE = 0.5
PRINT_LINE_LIMIT = 8192
# The sandbox's own Lua modules, run at set-up after argcheck.lua, in this order: each gets the
# original library functions, argcheck, and what the modules before it returned.
SANDBOX_MODULES = ("pattern_compile", "patterns", "tables", "coroutines")


class ScriptEngine:
    """Runs Lua 5.4 scripts in isolated sandboxes with memory, time and recursion limits.

    Args:
        limits: default limits for the contexts it creates.
        trusted: no sandbox and no limits. Only for engine-owned code and for baselines.
        output_maxlen: how many printed lines each context keeps.
        watchdog_poll_ms: how often running calls are checked against their limits.
        c_call_share: the share of the time budget one uninterruptible C call (a pattern
            match, a sort...) may take by its worst-case cost; costlier calls run as Lua.

    Raises NativeLayoutError when lupa's Lua cannot be interrupted the way the sandbox needs.
    """

    def __init__(
        self,
        limits: ScriptResourceLimits | None = None,
        *,
        trusted: bool = False,
        output_maxlen: int = 1000,
        watchdog_poll_ms: float = 1.0,
        c_call_share: float = C_CALL_SHARE,
    ) -> None:
        self.limits = limits if limits is not None else ScriptResourceLimits()
        self.trusted = trusted
        self._output_maxlen = output_maxlen
        self._c_call_share = c_call_share
        self._native: LuaNative | None = None
        self._watchdog: Watchdog | None = None
        self._runner: Runner | None = None
        self._closed = threading.Event()
        if not trusted:
            self._native = checked_native()
            self._watchdog = Watchdog(self._native, poll_interval_s=watchdog_poll_ms / 1000.0)
            self._runner = Runner()
        # an engine dropped without close() still stops its threads
        self._finalizer = weakref.finalize(self, _shut_down, self._closed, self._watchdog,
                                           self._runner)
        self._setup_chunk = compile_chunk("engine/lua/sandbox.lua", "sandbox")
        self._module_chunks = tuple(
            compile_chunk(f"engine/lua/{module}.lua", module)
            for module in ("argcheck", "export", *SANDBOX_MODULES)
        )

    def create_context(
        self,
        name: str,
        limits: ScriptResourceLimits | None = None,
        *,
        on_print: Callable[[str], None] | None = None,
    ) -> ScriptContext:
        """Create an isolated sandbox: its own Lua state, globals, string metatable and GC.

        ``limits`` overrides the engine's defaults; ``on_print`` receives each printed line.
        Raises ResourceLimitExceeded("memory") when the memory limit cannot hold a context.
        """
        if not isinstance(name, str) or not name:
            raise ScriptError("a context needs a non-empty name")
        if self._closed.is_set():
            raise ScriptError("the engine is closed")
        boundary = HostBoundary(self._runner)
        hooks = ContextHooks(self._output_maxlen, on_print, boundary)
        effective = None if self.trusted else (limits if limits is not None else self.limits)
        options: dict[str, object] = {
            "encoding": None, "register_eval": False, "register_builtins": False,
            "unpack_returned_tuples": True,
        }
        if effective is not None:
            options["max_memory"] = effective.max_memory_bytes
            options["attribute_filter"] = hooks.deny_attribute
        runtime = lua54.LuaRuntime(**options)
        budget_ms = effective.max_execution_time_ms if effective else 1e6
        c_call_ns = self._c_call_share * budget_ms * 1e6
        depth = effective.max_recursion_depth if effective else 1_000_000
        try:
            loader = runtime.globals()[b"load"]
            setup = loader(self._setup_chunk, b"=sandbox", b"b")
            seeds = struct.unpack("<qq", os.urandom(16))
            control = setup(hooks.lua_print, hooks.lua_report, depth, c_call_ns,
                            PRINT_LINE_LIMIT, self.trusted, MAX_SOURCE_BYTES, *seeds,
                            TIME_COUNT, SAMPLE_COUNT, runtime.table_from(LUA_POLICY),
                            *self._module_chunks)
            collect = control[b"collect"]  # no script object exists yet: cheap, and unwatched
            del setup, loader
        except lua54.LuaMemoryError as error:
            raise ResourceLimitExceeded(
                f"{name}: memory limit too small to create a context", limit_type="memory",
                script=name,
            ) from error
        context = ScriptContext(name, runtime, SandboxControl.read(control), hooks, boundary,
                                effective, self._watchdog, self._native, self._runner,
                                self._closed, self)
        collect(True)  # the set-up chunk is garbage now: a context starts small
        return context

    def run_each(self, items: Sequence[Item], job: Callable[[Item], object],
                 context_of: Callable[[Item], ScriptContext],
                 on_abandoned: Callable[[Item, CallAbandoned], None]) -> None:
        """``job(item)`` for every item, in order, in one handoff to the engine's worker thread
        (the ScriptSystem runs a whole tick this way).

        When a call of item k's context is abandoned (stuck in a C function), every context with
        a call open on that worker is dead, ``on_abandoned(item_k, error)`` runs on the calling
        thread, and the items after k go on on a new worker."""
        runner = self._runner
        if runner is None:
            for item in items:
                job(item)
            return

        def abandoned(item: Item, worker: Worker) -> None:
            on_abandoned(item, abandon_open_calls(worker, context_of(item)))

        runner.run_each(items, job, abandoned)

    @property
    def closed(self) -> bool:
        """True once ``close`` has run."""
        return self._closed.is_set()

    def close(self) -> None:
        """Stop the watchdog and worker threads. The engine's contexts refuse calls from then
        on (nothing could limit them); ``close`` them to free their states."""
        self._finalizer()

    def __enter__(self) -> ScriptEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _shut_down(closed: threading.Event, watchdog: Watchdog | None,
               runner: Runner | None) -> None:
    closed.set()
    if watchdog is not None:
        watchdog.close()
    if runner is not None:
        runner.close()


def compile_chunk(resource: str, chunk_name: str) -> bytes:
    """Precompile one of the package's trusted Lua files (e.g. "ecs/lua/world.lua") to bytecode
    without debug information: smaller in every state, and its lines never show in errors."""
    source = files("engine_scripting").joinpath(resource).read_bytes()
    runtime = lua54.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)
    dump = runtime.eval("function(src, name) return string.dump(assert(load(src, name)), true) end")
    chunk: bytes = dump(source, b"=" + chunk_name.encode())
    return chunk

