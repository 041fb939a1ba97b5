"""Start-up checks of every struct offset _native.py uses, on a probe Lua state.

Provides ``checked_native`` (a LuaNative, once everything below passed), ``load_api`` (the C API
functions _native.py calls, or NativeLayoutError when one is missing) and ``probe`` (the Lua
release, then each offset, each against an independent route: the C API (lua_gethook*,
lua_getstack, lua_gettop), arithmetic on Lua's own allocation (the main thread's global_State
follows it), or values Lua reports (collectgarbage)). A pointer is read through only after the
offset it came from has been checked; pointers that cannot be checked that way (a table's array)
are first read through /proc/self/mem, which fails instead of
crashing. Any mismatch raises NativeLayoutError; nothing here may crash the process.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import lupa.lua54 as lua54

from engine_scripting.engine import _native as layout
from engine_scripting.engine._native import LuaNative, NativeLayoutError, _read_pointer

_SYMBOLS: Final[Mapping[str, tuple[tuple[Any, ...], Any]]] = MappingProxyType({
    "lua_sethook": ((ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int), None),
    "lua_gethook": ((ctypes.c_void_p,), ctypes.c_void_p),
    "lua_gethookmask": ((ctypes.c_void_p,), ctypes.c_int),
    "lua_gethookcount": ((ctypes.c_void_p,), ctypes.c_int),
    "lua_getstack": ((ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p), ctypes.c_int),
    "lua_gettop": ((ctypes.c_void_p,), ctypes.c_int),
    "lua_checkstack": ((ctypes.c_void_p, ctypes.c_int), ctypes.c_int),
    "lua_version": ((ctypes.c_void_p,), ctypes.c_double),
})
_PROBE_COUNT = 1_000_000
_MAX_STACK_SLOTS = 1_000_000   # LUAI_MAXSTACK
_MIN_STRING_TABLE = 128        # MINSTRTABSIZE
_CI_SIZE = 64                  # sizeof(CallInfo)


def load_api() -> dict[str, Any]:
    """The C API functions _native.py uses, from lupa's lua54 module (PyDLL keeps the GIL)."""
    try:
        library = vars(layout)["ctypes"].PyDLL(lua54.__file__)  # native.ctypes: tests replace it
        api: dict[str, Any] = {}
        for name, (argtypes, restype) in _SYMBOLS.items():
            function = getattr(library, name)
            function.argtypes = list(argtypes)
            function.restype = restype
            api[name] = function
        api["lua_ident"] = ctypes.cast(library.lua_ident, ctypes.c_void_p).value
    except (AttributeError, OSError) as error:
        raise NativeLayoutError(f"lupa's Lua lacks a C API function: {error}") from error
    return api


def checked_native() -> LuaNative:
    """A LuaNative for lupa's Lua, once the release and every offset were checked; raises
    NativeLayoutError otherwise."""
    api = load_api()
    native = LuaNative(api["lua_sethook"])
    native.hook_function = probe(api, native)
    return native


def probe(api: dict[str, Any], native: LuaNative) -> int:
    """Check the release and every offset; return the address of the C hook debug.sethook
    installs (the hook function the watchdog arms)."""
    _check_release(api)
    runtime = lua54.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)
    main, co = (int(p, 16) for p in runtime.execute(
        "probe_co = coroutine.create(function() end)"
        " return string.format('%p', coroutine.running()), string.format('%p', probe_co)"))
    _check_global_state(main, co)
    hook = _check_hook_fields(api, runtime, main)
    native.hook_function = hook
    _check_request_stop(api, runtime, native, co)
    _check_frames(api, runtime)
    _check_allowhook(runtime, main)
    _check_table(runtime, native)
    _check_stack_sampling(runtime, native, main)
    _check_collector(runtime, main)
    _check_event_names(runtime, main)
    return hook


def _fail(what: str) -> NativeLayoutError:
    return NativeLayoutError(f"{what} differs from Lua {'/'.join(layout.SUPPORTED_RELEASES)}'s")


def _check_release(api: dict[str, Any]) -> None:
    ident = ctypes.string_at(api["lua_ident"], 40) if api["lua_ident"] else b""
    releases = {f"$LuaVersion: Lua {r} ".encode() for r in layout.SUPPORTED_RELEASES}
    number = int(api["lua_version"](None))
    if (tuple(lua54.LUA_VERSION) != (5, 4) or number != layout.LUA_VERSION_NUM
            or not any(ident.startswith(release) for release in releases)):
        raise NativeLayoutError(f"lupa's Lua is not release {layout.SUPPORTED_RELEASES}: "
                                f"{ident.split(b'  ')[0].decode('ascii', 'replace')}")


