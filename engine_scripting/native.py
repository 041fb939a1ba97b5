"""The few Lua C API entry points the watchdog needs, reached through ctypes.

Provides ``LuaNative``: arm and disarm a count hook on a ``lua_State``, read which threads a
context lists as possibly running, read how many stack slots a thread uses, and re-enable hooks
on a thread (``allowhook``). Uses the Lua C API that lupa's ``lua54`` extension module exports,
and probes the struct layouts it relies on before use.

``lua_sethook`` is the one call Lua allows from outside the running thread (lua.c arms it from
its SIGINT handler). Every pointer handed to these functions belongs to a thread the sandbox keeps
referenced for the duration of the call (see ``pin`` in sandbox.lua).
"""

from __future__ import annotations

import ctypes
import struct

import lupa.lua54 as lua54

LUA_MASKCOUNT = 8
# struct Table (Lua 5.4): CommonHeader, flags, lsizenode, alimit, then `TValue *array`
_TABLE_ARRAY_OFFSET = 16
# struct TValue: Value (8 bytes), then the type tag
_TVALUE_TAG_OFFSET = 8
_TVALUE_SIZE = 16
_LUA_VTHREAD_COLLECTABLE = 0x48
_LUA_VNUMINT = 0x03
# struct lua_State (Lua 5.4): CommonHeader, status, allowhook, nci, then `top` ... `stack`
_STATE_ALLOWHOOK_OFFSET = 11
_STATE_TOP_OFFSET = 16
_STATE_STACK_LAST_OFFSET = 40
_STATE_STACK_OFFSET = 48
_STACK_SLOT_SIZE = 16
_STATE_GLOBAL_OFFSET = 24
# global_State holds `TString *tmname[TM_N]`, in the order __index, __newindex, __gc, __mode, ...
_GLOBAL_SCAN_BYTES = 4096
_POINTER_SIZE = 8
_TM_GC = 2
# global_State: totalbytes and GCdebt (their sum is what the state has allocated), the string
# table's `int nuse, size`; gcstopem and gcstp are found by probing (see _probe_collector)
_GLOBAL_TOTALBYTES_OFFSET = 16
_GLOBAL_DEBT_OFFSET = 24
_GLOBAL_STRT_SIZE_OFFSET = 60
# collectgarbage("generational", 17, 76) then ("incremental", 196, 116, 11) leave these bytes
# from gcstopem to gcstepsize: gcstopem, genminormul, genmajormul/4, gcstp, gcemergency,
# gcpause/4, gcstepmul/4, gcstepsize
_GC_PROBE_BYTES = bytes([0, 17, 19, 0, 0, 49, 29, 11])
_GC_STOP_FROM_PROBE = 3
# a bit of gcstp that Lua itself never sets (it uses 1, 2 and 4): set, it keeps the collector
# from running steps, as collectgarbage("stop") does, without touching the script's own setting
HOST_PAUSE = 0x08


class NativeLayoutError(RuntimeError):
    """lupa's Lua build does not have the layout this module was written for."""


def _read_pointer(address: int) -> int:
    return ctypes.c_void_p.from_address(address).value or 0


class FinalizerSwitch:
    """Turns ``__gc`` metamethods off for one Lua state, and back on before it closes.

    Lua looks finalizers up by the event name stored in the state's ``tmname[TM_GC]``. Pointing
    that slot at a long string makes every lookup miss: objects given a metatable afterwards are
    never marked for finalization, at no cost to ``setmetatable``. ``restore`` puts the original
    name back, so the finalizers lupa registered for its own objects run when the state closes.
    """

    def __init__(self, slot: int, replacement: int) -> None:
        self._slot = slot
        self._original = _read_pointer(slot)
        ctypes.c_void_p.from_address(slot).value = replacement

    def restore(self) -> None:
        """Make ``__gc`` effective again (for lupa's objects, as the state closes)."""
        ctypes.c_void_p.from_address(self._slot).value = self._original


