"""Fuzzing the execute/call boundary with arbitrary values: the only exceptions the host ever
sees are ScriptErrors, results are plain data, and the context stays usable."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine_scripting import ScriptContext, ScriptEngine, ScriptError
from tests.conftest import FAST_LIMITS

PLAIN = (type(None), bool, int, float, str, list, dict, tuple)

python_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(2**70), max_value=2**70) | st.text(max_size=50)
    | st.binary(max_size=50) | st.just(object()) | st.just(print) | st.just({1, 2}),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=5) | st.integers(), children, max_size=5)
    | st.tuples(children, children),
    max_leaves=20,
)

# Lua expressions: nested tables, odd numbers, strings with any bytes, functions, coroutines
lua_atoms = st.sampled_from([
    "nil", "true", "false", "0", "-0.0", "1/0", "-1/0", "0/0", "math.maxinteger",
    "math.mininteger", "2^63", "1e308 * 10", "''", "'\\0\\255\\128'", "('x'):rep(100000)",
    "print", "function() end", "coroutine.create(print)", "coroutine.running()",
    "setmetatable({}, {__index = function() error('no') end})",
    "setmetatable({}, {__pairs = function() error('no') end})",
    "(function() local t = {} t.self = t return t end)()",
    "(function() local t = {} for i = 1, 200 do t = {t} end return t end)()",
    "{[{}] = 1, [print] = 2, [true] = 3, [1.5] = 4}", "'\\xff\\xfe'",
])
lua_values = st.recursive(
    lua_atoms,
    lambda children: st.lists(children, max_size=4).map(lambda items: "{" + ", ".join(items) + "}")
    | st.lists(st.tuples(st.sampled_from(["a", "b", "[1]", "[2]", "['\\255']"]), children),
               max_size=3).map(lambda pairs: "{" + ", ".join(f"{k} = {v}" for k, v in pairs)
                                + "}"),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def fuzz_context() -> Iterator[ScriptContext]:
    engine = ScriptEngine(FAST_LIMITS)
    context = engine.create_context("fuzz")
    context.execute("function echo(...) return ... end function count(...) "
                    "return select('#', ...) end")
    yield context
    context.close()
    engine.close()


def _plain(value: object, depth: int = 0) -> bool:
    if not isinstance(value, PLAIN):
        return False
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(_plain(key, depth + 1) and _plain(item, depth + 1)
                   for key, item in value.items())
    return True


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arguments=st.lists(python_values, max_size=4))
def test_call_with_arbitrary_python_values(fuzz_context: ScriptContext,
                                           arguments: list[object]) -> None:
    try:
        result = fuzz_context.call("echo", *arguments)
    except ScriptError:
        pass
    else:
        assert _plain(result)
    assert fuzz_context.call("count", 1, 2) == 2


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions=st.lists(lua_values, min_size=1, max_size=3))
def test_execute_returning_arbitrary_lua_values(fuzz_context: ScriptContext,
                                                expressions: list[str]) -> None:
    try:
        result = fuzz_context.execute("return " + ", ".join(expressions))
    except ScriptError:
        pass
    else:
        assert _plain(result)
    assert fuzz_context.execute("return 1 + 1") == 2


@settings(max_examples=100, deadline=None)
@given(name=st.text(max_size=30) | st.sampled_from(["echo", "", "\0", "string", "_G"]),
       arity=st.integers(min_value=0, max_value=300))
def test_calls_with_odd_names_and_arities(fuzz_context: ScriptContext, name: str,
                                          arity: int) -> None:
    with contextlib.suppress(ScriptError):
        fuzz_context.call(name, *range(arity))
    assert fuzz_context.call("count", *range(arity)) == arity
