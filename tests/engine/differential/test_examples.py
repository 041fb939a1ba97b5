"""Hand-written programs that behave the same in the sandbox and in plain Lua today."""

from __future__ import annotations

import pytest

from engine_scripting.engine._policy import global_names

from .harness import assert_exactly_same, promised_globals, uncaught_plain, uncaught_sandboxed

SAME = [
    "return 1, 'a', {1, 2, x = {}}, 1.5, -0.0, 0/0, 1/0, math.mininteger",
    "log(1, 'x') print('hi', 2, nil, 1.5) error('boom')",
    "error({code = 1})",
    "error()",
    "local x = nil; return x.y",
    "return string.rep('x', 3, ','), ('ab'):rep(2)",
    "return string.find('hello', 'l+'), string.match('k=v', '(%w)=(%w)')",
    "return string.gsub('hello world', '%w+', '<%0>', 1)",
    "local r = {} for k, v in string.gmatch('a=1, b=2', '(%w+)=(%w+)') do r[k] = v end return r",
    "local t = {1, 2, 3} table.insert(t, 2, 'x') return t, table.remove(t), t",
    "return table.concat({1, 2, 3}, ', ', 2, 3), table.unpack({1, 2, 3}, 2)",
    "local t = {3, 1, 2} table.sort(t, function(a, b) log(a, b) return a > b end) return t",
    "return table.move({1, 2, 3}, 1, 3, 2)",
    "return pcall(table.insert, {}, 2, 3, 4)",
    "return load('return ...', '=c')(1, 2)",
    "return load(function() return nil end) ~= nil",
    "local e = {} load('x = 1', '=c', 't', e)() return e, x",
    "return xpcall(error, function(e) log('h', e) return 'handled' end, 'E')",
    "return pcall(error, setmetatable({}, {__tostring = function() return 'T' end}))",
    "return coroutine.wrap(function() table.sort({3, 2, 1}, function(a, b) "
    "coroutine.yield() return a < b end) end)()",
    "local co = coroutine.create(function(a) local b = coroutine.yield(a + 1) "
    "error({b}) end) return coroutine.resume(co, 1), coroutine.resume(co, 5), "
    "coroutine.status(co)",
    "return coroutine.isyieldable(), coroutine.running()",
    "return collectgarbage('count') > 0, collectgarbage('step', 0), collectgarbage('isrunning')",
    "local t = setmetatable({}, {__index = function(t, k) log('index', k) end}) "
    "return t.x, rawget(t, 'x')",
]


@pytest.mark.parametrize("code", SAME)
def test_same_outcome(code: str) -> None:
    assert_exactly_same(code)


UNCAUGHT = [
    "error('boom')",
    "local x = nil; return x.y",
    "error('no position', 0)",
    "local t = setmetatable({}, {__index = function() error('from index') end}) return t.x",
    "coroutine.wrap(function() error('in coroutine') end)()",
    "table.sort({3, 2, 1}, function(a, b) error('cmp') end)",
    "string.gsub('a', 'a', function() error('repl', 2) end)",
    "return 1 + {}",
]


@pytest.mark.parametrize("code", UNCAUGHT)
def test_uncaught_error_surfaces_with_the_same_message(code: str) -> None:
    sandbox = uncaught_sandboxed(code)
    assert sandbox.startswith("uncaught ScriptRuntimeError: ")
    assert sandbox == uncaught_plain(code)


def test_promised_globals_are_the_policy_s() -> None:
    # the plain side of the harness offers what a sandbox holds; the sandbox holds the policy
    promised = promised_globals()
    assert set(promised) == set(global_names())
    assert "dump" not in (promised["string"] or ())


def test_plain_side_has_only_the_promised_globals() -> None:
    from .harness import run_plain
    outcome = run_plain("local n = {} for k in pairs(_G) do n[#n + 1] = k end "
                        "table.sort(n) return table.concat(n, ' '), string.dump, os")
    names = sorted(promised_globals())
    assert outcome.result == 'ok 3: "' + " ".join(names) + '" nil nil'
