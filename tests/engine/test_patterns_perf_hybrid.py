"""patterns.lua's start-by-start path (find_at, gmatch_at): calls that fail the bound over the
whole subject but whose anchored attempts are bounded give C's exact results, including after
the tries run out (C's gmatch from a later start, or the Lua matcher)."""

from __future__ import annotations

from typing import Any

import lupa.lua54 as lua54
import pytest

from tests.engine.lua_module import load_module

COMPARE = r"""
local R, seed = ...
local F, M, G = R["string.find"], R["string.match"], R["string.gmatch"]
math.randomseed(seed)
local function pack(...) return {n = select("#", ...), ...} end
local function same(a, b)
  if a.n ~= b.n then return false end
  for i = 1, a.n do
    if a[i] ~= b[i] or math.type(a[i]) ~= math.type(b[i]) then return false end
  end
  return true
end
local function all(g, s, p, init)
  local out, it = {}, g(s, p, init)
  for _ = 1, 5000 do
    local r = pack(it())
    out[#out + 1] = r
    if r[1] == nil then break end
  end
  return out
end
local items = {}
for i = 1, 120 do items[i] = string.format("item%04d=%d;", i, i * 7) end
local long = table.concat(items)
local alpha = "ab0=;() "
local function rnd(n)
  local t = {}
  for i = 1, n do local k = math.random(#alpha) t[i] = alpha:sub(k, k) end
  return table.concat(t)
end
local subjects = {long, rnd(1200), ("a"):rep(1000) .. "b", ("ab"):rep(600)}
local patterns = {"item0*7=(%d+)", "item0*119=(%d+)", "item0*999=(%d+)", "(%w+)=(%d+);",
  "()a*b()", "a%w*=", "b()", "(a)(b*)", "%w*", "a-b", "=%d*;", "^a", "a.-;", "(b)%1",
  "%f[%w]%w+", "x*", "()", "a?b?=", "[ab]*=", "0*1", "a+b", "a*%f[;]", "b*%f[=]()"}
local fails = {}
for si, s in ipairs(subjects) do
  for _, p in ipairs(patterns) do
    for _, init in ipairs({1, 2, -3, #s, #s + 1, #s + 2, math.random(#s)}) do
      for _, f in ipairs({{"find", F, string.find}, {"match", M, string.match}}) do
        local a, b = pack(pcall(f[2], s, p, init)), pack(pcall(f[3], s, p, init))
        if not same(a, b) then fails[#fails + 1] = f[1] .. " " .. si .. " " .. p .. " " .. init end
      end
      local a, b = all(G, s, p, init), all(string.gmatch, s, p, init)
      local ok = #a == #b
      for i = 1, math.min(#a, #b) do ok = ok and same(a[i], b[i]) end
      if not ok then fails[#fails + 1] = "gmatch " .. si .. " " .. p .. " " .. init end
    end
  end
end
return table.concat(fails, "\n")
"""


def runtime() -> Any:
    return lua54.LuaRuntime(encoding="latin-1", register_eval=False, register_builtins=False)


@pytest.mark.parametrize("c_call_ns", [2e5, 2e6])
def test_start_by_start_equals_c(c_call_ns: float) -> None:
    rt = runtime()
    replacements = load_module(rt, "patterns.lua", c_call_ns=c_call_ns)
    fails = rt.globals()["load"](COMPARE)(replacements, 7)
    assert fails == "", fails


def test_workload_pattern_takes_the_start_by_start_path() -> None:
    """The bound over the whole subject refuses it; each anchored attempt is admitted."""
    rt = runtime()
    R = load_module(rt, "patterns.lua", c_call_ns=2e6)
    code = r"""
    local R = ...
    local items = {}
    for i = 1, 300 do items[i] = string.format("item%04d=%d;", i, i * 7) end
    local long = table.concat(items)
    return R._bound("match", #long, "item0*7=(%d+)"), R["string.match"](long, "item0*7=(%d+)")
    """
    bound, got = rt.globals()["load"](code)(R)
    assert bound > 2e6 and got == "49"