class Collector:
    """The collector fields of one Lua state, for keeping collector steps out of the host.

    A step of Lua's collector runs in whatever thread allocates when the debt is positive, and
    while lupa converts values that thread holds Python's GIL: a step a script made slow (weak
    tables) would then hold every Python thread, the watchdog's included. ``pause`` stops steps
    while the host works in the state; ``defer`` moves the next step past what the host is about
    to allocate, without changing how much the state counts as allocated.
    """

    def __init__(self, global_state: int, stop_offset: int) -> None:
        self._stop = ctypes.c_ubyte.from_address(global_state + stop_offset)
        self._total = ctypes.c_longlong.from_address(global_state + _GLOBAL_TOTALBYTES_OFFSET)
        self._debt = ctypes.c_longlong.from_address(global_state + _GLOBAL_DEBT_OFFSET)
        self._strings = ctypes.c_int.from_address(global_state + _GLOBAL_STRT_SIZE_OFFSET)

    def pause(self) -> None:
        """No collector step runs until ``resume`` (full collections still do)."""
        self._stop.value |= HOST_PAUSE

    def resume(self) -> None:
        """Steps run again, as the script's own collectgarbage("stop"/"restart") left them."""
        self._stop.value &= ~HOST_PAUSE

    def defer(self, nbytes: int) -> None:
        """The next step waits for ``nbytes`` more of allocation (luaE_setdebt's bookkeeping:
        totalbytes + GCdebt stays the state's allocated total)."""
        self._debt.value -= nbytes
        self._total.value += nbytes

    def due(self) -> bool:
        """True when the next allocation that checks the debt runs a step."""
        return self._debt.value > 0

    def string_table_bytes(self) -> int:
        """What resizing the state's string table would allocate now."""
        return 2 * _POINTER_SIZE * max(self._strings.value, 0)


