"""patterns.lua's find/match/gmatch/gsub equal the C originals: results, captures, errors.

Every comparison runs inside one Lua runtime: the C function and the replacement are called from
the same chunk line (named "input"), both under pcall, and their results are serialized to a
string, so that error messages (with their "input:1:" prefix) and argument errors compare exactly.
Each replacement module is loaded twice: with c_call_ns=0 (every call takes the Lua matcher) and
with the default budget (small calls take the C fast path).
"""

from __future__ import annotations

from typing import Any

import lupa.lua54 as lua54
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.engine.lua_module import load_module

HARNESS = r"""
local R = ...
local function ser(v)
  local t = type(v)
  if t == "string" then return string.format("%q", v) end
  if t == "number" then return math.type(v) .. ":" .. tostring(v) end
  return tostring(v)
end
local function pack(ok, ...)
  local t = {tostring(ok)}
  for i = 1, select("#", ...) do t[#t + 1] = ser((select(i, ...))) end
  return table.concat(t, ",")
end
local calls = load([[
local F, G, S, M, args, n = ...
local function keep(...) return ... end
return {
  find = function() return keep(F(table.unpack(args, 1, n))) end,
  match = function() return keep(M(table.unpack(args, 1, n))) end,
  gmatch = function()
    local out, it = {}, G(table.unpack(args, 1, n))
    for i = 1, 40 do
      local r = table.pack(it())
      if r[1] == nil then break end
      for j = 1, r.n do r[j] = tostring(r[j]) end
      out[#out + 1] = table.concat(r, "|")
    end
    return table.concat(out, ";")
  end,
  gsub = function() return keep(S(table.unpack(args, 1, n))) end,
}]], "=input")
local function run(lib, fname, args, n)
  local log = {}
  local a = table.move(args, 1, n, 1, {})
  if a[3] == "<fn>" then
    a[3] = function(...)
      log[#log + 1] = pack(true, ...)
      local x = ...
      if x == "b" then return false end
      if x == "a" then return {} end
      return "<" .. tostring(x) .. ">"
    end
  elseif a[3] == "<tbl>" then
    a[3] = {a = "A", b = false, ["1"] = 1.5, ab = true}
  end
  local f = calls(lib["string.find"], lib["string.gmatch"], lib["string.gsub"],
                  lib["string.match"], a, n)
  return pack(pcall(f[fname])) .. " log:" .. table.concat(log, ";")
end
local C = {["string.find"] = string.find, ["string.match"] = string.match,
           ["string.gmatch"] = string.gmatch, ["string.gsub"] = string.gsub}
return function(fname, n, ...)
  local args = {...}
  return run(C, fname, args, n), run(R, fname, args, n)
end
"""


def make_runtime() -> Any:
    return lua54.LuaRuntime(encoding="latin-1", register_eval=False, register_builtins=False)


@pytest.fixture(scope="module")
def compare() -> dict[str, Any]:
    runtime = make_runtime()
    load = runtime.globals()["load"]
    return {
        "lua": load(HARNESS)(load_module(runtime, "patterns.lua", c_call_ns=0)),
        "default": load(HARNESS)(load_module(runtime, "patterns.lua")),
    }


ATOMS = [
    "a", "b", "1", ".", "%a", "%d", "%s", "%w", "%A", "%S", "%.", "%%", "[ab]", "[^a]", "[a-c]",
    "[%a1]", "[]a]", "[^]]", "[a-]", "[%]]", "x", " ", "%(", "$", "^",
]
SPECIAL = [
    "(", ")", "()", "%b()", "%bab", "%f[%w]", "%f[a]", "%f[^a]", "%1", "%2", "%0",
    "%", "[a", "%f", "%fa", "%b(", "[^", "%z",
]
atom = st.builds(
    lambda a, q: a + q, st.sampled_from(ATOMS), st.sampled_from(["", "", "*", "+", "-", "?"]),
)
piece = st.one_of(atom, atom, atom, st.sampled_from(SPECIAL))


