"""Memory and recursion limits, and C functions that the hook cannot interrupt."""

from __future__ import annotations

import contextlib
import time

import pytest

from engine_scripting import (
    ResourceLimitExceeded,
    ScriptContext,
    ScriptEngine,
    ScriptError,
    ScriptResourceLimits,
    ScriptRuntimeError,
)
from tests.conftest import STOP_BOUND_S


@pytest.mark.parametrize("source", [
    "local t = {} for i = 1, 1e9 do t[i] = i end",
    "local s = 'x' while true do s = s .. s end",
    "return string.rep('x', 1e9)",
    "local t = {} for i = 1, 1e9 do t[#t + 1] = ('x'):rep(1e5) .. i end",
])
def test_memory_limit(engine: ScriptEngine, source: str) -> None:
    # a generous time budget: on a loaded machine the memory limit must still be what stops it
    context = engine.create_context("memory", ScriptResourceLimits(
        max_memory_mb=16, max_execution_time_ms=5000))
    with pytest.raises(ResourceLimitExceeded) as caught:
        context.execute(source)
    assert caught.value.limit_type == "memory"
    assert context.execute("return 'still usable'") == "still usable"
    context.close()


def test_memory_limit_holds_under_pcall(ctx: ScriptContext) -> None:
    ok, message = ctx.execute("return pcall(function() return string.rep('x', 1e9) end)")
    assert ok is False and "memory" in message
    assert ctx.memory_used < 16 * 1024 * 1024


@pytest.mark.parametrize("source", [
    "local function f() return 1 + f() end return f()",
    "local function f(n) return f(n + 1) + 1 end return f(1)",
    "local function f() return pcall(f) end return f()",
    "local function f() local ok, e = pcall(f) if not ok then error(e, 0) end end f()",
])
def test_deep_recursion(ctx: ScriptContext, source: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ResourceLimitExceeded) as caught:
        ctx.execute(source)
    assert caught.value.limit_type == "recursion"
    assert time.perf_counter() - started < STOP_BOUND_S


def test_lua_own_stack_overflow_is_an_ordinary_error(ctx: ScriptContext) -> None:
    """Lua's "C stack overflow" below the sandbox's depth limit is plain Lua's catchable error,
    not the sandbox's limit (issue 19)."""
    source = "local t = setmetatable({}, {__index = function(t, k) return t[k + 1] end})"
    assert ctx.execute(source + " return pcall(function() return t[1] end)") == (
        False, "test:1: C stack overflow")
    with pytest.raises(ScriptRuntimeError, match="C stack overflow"):
        ctx.execute(source + " return t[1]")
    assert ctx.execute("return pcall(error, 'stack overflow in my parser')") == (
        False, "stack overflow in my parser")
    assert ctx.execute("return pcall(error, 'not enough memory')") == (
        False, "not enough memory")
    with pytest.raises(ScriptRuntimeError, match="not enough memory"):
        ctx.execute("error('not enough memory')")


def test_recursion_within_the_limit_runs(ctx: ScriptContext) -> None:
    assert ctx.execute("local function f(n) if n == 0 then return 0 end "
                       "return 1 + f(n - 1) end return f(150)") == 150


def test_recursion_sampled_while_it_lasts(engine: ScriptEngine) -> None:
    context = engine.create_context("deep", ScriptResourceLimits(
        max_memory_mb=64, max_execution_time_ms=2000, max_recursion_depth=50))
    source = """local function f(n)
      if n == 0 then local t = 0 for i = 1, 1e7 do t = t + i end return t end
      return 0 + f(n - 1) end return f(80)"""
    with pytest.raises(ResourceLimitExceeded) as caught:
        context.execute(source)
    assert caught.value.limit_type == "recursion"