class LuaNative:
    """Hook arming and state inspection for lupa's Lua 5.4 states.

    Raises NativeLayoutError at construction when the probes disagree with the expected layout;
    a sandbox that cannot interrupt scripts must not run them.
    """

    def __init__(self) -> None:
        library = ctypes.PyDLL(lua54.__file__)  # PyDLL keeps the GIL: arming is atomic for Python
        self._sethook = library.lua_sethook
        self._sethook.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        self._sethook.restype = None
        gethook = library.lua_gethook
        gethook.argtypes = [ctypes.c_void_p]
        gethook.restype = ctypes.c_void_p
        self._gethook = gethook
        self.hook_function = self._find_hook_function()
        self.stack_sampling = self._probe_layouts()
        self._collector_stop_offset = self._probe_collector()

    def collector(self, state: int) -> Collector:
        """The collector fields of the state whose main thread is ``state``."""
        global_state = _read_pointer(state + _STATE_GLOBAL_OFFSET)
        if not global_state:
            raise NativeLayoutError("lua_State has no global state where Lua 5.4 keeps it")
        return Collector(global_state, self._collector_stop_offset)

    @staticmethod
    def _probe_collector() -> int:
        """Find gcstp in global_State (Lua 5.4.4 and later), and check that it, the debt and
        the total hold what Lua says they hold."""
        runtime = lua54.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)
        main = int(runtime.execute("return string.format('%p', coroutine.running())"), 16)
        global_state = _read_pointer(main + _STATE_GLOBAL_OFFSET)
        runtime.execute('collectgarbage("generational", 17, 76)'
                        ' collectgarbage("incremental", 196, 116, 11)')
        found = ctypes.string_at(global_state, _GLOBAL_SCAN_BYTES).find(_GC_PROBE_BYTES)
        if found < _GLOBAL_DEBT_OFFSET + 8:
            raise NativeLayoutError("the collector's settings are not where Lua 5.4 keeps them")
        stop_offset = found + _GC_STOP_FROM_PROBE
        collector = Collector(global_state, stop_offset)
        stop = collector._stop
        runtime.execute('collectgarbage("stop")')
        stopped = stop.value
        collector.pause()
        paused_running = runtime.eval('collectgarbage("isrunning")')
        collector.resume()
        runtime.execute('collectgarbage("restart")')
        counted = runtime.eval('collectgarbage("count")') * 1024
        total = collector._total.value + collector._debt.value
        collector.defer(12345)
        deferred = collector._total.value + collector._debt.value
        if (stopped != 1 or stop.value != 0 or paused_running is not False
                or counted != total or deferred != total):
            raise NativeLayoutError("gcstp, GCdebt or totalbytes differ from Lua 5.4's")
        return stop_offset

    def _find_hook_function(self) -> int:
        """The C hook that debug.sethook installs; it calls the Lua hook of the thread."""
        runtime = lua54.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)
        state = int(runtime.execute("return string.format('%p', coroutine.running())"), 16)
        runtime.execute("debug.sethook(function() end, '', 1000000)")
        hook = self._gethook(state)
        runtime.execute("debug.sethook()")
        if not hook:
            raise NativeLayoutError("lua_gethook did not return debug.sethook's hook")
        return int(hook)

    def _probe_layouts(self) -> bool:
        runtime = lua54.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)
        main, co, table = runtime.execute(
            "local co = coroutine.create(print)\n"
            "slots = {2, coroutine.running(), co}\n"
            "return string.format('%p', slots[2]), string.format('%p', co),"
            " string.format('%p', slots)"
        )
        if self.slot_threads(int(table, 16), 8) != [int(main, 16), int(co, 16)]:
            raise NativeLayoutError("Lua table layout differs from Lua 5.4's")
        state = int(main, 16)
        inside_hook: list[int] = []
        runtime.globals()[b"probe_hook"] = lambda: inside_hook.append(self._allowhook(state))
        runtime.execute("debug.sethook(function() debug.sethook() probe_hook() end, '', 1)"
                        " local x = 1")
        if self._allowhook(state) != 1 or inside_hook != [0]:
            raise NativeLayoutError("lua_State.allowhook is not where Lua 5.4 keeps it")
        seen: list[int] = []
        runtime.globals()[b"probe"] = lambda: seen.append(self.stack_slots(state))
        runtime.execute("local function f(n) if n == 0 then probe() return 0 end "
                        "return 1 + f(n - 1) end return f(100)")
        idle = self.stack_slots(state)
        capacity = self.stack_capacity(state)
        return (bool(seen) and 0 <= idle < 64 and 200 <= seen[0] < 100_000
                and seen[0] <= capacity < 1_000_000)

    @staticmethod
    def disable_finalizers(state: int, event_names: tuple[int, ...], replacement: int) -> (
        FinalizerSwitch
    ):
        """Point ``tmname[TM_GC]`` of ``state``'s global state at ``replacement``.

        ``event_names`` are the addresses of the strings "__index", "__newindex", "__gc" and
        "__mode"; the slot is found where the four appear in that order.
        """
        global_state = _read_pointer(state + _STATE_GLOBAL_OFFSET)
        if not global_state:
            raise NativeLayoutError("lua_State has no global state where Lua 5.4 keeps it")
        memory = ctypes.string_at(global_state, _GLOBAL_SCAN_BYTES)
        wanted = struct.pack(f"<{len(event_names)}Q", *event_names)
        offset = memory.find(wanted)
        while offset >= 0 and offset % _POINTER_SIZE:
            offset = memory.find(wanted, offset + 1)
        if offset >= 0:
            return FinalizerSwitch(global_state + offset + _POINTER_SIZE * _TM_GC, replacement)
        raise NativeLayoutError("metamethod names not found in Lua's global state")

    def arm(self, state: int, count: int) -> None:
        """Arm a count hook that fires every ``count`` instructions on ``state``."""
        self._sethook(state, self.hook_function, LUA_MASKCOUNT, count)

    def disarm(self, state: int) -> None:
        """Remove the hook of ``state``."""
        self._sethook(state, None, 0, 0)

    @staticmethod
    def slot_threads(table: int, capacity: int) -> list[int]:
        """The threads listed in the Lua table at ``table``: its [1] is a count n, and [2..n+1]
        are threads (see ``slots`` in sandbox.lua). Reads at most ``capacity`` threads."""
        array = _read_pointer(table + _TABLE_ARRAY_OFFSET)
        if not array:
            return []
        if ctypes.c_ubyte.from_address(array + _TVALUE_TAG_OFFSET).value != _LUA_VNUMINT:
            return []
        count = min(ctypes.c_longlong.from_address(array).value, capacity)
        if count <= 0:
            return []
        raw = ctypes.string_at(array + _TVALUE_SIZE, count * _TVALUE_SIZE)
        threads = []
        for value, tag in struct.iter_unpack("<QB7x", raw):
            if tag == _LUA_VTHREAD_COLLECTABLE and value:
                threads.append(value)
        return threads

    @staticmethod
    def allow_hooks(state: int) -> None:
        """Let hooks run on ``state`` again. Lua turns them off while a hook runs, and leaves
        them off on a thread that a hook error ended, which would let its ``__close`` handlers
        and message handlers run unbounded."""
        ctypes.c_ubyte.from_address(state + _STATE_ALLOWHOOK_OFFSET).value = 1

    @staticmethod
    def _allowhook(state: int) -> int:
        return ctypes.c_ubyte.from_address(state + _STATE_ALLOWHOOK_OFFSET).value

    @staticmethod
    def stack_capacity(state: int) -> int:
        """How many stack slots ``state`` has allocated: it stays high for a while after a deep
        recursion unwound (Lua shrinks stacks only during garbage collection)."""
        last = _read_pointer(state + _STATE_STACK_LAST_OFFSET)
        stack = _read_pointer(state + _STATE_STACK_OFFSET)
        return (last - stack) // _STACK_SLOT_SIZE

    @staticmethod
    def stack_slots(state: int) -> int:
        """How many stack slots ``state`` uses now (read without locking: an estimate)."""
        top = _read_pointer(state + _STATE_TOP_OFFSET)
        stack = _read_pointer(state + _STATE_STACK_OFFSET)
        return (top - stack) // _STACK_SLOT_SIZE