@st.composite
def patterns(draw: st.DrawFn) -> str:
    body = "".join(draw(st.lists(piece, max_size=7)))
    if draw(st.booleans()):
        body = "(" + body + ")"
    return draw(st.sampled_from(["", "^"])) + body + draw(st.sampled_from(["", "", "$"]))


subjects = st.text(alphabet="ab1 ()x.", max_size=14)
inits = st.sampled_from(
    [None, None, None, 1, 2, 0, -1, -3, -100, 5, 15, 100, 2**53, "2", "-2", 2.0, 2.5, "x", {}],
)
repls = st.sampled_from(
    ["<fn>", "<tbl>", "-", "%0", "[%1]", "%2", "%1%1", "%%", "%x", "%", 7, 1.5, True, None],
)


def _check(compare: dict[str, Any], fname: str, n: int, *args: Any) -> None:
    for mode in ("lua", "default"):
        expected, actual = compare[mode](fname, n, *args)
        assert actual == expected, (mode, fname, args)


@settings(max_examples=400, deadline=None)
@given(subject=subjects, pattern=patterns(), init=inits)
def test_find_match_gmatch_equal_c(
    compare: dict[str, Any], subject: str, pattern: str, init: object,
) -> None:
    n = 2 if init is None else 3
    for fname in ("find", "match", "gmatch"):
        _check(compare, fname, n, subject, pattern, init)
    _check(compare, "find", 4, subject, pattern, init, True)


@settings(max_examples=300, deadline=None)
@given(subject=subjects, pattern=patterns(), repl=repls,
       max_n=st.sampled_from([None, None, 0, 1, 2, -1, "1", 1.0, 1.5]))
def test_gsub_equals_c(
    compare: dict[str, Any], subject: str, pattern: str, repl: object, max_n: object,
) -> None:
    n = 3 if max_n is None else 4
    if repl is None and max_n is None:
        n = 2
    _check(compare, "gsub", n, subject, pattern, repl, max_n)


@settings(max_examples=100, deadline=None)
@given(subject=st.sampled_from([1111111111, 12.5, -3, 0, 2**63 - 1, 1e100, "1111"]),
       pattern=st.sampled_from([1, 11, "1+", "%d", "(1)%1", ".-%.", 5, "e%+", "^-"]),
       init=inits)
def test_numbers_as_subject_and_pattern(
    compare: dict[str, Any], subject: object, pattern: object, init: object,
) -> None:
    for fname in ("find", "match", "gmatch"):
        _check(compare, fname, 3, subject, pattern, init)
    _check(compare, "gsub", 3, subject, pattern, "<fn>")
    _check(compare, "gsub", 3, subject, pattern, 9)


@pytest.mark.parametrize("args", [
    (), ("a",), (None, "a"), ({}, "a"), ("a", {}), ("a", None), ("a", "a", "x"),
    ("a", "a", 1.5), ("a", "a", "1e400"),
])
def test_argument_errors_equal_c(compare: dict[str, Any], args: tuple[object, ...]) -> None:
    for fname in ("find", "match", "gmatch"):
        _check(compare, fname, len(args), *args)
    _check(compare, "gsub", len(args), *args)
    _check(compare, "gsub", 3, "a", "a", None)
    _check(compare, "gsub", 2, "a", "a")
    _check(compare, "gsub", 4, "a", "a", "b", "z")


@pytest.mark.parametrize(("subject", "pattern"), [
    ("a" * 300, "(a)" * 33),
    ("a" * 300, "a?" * 199 + "a" * 99),
    ("a" * 300, "a?" * 200 + "b"),
    ("a" * 300, "(" * 100 + "a" + ")" * 100),
    ("a" * 300, "(" * 99 + "a" + ")" * 99),
    ("a" * 300, "a*" * 198),
    ("ab" * 150, "%bab" * 90 + "(b*)" * 30 + "a-" * 40 + "$"),
    ("aaa", "(a)" * 32 + "%32"),
])
def test_depth_and_capture_limits_equal_c(
    compare: dict[str, Any], subject: str, pattern: str,
) -> None:
    for fname in ("find", "match", "gmatch"):
        _check(compare, fname, 2, subject, pattern)
    _check(compare, "gsub", 3, subject, pattern, "<fn>")
