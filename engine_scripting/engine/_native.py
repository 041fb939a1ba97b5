"""The few Lua C API entry points and struct fields the watchdog needs, reached through ctypes.

Provides ``LuaNative``: ask a ``lua_State`` to run its hook (from the watchdog thread, by writing
only the thread's own hook fields; see ``request_stop`` and docs/security.md), arm and disarm a
count hook from the thread that runs the state, read which threads a context lists as possibly
running, read how many stack slots a thread uses, and re-enable hooks on a thread (``allowhook``).
Uses the Lua C API that lupa's ``lua54`` extension module exports. Every offset below is checked
at start-up against an independent route (the C API, or arithmetic on Lua's own allocation) by
_native_probe.py, on a probe state, before any context exists; any mismatch, a missing symbol or
another Lua release raises ``NativeLayoutError``, and no pointer is read through before it has
been checked.

Every thread address handed to these functions belongs to a thread the sandbox keeps referenced
for the duration of the call and the next (see ``pin`` in sandbox.lua), so its ``lua_State`` is
never freed while they run.
"""

from __future__ import annotations

import ctypes
import struct
from typing import Any

# The Lua releases whose struct layouts (lstate.h, lobject.h) these offsets were taken from; add
# a release only after comparing its lstate.h with the offsets below.
SUPPORTED_RELEASES = ("5.4.8",)
LUA_VERSION_NUM = 504
LUA_MASKCALL, LUA_MASKRET, LUA_MASKCOUNT = 1, 2, 8
# What the watchdog arms a thread with: the hook runs at the thread's next call, return, Lua
# function entry or resumption, or, once `trap` is set, at its next instruction
WATCHDOG_MASK = LUA_MASKCOUNT | LUA_MASKCALL | LUA_MASKRET
# struct Table (Lua 5.4): CommonHeader (next, tt), flags, lsizenode, alimit, `TValue *array`,
# node, lastfree, metatable
_TABLE_TT_OFFSET = 8
_TABLE_ARRAY_OFFSET = 16
_TABLE_METATABLE_OFFSET = 40
_LUA_VTABLE = 0x05   # the object header's tt (a TValue's tag adds the collectable bit)
# struct TValue: Value (8 bytes), then the type tag
_TVALUE_TAG_OFFSET = 8
_TVALUE_SIZE = 16
_LUA_VTHREAD_COLLECTABLE = 0x48
_LUA_VNUMINT = 0x03
# struct lua_State (Lua 5.4.8, 64-bit): CommonHeader, status, allowhook, nci, top, l_G, ci,
# stack_last, stack, ..., base_ci, hook, errfunc, nCcalls, oldpc, basehookcount, hookcount,
# hookmask. The main thread's lua_State is followed by its global_State (struct LG in lstate.c)
_STATE_ALLOWHOOK_OFFSET = 11
_STATE_TOP_OFFSET = 16
_STATE_GLOBAL_OFFSET = 24
_STATE_CI_OFFSET = 32
_STATE_STACK_LAST_OFFSET = 40
_STATE_STACK_OFFSET = 48
_STATE_BASE_CI_OFFSET = 96
_STATE_HOOK_OFFSET = 160
_STATE_BASEHOOKCOUNT_OFFSET = 184
_STATE_HOOKCOUNT_OFFSET = 188
_STATE_HOOKMASK_OFFSET = 192
_STATE_SIZE = 200
_STACK_SLOT_SIZE = 16
# struct CallInfo: func, top, previous, next, then `u`: for Lua functions savedpc, trap, ...;
# callstatus last (bit CIST_C: a C function)
_CI_FUNC_OFFSET = 0
_CI_PREVIOUS_OFFSET = 16
_CI_TRAP_OFFSET = 40
_CI_CALLSTATUS_OFFSET = 62
_CIST_C = 2
# lua_Debug: the private `i_ci` after short_src[LUA_IDSIZE]
_DEBUG_CI_OFFSET = 128
_DEBUG_SIZE = 256
# global_State: totalbytes and GCdebt (their sum is what the state has allocated), the string
# table's `int nuse, size`, the collector's byte settings from gcstopem on, mainthread, and
# `TString *tmname[TM_N]` in the order __index, __newindex, __gc, __mode, ...
_GLOBAL_TOTALBYTES_OFFSET = 16
_GLOBAL_DEBT_OFFSET = 24
_GLOBAL_STRT_SIZE_OFFSET = 60
_GLOBAL_GCSTOPEM_OFFSET = 103
_GLOBAL_MAINTHREAD_OFFSET = 264
_GLOBAL_TMNAME_OFFSET = 280
_POINTER_SIZE = 8
_TM_GC = 2
# collectgarbage("generational", 17, 76) then ("incremental", 196, 116, 11) leave these bytes
# from gcstopem to gcstepsize: gcstopem, genminormul, genmajormul/4, gcstp, gcemergency,
# gcpause/4, gcstepmul/4, gcstepsize
_GC_PROBE_BYTES = bytes([0, 17, 19, 0, 0, 49, 29, 11])
_GC_STOP_FROM_PROBE = 3
# a bit of gcstp that Lua itself never sets (it uses 1, 2 and 4): set, it keeps the collector
# from running steps, as collectgarbage("stop") does, without touching the script's own setting
HOST_PAUSE = 0x08
_HOST_RESUME = 0xFF & ~HOST_PAUSE


