"""Penetration tests: each escape route out of the sandbox is closed."""

from __future__ import annotations

import gc
import time

import pytest

from engine_scripting import (
    ScriptContext,
    ScriptEngine,
    ScriptError,
    ScriptRuntimeError,
    SecurityViolation,
)
from engine_scripting.engine._policy import LIBRARIES, global_names
from tests.conftest import STOP_BOUND_S

ABSENT = ["os", "io", "debug", "package", "dofile", "loadfile", "python", "warn",
          "loadstring", "setfenv", "getfenv", "newproxy", "jit", "ffi"]


@pytest.mark.parametrize("name", ABSENT)
def test_dangerous_globals_are_absent(ctx: ScriptContext, name: str) -> None:
    assert ctx.execute(f"return {name} == nil") is True


def test_dangerous_globals_are_not_in_the_policy() -> None:
    assert not global_names() & set(ABSENT)


def test_allowed_globals_are_present(ctx: ScriptContext) -> None:
    names = sorted(global_names())
    missing = ctx.execute("local out = {} for _, n in ipairs(...) do "
                          "if _G[n] == nil then out[#out + 1] = n end end return out"
                          .replace("...", "{" + ",".join(f"'{n}'" for n in names) + "}"))
    assert missing == {}
    assert ctx.execute("return _VERSION") == "Lua 5.4"


def test_string_dump_is_absent_also_through_the_string_metatable(ctx: ScriptContext) -> None:
    assert "dump" not in LIBRARIES["string"].names
    assert ctx.execute("return string.dump == nil and ('').dump == nil") is True
    assert ctx.execute("return getmetatable('').__index == string") is True


def test_binary_chunk_refused_by_execute(ctx: ScriptContext) -> None:
    with pytest.raises(SecurityViolation):
        ctx.execute(b"\x1bLua\x54\x00")


@pytest.mark.parametrize("source", [
    "return load('\\27Lua')",
    "local sent = false return load(function() if sent then return nil end sent = true "
    "return '\\27Lua' end)",
    "return pcall(load, '\\27Lua\\84\\0')",
])
def test_binary_chunk_refused_by_load(ctx: ScriptContext, source: str) -> None:
    with pytest.raises(SecurityViolation) as caught:
        ctx.execute(source)
    assert caught.value.reason == "binary_chunk"


def test_load_is_text_only_and_bound_to_the_script_environment(ctx: ScriptContext) -> None:
    assert ctx.execute("x = 41 return load('return x + 1')()") == 42
    assert ctx.execute("return load('return os', 'c', 'b')") == (
        None, "attempt to load a text chunk (mode is 'b')")
    assert ctx.execute("return load('return y', 'c', 't', {y = 5})()") == 5


def test_gc_finalizers_never_run(engine: ScriptEngine) -> None:
    context = engine.create_context("finalizers")
    ran = context.execute("""
        ran = false
        setmetatable({}, {__gc = function() ran = true end})
        local mt = {}
        setmetatable({}, mt)
        mt.__gc = function() ran = true end   -- set after setmetatable: never marked either
        collectgarbage() collectgarbage()
        return ran""")
    assert ran is False
    context.execute("keep = setmetatable({}, {__gc = function() while true do end end})")
    started = time.perf_counter()
    context.close()
    assert time.perf_counter() - started < STOP_BOUND_S


def test_dropping_a_context_with_a_looping_finalizer_is_bounded(engine: ScriptEngine) -> None:
    context = engine.create_context("dropped")
    context.execute("keep = setmetatable({}, {__gc = function() while true do end end})")
    started = time.perf_counter()
    del context
    gc.collect()
    assert time.perf_counter() - started < STOP_BOUND_S


def test_collectgarbage_offers_only_harmless_options(ctx: ScriptContext) -> None:
    assert isinstance(ctx.execute("return collectgarbage('count')"), float)
    assert ctx.execute("return collectgarbage('restart')") == 0   # harmless: nothing stops it
    for option in ("stop", "incremental", "generational", "setpause", "setstepmul"):
        with pytest.raises(ScriptRuntimeError, match="not available"):
            ctx.execute(f"collectgarbage('{option}')")


def test_host_functions_are_lua_functions(ctx: ScriptContext) -> None:
    assert ctx.execute("return type(print), type(load), type(pcall)") == (
        "function", "function", "function")
    assert ctx.execute("return tostring(print):find('^function') ~= nil") is True


def test_no_python_object_is_reachable_by_walking_everything(ctx: ScriptContext) -> None:
    found = ctx.execute("""
        local seen, found = {}, {}
        local function walk(v)
          if type(v) == 'userdata' then found[#found + 1] = tostring(v) end
          if type(v) ~= 'table' or seen[v] then return end
          seen[v] = true
          for k, item in pairs(v) do walk(k) walk(item) end
          local mt = getmetatable(v)
          if type(mt) == 'table' then walk(mt) end
        end
        walk(_G) walk(getmetatable(''))
        return #found""")
    assert found == 0


def test_functions_never_leave_the_sandbox_live(ctx: ScriptContext) -> None:
    result = ctx.execute("return print, coroutine.create(print), {f = print}")
    assert result == ("<function>", "<thread>", {"f": "<function>"})


def test_python_exception_in_print_callback_stays_in_python(engine: ScriptEngine) -> None:
    def explode(line: str) -> None:
        raise ValueError("host bug")

    context = engine.create_context("cb", on_print=explode)
    assert context.execute("local ok = pcall(print, 'x') return ok") is True
    assert list(context.output) == ["x"]


def test_error_from_any_failure_is_a_script_error(ctx: ScriptContext) -> None:
    for source in ("error()", "error(nil)", "error({})", "error(12)", "error(true)"):
        with pytest.raises(ScriptError):
            ctx.execute(source)


def test_string_metatable_changes_stay_inside_and_do_not_break_the_sandbox(
    ctx: ScriptContext,
) -> None:
    ctx.execute("getmetatable('').__index = function() return 'evil' end")
    assert ctx.execute("return ('x').anything") == "evil"
    assert ctx.execute("return string.rep('a', 3)") == "aaa"