def _field(state: int, offset: int, kind: Any) -> int:
    if not 0 <= offset <= layout._STATE_SIZE - ctypes.sizeof(kind):
        raise _fail("lua_State")
    return int(kind.from_address(state + offset).value or 0)


def _check_global_state(main: int, co: int) -> None:
    """l_G must be where LG puts the global state (right after the main thread), for the main
    thread and a coroutine alike; only then is the mainthread field read."""
    global_state = main + layout._STATE_SIZE
    for thread in (main, co):
        if _field(thread, layout._STATE_GLOBAL_OFFSET, ctypes.c_void_p) != global_state:
            raise _fail("lua_State.l_G")
    if _read_pointer(global_state + layout._GLOBAL_MAINTHREAD_OFFSET) != main:
        raise _fail("global_State.mainthread")
    layout.global_state_of(main)


def _check_hook_fields(api: dict[str, Any], runtime: Any, main: int) -> int:
    """hook, hookmask, basehookcount and hookcount against lua_gethook/mask/count."""
    runtime.execute(f"debug.sethook(function() end, '', {_PROBE_COUNT})")
    hook = api["lua_gethook"](main) or 0
    mask, count = api["lua_gethookmask"](main), api["lua_gethookcount"](main)
    fields = (_field(main, layout._STATE_HOOK_OFFSET, ctypes.c_void_p),
              _field(main, layout._STATE_HOOKMASK_OFFSET, ctypes.c_int),
              _field(main, layout._STATE_BASEHOOKCOUNT_OFFSET, ctypes.c_int))
    left = _field(main, layout._STATE_HOOKCOUNT_OFFSET, ctypes.c_int)
    runtime.execute("debug.sethook()")
    if not hook or (mask, count) != (layout.LUA_MASKCOUNT, _PROBE_COUNT):
        raise NativeLayoutError("lua_gethook did not return debug.sethook's hook")
    # hookcount counts down from basehookcount as traced instructions run (the chunk's return)
    if fields != (hook, mask, count) or not _PROBE_COUNT - 10_000 < left < _PROBE_COUNT:
        raise _fail("lua_State's hook fields")
    if _field(main, layout._STATE_HOOKMASK_OFFSET, ctypes.c_int) != 0:
        raise _fail("lua_State.hookmask")
    return int(hook)


def _check_request_stop(api: dict[str, Any], runtime: Any, native: LuaNative, co: int) -> None:
    """What the watchdog writes is what lua_gethook* read back, and it makes the thread run
    its hook when resumed."""
    runtime.execute("probe_hooked = 0"
                    " debug.sethook(probe_co, function() probe_hooked = probe_hooked + 1 end, '')")
    native.request_stop(co, 3)
    armed = (api["lua_gethook"](co) or 0, api["lua_gethookmask"](co), api["lua_gethookcount"](co))
    if armed != (native.hook_function, layout.WATCHDOG_MASK, 3) or not native.requested(co, 3):
        raise _fail("lua_State's hook fields (written)")
    if runtime.eval("coroutine.resume(probe_co) and probe_hooked") == 0:
        raise _fail("the hook request")


