"""Load one of the sandbox's Lua modules (engine_scripting/engine/lua/*.lua) into plain lupa.

A module chunk receives ``(kit, argcheck)``: the original library functions and lauxlib-style
argument checks, exactly as sandbox.lua hands them over, and returns a table of replacements keyed
by global name ("string.find"). Tests compare those replacements with the runtime's own C functions.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import lupa.lua54 as lua54

from engine_scripting.engine._engine import SANDBOX_MODULES

_BUILD_KIT = """
local c_call_ns = ...
local function copy(t) local c = {} for k, v in next, t do c[k] = v end return c end
return {
  base = {type = type, error = error, select = select, next = next, rawget = rawget,
          rawset = rawset, rawequal = rawequal, rawlen = rawlen, tostring = tostring,
          tonumber = tonumber, setmetatable = setmetatable, getmetatable = getmetatable,
          pcall = pcall, ipairs = ipairs, pairs = pairs, assert = assert},
  string = copy(string), table = copy(table), math = copy(math), utf8 = copy(utf8),
  coroutine = copy(coroutine),
  debug = {getinfo = debug.getinfo, getmetatable = debug.getmetatable,
           getupvalue = debug.getupvalue},
  c_call_ns = c_call_ns,
}
"""

_ARGCHECK_KIT = """
local kit = ...
return {type = type, error = error, tostring = tostring, tonumber = tonumber, rawget = rawget,
        d_getmetatable = debug.getmetatable, getinfo = debug.getinfo,
        tointeger = math.tointeger, s_format = string.format, setmetatable = setmetatable}
"""


def lua_source(name: str) -> bytes:
    """The text of engine_scripting/engine/lua/<name>."""
    return files("engine_scripting").joinpath("engine", "lua", name).read_bytes()


def load_module(runtime: Any, name: str, *, c_call_ns: float = 25e6) -> Any:
    """Run module ``name`` in ``runtime`` with a kit of the runtime's originals, after the
    modules it builds on (engine.SANDBOX_MODULES before it); returns its table of replacements.
    ``c_call_ns``: how long one uninterruptible C call may take (0 sends every call down the
    interruptible path)."""
    loader = runtime.globals()[b"load"]
    kit = loader(_BUILD_KIT.encode(), b"=kit")(float(c_call_ns))
    argcheck = loader(lua_source("argcheck.lua"), b"=argcheck")(
        loader(_ARGCHECK_KIT.encode())())
    name_all = loader(b"local argcheck, t, shared = ... "
                      b"for k, v in next, t do argcheck.name(v, k) shared[k] = v end")
    shared = runtime.table()
    order = [f"{module}.lua" for module in SANDBOX_MODULES]
    replacements = None
    for module_name in order[:order.index(name) + 1]:
        module = loader(lua_source(module_name), b"=" + module_name.encode())
        replacements = module(kit, argcheck, shared)
        name_all(argcheck, replacements, shared)
    return replacements


def plain_runtime() -> Any:
    """A plain Lua 5.4 runtime as the tests use it: bytes in, bytes out."""
    return lua54.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)