class NativeLayoutError(RuntimeError):
    """lupa's Lua build does not have the layout this module was written for."""


def _read_pointer(address: int) -> int:
    return ctypes.c_void_p.from_address(address).value or 0


def _int64_at(address: int) -> memoryview:
    """The 8 bytes at ``address`` as a one-item view of a signed 64-bit integer."""
    return memoryview((ctypes.c_ubyte * 8).from_address(address)).cast("B").cast("q")


def global_state_of(main_state: int) -> int:
    """The global_State of the state whose main thread is ``main_state``: read from ``l_G``, and
    checked against where Lua allocates it (right after the main thread) before anyone reads
    through it."""
    global_state = _read_pointer(main_state + _STATE_GLOBAL_OFFSET)
    if global_state != main_state + _STATE_SIZE:
        raise NativeLayoutError("lua_State.l_G is not where Lua 5.4 keeps it")
    return global_state


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

    def __init__(self, global_state: int) -> None:
        stop_offset = _GLOBAL_GCSTOPEM_OFFSET + _GC_STOP_FROM_PROBE
        # memoryviews read and write at half the cost of ctypes fields (several times per call)
        self._stop = memoryview(
            (ctypes.c_ubyte * 1).from_address(global_state + stop_offset)).cast("B")
        self._total = _int64_at(global_state + _GLOBAL_TOTALBYTES_OFFSET)
        self._debt = _int64_at(global_state + _GLOBAL_DEBT_OFFSET)
        self._strings = ctypes.c_int.from_address(global_state + _GLOBAL_STRT_SIZE_OFFSET)

    def pause(self) -> None:
        """No collector step runs until ``resume`` (full collections still do)."""
        self._stop[0] |= HOST_PAUSE

    def resume(self) -> None:
        """Steps run again, as the script's own collectgarbage("stop"/"restart") left them."""
        self._stop[0] &= _HOST_RESUME

    def defer(self, nbytes: int) -> None:
        """The next step waits for ``nbytes`` more of allocation (luaE_setdebt's bookkeeping:
        totalbytes + GCdebt stays the state's allocated total)."""
        self._debt[0] -= nbytes
        self._total[0] += nbytes

    def due(self) -> bool:
        """True when the next allocation that checks the debt runs a step."""
        return self._debt[0] > 0

    def string_table_bytes(self) -> int:
        """What resizing the state's string table would allocate now."""
        return 2 * _POINTER_SIZE * max(self._strings.value, 0)