def _check_frames(api: dict[str, Any], runtime: Any) -> None:
    """ci, CallInfo's previous, callstatus and trap, top and stack against lua_getstack (which
    reports the CallInfo of each level) and lua_gettop, inside a call from Lua."""
    seen: list[int] = []
    offsets = (layout._CI_FUNC_OFFSET, layout._CI_PREVIOUS_OFFSET, layout._CI_TRAP_OFFSET,
               layout._CI_CALLSTATUS_OFFSET)
    if not all(0 <= offset <= _CI_SIZE - 2 for offset in offsets) or not (
            0 <= layout._DEBUG_CI_OFFSET <= layout._DEBUG_SIZE - 8):
        raise _fail("CallInfo")

    def inspect(thread: bytes, trap: int) -> None:
        state = int(thread, 16)
        levels = []
        for level in (0, 1):
            record = ctypes.create_string_buffer(layout._DEBUG_SIZE)
            if not api["lua_getstack"](state, level, record):
                raise _fail("the call stack")
            levels.append(_read_pointer(ctypes.addressof(record) + layout._DEBUG_CI_OFFSET))
        current, caller = levels
        if not current or _field(state, layout._STATE_CI_OFFSET, ctypes.c_void_p) != current:
            raise _fail("lua_State.ci")
        if _read_pointer(current + layout._CI_PREVIOUS_OFFSET) != caller:
            raise _fail("CallInfo.previous")
        status = ctypes.c_ushort
        if (not status.from_address(current + layout._CI_CALLSTATUS_OFFSET).value & layout._CIST_C
                or status.from_address(caller + layout._CI_CALLSTATUS_OFFSET).value
                & layout._CIST_C):
            raise _fail("CallInfo.callstatus")
        if ctypes.c_int.from_address(caller + layout._CI_TRAP_OFFSET).value != trap:
            raise _fail("CallInfo.trap")
        func = _read_pointer(current + layout._CI_FUNC_OFFSET)
        top = _field(state, layout._STATE_TOP_OFFSET, ctypes.c_void_p)
        stack = _field(state, layout._STATE_STACK_OFFSET, ctypes.c_void_p)
        base = _field(state, layout._STATE_BASE_CI_OFFSET + layout._CI_FUNC_OFFSET, ctypes.c_void_p)
        last = _field(state, layout._STATE_STACK_LAST_OFFSET, ctypes.c_void_p)
        size = layout._STACK_SLOT_SIZE
        if top != func + size * (1 + api["lua_gettop"](state)):
            raise _fail("lua_State.top")
        if stack != base or not stack < func < top:
            raise _fail("lua_State.stack")
        if not top <= last <= stack + size * _MAX_STACK_SLOTS or (last - stack) % size:
            raise _fail("lua_State.stack_last")
        # growing the stack past its end must give exactly luaD_growstack's new size
        slots, used = (last - stack) // size, (top - stack) // size
        wanted = (last - top) // size + 8
        if not api["lua_checkstack"](state, wanted):
            raise _fail("lua_State.stack_last")
        stack = _field(state, layout._STATE_STACK_OFFSET, ctypes.c_void_p)
        last = _field(state, layout._STATE_STACK_LAST_OFFSET, ctypes.c_void_p)
        if last - stack != size * max(2 * slots, used + wanted):
            raise _fail("lua_State.stack_last")
        seen.append(trap)

    runtime.globals()[b"probe_inspect"] = inspect
    runtime.execute(
        "local function caller(trap) probe_inspect(string.format('%p', coroutine.running()), trap)"
        " return 0 end\n"
        "debug.sethook(function() end, '', 1000000) caller(1) debug.sethook()\n"
        "coroutine.wrap(function() caller(0) return 0 end)()")
    if seen != [1, 0]:
        raise _fail("the call stack")


def _check_allowhook(runtime: Any, main: int) -> None:
    inside_hook: list[int] = []
    allowhook = layout._STATE_ALLOWHOOK_OFFSET
    runtime.globals()[b"probe_hook"] = lambda: inside_hook.append(
        _field(main, allowhook, ctypes.c_ubyte))
    runtime.execute("debug.sethook(function() debug.sethook() probe_hook() end, '', 1)"
                    " local x = 1")
    if _field(main, allowhook, ctypes.c_ubyte) != 1 or inside_hook != [0]:
        raise _fail("lua_State.allowhook")