@pytest.mark.parametrize(("source", "answer"), [
    ("return string.find(('a'):rep(20000), '.-.-.-.-.-.-b')", None),
    ("return string.match(('a'):rep(20000), '^(.-)(.-)(.-)(.-)b$')", None),
    ("local n = 0 for _ in string.gmatch(('a'):rep(20000), '.-.-.-b') do n = n + 1 end "
     "return n", 0),
    ("return select(2, string.gsub(('a'):rep(20000), '(.-)(.-)b', '%1'))", 0),
    ("return string.find(('a'):rep(200000), 'a*a*b')", None),
    ("return string.find(('a'):rep(1e6), ('a'):rep(5e5) .. 'b', 1, true)", None),
    ("return ('a'):rep(300000):find('a+b')", None),
    ("return string.find(string.rep('a', 40), string.rep('a*', 63) .. 'b')", None),
    ("return string.find(1111111111111111111, string.rep('1*', 30) .. 'x')", None),
])
def test_backtracking_patterns_finish_or_stop_within_twice_the_budget(
    ctx: ScriptContext, source: str, answer: object,
) -> None:
    """Plain Lua runs these for minutes or forever; the sandbox gives plain Lua's answer (the
    Lua matcher remembers failed states) or stops them as it stops any loop."""
    started = time.perf_counter()
    try:
        assert ctx.execute(source) == answer
    except ResourceLimitExceeded as error:
        assert error.limit_type == "time"
    assert time.perf_counter() - started < 2 * 0.050 + 0.5  # 2x budget, plus scheduling slack


def test_ordinary_patterns_keep_working_on_long_subjects(ctx: ScriptContext) -> None:
    assert ctx.execute("local s = ('x'):rep(5000) .. '42' return s:match('%d+')") == "42"
    assert ctx.execute("return ('  hi  '):match('^%s*(.-)%s*$')") == "hi"
    assert ctx.execute("return (('ab'):rep(1000)):gsub('a', 'c'):sub(1, 4)") == "cbcb"
    assert ctx.execute("return ('a,b,,c'):find(',,', 1, true)") == (4, 5)


@pytest.mark.parametrize("source", [
    "return #string.rep('', 2^40)",
    "return #string.rep('', 2^40, '')",
    "table.move({}, 1, math.maxinteger - 1, 2)",
    "local t = setmetatable({}, {__len = function() return 2^31 - 2 end, __index = rawlen}) "
    "table.sort(t)",
    "local t = setmetatable({}, {__len = function() return 2^62 end, __index = rawlen, "
    "__newindex = rawequal}) table.insert(t, 1, 0)",
    "local t = setmetatable({}, {__len = function() return 2^62 end, __index = rawlen, "
    "__newindex = rawequal}) table.remove(t, 1)",
    "local t = setmetatable({}, {__index = rawlen}) return #table.concat(t, '', 1, 2^40)",
    "return select('#', table.unpack({}, 1, 1e8))",
    "return #utf8.char(table.unpack((function() local t = {} for i = 1, 1e5 do t[i] = 65 end "
    "return t end)()))",
])
def test_c_functions_stay_bounded(ctx: ScriptContext, source: str) -> None:
    started = time.perf_counter()
    with contextlib.suppress(ScriptError):
        ctx.execute(source)
    assert time.perf_counter() - started < STOP_BOUND_S


def test_table_functions_still_honour_metamethods(ctx: ScriptContext) -> None:
    assert ctx.execute("""
        local log = {}
        local t = setmetatable({}, {__newindex = function(t, k, v) rawset(t, k, v) end})
        table.insert(t, 'a') table.insert(t, 1, 'b') table.insert(t, 'c')
        table.sort(t)
        local removed = table.remove(t, 1)
        return table.concat(t, ','), removed""") == ("b,c", "a")
    assert ctx.execute("local t = table.move({1, 2, 3, 4, 5}, 1, 5, 2) "
                       "return table.concat(t, ',')") == "1,1,2,3,4,5"
    assert ctx.execute("local t = {} for i = 1, 10000 do t[i] = i end "
                       "table.move(t, 1, 10000, 3) return t[3], t[10002]") == (1, 10000)
