"""What the host keeps or copies for a script stays bounded: results share their long strings,
kept errors pin no frames and carry capped text, violations are counted, not listed."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest

from engine_scripting import (
    ResourceLimitExceeded,
    ScriptContext,
    ScriptEngine,
    ScriptManager,
    ScriptResourceLimits,
    SecurityViolation,
    WorldApi,
)
from engine_scripting.errors import ScriptError


@pytest.fixture
def roomy(engine: ScriptEngine) -> Iterator[ScriptContext]:
    """A context with time to spare on a loaded machine."""
    context = engine.create_context(
        "roomy", ScriptResourceLimits(max_memory_mb=32, max_execution_time_ms=5000))
    yield context
    context.close()


LONG_SHARED = """
local s = string.rep("x", 4 * 2^20)
local t = {}
for i = 1, 100 do t[i] = {s, i} end
return t, s, s
"""


def test_a_result_holding_one_long_string_many_times_shares_one_copy(
        roomy: ScriptContext) -> None:
    table, first, second = roomy.execute(LONG_SHARED)  # type: ignore[misc]
    assert len(first) == 4 * 2**20 and first is second
    assert all(row[0] is first for row in table) and [row[1] for row in table] == list(
        range(1, 101))


def test_many_values_that_are_one_long_string_share_one_copy(roomy: ScriptContext) -> None:
    roomy.execute("function f() local s = string.rep('y', 2^20) return s, s, s, s, s, s end")
    values = roomy.call("f")
    assert isinstance(values, tuple) and len(values) == 6
    assert len({id(value) for value in values}) == 1


def test_results_that_only_look_like_shared_strings_are_plain_data(ctx: ScriptContext) -> None:
    short = ctx.execute("return {[1] = {n = 1}, n = 5}, 'x'")
    assert short == ({1: {"n": 1}, "n": 5}, "x")
    keyed = ctx.execute("return {[{}] = 1, [string.rep('k', 300)] = 2}, string.rep('v', 300)")
    assert keyed == ({"<table>": 1, "k" * 300: 2}, "v" * 300)


def test_kept_errors_pin_no_frames_and_no_lua_tables(engine: ScriptEngine) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    manager.load("victim", "function explode(t) error('boom') end")
    record = manager.running("victim")
    assert record is not None
    context = record.context
    for _ in range(3):
        try:
            context.call("explode", {"data": ["x" * 1000] * 500})
        except ScriptError as error:
            manager.record_tick(record, [error], 0)
    kept = manager.status("victim").last_error
    assert kept is not None and kept.__traceback__ is None
    cause = kept.__cause__ or kept.__context__
    assert cause is None or cause.__traceback__ is None
    gc.collect()
    context.collect_garbage()
    assert context.memory_used < 400_000
    manager.unload("victim")


def test_violations_are_counted_not_listed(roomy: ScriptContext) -> None:
    hooks = roomy._hooks
    try:
        roomy.execute("for i = 1, 20000 do pcall(load, '\\27Lua') end")
    except SecurityViolation as error:
        assert error.reason == "binary_chunk"
    else:
        raise AssertionError("a binary chunk was accepted")
    assert len(hooks.violations) == 1 and hooks.more_violations == 19999


def test_many_short_values_share_the_result_cap(engine: ScriptEngine) -> None:
    small = engine.create_context(
        "small", ScriptResourceLimits(max_memory_mb=1, max_execution_time_ms=5000))
    small.execute("function many(n) local s = string.rep('x', 255) local t = {} "
                  "for i = 1, n do t[i] = s end return table.unpack(t) end")
    assert small.call("many", 64) == tuple(["x" * 255] * 64)
    with pytest.raises(ResourceLimitExceeded) as caught:
        small.call("many", 20000)   # 5 MB of copies from 0.3 MB of Lua memory; the cap is 4 MB
    assert caught.value.limit_type == "memory"
    small.close()


def test_boolean_keys_do_not_merge_with_numbers(roomy: ScriptContext) -> None:
    assert roomy.execute("return {[true] = 'a', [1] = 'b'}, {[false] = 'a', [0] = 'b'}") == (
        {"<true>": "a", 1: "b"}, {"<false>": "a", 0: "b"})


def test_converting_a_result_cannot_outlast_the_call_s_time(engine: ScriptEngine) -> None:
    """Rows that all hold one shared table of short strings: cheap for Lua to export, slow for
    the host to convert (found by a red-team pass: 6 s for a 1 s budget)."""
    context = engine.create_context(
        "rows", ScriptResourceLimits(max_memory_mb=16, max_execution_time_ms=100))
    started = time.perf_counter()
    with pytest.raises(ResourceLimitExceeded) as caught:
        context.execute("""
            local shared = {}
            for i = 1, 64 do shared[i] = "s" .. i end
            local rows = {}
            for i = 1, 20000 do rows[i] = shared end
            return rows""")
    assert caught.value.limit_type == "time"
    assert time.perf_counter() - started < 2 * 0.1 + 0.1 + 1.0
    context.close()