class LuaNative:
    """Hook arming and state inspection for lupa's Lua 5.4 states.

    Make it with ``_native_probe.checked_native()``, which raises NativeLayoutError when lupa's
    Lua is another release, lacks a C API function, or a probe disagrees with an offset above: a
    sandbox that cannot interrupt scripts must not run them.
    """

    def __init__(self, sethook: Any) -> None:
        self._sethook = sethook
        self.hook_function = 0       # set by the probe: the C hook debug.sethook installs
        self.stack_sampling = True   # kept for callers: the stack layout is always probed

    @staticmethod
    def collector(state: int) -> Collector:
        """The collector fields of the state whose main thread is ``state``."""
        return Collector(global_state_of(state))

    @staticmethod
    def disable_finalizers(state: int, event_names: tuple[int, ...], replacement: int) -> (
        FinalizerSwitch
    ):
        """Point ``tmname[TM_GC]`` of ``state``'s global state at ``replacement``.

        ``event_names`` are the addresses of the strings "__index", "__newindex", "__gc" and
        "__mode", which must be the first four entries of ``tmname``.
        """
        names = global_state_of(state) + _GLOBAL_TMNAME_OFFSET
        wanted = struct.pack(f"<{len(event_names)}Q", *event_names)
        if ctypes.string_at(names, len(wanted)) != wanted:
            raise NativeLayoutError("metamethod names not found in Lua's global state")
        return FinalizerSwitch(names + _POINTER_SIZE * _TM_GC, replacement)

    def arm(self, state: int, count: int) -> None:
        """Arm a count hook that fires every ``count`` instructions on ``state``.

        Only from the thread that runs the state (``lua_sethook`` walks the thread's call-info
        list); the watchdog thread uses ``request_stop`` and ``trap_current``."""
        self._sethook(state, self.hook_function, LUA_MASKCOUNT, count)

    def disarm(self, state: int) -> None:
        """Remove the hook of ``state`` (from the thread that runs the state)."""
        self._sethook(state, None, 0, 0)

    def request_stop(self, state: int, count: int) -> None:
        """From any thread: make ``state`` run its hook at its next call, return, Lua function
        entry or resumption, then every ``count`` instructions of traced code.

        Writes only the hook fields of the ``lua_State`` itself (what ``lua_sethook`` writes
        before it walks the call-info list), ``hookmask`` last; Lua reads them without locking by
        design (lua_sethook may run in a signal handler). No CallInfo is touched."""
        ctypes.c_void_p.from_address(state + _STATE_HOOK_OFFSET).value = self.hook_function
        ctypes.c_int.from_address(state + _STATE_BASEHOOKCOUNT_OFFSET).value = count
        ctypes.c_int.from_address(state + _STATE_HOOKCOUNT_OFFSET).value = count
        ctypes.c_int.from_address(state + _STATE_HOOKMASK_OFFSET).value = WATCHDOG_MASK

    def hook_state(self, state: int) -> tuple[int, int]:
        """``(hookmask, basehookcount)`` of ``state`` when its hook is the sandbox's, else
        ``(0, 0)``. ``(WATCHDOG_MASK, count)`` means ``request_stop(state, count)`` is still in
        force: the hook has not run since (it re-arms or disarms the thread itself)."""
        if _read_pointer(state + _STATE_HOOK_OFFSET) != self.hook_function:
            return (0, 0)
        return (ctypes.c_int.from_address(state + _STATE_HOOKMASK_OFFSET).value,
                ctypes.c_int.from_address(state + _STATE_BASEHOOKCOUNT_OFFSET).value)

    def requested(self, state: int, count: int) -> bool:
        """True while ``request_stop(state, count)`` is still in force (see ``hook_state``)."""
        return self.hook_state(state) == (WATCHDOG_MASK, count)

    def trap_current(self, state: int, count: int) -> bool:
        """From the watchdog thread: set ``trap`` of the Lua function ``state`` runs now, so that
        a loop that makes no call reaches the hook. Only for a thread that kept the hook
        ``request_stop`` set, with hooks allowed, and whose current frame is a Lua function.
        One 4-byte store; see docs/security.md for what it can race with. True when stored."""
        if not self.requested(state, count) or self._allowhook(state) != 1:
            return False
        ci = _read_pointer(state + _STATE_CI_OFFSET)
        if not ci or ctypes.c_ushort.from_address(ci + _CI_CALLSTATUS_OFFSET).value & _CIST_C:
            return False
        ctypes.c_int.from_address(ci + _CI_TRAP_OFFSET).value = 1
        return True

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
        entry = f"<Q{_TVALUE_TAG_OFFSET - 8}xB{_TVALUE_SIZE - _TVALUE_TAG_OFFSET - 1}x"
        for value, tag in struct.iter_unpack(entry, raw):
            if tag == _LUA_VTHREAD_COLLECTABLE and value:
                threads.append(value)
        return threads

    @staticmethod
    def allow_hooks(state: int) -> None:
        """Let hooks run on ``state`` again. Lua turns them off while a hook runs, and leaves
        them off on a thread that a hook error ended, which would let its ``__close`` handlers
        and message handlers run unbounded. One byte of the (pinned) lua_State."""
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
