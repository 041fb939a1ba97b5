"""Contexts: isolation, plain data in and out, errors, lifecycle."""

from __future__ import annotations

import math
import time

import lupa.lua54
import pytest

from engine_scripting import (
    ResourceLimitExceeded,
    ScriptCompileError,
    ScriptContext,
    ScriptEngine,
    ScriptError,
    ScriptResourceLimits,
    ScriptRuntimeError,
)
from tests.conftest import ROOMY_LIMITS


def test_contexts_do_not_share_globals_string_metatable_or_memory(engine: ScriptEngine) -> None:
    roomy = ScriptResourceLimits(max_memory_mb=32, max_execution_time_ms=2000)  # real work
    first, second = engine.create_context("a", roomy), engine.create_context("b", roomy)
    first.execute("shared = 1 string.evil = true getmetatable('').__index.upper = nil "
                  "big = string.rep('x', 4e6)")
    assert second.execute("return shared, string.evil, ('a'):upper()") == (None, None, "A")
    assert first.memory_used > second.memory_used + 3_000_000


def test_each_context_has_its_own_limits(engine: ScriptEngine) -> None:
    small = engine.create_context("small", ScriptResourceLimits(max_memory_mb=1))
    with pytest.raises(ScriptError):
        small.execute("return string.rep('x', 2e6)")
    big = engine.create_context("big", ROOMY_LIMITS)
    assert len(big.execute("return string.rep('x', 2e6)")) == 2_000_000


def test_call_with_plain_data(ctx: ScriptContext) -> None:
    ctx.execute("function echo(...) return ... end "
                "function sum(t) local s = 0 for _, v in ipairs(t) do s = s + v end return s end")
    assert ctx.call("sum", [1, 2, 3.5]) == 6.5
    assert ctx.call("echo", {"a": [1, {"b": None}]}) == {"a": [1, {}]}
    assert ctx.call("echo", "héllo", 2**62, -1.5, True, None) == ("héllo", 2**62, -1.5, True, None)
    assert ctx.call("echo") is None


@pytest.mark.parametrize("bad", [object(), 2**64, {1, 2}, {(1, 2): 3}, {float("nan"): 1}])
def test_call_rejects_what_is_not_plain_data(ctx: ScriptContext, bad: object) -> None:
    ctx.execute("function echo(...) return ... end")
    with pytest.raises(ScriptError):
        ctx.call("echo", bad)


def test_cyclic_and_deep_arguments_are_refused(ctx: ScriptContext) -> None:
    ctx.execute("function echo(...) return ... end")
    cyclic: list[object] = []
    cyclic.append(cyclic)
    deep: list[object] = []
    for _ in range(200):
        deep = [deep]
    for value in (cyclic, deep):
        with pytest.raises(ScriptError):
            ctx.call("echo", value)


def test_results_handle_cycles_depth_and_invalid_utf8(ctx: ScriptContext) -> None:
    assert ctx.execute("local t = {} t.self = t return t") == {"self": "<cycle>"}
    with pytest.raises(ScriptError):
        ctx.execute("local t = {} for i = 1, 500 do t = {t} end return t")
    assert ctx.execute("return '\\255\\254ok'") == "\ufffd\ufffdok"
    assert ctx.execute("return {[{}] = 1}") == {"<table>": 1}
    assert math.isnan(ctx.execute("return 0/0"))
    assert ctx.execute("return {1, 2, nil, 4}") == {1: 1, 2: 2, 4: 4}


def test_errors_carry_script_and_line(ctx: ScriptContext) -> None:
    with pytest.raises(ScriptRuntimeError) as runtime:
        ctx.execute("local x = 1\nlocal y = nil\nreturn y.z")
    assert runtime.value.line == 3 and "test:3:" in str(runtime.value)
    assert runtime.value.script == "test" and runtime.value.traceback
    with pytest.raises(ScriptCompileError) as compile_error:
        ctx.execute("x = = 1")
    assert compile_error.value.line == 1
    with pytest.raises(ScriptRuntimeError, match="no global function"):
        ctx.call("missing")


def test_print_goes_to_the_host(ctx: ScriptContext, capfd: pytest.CaptureFixture[str]) -> None:
    ctx.execute("print('a', 1, nil, true) print(setmetatable({}, {__tostring = function() "
                "return 'obj' end}))")
    assert list(ctx.output) == ["a\t1\tnil\ttrue", "obj"]
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_closed_context_refuses_calls(engine: ScriptEngine) -> None:
    context = engine.create_context("closing")
    context.close()
    assert context.closed
    with pytest.raises(ScriptError):
        context.execute("return 1")


def test_invalid_limits_are_refused() -> None:
    for bad in ({"max_memory_mb": 0}, {"max_execution_time_ms": -1},
                {"max_recursion_depth": 0}, {"max_memory_mb": float("inf")}):
        with pytest.raises(ValueError):
            ScriptResourceLimits(**bad)  # type: ignore[arg-type]


def test_a_result_holding_one_string_many_times_is_capped(engine: ScriptEngine) -> None:
    """A long string is copied once, however often a result holds it; short strings are
    copied per reference, within 4x the memory limit: 300,000 references to one 255-byte
    string would be 76 MB in the host from 5 MB of Lua memory."""
    ctx = engine.create_context(
        "caps", ScriptResourceLimits(max_memory_mb=16, max_execution_time_ms=5000))
    ctx.execute("function many(n, size) local s = string.rep('x', size) local t = {} "
                "for i = 1, n do t[i] = s end return t end")
    shared = ctx.call("many", 20000, 100000)
    assert isinstance(shared, list) and len(shared) == 20000
    assert len({id(value) for value in shared}) == 1
    started = time.perf_counter()
    with pytest.raises(ResourceLimitExceeded) as caught:
        ctx.call("many", 300000, 255)
    assert caught.value.limit_type == "memory"
    assert time.perf_counter() - started < 5.0
    assert ctx.call("many", 3, 10)[2] == "x" * 10   # the context stays usable


def test_load_inside_a_reload_uses_the_new_version_s_globals(ctx: ScriptContext) -> None:
    ctx.execute("function get() return y end")
    ctx.stage("load('y = 5')() function get() return y end")
    assert ctx.call("get") == 5


def test_contexts_draw_unpredictable_independent_random_numbers(engine: ScriptEngine) -> None:
    """Lua seeds a state from the time and an address, and math.randomseed() returns them: one
    script could predict another's rolls. Each context is seeded from os.urandom."""
    plain = lupa.lua54.LuaRuntime()
    rolls = "local t = {} for i = 1, 4 do t[i] = math.random(1, 2^40) end return t"
    first, second = engine.create_context("a"), engine.create_context("b")
    assert first.execute(rolls) != second.execute(rolls)
    seeds = first.execute("return {math.randomseed()}")
    assert isinstance(seeds, list) and seeds != first.execute("return {math.randomseed()}")
    # explicit seeds behave exactly as in plain Lua
    fixed = "math.randomseed(42, 7) return math.random(1, 10^9), math.randomseed(3)"
    assert first.execute(fixed) == tuple(plain.execute(fixed))
    first.close()
    second.close()