def _safe_read(address: int, size: int) -> bytes | None:
    """``size`` bytes at ``address`` through /proc/self/mem: an unmapped address fails there
    instead of crashing. None where /proc is not available."""
    try:
        descriptor = os.open("/proc/self/mem", os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.pread(descriptor, size, address)
    except OSError:
        return b""
    finally:
        os.close(descriptor)


def _check_table(runtime: Any, native: LuaNative) -> None:
    """Table's type tag and metatable at their offsets; its array pointer differs between
    tables, is aligned and reads (safely) as the values put there; then slot_threads."""
    slots, other, meta, main, co = (int(p, 16) for p in runtime.execute(
        "probe_meta = {} probe_other = setmetatable({7, 8, 9}, probe_meta)\n"
        "slots = {2, coroutine.running(), probe_co}\n"
        "return string.format('%p', slots), string.format('%p', probe_other),"
        " string.format('%p', probe_meta), string.format('%p', slots[2]),"
        " string.format('%p', probe_co)"))
    for table, metatable in ((slots, 0), (other, meta)):
        if (ctypes.c_ubyte.from_address(table + layout._TABLE_TT_OFFSET).value != layout._LUA_VTABLE
                or _read_pointer(table + layout._TABLE_METATABLE_OFFSET) != metatable):
            raise _fail("Table")
    arrays = [_read_pointer(table + layout._TABLE_ARRAY_OFFSET) for table in (slots, other)]
    if not all(arrays) or arrays[0] == arrays[1] or any(a % 16 for a in arrays):
        raise _fail("Table.array")
    expected = struct.pack("<qB", 2, layout._LUA_VNUMINT)   # [1]: value and tag (no padding)
    memory = _safe_read(arrays[0], len(expected))
    if memory is not None and memory != expected:
        raise _fail("Table.array")
    # every entry's tag where the layout says, not only the bytes packed after [1]'s value
    entries = _safe_read(arrays[0], 3 * layout._TVALUE_SIZE)   # None: no /proc to read
    if entries is not None:
        wanted = (layout._LUA_VNUMINT, layout._LUA_VTHREAD_COLLECTABLE,
                  layout._LUA_VTHREAD_COLLECTABLE)
        at = [k * layout._TVALUE_SIZE + layout._TVALUE_TAG_OFFSET for k in range(3)]
        if len(entries) <= at[-1] or tuple(entries[i] for i in at) != wanted:
            raise _fail("TValue")
    if native.slot_threads(slots, 8) != [main, co]:
        raise _fail("Lua table layout")


def _check_stack_sampling(runtime: Any, native: LuaNative, state: int) -> None:
    seen: list[int] = []
    runtime.globals()[b"probe"] = lambda: seen.append(native.stack_slots(state))
    runtime.execute("local function f(n) if n == 0 then probe() return 0 end "
                    "return 1 + f(n - 1) end return f(100)")
    idle, capacity = native.stack_slots(state), native.stack_capacity(state)
    if not (seen and 0 <= idle < 64 and 200 <= seen[0] < 100_000
            and seen[0] <= capacity < _MAX_STACK_SLOTS):
        raise _fail("lua_State's stack fields")


def _check_collector(runtime: Any, main: int) -> None:
    """gcstp, GCdebt, totalbytes and the string table's size hold what Lua says they hold."""
    global_state = layout.global_state_of(main)
    runtime.execute('collectgarbage("generational", 17, 76)'
                    ' collectgarbage("incremental", 196, 116, 11)')
    start = global_state + layout._GLOBAL_GCSTOPEM_OFFSET
    if ctypes.string_at(start, len(layout._GC_PROBE_BYTES)) != layout._GC_PROBE_BYTES:
        raise NativeLayoutError("the collector's settings are not where Lua 5.4 keeps them")
    collector = layout.Collector(global_state)
    stop = collector._stop
    runtime.execute('collectgarbage("stop")')
    stopped = stop[0]
    collector.pause()
    paused_running = runtime.eval('collectgarbage("isrunning")')
    collector.resume()
    runtime.execute('collectgarbage("restart")')
    counted = runtime.eval('collectgarbage("count")') * 1024
    total = collector._total[0] + collector._debt[0]
    if stopped != 1 or stop[0] != 0 or paused_running is not False or counted != total:
        raise NativeLayoutError("gcstp, GCdebt or totalbytes differ from Lua 5.4's")
    collector.defer(12345)
    deferred = collector._total[0] + collector._debt[0]
    collector.defer(-12345)
    if deferred != total or collector.due() == (collector._debt[0] <= 0):
        raise NativeLayoutError("GCdebt or totalbytes differ from Lua 5.4's")
    strings = collector._strings.value
    used = ctypes.c_int.from_address(global_state + layout._GLOBAL_STRT_SIZE_OFFSET - 4).value
    if strings < _MIN_STRING_TABLE or strings & (strings - 1) or not 0 < used <= 2 * strings:
        raise _fail("global_State.strt")


def _check_event_names(runtime: Any, main: int) -> None:
    names = runtime.eval("string.format('%p %p %p %p', '__index', '__newindex', '__gc', '__mode')")
    wanted = struct.pack("<4Q", *(int(name, 16) for name in names.split()))
    start = layout.global_state_of(main) + layout._GLOBAL_TMNAME_OFFSET
    if ctypes.string_at(start, len(wanted)) != wanted:
        raise NativeLayoutError("metamethod names not found in Lua's global state")
